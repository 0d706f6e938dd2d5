"""One contract, every vector index: the in-memory twin and real Chroma must behave alike."""
from __future__ import annotations

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


@pytest.fixture(params=["memory", "chroma"])
def index(request, tmp_path):
    if request.param == "memory":
        return MemoryVectorIndex()
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
