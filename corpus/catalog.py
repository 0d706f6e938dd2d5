"""The catalog: SQLite source of truth for documents, chunks and collections.

Indexes (Chroma, BM25) are derived from it. Each collection carries its *readers*: the
groups that may read it, or ``alle`` for everyone (what they mean is decided in
:mod:`assistant.access`; the catalog only stores the list). A document version becomes visible in
one transaction (``commit_document``), so readers see the old or the new version,
never a half-indexed one; anything an index holds that the catalog does not know is
an orphan that ``doctor`` and the end of every ingest run remove.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from corpus.models import Chunk

SCHEMA_VERSION = 4
EVERYONE = "alle"

_SCHEMA = """
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
-- pages read by text recognition (OCR) and Tesseract's mean word confidence (0-100) on each;
-- a table of its own, so catalogs from before OCR need no migration
CREATE TABLE IF NOT EXISTS ocr_pages (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    page INTEGER NOT NULL,
    confidence REAL NOT NULL,
    PRIMARY KEY (doc_id, page)
);
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
    #: page -> mean word confidence (0-100) of the pages read by text recognition; not a column
    ocr_pages: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["meta"] = dict(self.meta)
        d["ocr_pages"] = dict(self.ocr_pages)
        return d

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "DocumentRecord":
        d = dict(row)
        try:
            d["meta"] = json.loads(d.get("meta") or "{}")
        except ValueError:
            d["meta"] = {}
        return cls(**d)

    def ocr_confidence(self, page: int | None) -> float | None:
        """The page's OCR confidence, or None when the page has a text layer (or no page is known)."""
        return self.ocr_pages.get(int(page)) if page else None

    def low_confidence_pages(self, threshold: float) -> list[int]:
        """OCR'd pages read with a mean word confidence below ``threshold``: for a person to check."""
        return sorted(p for p, c in self.ocr_pages.items() if c < threshold)


_COLUMNS = tuple(f for f in DocumentRecord.__dataclass_fields__ if f != "ocr_pages")


@dataclass
class CatalogStats:
    documents: int
    chunks: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_collection: dict[str, dict] = field(default_factory=dict)


class Catalog:
    """Thread-safe SQLite catalog (one connection per thread, WAL for concurrent readers)."""

    def __init__(self, path: Path | str, *, new_collection_readers: Sequence[str] = (EVERYONE,)) -> None:
        """``new_collection_readers``: readers of collections created from now on (also those an
        ingest creates implicitly); existing collections keep theirs."""
        self.path = str(path)
        self.new_collection_readers = list(new_collection_readers)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._memory_conn: sqlite3.Connection | None = None
        with self._write_lock, self._conn() as conn:
            conn.executescript(_SCHEMA)
            _migrate(conn)
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?), ('generation', '0')",
                (str(SCHEMA_VERSION),),
            )

    # -- connections -------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys=ON")
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        if self.path == ":memory:":
            if self._memory_conn is None:
                self._memory_conn = self._connect()
            yield self._memory_conn
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        yield conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- generation: bumps on every visible change, so derived indexes know they are stale
    def generation(self) -> int:
        with self._conn() as conn:
            return int(conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    @staticmethod
    def _bump(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")

    # -- collections -------------------------------------------------------
    def ensure_collection(self, name: str, classification: str = "intern", readers: Sequence[str] | None = None) -> None:
        with self._tx() as conn:
            self._ensure(conn, name, classification, readers)

    def _ensure(self, conn: sqlite3.Connection, name: str, classification: str = "intern",
                readers: Sequence[str] | None = None) -> None:
        """Create the collection if it is new (readers from the argument, else the default for new ones)."""
        conn.execute(
            "INSERT OR IGNORE INTO collections(name, classification, created_at, readers) VALUES (?,?,?,?)",
            (name, classification, time.time(),
             _readers_json(self.new_collection_readers if readers is None else readers)),
        )

    def collection_readers(self) -> dict[str, list[str]]:
        """Readers of every collection: ``{name: [group, …]}`` (``["alle"]`` = everyone)."""
        with self._conn() as conn:
            rows = conn.execute("SELECT name, readers FROM collections").fetchall()
        return {r["name"]: _readers_list(r["readers"]) for r in rows}

    def set_collection_readers(self, name: str, readers: Sequence[str]) -> None:
        with self._tx() as conn:
            if conn.execute("UPDATE collections SET readers=? WHERE name=?", (_readers_json(readers), name)).rowcount == 0:
                raise KeyError(name)

    def collections(self) -> list[dict]:
        with self._conn() as conn:
            rows = conn.execute(
                """SELECT c.name, c.classification, c.created_at, c.readers,
                          COUNT(d.doc_id) AS documents, COALESCE(SUM(d.chunk_count),0) AS chunks
                   FROM collections c LEFT JOIN documents d ON d.collection = c.name
                   GROUP BY c.name ORDER BY c.name"""
            ).fetchall()
        return [dict(r, readers=_readers_list(r["readers"])) for r in rows]

    def set_collection_classification(self, name: str, classification: str) -> None:
        with self._tx() as conn:
            if conn.execute("UPDATE collections SET classification=? WHERE name=?", (classification, name)).rowcount == 0:
                raise KeyError(name)

    def rename_collection(self, old: str, new: str) -> list[str]:
        """Rename; returns the doc ids whose chunk metadata must be updated in the indexes."""
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM collections WHERE name=?", (new,)).fetchone():
                raise ValueError(f"Sammlung existiert bereits / collection exists: {new}")
            if conn.execute("UPDATE collections SET name=? WHERE name=?", (new, old)).rowcount == 0:
                raise KeyError(old)
            ids = [r[0] for r in conn.execute("SELECT doc_id FROM documents WHERE collection=?", (old,))]
            conn.execute("UPDATE documents SET collection=? WHERE collection=?", (new, old))
            self._bump(conn)
        return ids

    def delete_collection(self, name: str) -> None:
        with self._tx() as conn:
            n = conn.execute("SELECT COUNT(*) FROM documents WHERE collection=?", (name,)).fetchone()[0]
            if n:
                raise ValueError(f"Sammlung ist nicht leer ({n} Dokumente) / collection not empty")
            conn.execute("DELETE FROM collections WHERE name=?", (name,))

    def move_document(self, doc_id: str, collection: str) -> None:
        with self._tx() as conn:
            self._ensure(conn, collection)
            if conn.execute("UPDATE documents SET collection=? WHERE doc_id=?", (collection, doc_id)).rowcount == 0:
                raise KeyError(doc_id)
            self._bump(conn)

    # -- documents ---------------------------------------------------------
    def get(self, doc_id: str) -> DocumentRecord | None:
        with self._conn() as conn:
            row = conn.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
            return self._with_ocr(conn, [DocumentRecord.from_row(row)])[0] if row else None

    def get_by_path(self, path: str) -> DocumentRecord | None:
        with self._conn() as conn:
            row = conn.execute("SELECT * FROM documents WHERE path=?", (path,)).fetchone()
            return self._with_ocr(conn, [DocumentRecord.from_row(row)])[0] if row else None

    @staticmethod
    def _with_ocr(conn: sqlite3.Connection, recs: list[DocumentRecord]) -> list[DocumentRecord]:
        """Fill ``ocr_pages`` (one query; most catalogs have few scanned documents)."""
        by_id = {r.doc_id: r for r in recs}
        if len(recs) == 1:
            rows = conn.execute("SELECT doc_id, page, confidence FROM ocr_pages WHERE doc_id=?", (recs[0].doc_id,))
        else:
            rows = conn.execute("SELECT doc_id, page, confidence FROM ocr_pages")
        for doc_id, page, conf in rows:
            if doc_id in by_id:
                by_id[doc_id].ocr_pages[int(page)] = float(conf)
        return recs

    def documents(self, collection: str | None = None, status: str | None = None) -> list[DocumentRecord]:
        sql, args = "SELECT * FROM documents WHERE 1=1", []
        if collection:
            sql += " AND collection=?"
            args.append(collection)
        if status:
            sql += " AND status=?"
            args.append(status)
        with self._conn() as conn:
            rows = conn.execute(sql + " ORDER BY source", args).fetchall()
            return self._with_ocr(conn, [DocumentRecord.from_row(r) for r in rows])

    def record_failure(self, rec: DocumentRecord) -> None:
        """Store a failed/needs-OCR attempt; an existing indexed version stays searchable."""
        with self._tx() as conn:
            old = conn.execute("SELECT status, chunk_count FROM documents WHERE doc_id=?", (rec.doc_id,)).fetchone()
            self._ensure(conn, rec.collection)
            if old and old["chunk_count"]:
                # keep the good version; remember why the update failed
                conn.execute("UPDATE documents SET error=? WHERE doc_id=?", (rec.error, rec.doc_id))
            else:
                self._upsert_doc(conn, rec)

    def commit_document(self, rec: DocumentRecord, chunks: Sequence[Chunk]) -> list[str]:
        """Atomically replace a document's chunks; returns chunk ids that are no longer used."""
        new_ids = {c.chunk_id for c in chunks}
        with self._tx() as conn:
            self._ensure(conn, rec.collection)
            old_ids = [r[0] for r in conn.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (rec.doc_id,))]
            conn.execute("DELETE FROM chunks WHERE doc_id=?", (rec.doc_id,))
            rec.chunk_count = len(chunks)
            if rec.indexed_at is None:  # every commit is dated: index_fingerprints() relies on it
                rec.indexed_at = time.time()
            self._upsert_doc(conn, rec)
            conn.executemany(
                "INSERT INTO chunks(chunk_id, doc_id, ordinal, text, page, section, content_hash) VALUES (?,?,?,?,?,?,?)",
                [(c.chunk_id, c.doc_id, c.ordinal, c.text, c.page, c.section, c.content_hash) for c in chunks],
            )
            conn.execute("DELETE FROM ocr_pages WHERE doc_id=?", (rec.doc_id,))
            conn.executemany("INSERT INTO ocr_pages(doc_id, page, confidence) VALUES (?,?,?)",
                             [(rec.doc_id, int(p), float(c)) for p, c in rec.ocr_pages.items()])
            self._bump(conn)
        return [i for i in old_ids if i not in new_ids]

    @staticmethod
    def _upsert_doc(conn: sqlite3.Connection, rec: DocumentRecord) -> None:
        values = rec.as_dict()
        values["meta"] = json.dumps(values["meta"], ensure_ascii=False, sort_keys=True)
        cols = list(_COLUMNS)
        conn.execute(
            f"INSERT INTO documents({','.join(cols)}) VALUES ({','.join('?' * len(cols))}) "
            f"ON CONFLICT(doc_id) DO UPDATE SET {','.join(f'{c}=excluded.{c}' for c in cols if c != 'doc_id')}",
            [values[c] for c in cols],
        )

    def set_document_meta(self, doc_id: str, meta: dict) -> None:
        """Replace a document's metadata only (its text and chunks are unchanged)."""
        with self._tx() as conn:
            if conn.execute("UPDATE documents SET meta=? WHERE doc_id=?",
                            (json.dumps(meta, ensure_ascii=False, sort_keys=True), doc_id)).rowcount == 0:
                raise KeyError(doc_id)
            self._bump(conn)

    def delete_document(self, doc_id: str) -> list[str]:
        """Remove a document; returns its chunk ids for the indexes to drop."""
        with self._tx() as conn:
            ids = [r[0] for r in conn.execute("SELECT chunk_id FROM chunks WHERE doc_id=?", (doc_id,))]
            if conn.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,)).rowcount == 0:
                raise KeyError(doc_id)
            self._bump(conn)
        return ids

    def index_fingerprints(self) -> dict[str, tuple[str, str]]:
        """doc_id → (fingerprint, collection) of every document with chunks. The fingerprint
        changes whenever a document's chunks are replaced (``indexed_at`` is set on every commit),
        so a derived index can update exactly the documents that changed."""
        with self._conn() as conn:
            rows = conn.execute("SELECT doc_id, indexed_at, chunk_count, collection FROM documents WHERE chunk_count > 0")
            return {r[0]: (f"{r[1]!r}:{r[2]}", r[3]) for r in rows}

    # -- chunks ------------------------------------------------------------
    def chunk_ids(self) -> set[str]:
        with self._conn() as conn:
            return {r[0] for r in conn.execute("SELECT chunk_id FROM chunks")}

    def chunks_by_ids(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Active chunks for the given ids (unknown ids are silently absent: orphans)."""
        if not ids:
            return {}
        out: dict[str, Chunk] = {}
        with self._conn() as conn:
            for start in range(0, len(ids), 500):
                part = list(ids[start : start + 500])
                rows = conn.execute(
                    f"""SELECT c.*, d.source, d.title, d.collection FROM chunks c
                        JOIN documents d ON d.doc_id = c.doc_id
                        WHERE c.chunk_id IN ({','.join('?' * len(part))})""",
                    part,
                ).fetchall()
                for r in rows:
                    out[r["chunk_id"]] = _row_chunk(r)
        return out

    def collections_of(self, ids: Sequence[str]) -> dict[str, str]:
        """``{chunk_id: collection}`` of the active chunks among ``ids`` (unknown ids are absent)."""
        out: dict[str, str] = {}
        with self._conn() as conn:
            for start in range(0, len(ids), 500):
                part = list(ids[start : start + 500])
                out.update(conn.execute(
                    f"""SELECT c.chunk_id, d.collection FROM chunks c JOIN documents d ON d.doc_id = c.doc_id
                        WHERE c.chunk_id IN ({','.join('?' * len(part))})""", part).fetchall())
        return out

    def iter_chunks(self, doc_id: str | None = None) -> Iterable[Chunk]:
        sql = """SELECT c.*, d.source, d.title, d.collection FROM chunks c
                 JOIN documents d ON d.doc_id = c.doc_id"""
        args: list = []
        if doc_id:
            sql += " WHERE c.doc_id=?"
            args.append(doc_id)
        with self._conn() as conn:
            rows = conn.execute(sql + " ORDER BY c.doc_id, c.ordinal", args).fetchall()
        return [_row_chunk(r) for r in rows]

    def stats(self) -> CatalogStats:
        with self._conn() as conn:
            docs = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            by_status = {r[0]: r[1] for r in conn.execute("SELECT status, COUNT(*) FROM documents GROUP BY status")}
        by_coll = {c["name"]: c for c in self.collections()}
        return CatalogStats(docs, chunks, by_status, by_coll)

    # -- misc state --------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._conn() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a catalog of an older version up to this one (each step idempotent).

    3: documents get ``meta`` (empty for every document catalogued before it).
    4: collections get ``readers``; existing collections stay readable by everyone (``alle``),
    as they were before groups existed, so an upgrade changes no one's view.
    """
    if "meta" not in {r[1] for r in conn.execute("PRAGMA table_info(documents)")}:
        conn.execute("ALTER TABLE documents ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'")
    cols = {r[1] for r in conn.execute("PRAGMA table_info(collections)")}
    if "readers" not in cols:
        conn.execute("ALTER TABLE collections ADD COLUMN readers TEXT NOT NULL DEFAULT '[\"alle\"]'")
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version' AND CAST(value AS INTEGER) < ?",
                 (str(SCHEMA_VERSION), SCHEMA_VERSION))


def _readers_json(readers: Sequence[str]) -> str:
    return json.dumps(sorted(dict.fromkeys(readers)), ensure_ascii=False)


def _readers_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:  # a hand-edited catalog: read as nobody (admins still see it)
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _row_chunk(r: sqlite3.Row) -> Chunk:
    return Chunk(
        chunk_id=r["chunk_id"],
        doc_id=r["doc_id"],
        ordinal=r["ordinal"],
        text=r["text"],
        source=r["source"],
        title=r["title"],
        page=r["page"],
        section=r["section"],
        collection=r["collection"],
        content_hash=r["content_hash"],
    )


def dumps(rec: DocumentRecord) -> str:
    return json.dumps(rec.as_dict(), ensure_ascii=False)
