"""Readable collections go into the retrieval query itself: same results when everything is
allowed, k readable hits when something is not (hash embedder; memory index and real Chroma)."""
from __future__ import annotations

import pytest

from assistant.access import Scope
from assistant.chain import Assistant
from corpus.catalog import DocumentRecord
from corpus.knowledge_base import index_text
from corpus.models import Chunk

TOPICS = ["Urlaubsantrag", "Bauantrag", "Gehaltsabrechnung", "Baugenehmigung", "Dienstreise", "Bebauungsplan"]


def _fill(app) -> None:
    """Three collections of twelve one-chunk documents; the personnel texts repeat the query words most."""
    kb = app.kb
    for coll, boost in (("personal", 3), ("bau", 1), ("allgemein", 2)):
        kb.catalog.ensure_collection(coll, readers=["alle"] if coll == "allgemein" else [coll + "amt"])
        for i in range(12):
            doc_id = f"{coll}{i}"
            topic = TOPICS[i % len(TOPICS)]
            text = f"{coll} {doc_id}: " + " ".join([f"Der {topic} ist bis zur Frist einzureichen."] * boost) + f" Nummer {i}."
            chunk = Chunk(chunk_id=f"{doc_id}:v1:0", doc_id=doc_id, ordinal=0, text=text, source=f"/d/{doc_id}.txt",
                          title=f"{coll.title()} {topic} {i}", page=1, section=None, collection=coll)
            rec = DocumentRecord(doc_id=doc_id, source=chunk.source, path=chunk.source, collection=coll,
                                 status="indexed", title=chunk.title, format="txt")
            kb.store_version(rec, [chunk], kb.embedder.embed_passages([index_text(chunk)]))
    kb.refresh_keyword_index()


@pytest.fixture(params=["memory", "chroma"])
def app(request, hash_app, chroma_hash_app):
    app = hash_app if request.param == "memory" else chroma_hash_app
    _fill(app)
    return app


QUESTIONS = ["Bis wann ist der Urlaubsantrag einzureichen?", "Frist Bauantrag", "Gehaltsabrechnung Nummer 4",
             "Dienstreise", "Bebauungsplan Frist Nummer 11"]


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_allow_everything_gives_todays_results(app, mode):
    everything = sorted(app.catalog.collection_readers())
    for q in QUESTIONS:
        plain = app.retriever.search(q, k=10, mode=mode).hits
        allowed = app.retriever.search(q, k=10, mode=mode, collections=everything).hits
        assert [(h.chunk.chunk_id, h.bm25_rank, h.dense_rank) for h in allowed] == \
               [(h.chunk.chunk_id, h.bm25_rank, h.dense_rank) for h in plain]
        assert [h.score for h in allowed] == pytest.approx([h.score for h in plain], abs=1e-9)


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_a_restricted_user_still_gets_k_readable_hits(app, mode):
    allowed = {"bau", "allgemein"}
    for q in QUESTIONS:
        hits = app.retriever.search(q, k=8, mode=mode, collections=sorted(allowed)).hits
        # as many as exist (BM25 finds only passages sharing a word), never fewer because others rank higher
        readable = [h for h in app.retriever.search(q, k=36, mode=mode).hits if h.chunk.collection in allowed]
        assert len(hits) == min(8, len(readable)) and len(readable) >= 4
        assert {h.chunk.collection for h in hits} <= allowed
        assert app.retriever.search(q, k=8, mode=mode, collections=[]).hits == []


def test_the_chain_answers_only_from_the_scope(app):
    assistant = Assistant(app.retriever, app.settings, lambda key: None)
    scope = Scope(frozenset({"bau", "allgemein"}))
    res = assistant.answer("Bis wann ist die Gehaltsabrechnung einzureichen?", model="extraktiv", scope=scope)
    assert res.citations and all(not c.doc_id.startswith("personal") for c in res.citations)
    assert "personal" not in res.answer
    # a crafted choice outside the scope searches nothing rather than widening it
    res = assistant.answer("Gehaltsabrechnung", model="extraktiv", scope=scope, collections=["personal"])
    assert res.refused and res.citations == [] and "personal" not in res.answer
