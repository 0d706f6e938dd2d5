"""Background jobs: long admin work (upload batches, re-indexing, folder sync) off the request path.

Why a table and not just threads: an admin who reloads the page, or a second admin,
must see what is running and how far it got; and a job cut off by a crash or restart
must not stay "running" forever. So every job is a row in the app DB (the UI polls it),
progress is written from the Ingestor's progress callback, and :meth:`JobRunner.start`
marks jobs left over by a dead process as failed ("abgebrochen").

Scheduling rule: at most ONE job per collection at a time. A second job for the same
collection is **queued** (not refused) and starts when the first has finished, in
submission order. A job for every collection (``collection="*"``: re-index all, change
detection over everything) conflicts with every other job. Document writes are
serialised by the Ingestor's writer lock anyway; the rule makes the wait visible and
keeps e.g. "delete collection" from racing an upload into it.

This is the embedded default: one process, jobs on its threads. In cluster mode (the app DB
on PostgreSQL) :class:`assistant.job_queue.ClusterJobRunner` keeps the same table, rule and
handlers but hands jobs to procrastinate workers on any machine (``kiportal worker``); see
there. :func:`queue_depth` and :func:`workers` report on both (``kiportal status``).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

from assistant.appdb import AppDB, new_id, now
from corpus.db import LockLost

log = logging.getLogger(__name__)

ALL = "*"
STATUSES = ("queued", "running", "done", "failed")
ABORTED = "abgebrochen: der Server wurde beendet, während der Auftrag lief (bis dahin fertig indexierte Dokumente bleiben erhalten)"
NOT_STARTED = "abgebrochen: der Server wurde beendet, bevor der Auftrag starten konnte"

_MIGRATIONS = [
    ["CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, collection TEXT NOT NULL DEFAULT '', "
     "params TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL, progress DOUBLE PRECISION NOT NULL DEFAULT 0, "
     "message TEXT NOT NULL DEFAULT '', result_json TEXT NOT NULL DEFAULT '{}', "
     "created_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION, "
     "actor TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL DEFAULT '')",
     "CREATE INDEX jobs_status ON jobs(status, created_at)"],
    # cluster mode (assistant.job_queue): the claim count fences a worker's writes; the
    # registry of workers is what `kiportal status` lists (see :func:`workers`)
    ["ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0",
     "CREATE TABLE job_workers (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, "
     "role TEXT NOT NULL, concurrency INTEGER NOT NULL DEFAULT 0, started_at DOUBLE PRECISION NOT NULL, "
     "heartbeat_at DOUBLE PRECISION NOT NULL, running TEXT NOT NULL DEFAULT '')"],
]


class JobError(Exception):
    """A job failed for a reason the admin should read (German message, no traceback)."""


@dataclass
class JobContext:
    """What a job handler gets: its parameters and a way to report progress."""

    id: str
    kind: str
    collection: str
    params: dict
    actor: str
    _runner: "JobRunner"

    def progress(self, fraction: float, message: str | None = None) -> None:
        self._runner._progress(self.id, fraction, message)

    def ingest_progress(self, start: float = 0.0, span: float = 1.0, prefix: str = "") -> Callable[[int, int, str], None]:
        """An ``Ingestor`` progress callback mapped onto [start, start+span] of this job."""

        def cb(done: int, total: int, name: str) -> None:
            frac = start + span * (done / total if total else 1.0)
            self.progress(frac, f"{prefix}{done}/{total}: {name}")

        return cb


Handler = Callable[[JobContext], "dict | tuple[dict, str] | None"]


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def conflicts(a: str, b: str) -> bool:
    return a == b or a == ALL or b == ALL


def claim_blocker(job: Mapping[str, Any], others: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The job that holds ``job`` back, or None when it may start: one of a conflicting collection
    that is running, or that is queued and waits longer (FIFO by ``(created_at, id)``, so a later
    job never overtakes an earlier one). Rows need ``id``, ``collection``, ``status``, ``created_at``;
    finished rows and ``job`` itself never block. The cluster's claim asks this under its lock."""
    mine = (job["created_at"], job["id"])
    return next((o for o in others
                 if o["id"] != job["id"] and o["status"] in ("queued", "running")
                 and conflicts(o["collection"], job["collection"])
                 and (o["status"] == "running" or (o["created_at"], o["id"]) < mine)), None)


class JobRunner:
    """Runs registered job kinds on at most ``workers`` threads, one job per collection at a time."""

    def __init__(self, db: AppDB, *, workers: int = 2, progress_interval: float = 0.3) -> None:
        self.db = db
        self.handlers: dict[str, Handler] = {}
        self._workers = workers
        self._lock = threading.RLock()
        self._running: dict[str, str] = {}  # job id -> collection (this process)
        self._last_write: dict[str, float] = {}
        self._interval = progress_interval
        self._owner = _owner()
        self._stop = threading.Event()
        self._periodic: list[threading.Thread] = []
        self._idle = threading.Condition(self._lock)
        self._exclusive: dict[str, threading.Lock] = {}
        db.ensure_schema("jobs", _MIGRATIONS)

    @property
    def owner(self) -> str:
        """``host:pid`` of this process: the ``owner`` of the rows it submits or (cluster) runs."""
        return self._owner

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> int:
        """Mark jobs a dead process left queued/running as failed; returns how many.

        Call once per process before submitting. (One portal process per app DB: the
        runner is not a distributed queue.)"""
        t = now()
        n = self.db.execute(
            "UPDATE jobs SET status='failed', message=:m, finished_at=:t WHERE status='running'",
            {"m": ABORTED, "t": t})
        n += self.db.execute(
            "UPDATE jobs SET status='failed', message=:m, finished_at=:t WHERE status='queued'",
            {"m": NOT_STARTED, "t": t})
        if n:
            log.warning("%d interrupted job(s) marked as failed", n)
        return n

    def shutdown(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Stop starting jobs; with ``wait``, give running ones ``timeout`` seconds to finish.

        Job threads are daemons on purpose: Ctrl+C on the portal must not hang behind an
        hour-long re-index. A job cut off that way is marked failed at the next start,
        and ingestion is crash-safe by design."""
        self._stop.set()
        if wait:
            self.wait_idle(timeout)

    def every(self, seconds: float, fn: Callable[[], Any], name: str, *, run_now: bool = False) -> None:
        """Call ``fn`` every ``seconds`` in a daemon thread (e.g. the daily audit purge)."""

        def loop() -> None:
            if run_now:
                self._safe(fn, name)
            while not self._stop.wait(seconds):
                self._safe(fn, name)

        th = threading.Thread(target=loop, name=f"kiportal-{name}", daemon=True)
        th.start()
        self._periodic.append(th)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Run a check-then-submit step alone (e.g. the OParl due-check): in-process here, one
        process holds the jobs; cluster mode makes it a database lock across replicas."""
        with self._exclusive.setdefault(name, threading.Lock()):
            yield

    @staticmethod
    def _safe(fn: Callable[[], Any], name: str) -> None:
        try:
            fn()
        except Exception:  # a periodic task must never kill its thread
            log.exception("periodic task %s failed", name)

    # -- submitting --------------------------------------------------------
    def submit(self, kind: str, params: dict | None = None, *, collection: str = ALL, actor: str = "") -> str:
        """Queue a job; it starts now unless a job for a conflicting collection runs or waits."""
        job_id = self._insert(kind, params, collection, actor, "wartet")
        self._dispatch()
        return job_id

    def _insert(self, kind: str, params: dict | None, collection: str, actor: str, message: str) -> str:
        """The job's row, queued: what the Verwaltung tab shows from now on (both runners)."""
        if kind not in self.handlers:
            raise ValueError(f"unknown job kind {kind!r}")
        job_id = new_id()
        self.db.execute(
            "INSERT INTO jobs(id, kind, collection, params, status, progress, message, created_at, actor, owner) "
            "VALUES (:i, :k, :c, :p, 'queued', 0, :m, :t, :a, :o)",
            {"i": job_id, "k": kind, "c": collection, "p": json.dumps(params or {}, ensure_ascii=False, default=str),
             "m": message, "t": now(), "a": actor, "o": self._owner})
        return job_id

    def _dispatch(self) -> None:
        """Start every queued job whose collection is free, oldest first (FIFO per collection:
        a later job never overtakes an earlier waiting one of a conflicting collection)."""
        with self._lock:
            if self._stop.is_set():
                return
            queued = self.db.query(
                "SELECT id, kind, collection, params, actor FROM jobs WHERE status='queued' AND owner=:o "
                "ORDER BY created_at, id", {"o": self._owner})
            blocked: list[str] = list(self._running.values())
            for job in queued:
                coll = job["collection"]
                if len(self._running) >= self._workers:
                    self._set(job["id"], message="wartet auf einen freien Platz")
                    continue
                blocker = next((b for b in blocked if conflicts(b, coll)), None)
                if blocker is not None:
                    self._set(job["id"], message=f"wartet auf einen laufenden Auftrag ({_coll_label(blocker)})")
                    blocked.append(coll)
                    continue
                self._running[job["id"]] = coll
                blocked.append(coll)
                self.db.execute("UPDATE jobs SET status='running', started_at=:t, message=:m WHERE id=:i",
                                {"t": now(), "m": "läuft", "i": job["id"]})
                ctx = JobContext(job["id"], job["kind"], coll, json.loads(job["params"] or "{}"), job["actor"], self)
                threading.Thread(target=self._run, args=(ctx,), name=f"kiportal-job-{ctx.kind}",
                                 daemon=True).start()

    def _run(self, ctx: JobContext) -> None:
        try:
            self._execute(ctx)
        finally:
            with self._lock:
                self._running.pop(ctx.id, None)
                self._idle.notify_all()
            self._dispatch()

    def _execute(self, ctx: JobContext) -> str:
        """Run the handler and write the final status, progress, message and result to the row.

        Shared by the in-process threads and the cluster worker (:mod:`assistant.job_queue`):
        a handler's failure never escapes; it becomes the row's message. Returns the status."""
        status, message, result = "failed", "", {}
        try:
            out = self.handlers[ctx.kind](ctx)
            if isinstance(out, tuple):
                result, message = out
            else:
                result = out or {}
            status, message = "done", message or "fertig"
        except (JobError, LockLost) as exc:  # sentences meant for the person (LockLost: nothing committed, run it again)
            message = str(exc)
        except Exception as exc:
            log.error("job %s (%s) failed:\n%s", ctx.id, ctx.kind, traceback.format_exc())
            message = f"Fehler: {type(exc).__name__}: {exc}"[:1000]
        finally:
            try:
                fence, fargs = self._fence(ctx.id)
                self.db.execute(
                    "UPDATE jobs SET status=:s, progress=:p, message=:m, result_json=:r, finished_at=:t WHERE id=:i"
                    + fence,
                    {"s": status, "p": 1.0 if status == "done" else self._current_progress(ctx.id),
                     "m": message[:2000], "r": json.dumps(result, ensure_ascii=False, default=str),
                     "t": now(), "i": ctx.id, **fargs})
            finally:
                self._last_write.pop(ctx.id, None)
        return status

    def _current_progress(self, job_id: str) -> float:
        row = self.db.one("SELECT progress FROM jobs WHERE id=:i", {"i": job_id})
        return float(row["progress"]) if row else 0.0

    def _progress(self, job_id: str, fraction: float, message: str | None) -> None:
        """Throttled: an ingest of many small files must not turn into a DB write storm."""
        t = time.monotonic()
        if fraction < 1.0 and t - self._last_write.get(job_id, 0.0) < self._interval:
            return
        self._last_write[job_id] = t
        self._set(job_id, progress=max(0.0, min(1.0, fraction)), message=message)

    def _set(self, job_id: str, *, progress: float | None = None, message: str | None = None) -> None:
        sets, args = [], {"i": job_id}
        if progress is not None:
            sets.append("progress=:p")
            args["p"] = progress
        if message is not None:
            sets.append("message=:m")
            args["m"] = message[:2000]
        if sets:
            fence, fargs = self._fence(job_id)
            self.db.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE id=:i{fence}", {**args, **fargs})

    def _fence(self, job_id: str) -> tuple[str, dict]:
        """Extra WHERE for writes of a running job (none in-process; cluster workers fence on the claim)."""
        return "", {}

    # -- reading -----------------------------------------------------------
    def get(self, job_id: str) -> dict | None:
        row = self.db.one("SELECT * FROM jobs WHERE id=:i", {"i": job_id})
        return _decode(row) if row else None

    def list(self, *, limit: int = 50, status: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM jobs", {"l": limit}
        if status:
            sql += " WHERE status=:s"
            args["s"] = status
        return [_decode(r) for r in self.db.query(sql + " ORDER BY created_at DESC, id LIMIT :l", args)]

    def active(self) -> list[dict]:
        return [_decode(r) for r in self.db.query(
            "SELECT * FROM jobs WHERE status IN ('queued','running') ORDER BY created_at, id")]

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.1) -> dict | None:
        """Block until the job has finished (or ``timeout``); returns its row."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None or job["status"] in ("done", "failed"):
                return job
            if deadline is not None and time.monotonic() >= deadline:
                return job
            time.sleep(poll)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True


def _coll_label(coll: str) -> str:
    return "alle Sammlungen" if coll == ALL else f"Sammlung {coll}"


def _decode(row: dict) -> dict:
    row = dict(row)
    try:
        row["result"] = json.loads(row.pop("result_json") or "{}")
    except ValueError:
        row["result"] = {}
    try:
        row["params"] = json.loads(row["params"] or "{}")
    except ValueError:
        row["params"] = {}
    return row


# -- for `kiportal status` (issue 16): plain functions on the app DB, both modes -------------
def queue_depth(db: AppDB) -> dict[str, int]:
    """How many jobs wait and run across the installation: ``{"queued": n, "running": n}``.

    The ``jobs`` table is the state in both modes, so this counts every replica's jobs. Reads
    only: on a database without the table (nothing started yet) both are 0."""
    if not _has_table(db, "jobs"):
        return {"queued": 0, "running": 0}
    counts = {r["status"]: int(r["n"]) for r in db.query(
        "SELECT status, COUNT(*) AS n FROM jobs WHERE status IN ('queued','running') GROUP BY status")}
    return {"queued": counts.get("queued", 0), "running": counts.get("running", 0)}


def workers(db: AppDB, *, stale_after: float = 30.0) -> list[dict]:
    """The job workers registered on this app DB, newest heartbeat first.

    Each: ``id``, ``host``, ``pid``, ``role`` (``worker`` = ``kiportal worker``, ``portal`` = a
    portal replica's worker thread), ``concurrency``, ``started_at``, ``last_heartbeat`` (epoch
    seconds), ``alive`` (a heartbeat within ``stale_after`` seconds – give the cluster's
    ``jobs.stalled_after_seconds``) and ``running`` (ids of the jobs it runs now). Only cluster
    workers register; in the embedded default the list is empty (jobs run in the portal)."""
    if not _has_table(db, "job_workers"):
        return []
    t = now()
    out = []
    for r in db.query("SELECT * FROM job_workers ORDER BY heartbeat_at DESC, id"):
        out.append({"id": r["id"], "host": r["host"], "pid": int(r["pid"]), "role": r["role"],
                    "concurrency": int(r["concurrency"]), "started_at": r["started_at"],
                    "last_heartbeat": r["heartbeat_at"], "alive": t - r["heartbeat_at"] <= stale_after,
                    "running": [j for j in (r["running"] or "").split(",") if j]})
    return out


def _has_table(db: AppDB, name: str) -> bool:
    from sqlalchemy import inspect

    return inspect(db.engine).has_table(name)
