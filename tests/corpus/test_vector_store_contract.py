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
