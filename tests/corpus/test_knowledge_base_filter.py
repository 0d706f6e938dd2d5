"""The knowledge base's filtered dense search: the exact search over the scope's vectors in memory,
the way for larger scopes (readable passages among the nearest few) and the index's own filter
give the same top k, and the filter never returns fewer than k. Each test runs with ingest's chunk
ids (``doc:version:n``, collections looked up per document in memory) and with ids of another form
(asked of the catalog), and both ways of a filtered search."""
from __future__ import annotations

import numpy as np
import pytest

from corpus.catalog import Catalog, DocumentRecord
from corpus.knowledge_base import KnowledgeBase
from corpus.models import Chunk, chunk_id_for, doc_id_of_chunk
from corpus.vector_store import MemoryVectorIndex


class VectorEmbedder:
    """Unit-test embedder: the query text names a row of a fixed random matrix."""

    def __init__(self, queries: np.ndarray) -> None:
        self.queries = queries

    def embed_query_vector(self, text: str) -> np.ndarray:
        return self.queries[int(text)]


def cid(i: int, form: str) -> str:
    return chunk_id_for(f"d{i}", "v1abcdef", 0) if form == "versioned" else f"c{i:03d}"


@pytest.fixture(params=["versioned", "plain"])
def form(request):
    return request.param


@pytest.fixture(params=["exact", "nearest"])
def way(request):
    return request.param


@pytest.fixture
def kb(any_db_url, form, way):
    rng = np.random.default_rng(15)
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = rng.normal(size=(20, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)  # as the model's are: scores are cosines
    catalog = Catalog(any_db_url)
    index = MemoryVectorIndex()
    kb = KnowledgeBase(catalog, index, lambda: VectorEmbedder(queries))
    if way == "nearest":
        kb.EXACT_SCOPE_MAX = 0  # the way for scopes too large to hold in memory
    # "klein" holds 6 passages, "a" and "b" the rest
    for i in range(300):
        coll = "klein" if i < 6 else "ab"[i % 2]
        chunk = Chunk(chunk_id=cid(i, form), doc_id=f"d{i}", ordinal=0, text="", source=f"{i}.txt", title="",
                      page=None, section=None, collection=coll)
        kb.store_version(DocumentRecord(doc_id=f"d{i}", source=f"{i}.txt", path=f"/x/{i}.txt", collection=coll,
                                        status="indexed"), [chunk], vecs[i:i + 1])
    return kb


@pytest.mark.parametrize("allowed", [["a"], ["a", "b"], ["klein"], ["a", "klein"], ["a", "b", "klein"]])
def test_every_way_gives_the_index_filters_top_k(kb, way, allowed):
    calls = []
    query = kb.vectors.query

    def counting(vector, k, flt=None):
        calls.append(flt)
        return query(vector, k, flt)

    kb.vectors.query = counting
    for q in range(20):
        got = kb.dense_search(str(q), 10, {"collections": allowed})
        want = query(kb.embedder.embed_query_vector(str(q)), 10, {"collections": allowed})
        assert [c for c, _ in got] == [c for c, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
        assert len(got) == min(10, sum(1 for i in range(300) if ("klein" if i < 6 else "ab"[i % 2]) in allowed))
    fell_back = sum(1 for f in calls if f is not None)
    if way == "exact":
        assert calls == []  # every scope of up to EXACT_SCOPE_MAX passages, all of them too, from memory
    if way == "nearest" and allowed == ["klein"]:
        assert fell_back == 20  # six passages: never ten among the nearest hundred
    if allowed == ["a", "b"] and way == "nearest":
        assert fell_back == 0   # nearly everything readable: the fast way always suffices


def test_an_unfiltered_search_is_exact_and_never_asks_the_index(kb, way):
    """Without a collections filter too: the exact top k from memory, the same in every process
    (Chroma's graph search returned another tail of the top 40 from one process to the next)."""
    calls = []
    query = kb.vectors.query
    kb.vectors.query = lambda vector, k, flt=None: calls.append(flt) or query(vector, k, flt)
    for q in range(20):
        v = kb.embedder.embed_query_vector(str(q))
        got = kb.dense_search(str(q), 10)
        assert [c for c, _ in got] == [c for c, _ in query(v, 10)]  # the memory index is exact itself
    assert calls == ([] if way == "exact" else [None] * 20)


def test_an_exact_search_that_cannot_read_its_vectors_asks_the_index(kb):
    """After a crash the catalog may list passages whose vectors the index lost (Chroma then fails
    the whole fetch: "Error finding id"); the search answers from the index instead of failing."""
    def lost(ids):
        raise RuntimeError("Error executing plan: Internal error: Error finding id")

    kb.vectors.vectors_of = lost
    for flt in (None, {"collections": ["a"]}):
        got = kb.dense_search("3", 10, flt)
        want = kb.vectors.query(kb.embedder.embed_query_vector("3"), 10, flt)
        assert [c for c, _ in got] == [c for c, _ in want] and len(got) == 10


def test_the_catalog_decides_the_collection(kb, form):
    """A passage moved in the catalog but not yet in the index's metadata counts where the catalog
    says, also right after the move (the in-memory map follows the catalog's generation)."""
    moved = cid(7, form)
    kb.dense_search("0", 10, {"collections": ["b"]})  # the map is built before the move
    kb.catalog.move_document("d7", "klein")  # the index still says "b"
    before = kb.vectors.query  # (the retriever checks the catalog again after a fallback to the index)
    for q in range(20):
        nearest = [c for c, _ in before(kb.embedder.embed_query_vector(str(q)), 100)]
        got = [c for c, _ in kb.dense_search(str(q), 10, {"collections": ["b"]})]
        assert moved not in got and len(got) == 10
        if moved in nearest[:12]:
            return
    pytest.fail(f"{moved} was never among the nearest passages: the test shows nothing")


def test_the_in_memory_map_agrees_with_the_catalog(kb, form):
    ids = [cid(i, form) for i in range(300)] + ["unbekannt:v1:00000", "c999"]
    gen = kb.catalog.generation()
    assert kb._collections_of(ids, gen) == kb.catalog.collections_of(ids)
    kb.catalog.delete_document("d3")  # its passage leaves the map with the next generation
    gen = kb.catalog.generation()
    assert kb._collections_of(ids, gen) == kb.catalog.collections_of(ids)


@pytest.mark.parametrize("chunk_id, doc_id", [
    (chunk_id_for("abc123", "0123456789abcdef", 7), "abc123"),
    (chunk_id_for("storage:a:b", "v", 0), "storage:a:b"),  # a colon inside the document id
    ("c001", "c001"),                                       # another form: itself
    ("a:b", "a:b"),
])
def test_doc_id_of_chunk(chunk_id, doc_id):
    assert doc_id_of_chunk(chunk_id) == doc_id


def test_the_scope_in_memory_follows_every_change_of_the_catalog(any_db_url):
    """New, replaced (also under the same chunk ids, e.g. a new title), moved and deleted passages
    are searched as the catalog says right after the change; only what changed is fetched again."""
    rng = np.random.default_rng(3)
    queries = rng.normal(size=(4, 8)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    catalog = Catalog(any_db_url)
    index = MemoryVectorIndex()
    kb = KnowledgeBase(catalog, index, lambda: VectorEmbedder(queries))
    fetched: list[str] = []
    vectors_of = index.vectors_of
    index.vectors_of = lambda ids: fetched.extend(ids) or vectors_of(ids)

    def put(doc: str, coll: str, vec: np.ndarray, at: float) -> None:
        chunk = Chunk(chunk_id=chunk_id_for(doc, "v1", 0), doc_id=doc, ordinal=0, text="", source=doc, title="",
                      page=None, section=None, collection=coll)
        kb.store_version(DocumentRecord(doc_id=doc, source=doc, path=f"/x/{doc}", collection=coll, status="indexed",
                                        indexed_at=at), [chunk], vec[None, :])

    def found(q: int = 0) -> list[str]:
        return [doc_id_of_chunk(c) for c, _ in kb.dense_search(str(q), 3, {"collections": ["a"]})]

    near, far = queries[0], -queries[0]
    put("eins", "a", far, 1.0)
    put("zwei", "a", far + 0.1, 1.0)
    put("fremd", "b", near, 1.0)   # the nearest passage, but not readable
    assert found() == ["zwei", "eins"] or found() == ["eins", "zwei"]
    assert sorted(fetched) == sorted([chunk_id_for("eins", "v1", 0), chunk_id_for("zwei", "v1", 0)])
    fetched.clear()
    put("drei", "a", near + 0.01, 1.0)                   # new
    assert found()[0] == "drei" and fetched == [chunk_id_for("drei", "v1", 0)]
    put("eins", "a", near, 2.0)                          # same chunk id, new vector
    assert found()[0] == "eins"
    kb.move_document("drei", "b")                        # moved out of the scope
    assert "drei" not in found()
    kb.delete_document("eins")
    assert found() == ["zwei"]
    assert kb.dense_search("0", 3, {"collections": []}) == []
