"""Dense vector index behind a narrow interface, with an in-memory twin.

Both implementations pass the same contract tests (tests/corpus/test_vector_store_contract.py).
Vectors are always computed by us and handed over: Chroma's own embedding function is
never used (it would try to download a model), and its telemetry is switched off.
"""
from __future__ import annotations

import logging
import os
import threading
import uuid
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence, TypeVar

import numpy as np

from corpus.models import Chunk

log = logging.getLogger(__name__)
T = TypeVar("T")


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


class _Gate:
    """Any number of calls on the Chroma client at once, or one reopen of it, which waits until the
    calls in progress are done (closing a client stops its engine under a running query)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._calls = 0
        self._reopening = False

    @contextmanager
    def call(self) -> Iterator[None]:
        with self._cond:
            while self._reopening:
                self._cond.wait()
            self._calls += 1
        try:
            yield
        finally:
            with self._cond:
                self._calls -= 1
                self._cond.notify_all()

    @contextmanager
    def reopen(self) -> Iterator[None]:
        with self._cond:
            while self._reopening:
                self._cond.wait()
            self._reopening = True
            while self._calls:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._reopening = False
                self._cond.notify_all()


class WriteStamp:
    """A file in the embedded Chroma's folder that every writing process replaces after it wrote.

    Why: embedded Chroma keeps its graph in the memory of each process. After ``kiportal ingest``
    (another process) wrote, a running portal's Chroma did not see the new vectors, and asking it for
    them by id, or with a filter, failed ("Error finding id") until the portal was restarted. A reader
    compares the stamp (one ``stat``, about 2 µs) and reopens its client when someone
    else wrote. Writers hold the data directory's writer lock, so stamps are never written at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._token = f"{os.getpid()}-{uuid.uuid4().hex}"
        self._count = 0
        self._seen = self._key()  # the stamp as it was when the client was (re)opened

    def _key(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def wrote(self) -> None:
        """After a write of this process: replace the stamp (atomically, so a reader never sees half)."""
        self._count += 1
        tmp = self.path.with_name(f"{self.path.name}.{self._token}.tmp")
        tmp.write_text(f"{self._token}:{self._count}", encoding="utf-8")
        os.replace(tmp, self.path)
        self._seen = self._key()

    def changed_elsewhere(self) -> bool:
        """True when another process has written since this one last opened or wrote.

        A stamp of this process's own token is never another's write: a search that read the stamp
        between this process's replace and its bookkeeping took it for one and reopened (134 needless
        reopens in 200 writes with four searching threads, found by a review)."""
        key = self._key()
        if key == self._seen:
            return False
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return True
        if text.startswith(self._token + ":"):
            self._seen = key
            return False
        return True

    def seen(self) -> None:
        """The client was just (re)opened: what the stamp says now is what it sees."""
        self._seen = self._key()


def _shares_engine(client) -> bool:
    """True when another client of this process shares ``client``'s embedded engine (chromadb keeps
    one per folder and counts its users: ``close()`` then stops nothing, and a new client gets the old
    engine back). Two users are this client and its own admin client."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        return SharedSystemClient._identifier_to_refcount.get(client._identifier, 0) > 2
    except Exception:  # noqa: BLE001 - another chromadb version: no warning rather than a failure
        return False


class ChromaVectorIndex:
    """Chroma collection (embedded PersistentClient or HTTP server) holding chunk vectors.

    Embedded, several processes may share the folder one after another (the portal, then
    ``kiportal ingest`` beside it): each reopens its client when a :class:`WriteStamp` says that
    another one wrote, and once more when Chroma reports an id it cannot find."""

    _BATCH = 2000
    STAMP = "kiportal-writes"

    def __init__(self, client, name: str = "kiportal", *, reopen: Callable[[], object] | None = None,
                 stamp: WriteStamp | None = None) -> None:
        """``reopen`` makes a new client for the same store (embedded Chroma only); ``stamp`` tells
        when that is needed."""
        self._name = name
        self._reopen_client = reopen
        self._stamp = stamp
        self._gate = _Gate()
        self._refresh_lock = threading.Lock()
        self._reopens = 0         # how many times the client was reopened (one reopen serves every waiting caller)
        self._unopened = False    # a reopen failed: the next call opens the client again
        self._open(client)

    def _open(self, client) -> None:
        self._client = client
        self._col = client.get_or_create_collection(
            name=self._name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
        )

    #: the embedded indexes open in this process, one per folder and collection: two would share
    #: chromadb's engine, and neither could then reopen it to see another process's writes
    _open_here: "weakref.WeakValueDictionary[tuple[str, str], ChromaVectorIndex]" = weakref.WeakValueDictionary()
    _open_lock = threading.Lock()

    @classmethod
    def persistent(cls, path: Path, name: str = "kiportal") -> "ChromaVectorIndex":
        """The embedded index in ``path`` (the one already open in this process, if any)."""
        path.mkdir(parents=True, exist_ok=True)
        key = (str(path.resolve()), name)
        with cls._open_lock:
            index = cls._open_here.get(key)
            if index is None:
                index = cls._open_here[key] = cls._new_persistent(path, name)
            return index

    @classmethod
    def _new_persistent(cls, path: Path, name: str) -> "ChromaVectorIndex":

        def client():
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))

        stamp = WriteStamp(path / cls.STAMP)
        return cls(client(), name, reopen=client, stamp=stamp)

    @classmethod
    def http(cls, host: str, port: int, name: str = "kiportal") -> "ChromaVectorIndex":
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        client = chromadb.HttpClient(host=host, port=port, settings=ChromaSettings(anonymized_telemetry=False))
        return cls(client, name)

    # -- one process among several on an embedded store -----------------------------------------
    def reopen(self) -> None:
        """A new client for the same folder, which reads what other processes wrote. The old
        client is closed once the calls in progress on it are done."""
        if self._reopen_client is None:
            return
        with self._gate.reopen():
            try:
                self._client.close()  # stops its engine (and its graph in memory) when it was the last user
            except Exception:  # noqa: BLE001 - a client that cannot close is dropped all the same
                log.debug("closing the old Chroma client failed", exc_info=True)
            if self._stamp is not None:
                self._stamp.seen()  # before opening: a write while it opens is seen next time
            self._unopened = True  # until the new client stands: a failed open is tried again, not kept
            self._open(self._reopen_client())
            self._unopened = False
            self._reopens += 1
            if _shares_engine(self._client):
                log.warning("another Chroma client of this process uses %s: it keeps the old graph, so this "
                            "index may not see what other processes write (use one index per folder)", self._name)
        log.info("vector index reopened: another process wrote to %s", self._name)

    def _fresh(self) -> None:
        if not self._unopened and (self._stamp is None or not self._stamp.changed_elsewhere()):
            return
        with self._refresh_lock:
            if self._unopened or self._stamp.changed_elsewhere():
                self.reopen()

    def _call(self, op: Callable[[object], T]) -> T:
        """``op(collection)`` on a current client; once more on a reopened one when Chroma cannot
        find an id (another process wrote a moment before its stamp)."""
        self._fresh()
        reopens = self._reopens
        try:
            with self._gate.call():
                return op(self._col)
        except Exception as exc:  # chromadb.errors.InternalError, without importing chromadb here
            if self._reopen_client is None or "Error finding id" not in str(exc):
                raise
        log.info("Chroma could not find an id: reopening and asking again")
        with self._refresh_lock:
            if self._reopens == reopens:  # not already reopened for another caller meanwhile
                self.reopen()
        with self._gate.call():
            return op(self._col)

    def _write(self, op: Callable[[object], object]) -> None:
        self._call(op)
        if self._stamp is not None:
            self._stamp.wrote()

    # -- the contract ---------------------------------------------------------------------------
    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("chunks and vectors differ in length")
        for start in range(0, len(chunks), self._BATCH):
            part = chunks[start : start + self._BATCH]
            self._write(lambda col: col.upsert(
                ids=[c.chunk_id for c in part],
                embeddings=np.asarray(vectors[start : start + self._BATCH], dtype=np.float32),
                metadatas=[c.metadata() for c in part],
            ))

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), self._BATCH):
            self._write(lambda col: col.delete(ids=ids[start : start + self._BATCH]))

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
        res = self._call(lambda col: col.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=k,
            where=self._where(flt),
            include=["distances"],
        ))
        return [(cid, 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0])]

    def set_collection(self, ids: Sequence[str], collection: str) -> None:
        ids = list(ids)
        for start in range(0, len(ids), self._BATCH):
            part = ids[start : start + self._BATCH]
            got = self._call(lambda col: col.get(ids=part, include=["metadatas"]))
            metas = [dict(m, collection=collection) for m in got["metadatas"]]
            if got["ids"]:
                self._write(lambda col: col.update(ids=got["ids"], metadatas=metas))

    def vectors_of(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these ids (unknown ids are absent), fetched in batches."""
        ids = list(ids)
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), self._BATCH):
            got = self._call(lambda col: col.get(ids=ids[start : start + self._BATCH], include=["embeddings"]))
            for cid, vec in zip(got["ids"], got["embeddings"]):
                out[cid] = np.asarray(vec, dtype=np.float32)
        return out

    def ids(self) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            got = self._call(lambda col: col.get(include=[], limit=10000, offset=offset))
            if not got["ids"]:
                break
            out.update(got["ids"])
            offset += len(got["ids"])
        return out

    def count(self) -> int:
        return self._call(lambda col: col.count())
