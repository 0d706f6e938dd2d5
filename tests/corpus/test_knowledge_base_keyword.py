"""The knowledge base keeps its keyword index in step with the catalog document by document:
adding, replacing, moving or deleting one document never rebuilds the whole index, and the
result ranks exactly like a rebuild from the catalog."""
from __future__ import annotations

import pytest

from corpus.catalog import DocumentRecord
from corpus.keyword_index import BM25Index
from corpus.knowledge_base import KnowledgeBase, index_text
from corpus.models import Chunk

TEXTS = {
    "friedhof": ["Die Ruhezeit für Urnengräber beträgt 20 Jahre.", "Gräber sind nach der Beisetzung herzurichten."],
    "hund": ["Die Hundesteuer beträgt 120 Euro für den ersten Hund."],
    "muell": ["Sperrmüll wird zweimal im Jahr abgeholt.", "Die Biotonne wird wöchentlich geleert."],
    "park": ["Parkgebühren am Bahnhof betragen 1 Euro je Stunde."],
}
QUERIES = ["Ruhezeit Urnengrab", "Hundesteuer Euro", "Biotonne Sperrmüll", "Parkgebühren Bahnhof Euro", "Jahr"]


def _store(kb: KnowledgeBase, doc_id: str, texts: list[str], version: str = "v1", collection: str = "demo") -> None:
    chunks = [Chunk(chunk_id=f"{doc_id}:{version}:{i}", doc_id=doc_id, ordinal=i, text=t, source=f"/d/{doc_id}.txt",
                    title=doc_id.title(), page=None, section=None, collection=collection) for i, t in enumerate(texts)]
    rec = DocumentRecord(doc_id=doc_id, source=f"/d/{doc_id}.txt", path=f"/d/{doc_id}.txt", collection=collection,
                         status="indexed", title=doc_id.title())
    kb.store_version(rec, chunks, kb.embedder.embed_passages([index_text(c) for c in chunks]))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.cluster)])
def hash_app(request, app_factory, tmp_path):
    """The hash-embedder App with its catalog in the data directory and in PostgreSQL (cluster mode)."""
    if request.param == "sqlite":
        return app_factory(tmp_path / "data")
    return app_factory(tmp_path / "data", app_db_url=request.getfixturevalue("pg_url"))


@pytest.fixture
def kb(hash_app):
    kb = hash_app.kb
    for doc_id in ("friedhof", "hund", "muell"):
        _store(kb, doc_id, TEXTS[doc_id])
    kb.refresh_keyword_index()
    return kb


@pytest.fixture
def rebuilds(kb, monkeypatch):
    calls = []
    original = KnowledgeBase._build_bm25

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(KnowledgeBase, "_build_bm25", counting)
    return calls


def _rebuilt(kb: KnowledgeBase) -> BM25Index:
    chunks = list(kb.catalog.iter_chunks())
    idx = BM25Index()
    idx.build([c.chunk_id for c in chunks], [index_text(c) for c in chunks], [c.collection for c in chunks],
              [c.doc_id for c in chunks], generation=0)
    return idx


def _assert_like_rebuild(kb: KnowledgeBase, flt=None) -> None:
    live, full = kb.keyword_index(), _rebuilt(kb)
    assert live.generation == kb.catalog.generation()
    assert live.chunk_ids() == kb.catalog.chunk_ids()
    for q in QUERIES:
        got, want = live.query(q, 10, flt), full.query(q, 10, flt)
        assert [c for c, _ in got] == [c for c, _ in want], q
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-9), q


def test_add_replace_move_delete_one_document_without_rebuild(kb, rebuilds):
    _store(kb, "park", TEXTS["park"])
    _assert_like_rebuild(kb)
    _store(kb, "hund", ["Die Hundesteuer beträgt nun 150 Euro."], version="v2")
    _assert_like_rebuild(kb)
    assert kb.keyword_search("Hundesteuer", 5)[0][0] == "hund:v2:0"
    kb.move_document("muell", "abfall")
    _assert_like_rebuild(kb, {"collections": ["abfall"]})
    assert [c for c, _ in kb.keyword_search("Biotonne", 5, {"collections": ["demo"]})] == []
    kb.delete_document("friedhof")
    _assert_like_rebuild(kb)
    assert kb.keyword_search("Urnengrab", 5) == []
    assert rebuilds == []


def test_another_process_sees_the_change_through_the_saved_index(kb, hash_app, rebuilds):
    """A second knowledge base on the same data dir (a portal beside a CLI ingest) loads the
    saved index and applies only what changed since."""
    other = KnowledgeBase(hash_app.catalog, hash_app.vectors, hash_app.build_embedder, hash_app.settings.bm25_path)
    assert other.keyword_search("Hundesteuer", 5)[0][0] == "hund:v1:0"
    _store(kb, "park", TEXTS["park"])
    kb.delete_document("hund")
    kb.refresh_keyword_index()
    assert [c for c, _ in other.keyword_search("Parkgebühren", 5)] == ["park:v1:0"]
    assert other.keyword_search("Hundesteuer", 5) == []
    assert rebuilds == []


def test_broken_saved_index_is_rebuilt(kb, hash_app):
    for f in hash_app.settings.bm25_path.iterdir():
        if f.name.startswith("seg"):
            f.write_bytes(b"kaputt")
    other = KnowledgeBase(hash_app.catalog, hash_app.vectors, hash_app.build_embedder, hash_app.settings.bm25_path)
    assert other.keyword_search("Hundesteuer", 5)[0][0] == "hund:v1:0"
    assert other.check().ok


def test_sweep_after_a_crash_removes_exactly_the_noted_vectors(kb, hash_app, monkeypatch):
    """A write killed between the vector store and the catalog leaves orphans; the sweep that every
    ingest runs finds them through the note the write left, without listing every vector."""
    vectors = hash_app.vectors

    def killed(*_a, **_k):
        raise KeyboardInterrupt("kill")

    monkeypatch.setattr(kb.catalog, "commit_documents", killed)
    with pytest.raises(KeyboardInterrupt):
        _store(kb, "park", TEXTS["park"])
    monkeypatch.undo()
    assert "park:v1:0" in vectors.ids()  # the orphan
    monkeypatch.setattr(vectors, "ids", lambda: pytest.fail("the sweep must not list every vector"))
    assert kb.sweep_orphans() == 1
    monkeypatch.undo()
    assert "park:v1:0" not in vectors.ids() and vectors.ids() == kb.catalog.chunk_ids()
    assert kb.sweep_orphans() == 0 and kb.check().ok


def test_full_sweep_finds_orphans_nobody_noted(kb, hash_app):
    orphan = Chunk(chunk_id="alt:v0:0", doc_id="alt", ordinal=0, text="x", source="x", title="x", page=None,
                   section=None, collection="demo")
    hash_app.vectors.add([orphan], kb.embedder.embed_passages(["x"]))
    assert kb.sweep_orphans() == 0
    assert kb.sweep_orphans(full=True) == 1


def test_a_killed_writes_note_survives_the_next_write(kb, hash_app, monkeypatch):
    """The next write settles the note a killed one left before noting its own ids."""
    def killed(*_a, **_k):
        raise KeyboardInterrupt("kill")

    monkeypatch.setattr(kb.catalog, "commit_documents", killed)
    with pytest.raises(KeyboardInterrupt):
        _store(kb, "park", TEXTS["park"], version="v9")
    monkeypatch.undo()
    _store(kb, "hund", ["Die Hundesteuer steigt."], version="v2")  # an unrelated, successful write
    assert "park:v9:0" not in hash_app.vectors.ids()
    assert hash_app.vectors.ids() == kb.catalog.chunk_ids()
