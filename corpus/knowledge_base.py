"""The knowledge base: catalog + dense index + keyword index + embedder, kept consistent.

Write path (one document version): vectors are upserted under version-specific chunk
ids, then the catalog switches to the new chunks in one transaction, then the old
vectors are dropped. Read path: every index hit is resolved through the catalog, so a
vector the catalog doesn't know (an orphan of a crash) is never shown, and a document
is always seen in exactly one version.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from corpus.catalog import Catalog, DocumentRecord
from corpus.db import ReentrantLock, process_lock
from corpus.embeddings import Embedder
from corpus.keyword_index import BM25Index
from corpus.models import Chunk, doc_id_of_chunk
from corpus.scope_vectors import ScopeVectors
from corpus.vector_store import VectorIndex, matches_nothing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _ScopeView:
    """What a filtered search reads of the catalog, valid for one catalog generation."""

    generation: int
    sizes: dict[str, int]             # chunks per collection
    doc_collections: dict[str, str]   # document → collection


def index_text(chunk: Chunk) -> str:
    """What the indexes see: title and section give a passage its context (helps BM25 and dense)."""
    head = chunk.title
    if chunk.section and chunk.section != chunk.title:
        head = f"{head} – {chunk.section}" if head else chunk.section
    return f"{head}\n{chunk.text}" if head else chunk.text


@dataclass
class HealthReport:
    documents: int
    catalog_chunks: int
    vector_chunks: int
    keyword_chunks: int
    missing_in_vectors: int = 0
    orphans_in_vectors: int = 0
    keyword_stale: bool = False
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing_in_vectors or self.orphans_in_vectors or self.keyword_stale)

    def as_dict(self) -> dict:
        return dict(self.__dict__, ok=self.ok)


class KnowledgeBase:
    def __init__(
        self,
        catalog: Catalog,
        vectors: VectorIndex,
        embedder_factory: Callable[[], Embedder],
        bm25_path: Path | None = None,
        *,
        writer_lock: ReentrantLock | None = None,
    ) -> None:
        """``writer_lock``: the installation's writer lock (a file lock in the data directory, a
        database lock in a cluster); every write of vectors, the orphan sweep and repairs hold it,
        so nothing deletes the vectors of a write in progress in another process or on another
        machine. Without one, the lock covers this process only."""
        self.catalog = catalog
        self.writer_lock = writer_lock or process_lock()
        # every catalog write passes the lock's fence: a former holder whose lock was lost is refused
        catalog.fence_writes(self.writer_lock)
        self._writer_id = uuid.uuid4().hex  # names this writer's in-flight note
        self.vectors = vectors
        self._embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self.bm25_path = bm25_path
        self._bm25: BM25Index | None = None
        self._bm25_lock = threading.Lock()
        self._refreshing = False
        self._emb_lock = threading.Lock()
        self._scope_view: _ScopeView | None = None  # what the filtered search reads of the catalog
        self._scope_vectors = ScopeVectors(catalog, vectors, max_rows=self.EXACT_SCOPE_MAX)

    # -- embedder (loaded on first use: an unchanged re-run never loads a model)
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._emb_lock:
                if self._embedder is None:
                    self._embedder = self._embedder_factory()
        return self._embedder

    # -- write path --------------------------------------------------------
    # Vector ids that a write is about to add or drop, noted in the catalog before the vector
    # store is touched and cleared after. A process killed in between leaves exactly these as
    # possible orphans, so the sweep after every ingest checks them instead of listing every
    # vector (seconds at 100,000 passages, a minute at a million). `kiportal doctor` still
    # compares everything. Each writer has a note of its own (``vectors_in_flight:<id>``), so a
    # writer never overwrites another's; all of them write under the writer lock, so a note the
    # sweep finds (other than the sweeper's own) is one of a killed writer, or of one whose lock
    # connection broke: the lock's fence refuses that writer's commit, so its vectors are orphans too.
    _IN_FLIGHT = "vectors_in_flight"

    @property
    def _note_key(self) -> str:
        return f"{self._IN_FLIGHT}:{self._writer_id}"

    def _notes(self) -> dict[str, list[str]]:
        """Every writer's in-flight note (also the single note of catalogs before notes per writer)."""
        out = {}
        for key, value in self.catalog.meta_items(self._IN_FLIGHT).items():
            try:
                ids = json.loads(value or "[]")
            except ValueError:
                ids = []
            if ids:
                out[key] = ids
        return out

    def _note_in_flight(self, ids: Sequence[str]) -> None:
        self.catalog.set_meta(self._note_key, json.dumps(sorted(set(ids))))

    def _clear_in_flight(self) -> None:
        self.catalog.delete_meta(self._note_key)

    def store_version(self, rec: DocumentRecord, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Make ``chunks`` the visible version of ``rec`` (see module docstring for the order)."""
        self.store_versions([(rec, chunks, vectors)])

    def store_versions(self, versions: Sequence[tuple[DocumentRecord, Sequence[Chunk], np.ndarray]], *,
                       failures: Sequence[DocumentRecord] = (), drop: Sequence[str] = ()) -> None:
        """Make several changes visible at once: new versions, failed attempts and removed documents
        (``drop``) become visible in one catalog transaction, so a process killed at any moment leaves
        all of them as they were or all changed (an OParl paper and its attachments). Same order as
        for one document: note the ids, add the vectors, commit, drop the stale vectors."""
        with self.writer_lock():
            if self._notes():
                self.sweep_orphans()  # a killed write's note: settle it first
            doc_ids = [rec.doc_id for rec, _, _ in versions] + list(drop)
            old = [c.chunk_id for d in doc_ids for c in self.catalog.iter_chunks(d)]
            new = [c for _, chunks, _ in versions for c in chunks]
            self._note_in_flight([c.chunk_id for c in new] + old)
            if new:
                self.vectors.add(new, np.concatenate([np.asarray(v) for _, chunks, v in versions if chunks]))
            stale = self.catalog.commit_documents([(rec, chunks) for rec, chunks, _ in versions],
                                                  failures=failures, drop=drop)
            if stale:
                self.vectors.delete(stale)
            self._clear_in_flight()

    def delete_document(self, doc_id: str) -> int:
        with self.writer_lock():
            self._note_in_flight([c.chunk_id for c in self.catalog.iter_chunks(doc_id)])
            ids = self.catalog.delete_document(doc_id)
            self.vectors.delete(ids)
            self._clear_in_flight()
        return len(ids)

    def move_document(self, doc_id: str, collection: str) -> None:
        self.catalog.move_document(doc_id, collection)
        self.vectors.set_collection([c.chunk_id for c in self.catalog.iter_chunks(doc_id)], collection)

    def rename_collection(self, old: str, new: str) -> None:
        for doc_id in self.catalog.rename_collection(old, new):
            self.vectors.set_collection([c.chunk_id for c in self.catalog.iter_chunks(doc_id)], new)

    def sweep_orphans(self, full: bool = False) -> int:
        """Drop vectors the catalog doesn't know (left by a crash between steps): the ids killed
        writes noted, or with ``full`` every vector id compared with the catalog. Runs under the
        writer lock: a write in progress elsewhere has added vectors the catalog does not hold yet.
        The deletions happen under the lock's fence (:meth:`corpus.db.Fence.hold`): a sweeper whose
        lock was lost deletes nothing, and the next holder waits until a sweep in progress is done."""
        with self.writer_lock(), self.writer_lock.fence().hold():
            notes = self._notes()
            noted = sorted({i for ids in notes.values() for i in ids})
            if full:
                orphans = self.vectors.ids() - self.catalog.chunk_ids()
            else:
                orphans = set(noted) - set(self.catalog.chunks_by_ids(noted))
            if orphans:
                log.info("removing %d orphan vectors", len(orphans))
                self.vectors.delete(sorted(orphans))
            for key in notes:
                self.catalog.delete_meta(key)
            return len(orphans)

    # -- keyword index -----------------------------------------------------
    # A sync touching more documents than this rebuilds instead (one pass over all chunks
    # beats one catalog query per document).
    REBUILD_ABOVE_DOCS = 2000

    def _build_bm25(self) -> BM25Index:
        gen = self.catalog.generation()
        fps = self.catalog.index_fingerprints()
        chunks = list(self.catalog.iter_chunks())
        index = BM25Index()
        index.build(
            [c.chunk_id for c in chunks], [index_text(c) for c in chunks],
            [c.collection for c in chunks], [c.doc_id for c in chunks], gen,
            fingerprints={d: fp for d, (fp, _) in fps.items()},
        )
        if self.bm25_path is not None:
            index.save(self.bm25_path)
        return index

    def _sync_bm25(self, index: BM25Index) -> BM25Index:
        """Bring ``index`` to the catalog by document: drop what changed or went, add what is new,
        update collections. Far cheaper than a rebuild for the usual one-document change."""
        gen = self.catalog.generation()  # read first: a change during the sync triggers another one
        want = self.catalog.index_fingerprints()
        have = index.documents()
        gone = [d for d, (fp, _) in have.items() if d not in want or want[d][0] != fp]
        new = [d for d, (fp, _) in want.items() if d not in have or have[d][0] != fp]
        if len(gone) + len(new) > max(self.REBUILD_ABOVE_DOCS, len(want) // 5):
            log.info("keyword index: %d documents changed, rebuilding", len(gone) + len(new))
            return self._build_bm25()
        index.delete_documents(gone)
        for d, (fp, coll) in want.items():
            if d in have and have[d][0] == fp and have[d][1] != coll:
                index.set_collection({d}, coll)
        chunks = [c for d in new for c in self.catalog.iter_chunks(d)]
        index.add([c.chunk_id for c in chunks], [index_text(c) for c in chunks], [c.collection for c in chunks],
                  [c.doc_id for c in chunks], fingerprints={d: want[d][0] for d in new})
        index.generation = gen
        if self.bm25_path is not None:
            index.save(self.bm25_path)
        return index

    def refresh_keyword_index(self) -> BM25Index:
        """Bring the BM25 index up to the catalog's generation now: load it from disk if needed,
        then apply the documents that changed (a full rebuild only for an absent or broken index)."""
        with self._bm25_lock:
            gen = self.catalog.generation()
            if self._bm25 is not None and self._bm25.generation == gen:
                return self._bm25
            index = self._bm25
            if index is None:
                index = BM25Index.load(self.bm25_path) if self.bm25_path is not None else BM25Index()
            if index.generation == -1:
                index = self._build_bm25()
            elif index.generation != gen:
                index = self._sync_bm25(index)
            self._bm25 = index
            return index

    def keyword_index(self, wait: bool = True) -> BM25Index:
        """The BM25 index. With ``wait=False`` a stale index keeps serving while a fresh one is built
        in the background, so queries never stall behind a re-index."""
        current = self._bm25
        if current is None or wait:
            return self.refresh_keyword_index()
        if current.generation != self.catalog.generation() and not self._refreshing:
            self._refreshing = True

            def run() -> None:
                try:
                    self.refresh_keyword_index()
                finally:
                    self._refreshing = False

            threading.Thread(target=run, name="bm25-refresh", daemon=True).start()
        return current

    # -- read path ---------------------------------------------------------
    #: how many times the expected number of nearest passages is looked at (k over the readable
    #: share). Chroma's cost grows with the results it returns (about 6.4 ms for 40, 8.0 for 100,
    #: 11.0 for 160 on 5,000 passages), but a shortfall costs a second, four times wider look (and,
    #: past that, the index's own filter), and those set the tail: questions about one department's
    #: topic find the other departments' passages far down. On 400 XQuAD questions over the shared
    #: corpus split in half (not the bench's questions), 1.5 missed k readable hits for 3.3 % of them,
    #: 2.0 for 0.7 %; the bench's p95 ratio is about the same for both (1.09–1.16 vs 1.11–1.15, same
    #: run), so the margin with fewer second looks is kept. Scopes up to ``EXACT_SCOPE_MAX`` passages
    #: do not come here at all (docs/results.md)
    PREFILTER_MARGIN = 2.0
    #: at most this many: a user who may read only a small share is served by the index's filter
    PREFILTER_MAX = 600
    #: a scope of at most this many passages is searched exactly in memory (corpus.scope_vectors)
    EXACT_SCOPE_MAX = 20_000

    def dense_search(self, query: str, k: int, flt: dict | None = None) -> list[tuple[str, float]]:
        """The k nearest passages that ``flt`` allows (:class:`corpus.vector_store.Filter`).

        Up to ``EXACT_SCOPE_MAX`` readable passages (all of them without a collections filter) the
        search is answered exactly from their vectors held in memory (:mod:`corpus.scope_vectors`: a
        fraction of a millisecond, where the index takes milliseconds, and the same result in every
        process, which the index's graph search is not). A larger scope is answered in two ways with the same
        result: among the nearest passages (``PREFILTER_MARGIN`` × k over the readable share), those the catalog places in an
        allowed collection, when at least k are; otherwise by the index's own filter (Chroma ``where``), which finds k
        allowed passages however far down they rank. The first way is the fast one (Chroma's
        metadata filter costs about 20 ms a query on 4,600 chunks; the catalog's collection of each
        passage comes from an in-memory map, see ``_collections_of``); both return the top k of the
        allowed passages (up to the index's approximate search), so a restricted user gets k readable
        hits and nothing else takes a rank.
        """
        vector = self.embedder.embed_query_vector(query)
        colls = (flt or {}).get("collections")
        if matches_nothing(flt) or (flt or {}).get("doc_ids") is not None:
            return self.vectors.query(vector, k, flt)
        gen = self.catalog.generation()
        sizes = self._view(gen).sizes
        allowed = set(sizes) if colls is None else set(colls)
        readable = sum(n for name, n in sizes.items() if name in allowed)
        if 0 < readable <= self.EXACT_SCOPE_MAX:
            # exact, and the same in every process: Chroma's graph search returned a different tail of
            # the top 40 from one process to the next for the same query vector (session 35: one
            # blind_dev question in 40 got another prompt), so the same question could get another answer
            try:
                return self._scope_vectors.search(vector, k, frozenset(c for c in allowed if sizes.get(c)), gen)
            except Exception:  # noqa: BLE001 - e.g. catalogued passages whose vectors a crash lost: the index answers
                log.warning("exact search from memory failed; asking the vector index (kiportal doctor repairs)",
                            exc_info=True)
        if colls is None:
            return self.vectors.query(vector, k, flt)
        wide = self._candidates(k, allowed, gen)
        # the likely width first, then once more four times as wide (still far cheaper than the filter)
        for width in dict.fromkeys([wide, min(4 * wide, self.PREFILTER_MAX)] if wide else []):
            nearest = self.vectors.query(vector, width, None)
            where = self._collections_of([cid for cid, _ in nearest], gen)
            kept = [(cid, score) for cid, score in nearest if where.get(cid) in allowed]
            if len(kept) >= k or len(nearest) < width:  # k found, or the index holds no more passages
                return kept[:k]
        return self.vectors.query(vector, k, flt)

    def _collections_of(self, chunk_ids: list[str], gen: int) -> dict[str, str]:
        """``{chunk_id: collection}`` as the catalog holds it at generation ``gen``: through the
        documents' collections, held in memory per generation (one row a file; a move or any other
        change bumps the generation). Asking the catalog for 160 chunks on every search cost 3.5 ms
        idle (9 ms under load), most of a filtered search's extra time; the map takes 0.13 ms. Ids of another form, and of
        documents the map does not know, are asked of the catalog as before."""
        docs = self._view(gen).doc_collections
        out: dict[str, str] = {}
        unknown: list[str] = []
        for cid in chunk_ids:
            coll = docs.get(doc_id_of_chunk(cid))
            if coll is None:
                unknown.append(cid)
            else:
                out[cid] = coll
        if unknown:
            out.update(self.catalog.collections_of(unknown))
        return out

    def _view(self, gen: int) -> "_ScopeView":
        """The catalog as the filtered search reads it, taken again when the generation moved."""
        view = self._scope_view
        if view is None or view.generation != gen:
            view = self._scope_view = _ScopeView(
                gen, {c["name"]: int(c["chunks"]) for c in self.catalog.collections()},
                self.catalog.document_collections())
        return view

    def _candidates(self, k: int, allowed: set[str], gen: int) -> int | None:
        """How many nearest passages to look at so that k readable ones are likely among them
        (``PREFILTER_MARGIN`` × k over the readable share), or None when that would exceed ``PREFILTER_MAX``."""
        sizes = self._view(gen).sizes
        total = sum(sizes.values())
        readable = sum(n for name, n in sizes.items() if name in allowed)
        if readable == 0 or total == 0:
            return None if readable == 0 and total else k
        wide = max(k, math.ceil(self.PREFILTER_MARGIN * k * total / readable))
        return wide if wide <= self.PREFILTER_MAX else None

    def keyword_search(self, query: str, k: int, flt: dict | None = None, wait: bool = True) -> list[tuple[str, float]]:
        return self.keyword_index(wait=wait).query(query, k, flt)

    # -- health ------------------------------------------------------------
    def check(self, repair: bool = False) -> HealthReport:
        """Compare the indexes with the catalog; ``repair`` drops orphan vectors, embeds missing
        ones and rebuilds a stale BM25 index, all under the writer lock (a write in progress on
        another machine has vectors the catalog does not list yet: they are not orphans)."""
        if repair:
            with self.writer_lock(), self.writer_lock.fence().hold():
                return self._check(repair=True)
        return self._check(repair=False)

    def _check(self, repair: bool) -> HealthReport:
        vec_ids = self.vectors.ids()  # vectors first: a commit in between shows as missing, never as orphan
        cat_ids = self.catalog.chunk_ids()
        on_disk = BM25Index.load(self.bm25_path) if self.bm25_path is not None else (self._bm25 or BM25Index())
        gen = self.catalog.generation()
        report = HealthReport(
            documents=self.catalog.stats().documents,
            catalog_chunks=len(cat_ids),
            vector_chunks=len(vec_ids),
            keyword_chunks=len(on_disk),
            missing_in_vectors=len(cat_ids - vec_ids),
            orphans_in_vectors=len(vec_ids - cat_ids),
            # a newer generation alone is not staleness: re-classifying a collection counts too
            keyword_stale=on_disk.chunk_ids() != cat_ids
            or (on_disk.generation != gen and on_disk.documents() != self.catalog.index_fingerprints()),
        )
        if repair and not report.ok:
            if report.orphans_in_vectors:
                self.vectors.delete(sorted(vec_ids - cat_ids))
                report.repaired.append(f"{report.orphans_in_vectors} verwaiste Vektoren entfernt")
            missing = sorted(cat_ids - vec_ids)
            if missing:
                chunks = list(self.catalog.chunks_by_ids(missing).values())
                vecs = self.embedder.embed_passages([index_text(c) for c in chunks])
                self.vectors.add(chunks, vecs)
                report.repaired.append(f"{len(chunks)} fehlende Vektoren neu berechnet")
            if report.keyword_stale:
                with self._bm25_lock:
                    self._bm25 = self._build_bm25()
                report.repaired.append("BM25-Index neu aufgebaut")
        return report
