"""Admin operations as plain functions, shared by the portal's admin area and the CLI.

One implementation for both front ends means one place that validates input, takes
the writer lock, writes the audit entry and explains failures in German. Nothing here
knows about Gradio or click; callers pass the acting user's name.

Safety rules every operation follows:

* index changes go through :class:`ingest.pipeline.Ingestor` / :class:`corpus.knowledge_base.KnowledgeBase`,
  whose write order keeps queries answering from exactly one version of each document;
* catalog-only changes (rename, move) take the same writer lock as ingestion, but wait
  only a few seconds for it, so a click never hangs behind an hour-long re-index;
* uploads are checked completely before anything is stored (see :mod:`assistant.uploads`).
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator, Sequence

from assistant.wording import counted
from assistant.admin_rules import (  # noqa: F401 - the admin's errors and name rules, imported from here too
    BUSY,
    AdminError,
    Busy,
    refused_sync_folder,
    validate_classification,
    validate_collection_name,
)
from assistant.audit import AuditLog
from assistant.jobs import ALL, JobContext, JobError, JobRunner
from assistant.uploads import Staged, UploadRejected, UploadStore
from corpus.catalog import DocumentRecord
from corpus.db import LockTimeout

log = logging.getLogger(__name__)

STATUS_LABELS = {"indexed": "indexiert", "failed": "fehlgeschlagen", "needs_ocr": "OCR nötig", "pending": "wartet"}
REINDEX_SCOPES = ("doc", "collection", "changed", "all")

Progress = Callable[[int, int, str], None]


# -- helpers -------------------------------------------------------------------


@contextmanager
def busy_after(lock, timeout: float) -> Iterator[None]:
    """Hold ``lock`` (e.g. ``App.writer_lock``), but give up after ``timeout`` seconds with
    :class:`Busy`, so a click never hangs behind an hour-long re-index."""
    try:
        with lock(timeout):
            yield
    except LockTimeout:
        raise Busy(BUSY) from None


@contextmanager
def writer_lock_wait(home: Path, timeout: float = 10.0) -> Iterator[None]:
    """The embedded default's writer lock (the data directory's ``ingest.lock``), but give up after
    ``timeout`` seconds with :class:`Busy`. The lock excludes other processes and other threads."""
    from ingest.pipeline import writer_lock

    try:
        with writer_lock(home, timeout):
            yield
    except LockTimeout:
        raise Busy(BUSY) from None


def _du(path: Path) -> int:
    """Bytes used below ``path`` (a top-level symlink, e.g. shared models, is followed once)."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path.resolve()):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def disk_usage(settings) -> dict[str, int]:
    """Disk use of the data directory's parts, in bytes (what the health page shows)."""
    home = settings.home
    cat = settings.catalog_path
    parts = {
        "Katalog": sum(_du(cat.with_name(cat.name + s)) for s in ("", "-wal", "-shm")),
        "Chroma (Vektoren)": _du(settings.chroma_path),
        "BM25 (Stichwörter)": sum(_du(settings.bm25_path.with_name(settings.bm25_path.name + s)) for s in ("", ".old", ".tmp")),
        "Uploads": _du(settings.uploads_dir),
        "Modelle": sum(_du(p) for p in settings.models_dir.iterdir()) if settings.models_dir.exists() else 0,
    }
    if settings.app_db.startswith("sqlite:///"):
        db = Path(settings.app_db.removeprefix("sqlite:///"))
        parts["App-Datenbank"] = sum(_du(db.with_name(db.name + s)) for s in ("", "-wal", "-shm"))
    try:
        parts["frei auf dem Datenträger"] = shutil.disk_usage(home).free
    except OSError:
        pass
    return parts


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def fmt_time(ts: float | None) -> str:
    return time.strftime("%d.%m.%Y %H:%M", time.localtime(ts)) if ts else ""


# -- results ----------------------------------------------------------------
@dataclass
class UploadResult:
    accepted: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "rejected": self.rejected, "summary": self.summary}

    def message(self) -> str:
        lines = []
        if self.accepted:
            lines.append(f"{counted(len(self.accepted), 'Datei', 'Dateien')} übernommen und indexiert: "
                         + ", ".join(a["name"] for a in self.accepted) + ".")
        lines += [r["reason"] for r in self.rejected]
        return "\n".join(lines) or "Keine Datei ausgewählt."


# -- the operations -----------------------------------------------------------
class Admin:
    """Admin operations on one installation. Thread-safe; cheap to build (nothing loads)."""

    def __init__(self, app, audit: AuditLog, jobs: JobRunner | None = None, *, lock_timeout: float = 10.0) -> None:
        self.app = app
        self.audit = audit
        self.jobs = jobs
        self.lock_timeout = lock_timeout
        self.uploads = UploadStore(app.settings.uploads_dir, app.ingestor.limits, loader=app.ingestor.loader)

    @property
    def catalog(self):
        return self.app.catalog

    @cached_property
    def oparl(self):
        """OParl sources and syncs (see :mod:`assistant.oparl_admin`)."""
        from assistant.oparl_admin import OParlAdmin

        return OParlAdmin(self)

    @property
    def settings(self):
        return self.app.settings

    # -- documents ---------------------------------------------------------
    def documents(self, text: str = "", collection: str | None = None, status: str | None = None) -> list[dict]:
        """Document rows for the admin table; ``text`` matches title, file name and id."""
        needle = (text or "").strip().lower()
        rows = []
        for rec in self.catalog.documents(collection=collection or None, status=status or None):
            file = rec.original_name or Path(rec.source).name
            if needle and not any(needle in s.lower() for s in (rec.title, rec.display_title, file, rec.doc_id, rec.source)):
                continue
            rows.append({
                "doc_id": rec.doc_id, "title": rec.shown_title, "file": file, "format": rec.format,
                "pages": rec.pages, "chunks": rec.chunk_count, "collection": rec.collection,
                "status": rec.status, "error": rec.error, "indexed_at": rec.indexed_at,
                "uploaded": self.uploads.contains(rec.file(self.settings.uploads_dir)), "link": f"/doc/{rec.doc_id}",
            })
        return rows

    def ocr_review(self) -> list[dict]:
        """Pages read by text recognition below ``ocr.min_confidence``, per document: for a person to check."""
        threshold = self.settings.ocr.min_confidence
        rows = []
        for rec in self.catalog.documents(status="indexed"):
            low = rec.low_confidence_pages(threshold)
            if low:
                rows.append({"doc_id": rec.doc_id, "title": rec.shown_title,
                             "file": rec.original_name or Path(rec.source).name,
                             "pages": [(p, rec.ocr_pages[p]) for p in low], "ocr_pages": len(rec.ocr_pages)})
        return rows

    def document(self, doc_id: str) -> DocumentRecord:
        rec = self.catalog.get(doc_id)
        if rec is None:
            raise AdminError(f"Dokument {doc_id} gibt es nicht (mehr).")
        return rec

    def delete_document(self, doc_id: str, actor: str) -> dict:
        """Remove a document from every index; a stored upload file is deleted too (after the
        index change, so a crash in between leaves an orphan file that start-up recovery removes)."""
        rec = self.document(doc_id)
        self._refuse_if_job_running(rec.collection)
        try:
            n = self.app.ingestor.delete(doc_id)
        except KeyError:
            raise AdminError(f"Dokument {doc_id} gibt es nicht (mehr).") from None
        removed_file = self.uploads.remove(rec.file(self.settings.uploads_dir))
        self.audit.record("delete", actor, rec.original_name or rec.source,
                          {"doc_id": doc_id, "collection": rec.collection, "chunks": n, "file_deleted": removed_file})
        return {"doc_id": doc_id, "chunks": n, "file_deleted": removed_file}

    # -- uploads -----------------------------------------------------------
    def stage_uploads(self, files: Sequence[tuple[Path, str]]) -> tuple[list[Staged], list[dict]]:
        """Copy incoming files into staging; oversize and empty files are refused right here."""
        staged, rejected = [], []
        for src, name in files:
            try:
                staged.append(self.uploads.stage(Path(src), name))
            except UploadRejected as exc:
                rejected.append({"name": name, "code": exc.code, "reason": str(exc)})
        return staged, rejected

    def upload(self, files: Sequence[tuple[Path, str]], collection: str, actor: str, *,
               replace_doc_id: str | None = None, progress: Callable[[float, str], None] | None = None) -> UploadResult:
        """Check, store and index uploaded files (``(path, original name)`` pairs)."""
        staged, rejected = self.stage_uploads(files)
        for r in rejected:
            self.audit.record("upload.rejected", actor, r["name"], {"code": r["code"], "collection": collection})
        return self.upload_staged(staged, collection, actor, replace_doc_id=replace_doc_id,
                                  progress=progress, pre_rejected=rejected)

    def upload_staged(self, staged: Sequence[Staged], collection: str, actor: str, *,
                      replace_doc_id: str | None = None, progress: Callable[[float, str], None] | None = None,
                      pre_rejected: Sequence[dict] = ()) -> UploadResult:
        result = UploadResult(rejected=list(pre_rejected))
        report = progress or (lambda f, m: None)
        try:
            replace = None
            if replace_doc_id:
                replace = self.document(replace_doc_id)
                collection = replace.collection
                if len(staged) + len(pre_rejected) != 1:
                    raise AdminError("Zum Ersetzen genau eine Datei hochladen.")
                if not self.uploads.contains(replace.file(self.settings.uploads_dir)):
                    raise AdminError("Nur hochgeladene Dokumente können hier ersetzt werden. Dokumente aus einem "
                                     "Serverordner bitte im Ordner ersetzen und den Ordner abgleichen.")
            else:
                collection = validate_collection_name(collection)
                if not any(c["name"] == collection for c in self.catalog.collections()):
                    raise AdminError(f"Die Sammlung „{collection}“ gibt es nicht. Bitte zuerst anlegen.")
        except BaseException:
            for s in staged:
                self.uploads.discard(s)
            raise

        checked = []
        for n, s in enumerate(staged):
            report(0.4 * n / max(1, len(staged)), f"prüfe {s.original_name}")
            try:
                c = self.uploads.check(s)
                if replace is not None and replace.format and c.format != replace.format:
                    self.uploads.discard(s)
                    raise UploadRejected("mislabelled", f"„{s.original_name}“ ist {c.format.upper()}, das Dokument "
                                         f"aber {replace.format.upper()}. Bitte als neues Dokument hochladen.")
                checked.append(c)
            except UploadRejected as exc:
                result.rejected.append({"name": s.original_name, "code": exc.code, "reason": str(exc)})
        for r in result.rejected[len(pre_rejected):]:  # the caller logged the pre-rejected ones
            self.audit.record("upload.rejected", actor, r["name"], {"code": r["code"], "collection": collection})
        if not checked:
            result.summary = {"added": 0}
            return result

        # place under the safe names, then index them all in one run
        placed: dict[Path, str] = {}
        backup = None
        try:
            if replace is not None:
                target = replace.file(self.settings.uploads_dir)
                backup = self.uploads.replace(checked[0], target)
                placed[target] = checked[0].staged.original_name
            else:
                for c in checked:
                    placed[self.uploads.place(c, collection)] = c.staged.original_name
        except BaseException:
            for c in checked:
                self.uploads.discard(c.staged)
            raise
        report(0.4, "indexiere")

        def ingest_cb(done: int, total: int, name: str) -> None:
            report(0.4 + 0.6 * done / max(1, total), f"indexiert {done}/{total}: {name}")

        try:
            summary = self.app.ingestor.ingest(list(placed), collection=collection, force=replace is not None,
                                               progress=ingest_cb, original_names=placed)
        except BaseException:
            if replace is not None:
                self.uploads.restore(replace.file(self.settings.uploads_dir), backup)
            else:
                for p in placed:
                    self._forget_upload(p)
            raise
        failed = {str(Path(f["source"]).resolve()): f for f in summary.failed}
        for path, name in placed.items():
            key = str(path.resolve())
            if key in failed:  # passed the check but not ingestion (e.g. no chunkable text)
                if replace is not None:
                    self.uploads.restore(path, backup)
                else:
                    self._forget_upload(path)
                reason = f"„{name}“ wurde nicht übernommen: {failed[key]['reason']}"
                result.rejected.append({"name": name, "code": failed[key]["code"], "reason": reason})
                self.audit.record("upload.rejected", actor, name, {"code": failed[key]["code"], "collection": collection})
                continue
            rec = self.catalog.get_by_path(key)
            entry = {"name": name, "stored": str(path), "doc_id": rec.doc_id if rec else "",
                     "chunks": rec.chunk_count if rec else 0, "pages": rec.pages if rec else None}
            result.accepted.append(entry)
            self.audit.record("replace" if replace is not None else "upload", actor, name,
                              {"doc_id": entry["doc_id"], "collection": collection, "stored": path.name,
                               "chunks": entry["chunks"]})
        if replace is not None and not result.rejected:
            self.uploads.drop_backup(backup)
        result.summary = summary.as_dict()
        report(1.0, "fertig")
        return result

    def _forget_upload(self, path: Path) -> None:
        """Undo a placed upload whose indexing failed: no catalog row, no file."""
        rec = self.catalog.get_by_path(str(path.resolve()))
        if rec is not None:
            try:
                self.app.ingestor.delete(rec.doc_id)
            except KeyError:
                pass
        path.unlink(missing_ok=True)

    # -- re-indexing and sync ---------------------------------------------
    def reindex_targets(self, scope: str, target: str | None = None) -> tuple[list[DocumentRecord], str]:
        """Documents a re-index touches, and the job's collection key."""
        if scope not in REINDEX_SCOPES:
            raise AdminError(f"Unbekannter Umfang „{scope}“ ({', '.join(REINDEX_SCOPES)}).")
        if scope == "doc":
            rec = self.document(target or "")
            return [rec], rec.collection
        if scope == "collection":
            if not target:
                raise AdminError("Bitte eine Sammlung angeben.")
            return self.catalog.documents(collection=target), target
        return self.catalog.documents(), ALL

    def reindex(self, scope: str, target: str | None, actor: str, progress: Progress | None = None) -> dict:
        """Re-read documents from their files. ``changed`` only picks up files whose content
        changed (cheap); the others re-embed even unchanged files (after a model change).
        The original upload names are passed through, so they survive the re-index."""
        recs, _ = self.reindex_targets(scope, target)
        storage = self.settings.uploads_dir
        present = [r for r in recs if r.file(storage).is_file()]
        missing = [r.original_name or r.source for r in recs if not r.file(storage).is_file()]
        names = {r.file(storage): r.original_name or r.file(storage).name for r in present}
        if present:
            summary = self.app.ingestor.ingest(list(names), force=scope != "changed", progress=progress,
                                               original_names=names, catalogued=True).as_dict()
        else:
            summary = {"added": 0, "updated": 0, "unchanged": 0, "removed": 0, "failed": [], "chunks": 0}
        summary["missing_files"] = missing
        self.audit.record("reindex", actor, target or scope,
                          {"scope": scope, "documents": len(present), "updated": summary.get("updated", 0),
                           "failed": len(summary.get("failed", [])), "missing": len(missing)})
        return summary

    def check_sync_folder(self, folder: str) -> Path:
        """The admin types a server path: it must be an existing absolute folder apart from the
        portal's own folders (:func:`assistant.admin_rules.refused_sync_folder`)."""
        raw = (folder or "").strip()
        if not raw or not os.path.isabs(raw):
            raise AdminError("Bitte einen absoluten Ordnerpfad auf dem Server angeben (z. B. /srv/dokumente).")
        path = Path(raw).resolve()
        if not path.is_dir():
            raise AdminError(f"Ordner nicht gefunden: {path}")
        protected = {what: folder.resolve() for what, folder in self.app.protected_folders().items()}
        why = refused_sync_folder(path, protected)
        if why is not None:
            raise AdminError(f"Dieser Ordner kann nicht abgeglichen werden ({why}).")
        return path

    def sync(self, folder: str, collection: str | None, actor: str, progress: Progress | None = None) -> dict:
        path = self.check_sync_folder(folder)
        coll = validate_collection_name(collection) if collection else None
        summary = self.app.ingestor.ingest([path], collection=coll, prune_under=[path], progress=progress).as_dict()
        self.audit.record("sync", actor, str(path),
                          {"collection": coll, **{k: summary[k] for k in ("added", "updated", "unchanged", "removed")},
                           "failed": len(summary["failed"])})
        return summary

    # -- collections ---------------------------------------------------------
    def collections(self) -> list[dict]:
        return self.catalog.collections()

    def _collection(self, name: str) -> dict | None:
        return next((c for c in self.catalog.collections() if c["name"] == name), None)

    def _refuse_if_job_running(self, *collections: str) -> None:
        if self.jobs is None:
            return
        from assistant.jobs import conflicts

        for job in self.jobs.active():
            if any(conflicts(job["collection"], c) for c in collections):
                raise Busy(f"Für diese Sammlung läuft gerade ein Auftrag ({job['kind']}). Bitte warten, bis er fertig ist.")

    def create_collection(self, name: str, classification: str, actor: str,
                          readers: Sequence[str] | None = None) -> dict:
        """A new collection; ``readers`` (groups or ``alle``) default to ``access.new_collection_readers``."""
        from assistant.access import AccessError, check_readers

        name = validate_collection_name(name)
        classification = validate_classification(classification)
        if self._collection(name):
            raise AdminError(f"Die Sammlung „{name}“ gibt es schon.")
        try:
            readers = check_readers(self.catalog.new_collection_readers if readers is None else readers,
                                    self.app.departments.known_groups)
        except AccessError as exc:
            raise AdminError(str(exc)) from None
        self.catalog.ensure_collection(name, classification, readers)
        self.audit.record("collection.create", actor, name, {"classification": classification, "readers": readers})
        return self._collection(name)

    def classify_collection(self, name: str, classification: str, actor: str) -> None:
        classification = validate_classification(classification)
        old = self._collection(name)
        if old is None:
            raise AdminError(f"Die Sammlung „{name}“ gibt es nicht.")
        self.catalog.set_collection_classification(name, classification)
        self.audit.record("collection.classify", actor, name, {"from": old["classification"], "to": classification})

    def rename_collection(self, old: str, new: str, actor: str) -> None:
        new = validate_collection_name(new)
        if self._collection(old) is None:
            raise AdminError(f"Die Sammlung „{old}“ gibt es nicht.")
        if self._collection(new):
            raise AdminError(f"Die Sammlung „{new}“ gibt es schon.")
        self._refuse_if_job_running(old, new)
        with busy_after(self.app.writer_lock, self.lock_timeout):
            self.app.kb.rename_collection(old, new)
            self.app.kb.refresh_keyword_index()
        self.audit.record("collection.rename", actor, old, {"to": new})

    def delete_collection(self, name: str, actor: str) -> None:
        c = self._collection(name)
        if c is None:
            raise AdminError(f"Die Sammlung „{name}“ gibt es nicht.")
        if c["documents"]:
            raise AdminError(f"Die Sammlung „{name}“ enthält noch {c['documents']} Dokument(e). "
                             "Bitte zuerst verschieben oder löschen.")
        self._refuse_if_job_running(name)
        try:
            self.catalog.delete_collection(name)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        folder = self.uploads.collection_dir(name)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        self.audit.record("collection.delete", actor, name, {})

    def move_document(self, doc_id: str, collection: str, actor: str) -> None:
        """Move a document to another (existing) collection. The stored file stays where it is:
        its path is the document's identity."""
        rec = self.document(doc_id)
        if self._collection(collection) is None:
            raise AdminError(f"Die Sammlung „{collection}“ gibt es nicht. Bitte zuerst anlegen.")
        if rec.collection == collection:
            return
        self._refuse_if_job_running(rec.collection, collection)
        with busy_after(self.app.writer_lock, self.lock_timeout):
            self.app.kb.move_document(doc_id, collection)
            self.app.kb.refresh_keyword_index()
        self.audit.record("collection.move", actor, rec.original_name or rec.source,
                          {"doc_id": doc_id, "from": rec.collection, "to": collection})

    # -- health ----------------------------------------------------------------
    def health(self, repair: bool = False, actor: str = "") -> dict:
        """Counts per collection, the consistency check (optionally repairing) and disk use."""
        if repair:
            with busy_after(self.app.writer_lock, self.lock_timeout):
                report = self.app.kb.check(repair=True)
                fixed = self._resync_collections()
            if fixed:
                report.repaired.append(f"Sammlungszuordnung von {fixed} Dokument(en) im Vektorindex abgeglichen")
            self.audit.record("repair", actor, "index", report.as_dict())
        else:
            report = self.app.kb.check(repair=False)
        stats = self.catalog.stats()
        return {"report": report.as_dict(), "collections": self.catalog.collections(),
                "by_status": stats.by_status, "documents": stats.documents, "chunks": stats.chunks,
                "disk": disk_usage(self.settings)}

    def _resync_collections(self) -> int:
        """Re-apply each document's collection to its vectors' metadata. A crash between the
        catalog update and the vector update of a move/rename leaves them apart, and the
        dense search filters by the vector metadata; the consistency check cannot see it."""
        n = 0
        for rec in self.catalog.documents():
            ids = [c.chunk_id for c in self.catalog.iter_chunks(rec.doc_id)]
            if ids:
                self.app.vectors.set_collection(ids, rec.collection)
                n += 1
        return n

    # -- background jobs -------------------------------------------------------
    def start_jobs(self, *, workers: int = 2) -> None:
        """Run uploads, re-indexing and folder syncs as background jobs (the portal; once per App,
        see :meth:`assistant.wiring.App.start_jobs`).

        Starting means: interrupted jobs are marked failed (embedded; in cluster mode only the
        jobs of dead workers are retried, by the workers), uploads recovered, the audit
        retention purge runs now and then daily. In cluster mode ``jobs.worker_concurrency``
        replaces ``workers`` and ``jobs.portal_worker`` decides whether this process works jobs."""
        runner = self._new_runner(workers)
        self.register_jobs(runner)
        runner.start()
        self.recover()
        days = self.settings.privacy.retention_days
        try:
            self.audit.purge(days)
        except Exception:  # a purge problem must not keep the portal from starting
            log.exception("audit purge at start failed")
        runner.every(86400, lambda: self.audit.purge(days), "audit-purge")
        from assistant.oparl_admin import schedule as schedule_oparl

        schedule_oparl(self, runner)

    def _new_runner(self, workers: int, *, run_jobs: bool | None = None, role: str = "portal",
                    concurrency: int | None = None) -> JobRunner:
        """In-process threads (embedded) or the procrastinate queue on the app DB (cluster mode)."""
        s = self.settings
        if not s.cluster:
            return JobRunner(self.audit.db, workers=workers)
        from assistant.job_queue import ClusterJobRunner

        return ClusterJobRunner(self.audit.db, workers=concurrency or s.jobs.worker_concurrency,
                                heartbeat=s.jobs.heartbeat_seconds, stalled_after=s.jobs.stalled_after_seconds,
                                run_jobs=s.jobs.portal_worker if run_jobs is None else run_jobs, role=role)

    def run_worker(self, *, concurrency: int | None = None) -> None:
        """``kiportal worker``: work the cluster's jobs (all kinds, the portal's handlers) until
        SIGINT/SIGTERM; running jobs finish first. Needs cluster mode (the app DB on PostgreSQL)."""
        if not self.settings.cluster:
            from assistant.cluster import WORKER_NEEDS_CLUSTER

            raise AdminError(WORKER_NEEDS_CLUSTER)
        runner = self._new_runner(0, run_jobs=False, role="worker", concurrency=concurrency)
        self.register_jobs(runner)
        runner.start()
        log.info("worker %s: waiting for jobs", runner.owner)
        try:
            runner.serve()
        finally:
            runner.shutdown(wait=False)

    def register_jobs(self, runner: JobRunner) -> None:
        """Job kinds the admin area submits (handlers run on the runner's threads)."""
        self.jobs = runner
        runner.register("upload", self._job_upload)
        runner.register("reindex", self._job_reindex)
        runner.register("sync", self._job_sync)
        from assistant.oparl_admin import register as register_oparl

        register_oparl(self, runner)

    def submit_upload(self, files: Sequence[tuple[Path, str]], collection: str, actor: str,
                      replace_doc_id: str | None = None) -> tuple[str | None, list[dict]]:
        """Stage the files now (fast; oversize/empty refused at once) and check+index them in a
        background job. Returns (job id or None, files refused immediately)."""
        if self.jobs is None:
            raise AdminError("Auftragsverwaltung nicht gestartet.")
        key = self.document(replace_doc_id).collection if replace_doc_id else validate_collection_name(collection)
        staged, rejected = self.stage_uploads(files)
        for r in rejected:
            self.audit.record("upload.rejected", actor, r["name"], {"code": r["code"], "collection": key})
        if not staged:
            return None, rejected
        params = {"files": [{"path": str(s.path), "stored": self._stored_name(s.path), "name": s.original_name,
                             "size": s.size} for s in staged],
                  "collection": key, "replace": replace_doc_id, "rejected": rejected}
        return self.jobs.submit("upload", params, collection=key, actor=actor), rejected

    def _stored_name(self, path: Path) -> str:
        """A staged file's path relative to the upload store: a worker on another machine may
        mount the shared store elsewhere (``storage``), so the job names it relative to it."""
        try:
            return path.resolve().relative_to(self.uploads.root.resolve()).as_posix()
        except ValueError:
            return ""

    def submit_reindex(self, scope: str, target: str | None, actor: str) -> str:
        if self.jobs is None:
            raise AdminError("Auftragsverwaltung nicht gestartet.")
        recs, key = self.reindex_targets(scope, target)
        if scope in ("collection",) and not recs and self._collection(target or "") is None:
            raise AdminError(f"Die Sammlung „{target}“ gibt es nicht.")
        return self.jobs.submit("reindex", {"scope": scope, "target": target}, collection=key, actor=actor)

    def submit_sync(self, folder: str, collection: str | None, actor: str) -> str:
        if self.jobs is None:
            raise AdminError("Auftragsverwaltung nicht gestartet.")
        path = self.check_sync_folder(folder)
        coll = validate_collection_name(collection) if collection else None
        return self.jobs.submit("sync", {"folder": str(path), "collection": coll}, collection=coll or ALL, actor=actor)

    def _job_upload(self, job: JobContext) -> tuple[dict, str]:
        p = job.params
        staged = [Staged(self.uploads.root / f["stored"] if f.get("stored") else Path(f["path"]), f["name"], f["size"])
                  for f in p["files"]]
        try:
            result = self.upload_staged(staged, p["collection"], job.actor, replace_doc_id=p.get("replace"),
                                        progress=lambda f, m: job.progress(f, m), pre_rejected=p.get("rejected", []))
        except AdminError as exc:
            raise JobError(str(exc)) from None
        if not result.accepted:
            raise JobError(result.message())
        return result.as_dict(), result.message()

    def _job_reindex(self, job: JobContext) -> tuple[dict, str]:
        p = job.params
        try:
            s = self.reindex(p["scope"], p.get("target"), job.actor, progress=job.ingest_progress())
        except AdminError as exc:
            raise JobError(str(exc)) from None
        msg = (f"neu indexiert {s.get('added', 0) + s.get('updated', 0)}, unverändert {s.get('unchanged', 0)}, "
               f"fehlgeschlagen {len(s.get('failed', []))}")
        if s.get("missing_files"):
            msg += f", Datei fehlt: {len(s['missing_files'])}"
        return s, msg

    def _job_sync(self, job: JobContext) -> tuple[dict, str]:
        p = job.params
        try:
            s = self.sync(p["folder"], p.get("collection"), job.actor, progress=job.ingest_progress())
        except AdminError as exc:
            raise JobError(str(exc)) from None
        return s, (f"hinzugefügt {s['added']}, aktualisiert {s['updated']}, unverändert {s['unchanged']}, "
                   f"entfernt {s['removed']}, fehlgeschlagen {len(s['failed'])}")

    # -- start-up ----------------------------------------------------------------
    def recover(self) -> dict:
        """Clean up after a crash: staging, half-done replacements, uploads without document."""
        try:
            with busy_after(self.app.writer_lock, 0.5):
                # this machine's path of each file: another replica may mount a shared folder elsewhere
                storage = self.settings.uploads_dir
                known = {str(r.file(storage).resolve()): r.sha256 for r in self.catalog.documents()}
                # in a cluster other replicas upload into the shared folder while this one starts
                return self.uploads.recover(known, min_age_s=86400.0 if self.settings.cluster else 0.0)
        except Busy:
            log.info("upload recovery skipped: another process is writing")
            return {}
