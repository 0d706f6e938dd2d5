from __future__ import annotations

import threading

import pytest

from corpus.catalog import Catalog, DocumentRecord
from corpus.models import Chunk


def _rec(doc_id="d1", coll="a", **kw) -> DocumentRecord:
    kw.setdefault("status", "indexed")
    return DocumentRecord(doc_id=doc_id, source=f"{doc_id}.pdf", path=f"/x/{doc_id}.pdf", collection=coll, **kw)


def _chunks(doc_id: str, version: str, n: int) -> list[Chunk]:
    return [Chunk(chunk_id=f"{doc_id}:{version}:{i}", doc_id=doc_id, ordinal=i, text=f"t{i}", source="", title="",
                  page=i + 1, section=None, collection="a") for i in range(n)]


@pytest.fixture
def cat(tmp_path):
    return Catalog(tmp_path / "c.sqlite3")


def test_commit_replaces_version_and_returns_stale_ids(cat):
    assert cat.commit_document(_rec(), _chunks("d1", "v1", 3)) == []
    stale = cat.commit_document(_rec(), _chunks("d1", "v2", 2))
    assert sorted(stale) == ["d1:v1:0", "d1:v1:1", "d1:v1:2"]
    assert cat.chunk_ids() == {"d1:v2:0", "d1:v2:1"}
    assert cat.get("d1").chunk_count == 2


def test_generation_moves_on_visible_changes(cat):
    g0 = cat.generation()
    cat.commit_document(_rec(), _chunks("d1", "v1", 1))
    g1 = cat.generation()
    cat.delete_document("d1")
    assert g0 < g1 < cat.generation()


def test_chunks_by_ids_joins_document_fields_and_skips_unknown(cat):
    cat.commit_document(_rec(title="Satzung"), _chunks("d1", "v1", 2))
    got = cat.chunks_by_ids(["d1:v1:1", "orphan"])
    assert list(got) == ["d1:v1:1"]
    assert got["d1:v1:1"].title == "Satzung" and got["d1:v1:1"].page == 2 and got["d1:v1:1"].source == "d1.pdf"


def test_failed_update_keeps_indexed_version(cat):
    cat.commit_document(_rec(), _chunks("d1", "v1", 2))
    cat.record_failure(_rec(status="failed", error="kaputt"))
    rec = cat.get("d1")
    assert rec.status == "indexed" and rec.chunk_count == 2 and rec.error == "kaputt"


def test_delete_unknown_raises(cat):
    with pytest.raises(KeyError):
        cat.delete_document("nope")


def test_collections_rename_move_delete(cat):
    cat.commit_document(_rec("d1", "a"), _chunks("d1", "v1", 1))
    cat.ensure_collection("leer")
    assert [c["name"] for c in cat.collections()] == ["a", "leer"]
    assert cat.rename_collection("a", "b") == ["d1"]
    assert cat.get("d1").collection == "b"
    cat.move_document("d1", "c")
    assert cat.get("d1").collection == "c"
    with pytest.raises(ValueError):
        cat.delete_collection("c")
    cat.delete_collection("leer")
    assert "leer" not in [c["name"] for c in cat.collections()]


def test_concurrent_readers_during_writes(cat):
    cat.commit_document(_rec(), _chunks("d1", "v0", 3))
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            ids = cat.chunk_ids()
            versions = {i.split(":")[1] for i in ids}
            if len(versions) != 1 or len(ids) != 3:
                errors.append(f"saw {sorted(ids)}")

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for v in range(1, 30):
        cat.commit_document(_rec(), _chunks("d1", f"v{v}", 3))
    stop.set()
    for t in readers:
        t.join()
    assert errors == []


def test_metadata_is_stored_with_the_version_and_old_catalogs_gain_the_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)  # a catalog as schema 2 wrote it: no documents.meta
    old.executescript("""CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '2'), ('generation', '4');
        CREATE TABLE documents (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, path TEXT NOT NULL UNIQUE,
            original_name TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL DEFAULT 0,
            format TEXT NOT NULL DEFAULT '', title TEXT NOT NULL DEFAULT '', pages INTEGER, page_kind TEXT,
            collection TEXT NOT NULL, classification TEXT, status TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
            indexed_at REAL, chunk_count INTEGER NOT NULL DEFAULT 0);
        INSERT INTO documents(doc_id, source, path, collection, status) VALUES ('d0', 'a.pdf', '/x/a.pdf', 'a', 'indexed');""")
    old.commit()
    old.close()
    cat = Catalog(path)
    assert cat.get("d0").meta == {} and cat.get_meta("schema_version") == "4"
    meta = {"source": "oparl", "reference": "2025/117", "consultations": [{"role": "Beschlussfassung"}]}
    cat.commit_document(_rec("d1", meta=meta), _chunks("d1", "v1", 1))
    assert cat.get("d1").meta == meta and cat.documents(collection="a")[1].meta == meta
    gen = cat.generation()
    cat.set_document_meta("d1", {"source": "oparl", "reference": "2025/118"})
    assert cat.get("d1").meta["reference"] == "2025/118" and cat.generation() == gen + 1
    with pytest.raises(KeyError):
        cat.set_document_meta("nope", {})
