"""One contract, every vector index: the in-memory twin, embedded Chroma and the Chroma server
(cluster mode's ``vector.mode = "chroma_http"``, a real ``chroma run``) must behave alike."""
from __future__ import annotations

import uuid

import numpy as np
import pytest

from corpus.models import Chunk
from corpus.vector_store import ChromaVectorIndex, MemoryVectorIndex


def _chunk(cid: str, doc: str = "d1", coll: str = "a") -> Chunk:
    return Chunk(chunk_id=cid, doc_id=doc, ordinal=0, text=cid, source=f"{doc}.txt", title=doc,
                 page=None, section=None, collection=coll)


def _vec(*xs: float) -> np.ndarray:
    v = np.array(xs + (0.0,) * (4 - len(xs)), dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(params=["memory", "chroma", pytest.param("chroma_http", marks=pytest.mark.cluster)])
def index(request, tmp_path):
    if request.param == "memory":
        return MemoryVectorIndex()
    if request.param == "chroma_http":  # one server per session, a collection of its own per test
        server = request.getfixturevalue("chroma_server")
        return ChromaVectorIndex.http(server.host, server.port, f"contract_{uuid.uuid4().hex[:12]}")
    return ChromaVectorIndex.persistent(tmp_path / "chroma", "contract")


def test_add_query_orders_by_similarity(index):
    index.add([_chunk("x"), _chunk("y"), _chunk("z")], np.stack([_vec(1), _vec(0, 1), _vec(1, 1)]))
    got = index.query(_vec(1, 0.1), 3)
    assert [cid for cid, _ in got] == ["x", "z", "y"]
    assert got[0][1] == pytest.approx(float(_vec(1) @ _vec(1, 0.1)), abs=1e-4)
    assert index.count() == 3 and index.ids() == {"x", "y", "z"}


def test_upsert_replaces_not_duplicates(index):
    index.add([_chunk("x")], np.stack([_vec(1)]))
    index.add([_chunk("x")], np.stack([_vec(0, 1)]))
    assert index.count() == 1
    assert index.query(_vec(0, 1), 1)[0][1] == pytest.approx(1.0, abs=1e-4)


def test_delete_and_missing_ids_are_ignored(index):
    index.add([_chunk("x"), _chunk("y")], np.stack([_vec(1), _vec(0, 1)]))
    index.delete(["x", "nope"])
    assert index.ids() == {"y"}
    assert [c for c, _ in index.query(_vec(1), 5)] == ["y"]


def test_filters_by_collection_and_document(index):
    index.add([_chunk("x", "d1", "a"), _chunk("y", "d2", "b"), _chunk("z", "d3", "b")],
              np.stack([_vec(1), _vec(1, 0.2), _vec(1, 0.4)]))
    assert [c for c, _ in index.query(_vec(1), 5, {"collections": ["b"]})] == ["y", "z"]
    assert [c for c, _ in index.query(_vec(1), 5, {"doc_ids": ["d3"]})] == ["z"]
    assert [c for c, _ in index.query(_vec(1), 5, {"collections": ["b"], "doc_ids": ["d1"]})] == []


def test_set_collection_moves_chunks(index):
    index.add([_chunk("x", coll="a")], np.stack([_vec(1)]))
    index.set_collection(["x"], "neu")
    assert index.query(_vec(1), 5, {"collections": ["a"]}) == []
    assert [c for c, _ in index.query(_vec(1), 5, {"collections": ["neu"]})] == ["x"]


def test_empty_index_answers_empty(index):
    assert index.query(_vec(1), 3) == [] and index.count() == 0 and index.ids() == set()


def test_rejects_mismatched_lengths(index):
    with pytest.raises(ValueError):
        index.add([_chunk("x")], np.stack([_vec(1), _vec(0, 1)]))


def test_chroma_persists_across_clients(tmp_path):
    a = ChromaVectorIndex.persistent(tmp_path / "c", "persist")
    a.add([_chunk("x")], np.stack([_vec(1)]))
    b = ChromaVectorIndex.persistent(tmp_path / "c", "persist")
    assert b.ids() == {"x"}


@pytest.mark.cluster
def test_chroma_server_is_shared_between_clients(chroma_server):
    """Two replicas are two clients of one server: what one writes, the other finds and can delete."""
    name = f"shared_{uuid.uuid4().hex[:12]}"
    a = ChromaVectorIndex.http(chroma_server.host, chroma_server.port, name)
    b = ChromaVectorIndex.http(chroma_server.host, chroma_server.port, name)
    a.add([_chunk("x"), _chunk("y", "d2", "b")], np.stack([_vec(1), _vec(0, 1)]))
    assert b.ids() == {"x", "y"} and [c for c, _ in b.query(_vec(0, 1), 1, {"collections": ["b"]})] == ["y"]
    b.delete(["x"])
    assert a.ids() == {"y"} and a.count() == 1


@pytest.mark.cluster
def test_writes_in_batches_and_lists_every_id_on_the_server(chroma_server):
    """More chunks than one upsert batch (2,000) land whole, and ids() lists all of them (the orphan
    sweep and `doctor` compare this list with the catalog: a cut list would look like missing vectors)."""
    index = ChromaVectorIndex.http(chroma_server.host, chroma_server.port, f"paged_{uuid.uuid4().hex[:12]}")
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(2500, 4)).astype(np.float32)
    chunks = [Chunk(chunk_id=f"p{i:05d}", doc_id=f"d{i // 10}", ordinal=i % 10, text="", source="", title="",
                    page=None, section=None, collection="a") for i in range(2500)]
    index.add(chunks, vecs)
    assert index.count() == 2500 and index.ids() == {c.chunk_id for c in chunks}


def test_empty_filter_list_matches_nothing(index):
    index.add([_chunk("x", "d1", "a")], np.stack([_vec(1)]))
    assert index.query(_vec(1), 5, {"collections": []}) == []
    assert index.query(_vec(1), 5, {"collections": ["a"], "doc_ids": []}) == []
    assert [c for c, _ in index.query(_vec(1), 5, {"collections": None})] == ["x"]


def _spread(index, n: int = 240) -> None:
    """n chunks in three collections, random directions (seeded)."""
    rng = np.random.default_rng(15)
    vecs = rng.normal(size=(n, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [Chunk(chunk_id=f"c{i:03d}", doc_id=f"d{i // 4}", ordinal=i % 4, text="", source="", title="",
                    page=None, section=None, collection="abc"[i % 3]) for i in range(n)]
    index.add(chunks, vecs)


def test_allow_everything_filter_gives_exactly_the_unfiltered_results(index):
    _spread(index)
    rng = np.random.default_rng(7)
    for _ in range(10):
        q = rng.normal(size=8).astype(np.float32)
        q /= np.linalg.norm(q)
        plain = index.query(q, 40)
        allowed = index.query(q, 40, {"collections": ["a", "b", "c"]})
        assert [c for c, _ in allowed] == [c for c, _ in plain]
        assert [s for _, s in allowed] == pytest.approx([s for _, s in plain], abs=1e-6)


def test_filter_is_inside_the_query_so_k_allowed_hits_come_back(index):
    _spread(index)
    rng = np.random.default_rng(8)
    for _ in range(10):
        q = rng.normal(size=8).astype(np.float32)
        q /= np.linalg.norm(q)
        got = index.query(q, 10, {"collections": ["b"]})
        assert len(got) == 10 and all(int(c[1:]) % 3 == 1 for c, _ in got)
        # the same ten as the best ten "b" chunks of the unfiltered ranking
        best_b = [c for c, _ in index.query(q, 240) if int(c[1:]) % 3 == 1][:10]
        assert [c for c, _ in got] == best_b


def test_vectors_of_returns_the_stored_vectors_and_skips_unknown_ids(index):
    index.add([_chunk("x"), _chunk("y")], np.stack([_vec(1), _vec(0, 1)]))
    index.add([_chunk("x")], np.stack([_vec(1, 1)]))  # replaced
    got = index.vectors_of(["x", "y", "nicht-da"])
    assert sorted(got) == ["x", "y"]
    assert got["x"] == pytest.approx(_vec(1, 1), abs=1e-6) and got["y"] == pytest.approx(_vec(0, 1), abs=1e-6)
    assert index.vectors_of([]) == {}
