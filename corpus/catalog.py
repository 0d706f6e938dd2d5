"""The catalog: the source of truth for documents, chunks and collections.

Indexes (Chroma, BM25) are derived from it. Each collection carries its *readers*: the
groups that may read it, or ``alle`` for everyone (what they mean is decided in
:mod:`assistant.access`; the catalog only stores the list). A document version becomes visible in
one transaction (``commit_document``; several at once with ``commit_documents``), so readers see the old or the new version,
never a half-indexed one; anything an index holds that the catalog does not know is
an orphan that ``doctor`` and the end of every ingest run remove.

SQLAlchemy Core with portable SQL on one schema (Alembic revisions in :mod:`corpus.migrations`):
the embedded default keeps it in ``<home>/catalog.sqlite3``, a cluster in the PostgreSQL app
database, where every replica reads and writes the same documents. The *generation* counts every
visible change (documents, collections, their classification and readers), so anything a process
derives from the catalog (the BM25 index, cached collection sizes or classifications) knows when
another process changed it.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import bindparam, inspect, text
from sqlalchemy.engine import Connection, Engine

from corpus.db import ReentrantLock, database_lock, is_sqlite, make_engine, sqlite_file
from corpus.text import without_direction_controls
from corpus.models import Chunk

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
EVERYONE = "alle"
#: the Alembic version table of the catalog (its own name: the app database may hold others)
VERSION_TABLE = "catalog_alembic_version"
#: the revision a catalog of schema version 4 (before Alembic) is stamped with
LEGACY_REVISION = "0004"
#: the database lock schema changes run under (the app database's migrations use the same)
SCHEMA_LOCK = "kiportal-schema"
MIGRATIONS = Path(__file__).with_name("migrations")

# Today's DDL before Alembic (schema version 4), only used to bring an old SQLite catalog file to
# version 4 before it is stamped; new catalogs are created by the Alembic revisions.
_LEGACY_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    classification TEXT NOT NULL DEFAULT 'intern',
    created_at REAL NOT NULL,
    readers TEXT NOT NULL DEFAULT '["alle"]'
);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    original_name TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    format TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    pages INTEGER,
    page_kind TEXT,
    collection TEXT NOT NULL,
    classification TEXT,
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    indexed_at REAL,
    chunk_count INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS documents_collection ON documents(collection);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    page INTEGER,
    section TEXT,
    content_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ordinal);
CREATE TABLE IF NOT EXISTS ocr_pages (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    page INTEGER NOT NULL,
    confidence REAL NOT NULL,
    PRIMARY KEY (doc_id, page)
)
"""

STATUSES = ("indexed", "failed", "needs_ocr", "pending")


@dataclass
class DocumentRecord:
    doc_id: str
    source: str
    path: str
    collection: str
    status: str
    original_name: str = ""
    sha256: str = ""
    size: int = 0
    format: str = ""
    title: str = ""
    pages: int | None = None
    page_kind: str | None = None
    classification: str | None = None
    error: str = ""
    indexed_at: float | None = None
    chunk_count: int = 0
    #: where the document came from beyond its file (e.g. OParl: body, Drucksache number, paper type,
    #: meeting date, the file's public URL); plain JSON data, stored with the document version
    meta: dict = field(default_factory=dict)
    #: the file's path inside the storage folder (uploads; a share in a cluster), '' for files elsewhere
    storage_path: str = ""
    #: page -> mean word confidence (0-100) of the pages read by text recognition; not a column
    ocr_pages: dict[int, float] = field(default_factory=dict)
    #: the title people read where the loader found a better one than ``title`` (a PDF's cover
    #: headline, :mod:`ingest.loaders.pdf_title`); "" = ``title``. ``title`` stays the indexed one.
    display_title: str = ""

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["meta"] = dict(self.meta)
        d["ocr_pages"] = dict(self.ocr_pages)
        return d

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "DocumentRecord":
        d = dict(row)
        try:
            d["meta"] = json.loads(d.get("meta") or "{}")
        except ValueError:
            d["meta"] = {}
        # a column a later release adds is not this code's business: from this release on, an older
        # replica keeps reading a catalog a newer one has migrated (releases before it failed on the
        # new column, so the step to migration 0006 needs every replica stopped, docs/cluster.md)
        return cls(**{k: v for k, v in d.items() if k in _FIELDS})

    @property
    def shown_title(self) -> str:
        """The name a person sees for the document: its readable title, else its title, else its file name
        (without direction controls: the portal's pickers and tables show it without escaping)."""
        return without_direction_controls(self.display_title or self.title or self.original_name
                                          or Path(self.source).name)

    def file(self, storage: Path | None = None) -> Path:
        """The document's file on this machine: inside ``storage`` when it was stored there (another
        machine may mount the folder elsewhere, so its ``path`` is not this machine's), else ``path``."""
        rel = Path(self.storage_path)
        if self.storage_path and storage is not None and not rel.is_absolute() and ".." not in rel.parts:
            return Path(storage) / rel
        return Path(self.path)

    def ocr_confidence(self, page: int | None) -> float | None:
        """The page's OCR confidence, or None when the page has a text layer (or no page is known)."""
        return self.ocr_pages.get(int(page)) if page else None

    def low_confidence_pages(self, threshold: float) -> list[int]:
        """OCR'd pages read with a mean word confidence below ``threshold``: for a person to check."""
        return sorted(p for p, c in self.ocr_pages.items() if c < threshold)


_FIELDS = frozenset(DocumentRecord.__dataclass_fields__)
_COLUMNS = tuple(f for f in DocumentRecord.__dataclass_fields__ if f != "ocr_pages")


@dataclass
class CatalogStats:
    documents: int
    chunks: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_collection: dict[str, dict] = field(default_factory=dict)


class Catalog:
    """Thread-safe catalog on a SQLAlchemy engine (SQLite file with WAL, or PostgreSQL).

    ``target``: a SQLite file path (the embedded default), a database URL, ``":memory:"``, or an
    engine shared with others (a cluster's app database)."""

    def __init__(self, target: Path | str | Engine, *, new_collection_readers: Sequence[str] = (EVERYONE,)) -> None:
        """``new_collection_readers``: readers of collections created from now on (also those an
        ingest creates implicitly); existing collections keep theirs."""
        self.new_collection_readers = list(new_collection_readers)
        self._owns_engine = not isinstance(target, Engine)
        if isinstance(target, Engine):
            self.engine = target
        else:
            target = str(target)
            if target == ":memory:":
                url = "sqlite://"
            elif "://" in target:
                url = target
            else:
                url = f"sqlite:///{target}"
            self.engine = make_engine(url)
        self.path = str(self.engine.url.database or "") if is_sqlite(self.engine) else self.engine.url.render_as_string()
        self._sqlite = is_sqlite(self.engine)
        self._reads_per_thread = self._sqlite and sqlite_file(self.engine) is not None
        self._local = threading.local()
        self._write_lock = threading.RLock()  # one writer per process: SQLite would only make it wait
        self._writer_lock: ReentrantLock | None = None
        upgrade_schema(self.engine)

    def fence_writes(self, writer_lock: ReentrantLock | None) -> None:
        """Every write transaction first checks ``writer_lock``'s fence (:meth:`corpus.db.Fence.check`).

        Why: a cluster's writer lock can be lost while its holder writes (its PostgreSQL connection
        broke); the fence then refuses the former holder's writes. Checked here, for every write,
        rather than by each caller, so a write added later cannot forget it. A thread that does not
        hold the lock, and every file or in-process lock, has the no-op fence. One lock per catalog:
        the knowledge base that owns it sets it."""
        self._writer_lock = writer_lock

    # -- connections -------------------------------------------------------
    @contextmanager
    def _conn(self) -> Iterator[Connection]:
        """A connection for reads. A SQLite file keeps one per thread in autocommit (as the catalog
        always did: every query is asked on each search, and a pool checkout would cost more than
        the query); PostgreSQL connections come from the pool, so replicas hold few of them."""
        if self._reads_per_thread:
            conn = getattr(self._local, "conn", None)
            if conn is None or conn.closed:
                conn = self._local.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            yield conn
            return
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._write_lock, self.engine.begin() as conn:
            if self._sqlite:  # take the write lock now: a read first would deadlock with another writer
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            if self._writer_lock is not None:
                self._writer_lock.fence().check(conn)
            yield conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._owns_engine:
            self.engine.dispose()

    # -- generation: bumps on every visible change, so derived indexes and caches know they are stale
    def generation(self) -> int:
        with self._conn() as conn:  # asked on every query: plain SQL, nothing to compile
            return int(conn.exec_driver_sql("SELECT value FROM meta WHERE key='generation'").scalar_one())

    @staticmethod
    def _bump(conn: Connection) -> None:
        conn.execute(text("UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key='generation'"))

    # -- collections -------------------------------------------------------
    def ensure_collection(self, name: str, classification: str = "intern", readers: Sequence[str] | None = None) -> None:
        with self._tx() as conn:
            if self._ensure(conn, name, classification, readers):
                self._bump(conn)

    def _ensure(self, conn: Connection, name: str, classification: str = "intern",
                readers: Sequence[str] | None = None) -> bool:
        """Create the collection if it is new (readers from the argument, else the default for new
        ones); True when it was created."""
        res = conn.execute(
            text("INSERT INTO collections(name, classification, created_at, readers) VALUES (:n, :c, :t, :r) "
                 "ON CONFLICT(name) DO NOTHING"),
            {"n": name, "c": classification, "t": time.time(),
             "r": _readers_json(self.new_collection_readers if readers is None else readers)},
        )
        return res.rowcount > 0

    def collection_readers(self) -> dict[str, list[str]]:
        """Readers of every collection: ``{name: [group, …]}`` (``["alle"]`` = everyone)."""
        with self._conn() as conn:
            rows = conn.execute(text("SELECT name, readers FROM collections")).all()
        return {r[0]: _readers_list(r[1]) for r in rows}

    def set_collection_readers(self, name: str, readers: Sequence[str]) -> None:
        with self._tx() as conn:
            if conn.execute(text("UPDATE collections SET readers=:r WHERE name=:n"),
                            {"r": _readers_json(readers), "n": name}).rowcount == 0:
                raise KeyError(name)
            self._bump(conn)

    def collections(self) -> list[dict]:
        with self._conn() as conn:
            rows = conn.execute(text(
                """SELECT c.name, c.classification, c.created_at, c.readers,
                          COUNT(d.doc_id) AS documents, COALESCE(SUM(d.chunk_count),0) AS chunks
                   FROM collections c LEFT JOIN documents d ON d.collection = c.name
                   GROUP BY c.name, c.classification, c.created_at, c.readers ORDER BY c.name"""
            )).mappings().all()
        return [dict(r, readers=_readers_list(r["readers"]), chunks=int(r["chunks"]), documents=int(r["documents"]))
                for r in rows]

    def set_collection_classification(self, name: str, classification: str) -> None:
        with self._tx() as conn:
            if conn.execute(text("UPDATE collections SET classification=:c WHERE name=:n"),
                            {"c": classification, "n": name}).rowcount == 0:
                raise KeyError(name)
            self._bump(conn)

    def rename_collection(self, old: str, new: str) -> list[str]:
        """Rename; returns the doc ids whose chunk metadata must be updated in the indexes."""
        with self._tx() as conn:
            if conn.execute(text("SELECT 1 FROM collections WHERE name=:n"), {"n": new}).first():
                raise ValueError(f"Sammlung existiert bereits / collection exists: {new}")
            if conn.execute(text("UPDATE collections SET name=:new WHERE name=:old"),
                            {"new": new, "old": old}).rowcount == 0:
                raise KeyError(old)
            ids = list(conn.execute(text("SELECT doc_id FROM documents WHERE collection=:c"), {"c": old}).scalars())
            conn.execute(text("UPDATE documents SET collection=:new WHERE collection=:old"), {"new": new, "old": old})
            self._bump(conn)
        return ids

    def delete_collection(self, name: str) -> None:
        with self._tx() as conn:
            n = conn.execute(text("SELECT COUNT(*) FROM documents WHERE collection=:c"), {"c": name}).scalar_one()
            if n:
                raise ValueError(f"Sammlung ist nicht leer ({n} Dokumente) / collection not empty")
            if conn.execute(text("DELETE FROM collections WHERE name=:n"), {"n": name}).rowcount:
                self._bump(conn)

    def move_document(self, doc_id: str, collection: str) -> None:
        with self._tx() as conn:
            self._ensure(conn, collection)
            if conn.execute(text("UPDATE documents SET collection=:c WHERE doc_id=:d"),
                            {"c": collection, "d": doc_id}).rowcount == 0:
                raise KeyError(doc_id)
            self._bump(conn)

    # -- documents ---------------------------------------------------------
    def get(self, doc_id: str) -> DocumentRecord | None:
        with self._conn() as conn:
            row = conn.execute(text("SELECT * FROM documents WHERE doc_id=:d"), {"d": doc_id}).mappings().first()
            return self._with_ocr(conn, [DocumentRecord.from_row(row)])[0] if row else None

    def get_by_path(self, path: str) -> DocumentRecord | None:
        with self._conn() as conn:
            row = conn.execute(text("SELECT * FROM documents WHERE path=:p"), {"p": path}).mappings().first()
            return self._with_ocr(conn, [DocumentRecord.from_row(row)])[0] if row else None

    @staticmethod
    def _with_ocr(conn: Connection, recs: list[DocumentRecord]) -> list[DocumentRecord]:
        """Fill ``ocr_pages`` (one query; most catalogs have few scanned documents)."""
        by_id = {r.doc_id: r for r in recs}
        if not recs:
            return recs
        if len(recs) == 1:
            rows = conn.execute(text("SELECT doc_id, page, confidence FROM ocr_pages WHERE doc_id=:d"),
                                {"d": recs[0].doc_id})
        elif len(recs) <= 500:  # an answer's or a chat's sources
            rows = conn.execute(Catalog._OCR_IN, {"ids": sorted(by_id)})
        else:
            rows = conn.execute(text("SELECT doc_id, page, confidence FROM ocr_pages"))
        for doc_id, page, conf in rows:
            if doc_id in by_id:
                by_id[doc_id].ocr_pages[int(page)] = float(conf)
        return recs

    def documents(self, collection: str | None = None, status: str | None = None) -> list[DocumentRecord]:
        sql, args = "SELECT * FROM documents WHERE 1=1", {}
        if collection:
            sql += " AND collection=:c"
            args["c"] = collection
        if status:
            sql += " AND status=:s"
            args["s"] = status
        with self._conn() as conn:
            rows = conn.execute(text(sql + " ORDER BY source, doc_id"), args).mappings().all()
            return self._with_ocr(conn, [DocumentRecord.from_row(r) for r in rows])

    def record_failure(self, rec: DocumentRecord) -> None:
        """Store a failed/needs-OCR attempt; an existing indexed version stays searchable."""
        self.commit_documents((), failures=(rec,))

    def commit_document(self, rec: DocumentRecord, chunks: Sequence[Chunk]) -> list[str]:
        """Atomically replace a document's chunks; returns chunk ids that are no longer used."""
        return self.commit_documents([(rec, chunks)])

    def commit_documents(self, versions: Sequence[tuple[DocumentRecord, Sequence[Chunk]]], *,
                         failures: Sequence[DocumentRecord] = (), drop: Sequence[str] = ()) -> list[str]:
        """Make several changes visible in one transaction: new versions of documents, failed attempts
        (an indexed version stays searchable) and documents removed (``drop``; unknown ids are
        ignored). An importer uses it so that a council paper's files change together: a process
        killed before the commit leaves every one of them as it was. Returns the chunk ids no longer
        used (the replaced versions' and the dropped documents'). Like every write it passes the
        writer lock's fence first (:meth:`fence_writes`)."""
        stale: list[str] = []
        with self._tx() as conn:
            for rec, chunks in versions:
                stale += self._write_version(conn, rec, chunks)
            for rec in failures:
                self._write_failure(conn, rec)
            for doc_id in drop:
                stale += conn.execute(text("SELECT chunk_id FROM chunks WHERE doc_id=:d"), {"d": doc_id}).scalars()
                conn.execute(text("DELETE FROM documents WHERE doc_id=:d"), {"d": doc_id})
            if versions or failures or drop:
                self._bump(conn)
        return stale

    def _write_failure(self, conn: Connection, rec: DocumentRecord) -> None:
        old = conn.execute(text("SELECT status, chunk_count FROM documents WHERE doc_id=:d"),
                           {"d": rec.doc_id}).mappings().first()
        self._ensure(conn, rec.collection)
        if old and old["chunk_count"]:
            # keep the good version; remember why the update failed
            conn.execute(text("UPDATE documents SET error=:e WHERE doc_id=:d"),
                         {"e": self._text(rec.error), "d": rec.doc_id})
        else:
            self._upsert_doc(conn, rec)

    def _write_version(self, conn: Connection, rec: DocumentRecord, chunks: Sequence[Chunk]) -> list[str]:
        new_ids = {c.chunk_id for c in chunks}
        self._ensure(conn, rec.collection)
        old_ids = list(conn.execute(text("SELECT chunk_id FROM chunks WHERE doc_id=:d"), {"d": rec.doc_id}).scalars())
        conn.execute(text("DELETE FROM chunks WHERE doc_id=:d"), {"d": rec.doc_id})
        rec.chunk_count = len(chunks)
        if rec.indexed_at is None:  # every commit is dated: index_fingerprints() relies on it
            rec.indexed_at = time.time()
        self._upsert_doc(conn, rec)
        if chunks:
            conn.execute(
                text("INSERT INTO chunks(chunk_id, doc_id, ordinal, text, page, section, content_hash) "
                     "VALUES (:chunk_id, :doc_id, :ordinal, :text, :page, :section, :content_hash)"),
                [{"chunk_id": c.chunk_id, "doc_id": c.doc_id, "ordinal": c.ordinal, "text": self._text(c.text),
                  "page": c.page, "section": self._text(c.section), "content_hash": c.content_hash} for c in chunks],
            )
        conn.execute(text("DELETE FROM ocr_pages WHERE doc_id=:d"), {"d": rec.doc_id})
        if rec.ocr_pages:
            conn.execute(text("INSERT INTO ocr_pages(doc_id, page, confidence) VALUES (:d, :p, :c)"),
                         [{"d": rec.doc_id, "p": int(p), "c": float(c)} for p, c in rec.ocr_pages.items()])
        return [i for i in old_ids if i not in new_ids]

    def _text(self, value):
        """PostgreSQL's TEXT cannot hold NUL characters (a PDF's text layer sometimes has them):
        they are dropped there; SQLite stores text exactly as given."""
        return value.replace("\x00", "") if not self._sqlite and isinstance(value, str) else value

    def _upsert_doc(self, conn: Connection, rec: DocumentRecord) -> None:
        values = {k: self._text(v) for k, v in rec.as_dict().items()}
        values["meta"] = json.dumps(values["meta"], ensure_ascii=False, sort_keys=True)
        cols = list(_COLUMNS)
        conn.execute(
            text(f"INSERT INTO documents({','.join(cols)}) VALUES ({','.join(':' + c for c in cols)}) "
                 f"ON CONFLICT(doc_id) DO UPDATE SET {','.join(f'{c}=excluded.{c}' for c in cols if c != 'doc_id')}"),
            {c: values[c] for c in cols},
        )

    def set_document_meta(self, doc_id: str, meta: dict) -> None:
        """Replace a document's metadata only (its text and chunks are unchanged)."""
        with self._tx() as conn:
            if conn.execute(text("UPDATE documents SET meta=:m WHERE doc_id=:d"),
                            {"m": json.dumps(meta, ensure_ascii=False, sort_keys=True), "d": doc_id}).rowcount == 0:
                raise KeyError(doc_id)
            self._bump(conn)

    def delete_document(self, doc_id: str) -> list[str]:
        """Remove a document; returns its chunk ids for the indexes to drop."""
        with self._tx() as conn:
            ids = list(conn.execute(text("SELECT chunk_id FROM chunks WHERE doc_id=:d"), {"d": doc_id}).scalars())
            if conn.execute(text("DELETE FROM documents WHERE doc_id=:d"), {"d": doc_id}).rowcount == 0:
                raise KeyError(doc_id)
            self._bump(conn)
        return ids

    def index_fingerprints(self) -> dict[str, tuple[str, str]]:
        """doc_id → (fingerprint, collection) of every document with chunks. The fingerprint
        changes whenever a document's chunks are replaced (``indexed_at`` is set on every commit),
        so a derived index can update exactly the documents that changed."""
        with self._conn() as conn:
            rows = conn.execute(text(
                "SELECT doc_id, indexed_at, chunk_count, collection FROM documents WHERE chunk_count > 0"))
            return {r[0]: (f"{r[1]!r}:{r[2]}", r[3]) for r in rows}

    # -- chunks ------------------------------------------------------------
    _CHUNK_SELECT = """SELECT c.chunk_id, c.doc_id, c.ordinal, c.text, c.page, c.section, c.content_hash,
                              d.source, d.title, d.collection FROM chunks c JOIN documents d ON d.doc_id = c.doc_id"""
    # built once: the read path runs them for every query
    _CHUNKS_BY_IDS = text(_CHUNK_SELECT + " WHERE c.chunk_id IN :ids").bindparams(bindparam("ids", expanding=True))
    _COLLECTIONS_OF = text("SELECT c.chunk_id, d.collection FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
                           "WHERE c.chunk_id IN :ids").bindparams(bindparam("ids", expanding=True))

    _CHUNK_VERSIONS_IN = text("SELECT c.chunk_id, d.indexed_at FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
                              "WHERE d.collection IN :colls ORDER BY c.chunk_id").bindparams(bindparam("colls", expanding=True))

    def chunk_versions_in(self, collections: Sequence[str]) -> dict[str, float]:
        """``{chunk_id: its document's indexed_at}`` for the chunks of these collections (a new
        version of a document always has a new ``indexed_at``, even when its chunk ids stay)."""
        if not collections:
            return {}
        with self._conn() as conn:
            return {r[0]: float(r[1] or 0.0) for r in conn.execute(self._CHUNK_VERSIONS_IN, {"colls": list(collections)})}

    def chunk_ids(self) -> set[str]:
        with self._conn() as conn:
            return set(conn.execute(text("SELECT chunk_id FROM chunks")).scalars())

    def chunks_by_ids(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Active chunks for the given ids (unknown ids are silently absent: orphans)."""
        if not ids:
            return {}
        out: dict[str, Chunk] = {}
        with self._conn() as conn:
            for start in range(0, len(ids), 500):
                for r in conn.execute(self._CHUNKS_BY_IDS, {"ids": list(ids[start : start + 500])}):
                    out[r[0]] = _tuple_chunk(r)
        return out

    _DOCS_IN = text("SELECT * FROM documents WHERE doc_id IN :ids").bindparams(bindparam("ids", expanding=True))
    _OCR_IN = text("SELECT doc_id, page, confidence FROM ocr_pages WHERE doc_id IN :ids").bindparams(
        bindparam("ids", expanding=True))

    def records(self, doc_ids: Iterable[str]) -> dict[str, DocumentRecord]:
        """``{doc_id: its record}`` in one query (an answer's or a chat's few sources); unknown ids
        are absent."""
        ids = sorted(set(doc_ids))
        if not ids:
            return {}
        with self._conn() as conn:
            rows = conn.execute(self._DOCS_IN, {"ids": ids}).mappings().all()
            return {rec.doc_id: rec for rec in self._with_ocr(conn, [DocumentRecord.from_row(r) for r in rows])}

    def collections_of(self, ids: Sequence[str]) -> dict[str, str]:
        """``{chunk_id: collection}`` of the active chunks among ``ids`` (unknown ids are absent)."""
        out: dict[str, str] = {}
        with self._conn() as conn:
            for start in range(0, len(ids), 500):
                out.update((r[0], r[1]) for r in conn.execute(self._COLLECTIONS_OF, {"ids": list(ids[start : start + 500])}))
        return out

    def document_collections(self) -> dict[str, str]:
        """``{doc_id: collection}`` of every document (small beside the chunks: one row a file)."""
        with self._conn() as conn:
            return {r[0]: r[1] for r in conn.exec_driver_sql("SELECT doc_id, collection FROM documents")}

    def iter_chunks(self, doc_id: str | None = None) -> Iterable[Chunk]:
        sql, args = self._CHUNK_SELECT, {}
        if doc_id:
            sql += " WHERE c.doc_id=:d"
            args["d"] = doc_id
        with self._conn() as conn:
            rows = conn.execute(text(sql + " ORDER BY c.doc_id, c.ordinal"), args).all()
        return [_tuple_chunk(r) for r in rows]

    def stats(self) -> CatalogStats:
        with self._conn() as conn:
            docs = conn.execute(text("SELECT COUNT(*) FROM documents")).scalar_one()
            chunks = conn.execute(text("SELECT COUNT(*) FROM chunks")).scalar_one()
            by_status = {r[0]: int(r[1]) for r in conn.execute(text("SELECT status, COUNT(*) FROM documents GROUP BY status"))}
        by_coll = {c["name"]: c for c in self.collections()}
        return CatalogStats(int(docs), int(chunks), by_status, by_coll)

    # -- misc state --------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._conn() as conn:
            value = conn.execute(text("SELECT value FROM meta WHERE key=:k"), {"k": key}).scalar()
        return default if value is None else value

    def meta_items(self, prefix: str) -> dict[str, str]:
        """Every meta entry whose key starts with ``prefix`` (e.g. the in-flight notes of all writers)."""
        with self._conn() as conn:
            rows = conn.execute(text("SELECT key, value FROM meta")).all()
        return {k: v for k, v in rows if k.startswith(prefix)}

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute(text("INSERT INTO meta(key, value) VALUES (:k, :v) ON CONFLICT(key) DO UPDATE SET value=excluded.value"),
                         {"k": key, "v": value})

    def delete_meta(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute(text("DELETE FROM meta WHERE key=:k"), {"k": key})


# -- schema ------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def _alembic_config(conn: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    cfg.attributes["version_table"] = VERSION_TABLE
    return cfg


def _current(conn: Connection) -> str | None:
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def schema_revision(engine: Engine) -> tuple[str | None, str]:
    """(the catalog revision this database is at – None before the first start –, the newest one):
    what `kiportal status` reports for the shared catalog."""
    with engine.connect() as conn:
        return _current(conn), _head()


def upgrade_schema(engine: Engine) -> None:
    """Bring the catalog in ``engine``'s database to the newest Alembic revision.

    A catalog already at the newest revision costs one query. Otherwise the upgrade runs under
    the database's schema lock, so replicas starting together on a fresh database migrate it
    once. A SQLite catalog from before Alembic (schema version ≤ 4, recognised by its ``meta``
    table) is first brought to version 4 in place and stamped, keeping its data."""
    with engine.connect() as conn:
        if _current(conn) == _head():
            return
    from alembic import command

    with database_lock(engine, SCHEMA_LOCK), engine.begin() as conn:
        if is_sqlite(engine):  # one transaction for the DDL too (pysqlite would run it outside one)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        if _current(conn) == _head():
            return
        cfg = _alembic_config(conn)
        if _current(conn) is None and inspect(conn).has_table("meta"):
            _adopt_legacy(conn)
            command.stamp(cfg, LEGACY_REVISION)
        command.upgrade(cfg, "head")


def _adopt_legacy(conn: Connection) -> None:
    """Bring a catalog written before Alembic to schema version 4 (each step idempotent).

    3: documents get ``meta`` (empty for every document catalogued before it).
    4: collections get ``readers``; existing collections stay readable by everyone (``alle``),
    as they were before groups existed, so an upgrade changes no one's view.
    """
    log.info("catalog from before Alembic: bringing it to schema version %d and stamping it", SCHEMA_VERSION)
    for stmt in _LEGACY_SCHEMA.split(";"):
        if stmt.strip():
            conn.exec_driver_sql(stmt)
    if "meta" not in {c["name"] for c in inspect(conn).get_columns("documents")}:
        conn.exec_driver_sql("ALTER TABLE documents ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'")
    if "readers" not in {c["name"] for c in inspect(conn).get_columns("collections")}:
        conn.exec_driver_sql("ALTER TABLE collections ADD COLUMN readers TEXT NOT NULL DEFAULT '[\"alle\"]'")
    for key, value in (("schema_version", str(SCHEMA_VERSION)), ("generation", "0")):
        conn.execute(text("INSERT INTO meta(key, value) VALUES (:k, :v) ON CONFLICT(key) DO NOTHING"), {"k": key, "v": value})
    conn.execute(text("UPDATE meta SET value=:v WHERE key='schema_version'"), {"v": str(SCHEMA_VERSION)})


def _readers_json(readers: Sequence[str]) -> str:
    return json.dumps(sorted(dict.fromkeys(readers)), ensure_ascii=False)


def _readers_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:  # a hand-edited catalog: read as nobody (admins still see it)
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _tuple_chunk(r: Sequence[Any]) -> Chunk:
    """A row of ``Catalog._CHUNK_SELECT`` (by position: the read path's hot loop)."""
    return Chunk(chunk_id=r[0], doc_id=r[1], ordinal=r[2], text=r[3], page=r[4], section=r[5], content_hash=r[6],
                 source=r[7], title=r[8], collection=r[9])


def dumps(rec: DocumentRecord) -> str:
    return json.dumps(rec.as_dict(), ensure_ascii=False)
