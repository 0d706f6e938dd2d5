"""OParl sources for the admin area and the CLI: configure, sync now, sync on a schedule.

An OParl source is a URL (System or Body), the collection its documents go to, and an
interval in hours (0 = only by hand). Every sync runs as a background job of kind
``oparl`` (one job per collection at a time, see :mod:`assistant.jobs`) and leaves an
audit entry (``oparl.sync``), as do adding and removing a source. The scheduler checks
once a minute which sources are due and submits their jobs; a source whose job is still
queued or running is not submitted twice.
"""
from __future__ import annotations

import logging
import threading
import time
from functools import cached_property

from assistant.appdb import AppDB, new_id, now
from assistant.jobs import JobContext, JobError, JobRunner

log = logging.getLogger(__name__)

_MIGRATIONS = [
    ["CREATE TABLE oparl_sources (id TEXT PRIMARY KEY, url TEXT NOT NULL UNIQUE, collection TEXT NOT NULL, "
     "interval_hours DOUBLE PRECISION NOT NULL DEFAULT 0, created_at DOUBLE PRECISION NOT NULL, "
     "created_by TEXT NOT NULL DEFAULT '', last_job TEXT NOT NULL DEFAULT '', "
     "last_run_at DOUBLE PRECISION, last_status TEXT NOT NULL DEFAULT '', last_message TEXT NOT NULL DEFAULT '')"],
]
MAX_INTERVAL_HOURS = 24 * 31
RUN_STATUS_DE = {"done": "fertig", "with_errors": "mit Fehlern", "failed": "fehlgeschlagen", "": "–"}
MAX_ERROR_CHARS = 300


def is_due(interval_hours: float, last_run_at: float | None, at: float) -> bool:
    """A source with an interval is due when it never ran or its interval has passed; 0 = by hand only."""
    if not interval_hours or interval_hours <= 0:
        return False
    return last_run_at is None or at - last_run_at >= interval_hours * 3600


def missing_source_message(source_id: str | None) -> str:
    """Why no source was found: nothing chosen yet, or an id that is not (or no longer) there."""
    if not (source_id or "").strip():
        return "Bitte zuerst eine OParl-Quelle auswählen."
    return "Diese OParl-Quelle gibt es nicht (mehr)."


def run_status_de(status: str | None) -> str:
    """The stored run status (``done``, ``with_errors``, ``failed``) as German text for staff."""
    return RUN_STATUS_DE.get(status or "", status or "–")


def failure_detail_de(failed: list[dict]) -> str:
    """What went wrong first, to follow "… ; 3 Fehler": "„Drucksache 12“: Zeitüberschreitung" (with "zuerst"
    when there were more), or "" when nothing failed."""
    if not failed:
        return ""
    first = failed[0]
    where = " ".join(str(first.get("label") or first.get("object") or "").split())
    error = " ".join(str(first.get("error") or "unbekannter Fehler").split())
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS - 1] + "…"
    return ("zuerst " if len(failed) > 1 else "") + (f"„{where}“: " if where else "") + error


class OParlAdmin:
    """The OParl part of :class:`assistant.admin.Admin` (same audit log, jobs and errors)."""

    def __init__(self, admin) -> None:
        self.admin = admin
        self._lock = threading.Lock()

    @cached_property
    def db(self) -> AppDB:
        db = self.admin.audit.db
        db.ensure_schema("oparl_sources", _MIGRATIONS)
        return db

    def importer(self):
        return self.admin.app.oparl_importer()

    # -- sources -----------------------------------------------------------------
    def sources(self) -> list[dict]:
        return self.db.query("SELECT * FROM oparl_sources ORDER BY created_at, id")

    def source(self, source_id: str) -> dict:
        row = self.db.one("SELECT * FROM oparl_sources WHERE id=:i", {"i": source_id})
        if row is None:
            from assistant.admin_rules import AdminError

            raise AdminError(missing_source_message(source_id))
        return row

    def add_source(self, url: str, collection: str, interval_hours: float, actor: str) -> dict:
        from assistant.admin_rules import AdminError, validate_collection_name
        from ingest.oparl.client import UnsafeURL, check_url

        url = (url or "").strip()
        try:
            check_url(url, allow_private=True)  # the admin may name an internal server; links from it are checked later
        except UnsafeURL as exc:
            raise AdminError(f"Ungültige OParl-Adresse: {exc}") from None
        collection = validate_collection_name(collection or "ratsinformation")
        try:
            interval = float(interval_hours or 0)
        except (TypeError, ValueError):
            raise AdminError("Intervall bitte in Stunden angeben (0 = nur von Hand).") from None
        if not 0 <= interval <= MAX_INTERVAL_HOURS:
            raise AdminError(f"Intervall: 0 bis {MAX_INTERVAL_HOURS} Stunden (0 = nur von Hand).")
        if self.db.one("SELECT id FROM oparl_sources WHERE url=:u", {"u": url}):
            raise AdminError("Diese OParl-Adresse ist schon eingetragen.")
        row = {"i": new_id(), "u": url, "c": collection, "h": interval, "t": now(), "a": actor}
        self.db.execute("INSERT INTO oparl_sources(id, url, collection, interval_hours, created_at, created_by) "
                        "VALUES (:i, :u, :c, :h, :t, :a)", row)
        self.admin.audit.record("oparl.source.add", actor, url, {"collection": collection, "interval_hours": interval})
        return self.source(row["i"])

    def remove_source(self, source_id: str, actor: str) -> None:
        """Forget a source (its documents stay; delete them with the collection if wanted)."""
        src = self.source(source_id)
        self.db.execute("DELETE FROM oparl_sources WHERE id=:i", {"i": source_id})
        self.admin.audit.record("oparl.source.remove", actor, src["url"], {"collection": src["collection"]})

    # -- syncing -----------------------------------------------------------------
    def sync(self, url: str, collection: str | None, actor: str, progress=None) -> dict:
        """Run one sync now (CLI, and the job handler); audited with its counts."""
        from assistant.admin_rules import AdminError, validate_collection_name
        from ingest.oparl.client import UnsafeURL, check_url

        try:
            check_url((url or "").strip(), allow_private=True)
        except UnsafeURL as exc:
            raise AdminError(f"Ungültige OParl-Adresse: {exc}") from None
        coll = validate_collection_name(collection) if collection else None
        report = self.importer().sync(url.strip(), coll, progress=progress).as_dict()
        self.admin.audit.record("oparl.sync", actor, url, {
            "collection": report["collection"],
            **{k: report[k] for k in ("imported", "unchanged_objects", "deleted_objects", "downloaded",
                                      "text_fallback", "documents_removed", "requests")},
            "failed": len(report["failed"])})
        return report

    def submit_sync(self, source_id: str, actor: str) -> str:
        from assistant.admin_rules import AdminError

        if self.admin.jobs is None:
            raise AdminError("Auftragsverwaltung nicht gestartet.")
        src = self.source(source_id)
        job_id = self.admin.jobs.submit("oparl", {"source": src["id"], "url": src["url"],
                                                  "collection": src["collection"]},
                                        collection=src["collection"], actor=actor)
        self.db.execute("UPDATE oparl_sources SET last_job=:j WHERE id=:i", {"j": job_id, "i": source_id})
        return job_id

    def run_job(self, job: JobContext) -> tuple[dict, str]:
        from assistant.admin_rules import AdminError

        p = job.params
        started = now()
        try:
            report = self.sync(p["url"], p.get("collection"), job.actor,
                               progress=job.ingest_progress(prefix="OParl "))
        except AdminError as exc:
            self._record_run(p.get("source"), started, "failed", str(exc))
            raise JobError(str(exc)) from None
        except Exception as exc:
            self._record_run(p.get("source"), started, "failed", f"{type(exc).__name__}: {exc}")
            raise
        from ingest.oparl.sync import report_message

        msg = report_message(report)
        if report["failed"]:  # the job list and "oparl sources list" say what went wrong, not only how often
            msg = f"{msg} – {failure_detail_de(report['failed'])}"
        self._record_run(p.get("source"), started, "done" if report["ok"] else "with_errors", msg)
        return report, msg

    def _record_run(self, source_id: str | None, at: float, status: str, message: str) -> None:
        if source_id:
            self.db.execute("UPDATE oparl_sources SET last_run_at=:t, last_status=:s, last_message=:m WHERE id=:i",
                            {"t": at, "s": status, "m": message[:2000], "i": source_id})

    def due(self, at: float | None = None) -> list[dict]:
        """Sources whose interval has passed since their last run."""
        at = time.time() if at is None else at
        return [s for s in self.sources() if is_due(s["interval_hours"], s["last_run_at"], at)]

    def submit_due(self, actor: str = "system:oparl") -> list[str]:
        """Submit a job for every due source that has none queued or running."""
        if self.admin.jobs is None:
            return []
        with self._lock, self.admin.jobs.exclusive("oparl-due"):  # replicas must not both submit a source
            active = {j["params"].get("source") for j in self.admin.jobs.active() if j["kind"] == "oparl"}
            return [self.submit_sync(s["id"], actor) for s in self.due() if s["id"] not in active]


def register(admin, runner: JobRunner) -> None:
    runner.register("oparl", lambda job: admin.oparl.run_job(job))


def schedule(admin, runner: JobRunner, every_s: float = 60.0) -> None:
    """Check for due OParl sources every minute (a thread of the job runner)."""
    runner.every(every_s, admin.oparl.submit_due, "oparl-schedule")
