"""Incremental ingestion: new files are added, changed ones re-indexed, unchanged ones skipped.

Loading and chunking run in a producer thread while the main thread embeds, so the
embedding model (the real cost) is kept busy; chunks of several small documents are
embedded in one batch. Every document is committed on its own (see
:class:`corpus.knowledge_base.KnowledgeBase`), so a run killed at any moment leaves the
previous state searchable and the next run completes the job. An importer whose files
belong together (a council paper and its attachments) asks for ``atomic``: then every
change of the call becomes visible in one commit at its end.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from corpus.catalog import DocumentRecord
from corpus.db import file_lock
from corpus.knowledge_base import KnowledgeBase, index_text
from corpus.ligatures import close_gaps, document_splits
from corpus.models import Chunk
from ingest.chunking import ChunkParams, make_chunks
from ingest.errors import IngestError, os_error_de
from ingest.loaders import LoadLimits
from ingest.loaders.isolated import SCRATCH_PREFIX, Loader, make_loader
from ingest.read_ahead import ReadAhead
from ingest.safe_files import ChangedWhileReading, NotRegularFile, listed_size_and_sha, private_copy

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]

#: Passages embedded in one call at most. The embedder sorts a call's texts by length, so larger
#: calls pad less: 2,000 passages of the shared corpus in calls of 128 / 512 / 2,000 took 107 / 95 / 89
#: CPU-seconds; calls of 2,048 in the ingest were no faster than these (docs/results.md, session 49).
#: Vectors of this many passages are 1.5 MB.
FLUSH_CHUNKS = 1024
#: Passages read ahead of the embedding (ingest.read_ahead): twice a call, so the next call is
#: ready when one ends.
READ_AHEAD_CHUNKS = 2 * FLUSH_CHUNKS
# An importer's stand-in for a file the loaders cannot read: a file to index instead and its metadata
# (OParl: a file's ``text`` field), or None. Called only when the file failed to load.
Fallback = Callable[[Path], "tuple[Path, dict] | None"]


@dataclass
class IngestSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[dict] = field(default_factory=list)
    substituted: dict[str, str] = field(default_factory=dict)  # unreadable file → its stand-in (see ``fallback``)
    chunks: int = 0
    pages: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "removed": self.removed, "failed": self.failed, "chunks": self.chunks, "pages": self.pages,
            "seconds": round(self.seconds, 3), "chunks_per_s": round(self.chunks_per_s, 1),
            "embed_seconds": round(self.embed_seconds, 3),
        }


def doc_id_for(path: Path, storage: Path | None = None) -> str:
    """Stable id: the same file keeps its id across versions.

    A file inside the ``storage`` folder (uploads; a shared folder in a cluster) is named by its
    path relative to that folder, so machines that mount the share at different places compute
    the same id; any other file by its resolved path (the ids catalogs have always held)."""
    resolved = Path(path).resolve()
    if storage is not None:
        try:
            rel = resolved.relative_to(Path(storage).resolve())
        except ValueError:
            pass
        else:
            key = "storage:" + rel.as_posix()  # never equal to an absolute path
            return hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return hashlib.sha1(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def storage_path_of(path: Path, storage: Path | None) -> str:
    """``path`` relative to the storage folder ('' when it lies elsewhere or there is none)."""
    if storage is None:
        return ""
    try:
        return Path(path).resolve().relative_to(Path(storage).resolve()).as_posix()
    except ValueError:
        return ""


def discover(paths: Iterable[Path]) -> list[Path]:
    """Files under the given paths, sorted; hidden files/folders and symlinked files are skipped."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    f = Path(root) / name
                    if name.startswith("."):
                        continue
                    try:
                        regular = f.is_file() and not f.is_symlink()
                    except OSError:  # a name too long for the system, say: the plan reports it for this file alone
                        regular = True
                    if regular:
                        found.append(f)
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"Pfad nicht gefunden / path not found: {p}")
    return found


def _listed_in(path: Path, roots: Sequence[Path]) -> Path | None:
    """The deepest of the given folders that ``path`` was listed under (None: a file named itself)."""
    inside = [r for r in roots if path.is_relative_to(r)]
    return max(inside, key=lambda r: len(r.parts)) if inside else None


def writer_lock_file(home: Path) -> Path:
    """The embedded default's writer lock: one writer per data directory (CLI, portal jobs and
    cron may overlap). A cluster uses a database lock instead (``App.writer_lock``)."""
    return Path(home) / "ingest.lock"


@contextmanager
def writer_lock(home: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the data directory's writer lock (a file lock; see :func:`writer_lock_file`)."""
    with file_lock(writer_lock_file(home), timeout, what="writer"):
        yield


@dataclass
class _Pending:
    """What an ``atomic`` run commits at its end, in one catalog transaction."""

    versions: list = field(default_factory=list)    # (record, chunks, vectors)
    failures: list[DocumentRecord] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)   # the caller's ``drop`` and documents replaced by a stand-in


@dataclass
class _Work:
    path: Path
    doc_id: str
    sha: str
    size: int
    existing: DocumentRecord | None
    collection: str
    original_name: str
    title: str | None = None  # the caller's title (e.g. an OParl citation label) instead of the file's own
    meta: dict | None = None
    #: the folder the file was listed in: no symlink below it is followed when it is read (ingest.safe_files)
    under: Path | None = None


@dataclass
class _Loaded:
    work: _Work
    record: DocumentRecord
    chunks: list[Chunk] | None  # None = failed
    error: IngestError | None = None
    replaces: _Work | None = None  # the unreadable file this stand-in replaces (its document goes)


class Ingestor:
    """Adds, updates and removes documents of a :class:`KnowledgeBase`."""

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        home: Path,
        limits: LoadLimits = LoadLimits(),
        chunk_params: ChunkParams = ChunkParams(),
        default_collection: str = "allgemein",
        signature: str = "",
        batch_size: int = 32,
        loader: Loader | None = None,
        storage: Path | None = None,
    ) -> None:
        """``storage``: the folder of uploaded and synced originals; files inside it get ids that do
        not depend on where the folder is mounted (:func:`doc_id_for`). The writer lock is the
        knowledge base's (``kb.writer_lock``)."""
        self.kb = kb
        self.home = Path(home)
        self.storage = Path(storage) if storage is not None else None
        self.limits = limits
        # reads one file; built from settings with a time limit (ingest.loaders.isolated), in-process by default
        self.loader: Loader = loader or make_loader(limits)
        self.chunk_params = chunk_params
        self.default_collection = default_collection
        self.signature = signature
        self.batch_size = batch_size

    # -- planning ----------------------------------------------------------
    def _plan(self, files: Sequence[Path], collection: str | None, force: bool, summary: IngestSummary,
              original_names: dict[Path, str] | None = None, titles: dict[Path, str] | None = None,
              meta: dict[Path, dict] | None = None, pending: _Pending | None = None,
              roots: Sequence[Path] = ()) -> list[_Work]:
        stale_signature = self.kb.catalog.get_meta("index_signature") not in (None, self.signature)
        work: list[_Work] = []
        for f in files:
            try:
                planned = self._plan_one(f, collection, force, summary, stale_signature, original_names, titles, meta,
                                         pending, roots)
            except NotRegularFile as exc:  # swapped for a link, a pipe or a folder since the folder was read
                self._skip(f, summary, IngestError("unsupported", exc.strerror or str(exc)))
                continue
            except OSError as exc:  # gone, locked or unreachable since the folder was read: this file fails alone
                self._skip(f, summary, IngestError("corrupt", f"Datei nicht lesbar: {os_error_de(exc)}"))  # as load_document says
                continue
            if planned is not None:
                work.append(planned)
        return work

    @staticmethod
    def _skip(path: Path, summary: IngestSummary, err: IngestError) -> None:
        """A file that fails before it has a catalog record (a name the catalog cannot store, a file
        that vanished): reported in the summary only; the next run tries it again."""
        shown = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
        summary.failed.append({"source": shown, "code": err.code, "reason": str(err)})
        log.warning("%s: %s", shown, err)

    def _plan_one(self, f: Path, collection: str | None, force: bool, summary: IngestSummary, stale_signature: bool,
                  original_names, titles, meta, pending: _Pending | None, roots: Sequence[Path] = ()) -> _Work | None:
        """One file's plan: work to do, or None (refused, recorded as failed, or unchanged)."""
        try:
            str(f).encode("utf-8")
        except UnicodeEncodeError:  # a Latin-1 name from an old share: the catalog stores text, not bytes
            self._skip(f, summary, IngestError("bad_name", "Dateiname ist kein gültiges UTF-8 / file name is not valid UTF-8"))
            return None
        doc_id = doc_id_for(f, self.storage)
        existing = self.kb.catalog.get(doc_id)
        if existing is None and self.storage is not None:
            # catalogued before ids were relative to the storage folder: it keeps its old id
            existing = self.kb.catalog.get_by_path(str(f.resolve()))
            if existing is not None:
                doc_id = existing.doc_id
        coll = collection or (existing.collection if existing else self.default_collection)
        under = _listed_in(f, roots)
        size, sha = listed_size_and_sha(f, under, self.limits.max_bytes)
        orig = (original_names or {}).get(f, f.name)
        doc_meta = (meta or {}).get(f)
        # a re-index without metadata keeps the stored one, and with it a title the importer set
        kept_meta = doc_meta if doc_meta is not None else (existing.meta or None) if existing else None
        title = (titles or {}).get(f) or (kept_meta or {}).get("title") or None
        if size > self.limits.max_bytes:
            # don't even hash a file we will refuse
            self._fail(f, doc_id, "", size, coll, orig, IngestError("too_large", f"{size} > {self.limits.max_bytes} Bytes"),
                       summary, doc_meta, pending=pending)
            return None
        retitled = title is not None and existing is not None and existing.title != title
        # "needs_ocr" is retried: a scan indexed before OCR was installed gets read now
        if (existing and existing.sha256 == sha and not force and not stale_signature
                and existing.status not in ("pending", "needs_ocr") and not retitled):
            if collection and existing.collection != collection:
                self.kb.move_document(doc_id, collection)
            if doc_meta is not None and existing.meta != doc_meta:
                self.kb.catalog.set_document_meta(doc_id, doc_meta)
            summary.unchanged += 1
            return None
        return _Work(f, doc_id, sha, size, existing, coll, orig, title, kept_meta, under)

    def _fail(self, path: Path, doc_id: str, sha: str, size: int, coll: str, orig: str, err: IngestError,
              summary: IngestSummary, meta: dict | None = None, title: str | None = None,
              pending: _Pending | None = None) -> None:
        rec = DocumentRecord(doc_id=doc_id, source=str(path), path=str(path.resolve()), collection=coll,
                             status=err.status, original_name=orig, sha256=sha, size=size,
                             error=str(err), indexed_at=time.time(), title=title or "", meta=dict(meta or {}),
                             storage_path=storage_path_of(path, self.storage))
        if pending is not None:
            pending.failures.append(rec)
        else:
            self.kb.catalog.record_failure(rec)
        summary.failed.append({"source": str(path), "code": err.code, "reason": str(err)})
        log.warning("%s: %s", path, err)

    # -- loading (producer thread) -----------------------------------------
    def _read(self, w: _Work, progress: Progress | None, done: Callable[[], int], total: int):
        """The loader on a private copy of the planned bytes (ingest.safe_files), with OCR page
        progress shown as "name: Texterkennung Seite 3/40"."""
        # named like the loader's scratch, so a process that dies here leaves nothing the next sweep keeps
        folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-read-"))
        try:
            try:
                copy = private_copy(w.path, w.under, w.sha, folder)
            except NotRegularFile as exc:
                raise IngestError("unsupported", exc.strerror or str(exc)) from None
            except ChangedWhileReading as exc:
                raise IngestError("corrupt", exc.strerror or str(exc)) from None
            except OSError as exc:
                raise IngestError("corrupt", f"Datei nicht lesbar: {os_error_de(exc)}") from None
            if progress is None or not getattr(self.loader, "accepts_progress", False):
                return self.loader(copy)

            def pages(d: int, t: int) -> None:
                progress(done(), total, f"{w.path.name}: Texterkennung Seite {d}/{t}")

            return self.loader(copy, progress=pages)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _load(self, w: _Work, progress: Progress | None = None, done: Callable[[], int] = lambda: 0,
              total: int = 0, fallback: Fallback | None = None) -> _Loaded:
        loaded = self._load_one(w, progress, done, total)
        if loaded.chunks is None and fallback is not None:
            sub = fallback(w.path)
            if sub is not None:
                path, meta = sub
                doc_id = doc_id_for(path, self.storage)
                try:
                    size, sha = listed_size_and_sha(path, None, self.limits.max_bytes)
                except OSError as exc:  # the importer's own file, gone: the original's failure stands
                    log.warning("stand-in %s not readable: %s", path, exc)
                    return loaded
                stand_in = _Work(path, doc_id, sha, size, self.kb.catalog.get(doc_id),
                                 w.collection, w.original_name, w.title, meta)
                alt = self._load_one(stand_in, progress, done, total)
                if alt.chunks is not None:
                    alt.replaces = w
                    return alt
        return loaded

    def _load_one(self, w: _Work, progress: Progress | None = None, done: Callable[[], int] = lambda: 0,
                  total: int = 0) -> _Loaded:
        rec = DocumentRecord(doc_id=w.doc_id, source=str(w.path), path=str(w.path.resolve()), collection=w.collection,
                             storage_path=storage_path_of(w.path, self.storage),
                             status="indexed", original_name=w.original_name, sha256=w.sha, size=w.size,
                             classification=w.existing.classification if w.existing else None,
                             meta=dict(w.meta or {}))
        try:
            doc = self._read(w, progress, done, total)
            if w.title:  # chunks carry the title into the indexes and citations; people read it too
                doc = replace(doc, title=w.title, display_title="")
            chunks = make_chunks(doc, doc_id=w.doc_id, source=str(w.path), collection=w.collection,
                                 version=w.sha, params=self.chunk_params)
            if not chunks:
                raise IngestError("empty", "kein Text gefunden / no text found")
            if not w.title and document_splits(doc.format, [c.text for c in chunks]):
                # people read the words its font's ligatures broke apart joined, decided on the
                # passages as the chain and the text view decide (corpus.ligatures)
                shown = close_gaps(doc.display_title or doc.title)
                doc = replace(doc, display_title=shown if shown != doc.title else "")
        except IngestError as err:
            return _Loaded(w, rec, None, err)
        except Exception as exc:  # a loader bug must not stop the batch
            log.exception("unexpected error loading %s", w.path)
            return _Loaded(w, rec, None, IngestError("corrupt", f"{type(exc).__name__}: {exc}"))
        rec.format, rec.title, rec.pages, rec.page_kind = doc.format, doc.title, doc.page_count, doc.page_kind
        rec.display_title = doc.display_title
        rec.ocr_pages = dict(doc.ocr_pages)
        return _Loaded(w, rec, chunks)

    # -- the run -----------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[Path],
        *,
        collection: str | None = None,
        force: bool = False,
        prune_under: Sequence[Path] = (),
        progress: Progress | None = None,
        original_names: dict[Path, str] | None = None,
        titles: dict[Path, str] | None = None,
        meta: dict[Path, dict] | None = None,
        atomic: bool = False,
        fallback: Fallback | None = None,
        drop: Sequence[str] = (),
        catalogued: bool = False,
    ) -> IngestSummary:
        """Index ``paths`` (files or folders). ``prune_under``: also remove documents whose
        files under these folders are gone (``kiportal sync``). ``titles`` and ``meta`` (keyed by
        the given file paths) replace a file's own title and set the metadata stored with the
        version: importers such as OParl cite by Drucksache, not by the PDF's title; a changed
        title re-indexes (it is part of what is embedded), changed metadata alone does not.

        ``atomic``: every new version, failure and stand-in of this call becomes visible in one commit
        at the end (nothing of it if the process dies before); the vectors wait in memory until then,
        so it is for small groups of files (an OParl batch), not a folder of thousands. A file whose
        content is unchanged but whose collection or metadata changed is updated at once, as always. ``fallback``: for a file that cannot
        be read, a stand-in to index instead under its own id (see :data:`Fallback`); the unreadable
        file's document is then removed (in the same commit when atomic), and
        ``summary.substituted`` maps the file to its stand-in. ``drop``: documents to remove (in the
        same commit when atomic; unknown ids are ignored), counted in ``summary.removed``.
        ``catalogued``: the files are named by the paths the catalog keeps (resolved when they were
        read), as a re-index names them: no symlink on the whole path is followed (ingest.safe_files;
        files of a named folder are opened from that folder, files of the storage folder from it)."""
        start = time.perf_counter()
        summary = IngestSummary()
        pending = _Pending() if atomic else None
        with self.kb.writer_lock():  # the installation's writer lock (file or database lock)
            files = discover(paths)
            if prune_under:
                summary.removed = self._prune(prune_under, {str(f.resolve()) for f in files})
            for doc_id in drop:
                if self.kb.catalog.get(doc_id) is None:
                    continue
                summary.removed += 1
                if pending is not None:
                    pending.drop.append(doc_id)
                else:
                    self.kb.delete_document(doc_id)
            roots = [Path(p) for p in paths if Path(p).is_dir()] + ([self.storage] if self.storage else [])
            if catalogued:  # resolved when they were indexed: a symlink anywhere on them now is a swap
                roots.append(Path("/"))
            work = self._plan(files, collection, force, summary, original_names, titles, meta, pending, roots)
            if work:
                self._run(work, summary, progress, pending, fallback)
            if pending is not None and (pending.versions or pending.failures or pending.drop):
                written = {rec.doc_id for rec, _, _ in pending.versions}  # a stand-in may reuse a dropped file's place
                self.kb.store_versions(pending.versions, failures=pending.failures,
                                       drop=[d for d in dict.fromkeys(pending.drop) if d not in written])
            summary.failed.sort(key=lambda f: f["source"])
            self.kb.catalog.set_meta("index_signature", self.signature)
            self.kb.sweep_orphans()
            self.kb.refresh_keyword_index()
        summary.seconds = time.perf_counter() - start
        return summary

    def _prune(self, roots: Sequence[Path], present: set[str]) -> int:
        removed = 0
        resolved = [str(Path(r).resolve()) + os.sep for r in roots]
        for rec in self.kb.catalog.documents():
            if any(rec.path.startswith(r) for r in resolved) and rec.path not in present:
                self.kb.delete_document(rec.doc_id)
                removed += 1
        return removed

    def _run(self, work: list[_Work], summary: IngestSummary, progress: Progress | None,
             pending: _Pending | None = None, fallback: Fallback | None = None) -> None:
        stop = threading.Event()
        ready: ReadAhead[_Loaded] = ReadAhead(READ_AHEAD_CHUNKS, lambda b: max(1, len(b.chunks or ())), stop)

        finished_files = [0]  # what the progress display shows as done; OCR page progress reuses it

        def produce() -> None:
            try:
                for w in work:
                    if stop.is_set() or not ready.put(self._load(w, progress, lambda: finished_files[0], len(work),
                                                                 fallback)):
                        return
            finally:
                ready.put(None)

        producer = threading.Thread(target=produce, name="ingest-loader", daemon=True)
        producer.start()
        done = 0
        loaded: list[_Loaded] = []
        finished = False
        try:
            while not finished:
                item = ready.get()
                if item is None:
                    finished = True
                else:
                    loaded.append(item)
                # embed when enough chunks are waiting or nothing more is ready right now: the
                # embedder is never idle while there is work, and its calls grow while the reader
                # is ahead (it reads on during each call)
                waiting = sum(len(p.chunks or ()) for p in loaded)
                if loaded and (finished or waiting >= FLUSH_CHUNKS or ready.empty()):
                    self._flush(loaded, summary, pending)
                    done += len(loaded)
                    finished_files[0] = done
                    if progress:
                        progress(done, len(work), loaded[-1].work.path.name)
                    loaded = []
        finally:
            stop.set()
            producer.join(timeout=5)

    def _flush(self, batch: list[_Loaded], summary: IngestSummary, pending: _Pending | None = None) -> None:
        ok = [b for b in batch if b.chunks]
        texts = [index_text(c) for b in ok for c in b.chunks]
        t0 = time.perf_counter()
        vectors = self.kb.embedder.embed_passages(texts, batch_size=self.batch_size) if texts else []
        summary.embed_seconds += time.perf_counter() - t0
        offset = 0
        for b in batch:
            w = b.work
            if b.chunks is None:
                self._fail(w.path, w.doc_id, w.sha, w.size, w.collection, w.original_name, b.error, summary,
                           w.meta, w.title, pending)
                continue
            n = len(b.chunks)
            b.record.indexed_at = time.time()
            gone = [b.replaces.existing.doc_id] if b.replaces and b.replaces.existing else []
            if b.replaces:
                summary.substituted[str(b.replaces.path)] = str(w.path)
                summary.removed += len(gone)
            if pending is not None:
                pending.versions.append((b.record, b.chunks, vectors[offset : offset + n]))
                pending.drop += gone
            else:
                self.kb.store_versions([(b.record, b.chunks, vectors[offset : offset + n])], drop=gone)
            offset += n
            summary.chunks += n
            summary.pages += b.record.pages or 0
            if w.existing and w.existing.chunk_count:
                summary.updated += 1
            else:
                summary.added += 1

    # -- single operations used by admin tools ------------------------------
    def reindex(self, doc_ids: Sequence[str], progress: Progress | None = None) -> IngestSummary:
        """Re-read the given documents from their files, even if unchanged."""
        paths = []
        for doc_id in doc_ids:
            rec = self.kb.catalog.get(doc_id)
            if rec is None:
                raise KeyError(doc_id)
            paths.append(rec.file(self.storage))
        return (self.ingest([p for p in paths if p.exists()], force=True, progress=progress, catalogued=True)
                if paths else IngestSummary())

    def delete(self, doc_id: str) -> int:
        with self.kb.writer_lock():
            n = self.kb.delete_document(doc_id)
            self.kb.refresh_keyword_index()
        return n

