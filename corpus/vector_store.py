"""Dense vector index behind a narrow interface, with an in-memory twin.

Both implementations pass the same contract tests (tests/corpus/test_vector_store_contract.py).
Vectors are always computed by us and handed over: Chroma's own embedding function is
never used (it would try to download a model), and its telemetry is switched off.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from corpus.models import Chunk

log = logging.getLogger(__name__)


class Filter(dict):
    """Search filter: ``collections`` (list of names) and/or ``doc_ids`` (list).

    A key that is absent or ``None`` does not restrict; a list restricts to its members,
    so an empty list matches nothing (a user who may read no collection finds nothing,
    never everything). The filter is part of the query: k hits come from the allowed set.
    """


def matches_nothing(flt: dict | None) -> bool:
    """True when a filter allows no chunk at all (an empty list for a key)."""
    return bool(flt) and any(flt.get(key) is not None and len(flt[key]) == 0 for key in ("collections", "doc_ids"))


def _matches(meta: dict, flt: dict | None) -> bool:
    if not flt:
        return True
    if flt.get("collections") is not None and meta.get("collection") not in flt["collections"]:
        return False
    if flt.get("doc_ids") is not None and meta.get("doc_id") not in flt["doc_ids"]:
        return False
    return True


class VectorIndex(Protocol):
    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def query(self, vector: np.ndarray, k: int, flt: dict | None = None) -> list[tuple[str, float]]: ...
    def set_collection(self, ids: Sequence[str], collection: str) -> None: ...
    def ids(self) -> set[str]: ...
    def count(self) -> int: ...
    def vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...


class MemoryVectorIndex:
    """Exact cosine search over a numpy matrix; the in-memory twin for tests."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}
        self._meta: list[dict] = []
        self._vecs = np.zeros((0, 0), dtype=np.float32)
        self._lock = threading.RLock()

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("chunks and vectors differ in length")
        with self._lock:
            vectors = np.asarray(vectors, dtype=np.float32)
            if self._vecs.size == 0:
                self._vecs = np.zeros((0, vectors.shape[1]), dtype=np.float32)
            new_rows = []
            for chunk, vec in zip(chunks, vectors):
                if chunk.chunk_id in self._pos:
                    i = self._pos[chunk.chunk_id]
                    self._vecs[i] = vec
                    self._meta[i] = chunk.metadata()
                else:
                    self._pos[chunk.chunk_id] = len(self._ids) + len(new_rows)
                    new_rows.append((chunk, vec))
            if new_rows:
                self._ids.extend(c.chunk_id for c, _ in new_rows)
                self._meta.extend(c.metadata() for c, _ in new_rows)
                self._vecs = np.vstack([self._vecs, np.stack([v for _, v in new_rows])])

    def delete(self, ids: Sequence[str]) -> None:
        with self._lock:
            drop = {i for i in ids if i in self._pos}
            if not drop:
                return
            keep = [n for n, cid in enumerate(self._ids) if cid not in drop]
            self._ids = [self._ids[n] for n in keep]
            self._meta = [self._meta[n] for n in keep]
            self._vecs = self._vecs[keep]
            self._pos = {cid: n for n, cid in enumerate(self._ids)}

    def query(self, vector: np.ndarray, k: int, flt: dict | None = None) -> list[tuple[str, float]]:
        with self._lock:
            if not self._ids or matches_nothing(flt):
                return []
            sims = self._vecs @ np.asarray(vector, dtype=np.float32)
            order = np.argsort(-sims)
            out = []
            for n in order:
                if _matches(self._meta[n], flt):
                    out.append((self._ids[n], float(sims[n])))
                    if len(out) == k:
                        break
            return out

    def set_collection(self, ids: Sequence[str], collection: str) -> None:
        with self._lock:
            for cid in ids:
                if cid in self._pos:
                    self._meta[self._pos[cid]]["collection"] = collection

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._ids)

    def vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these ids (unknown ids are absent)."""
        with self._lock:
            return {cid: self._vecs[self._pos[cid]].copy() for cid in ids if cid in self._pos}

    def count(self) -> int:
        return len(self._ids)


class ChromaVectorIndex:
    """Chroma collection (embedded PersistentClient or HTTP server) holding chunk vectors."""

    _BATCH = 2000

    def __init__(self, client, name: str = "kiportal") -> None:
        self._client = client
        self._col = client.get_or_create_collection(
            name=name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
        )

    @classmethod
    def persistent(cls, path: Path, name: str = "kiportal") -> "ChromaVectorIndex":
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        path.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
        return cls(client, name)

    @classmethod
    def http(cls, host: str, port: int, name: str = "kiportal") -> "ChromaVectorIndex":
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
        return cls(client, name)

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("chunks and vectors differ in length")
        for start in range(0, len(chunks), self._BATCH):
            part = chunks[start : start + self._BATCH]
            self._col.upsert(
                ids=[c.chunk_id for c in part],
                embeddings=np.asarray(vectors[start : start + self._BATCH], dtype=np.float32),
                metadatas=[c.metadata() for c in part],
            )

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), self._BATCH):
            self._col.delete(ids=ids[start : start + self._BATCH])

    @staticmethod
    def _where(flt: dict | None) -> dict | None:
        if not flt:
            return None
        clauses = []
        if flt.get("collections") is not None:
            clauses.append({"collection": {"$in": list(flt["collections"])}})
        if flt.get("doc_ids") is not None:
            clauses.append({"doc_id": {"$in": list(flt["doc_ids"])}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def query(self, vector: np.ndarray, k: int, flt: dict | None = None) -> list[tuple[str, float]]:
        # no count() first: Chroma returns what it has when k exceeds it (an empty collection
        # included), and on a Chroma server that count was a second HTTP round trip per search
        if k < 1 or matches_nothing(flt):
            return []
        res = self._col.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=k,
            where=self._where(flt),
            include=["distances"],
        )
        return [(cid, 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0])]

    def set_collection(self, ids: Sequence[str], collection: str) -> None:
        ids = list(ids)
        for start in range(0, len(ids), self._BATCH):
            part = ids[start : start + self._BATCH]
            got = self._col.get(ids=part, include=["metadatas"])
            metas = [dict(m, collection=collection) for m in got["metadatas"]]
            if got["ids"]:
                self._col.update(ids=got["ids"], metadatas=metas)

    def vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these ids (unknown ids are absent), fetched in batches."""
        ids = list(ids)
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), self._BATCH):
            got = self._col.get(ids=ids[start : start + self._BATCH], include=["embeddings"])
            for cid, vec in zip(got["ids"], got["embeddings"]):
                out[cid] = np.asarray(vec, dtype=np.float32)
        return out

    def ids(self) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            got = self._col.get(include=[], limit=10000, offset=offset)
            if not got["ids"]:
                break
            out.update(got["ids"])
            offset += len(got["ids"])
        return out

    def count(self) -> int:
        return self._col.count()
