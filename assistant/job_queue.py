"""Cluster jobs: the admin's background jobs through procrastinate, on the cluster's PostgreSQL.

In cluster mode (``Settings.cluster``: the app DB is PostgreSQL) any replica submits and any
worker – ``kiportal worker`` on any machine, or a portal replica's own worker thread – runs
a job, with the same handlers as the embedded :class:`assistant.jobs.JobRunner`.

Why procrastinate: it keeps its queue in the PostgreSQL the cluster already has (no Redis
to install, secure, back up and monitor next to it; Celery/RQ would need one), it is a
maintained library with a small surface (defer, worker, retry), and its 3.x workers write
heartbeats to the database, so a job held by a worker that stopped beating (SIGKILL, power
loss, a crashed VM) is found with ``get_stalled_jobs`` and handed back with ``retry_job``.
Its per-``lock`` sequencing cannot express our rule "a job for every collection (``*``)
conflicts with all others", so the one-job-per-collection rule is our own, under the DB
(see :meth:`ClusterJobRunner._claim`).

The ``jobs`` table stays the state the Verwaltung tab reads (status, progress, message,
result) – from any replica. procrastinate only carries "run job <id>" messages:

- **submit**: insert the ``jobs`` row (``queued``), then defer ``kiportal.job(job_id=…)``. If
  the submitting process dies between the two (milliseconds), the sweep fails the row after
  :data:`ORPHAN_GRACE_S` instead of letting it block its collection forever.
- **claim** (worker, in one transaction under a PostgreSQL advisory lock): the job may start
  only if no conflicting job is running and no conflicting job waits longer (FIFO, as in the
  embedded runner). Otherwise its message says what it waits for and it raises
  :class:`CollectionBusy`, which procrastinate retries after :data:`WAIT_RETRY_S` – the worker
  slot is free meanwhile. Claiming bumps ``jobs.attempt``; every later write of the worker is
  fenced on (id, attempt), so a worker wrongly presumed dead cannot overwrite its successor.
- **sweep** (every worker, every heartbeat, one at a time under a second advisory lock): jobs
  of workers without a heartbeat for ``stalled_after`` seconds go back to ``queued`` and
  procrastinate retries them; another worker re-runs them from the start. That is safe
  because ingestion is idempotent: documents are keyed by path and content hash, a
  document's new version replaces the old in one catalog transaction, and vectors a killed
  write left behind are swept as orphans (tests/assistant/test_job_queue.py kills a worker
  mid-re-index and checks every document once, no duplicate chunk, no orphan vector).
  A portal replica starting never touches other processes' jobs.
- **workers** register in ``job_workers`` (host, pid, role, heartbeat), read by
  :func:`assistant.jobs.workers` for ``kiportal status``.

Files: a worker reads what the job names – an upload job the files the portal staged under
its data directory, a sync job a server folder. Workers on other machines therefore need
the same paths (the shared file store of issue 16, e.g. NFS); two workers on one host with
one data directory need nothing more.

The procrastinate schema is applied at start-up under the app DB's schema lock
(:func:`corpus.db.database_lock`, a PostgreSQL advisory lock), so replicas and workers
starting together never race on it.

Measured (2 shared cores, local PostgreSQL 15, no-op handlers): submit to started on an idle
worker median 54 ms, max 129 ms (LISTEN/NOTIFY, no polling delay); 100 jobs over 5 collections
on 2 slots 4.3 s (23 jobs/s; the embedded threads 1.1 s) – queue overhead is nothing next to an
ingest. A killed worker's job starts again when a live worker's sweep sees it: at most
``stalled_after`` plus one heartbeat, or at once when a new worker starts (it prunes dead
workers first). In tests/assistant/test_job_queue.py a 60-document re-index killed at its
first progress is finished by the next worker with every document exactly once.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.engine import make_url

from assistant.appdb import AppDB, new_id, now
from assistant.jobs import ALL, JobContext, JobRunner, _coll_label, claim_blocker
from corpus.db import database_lock, lock_key

log = logging.getLogger(__name__)

QUEUE = "kiportal"
TASK = "kiportal.job"
WAIT_RETRY_S = 1  # a job waiting for its collection asks again after this (procrastinate retry)
ORPHAN_GRACE_S = 60.0  # a queued/running row without a queue entry this old is failed by the sweep
CLAIM_LOCK = "kiportal:jobs-claim"
SWEEP_LOCK = "kiportal:jobs-sweep"

RETRIED = "wird erneut gestartet: der Worker {owner} antwortet nicht mehr (bis dahin fertig indexierte Dokumente bleiben erhalten)"
NO_WORKER = "wartet: derzeit ist kein Worker verbunden (`kiportal worker` starten) / no worker connected"
LOST = "abgebrochen: der Auftrag ist nicht mehr in der Warteschlange (Worker beendet oder Auftrag nie eingereiht)"


class CollectionBusy(Exception):
    """The job's collection is taken; procrastinate asks again in :data:`WAIT_RETRY_S` seconds."""


class _QuietWaits(logging.Filter):
    """procrastinate logs every retry with its traceback; a job waiting for its collection is no error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, CollectionBusy)


_QUIET = _QuietWaits()


def conninfo(url: str) -> str:
    """libpq connection string for psycopg from the SQLAlchemy URL (``postgresql+psycopg://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_queue_schema(db: AppDB) -> bool:
    """Apply procrastinate's schema once per database; True if this call applied it.

    Under an advisory lock, so replicas starting together on a fresh database never fail."""
    from procrastinate.schema import SchemaManager

    with database_lock(db.engine, AppDB.SCHEMA_LOCK):  # the lock every schema change of the app DB takes
        with db.engine.connect() as conn:
            if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
                return False
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(SchemaManager.get_schema())
            raw.commit()
        finally:
            raw.close()
        log.info("procrastinate schema applied")
        return True


class ClusterJobRunner(JobRunner):
    """The job runner of cluster mode: same rows, same handlers, jobs run by procrastinate workers.

    ``run_jobs``: this process also works jobs (a portal replica's worker thread, started by
    :meth:`start`); ``kiportal worker`` calls :meth:`serve` instead. ``workers`` is the number
    of jobs this process runs at once."""

    def __init__(self, db: AppDB, *, workers: int = 2, progress_interval: float = 0.3,
                 heartbeat: float = 5.0, stalled_after: float = 30.0, run_jobs: bool = True,
                 role: str = "portal") -> None:
        super().__init__(db, workers=workers, progress_interval=progress_interval)
        self.heartbeat = heartbeat
        self.stalled_after = stalled_after
        self.run_jobs = run_jobs
        self.role = role
        self._conninfo = conninfo(db.url)
        self._attempts: dict[str, int] = {}  # job id -> attempt this process claimed
        self._submitter = None
        self._worker = None
        self._thread: threading.Thread | None = None
        self._worker_id = new_id()

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> int:
        """Apply the queue schema (once, under a lock) and, with ``run_jobs``, start a worker thread.

        Unlike the embedded runner nothing is marked failed: other replicas' jobs are alive;
        the jobs of dead workers are retried by the sweep. Returns 0."""
        ensure_queue_schema(self.db)
        if self.run_jobs and self._thread is None:
            self._thread = threading.Thread(target=self._serve_in_thread, name="kiportal-job-worker", daemon=True)
            self._thread.start()
        return 0

    def shutdown(self, wait: bool = True, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.stop()
        if wait:
            self.wait_idle(timeout)
            if self._thread is not None:
                self._thread.join(timeout)
            if self.run_jobs:
                # the worker thread unregisters on its way out; once more here, so that a stopped
                # runner is off the list whatever ended that thread (idempotent: one DELETE by id)
                try:
                    self._unregister()
                except Exception:  # noqa: BLE001 - a database already gone must not fail the shutdown
                    log.debug("unregistering the job worker failed", exc_info=True)
        if self._submitter is not None:
            try:
                self._submitter.close()
            except Exception:  # closing a broken pool must not fail the shutdown
                log.debug("closing the job submitter failed", exc_info=True)
            self._submitter = None

    # -- submitting --------------------------------------------------------
    def _queue_app(self, sync: bool):
        import procrastinate

        if sync:
            connector = procrastinate.SyncPsycopgConnector(conninfo=self._conninfo, min_size=1, max_size=4)
        else:
            connector = procrastinate.PsycopgConnector(conninfo=self._conninfo, min_size=1,
                                                       max_size=self._workers + 4)
        return procrastinate.App(connector=connector)

    def submit(self, kind: str, params: dict | None = None, *, collection: str = ALL, actor: str = "") -> str:
        """Insert the row and put "run it" on the queue; any worker of the cluster picks it up."""
        job_id = self._insert(kind, params, collection, actor, "wartet auf einen Worker")
        try:
            with self._lock:
                if self._submitter is None:
                    self._submitter = self._queue_app(sync=True).open()
                submitter = self._submitter
            submitter.configure_task(TASK, queue=QUEUE).defer(job_id=job_id)
        except Exception as exc:
            self.db.execute("UPDATE jobs SET status='failed', message=:m, finished_at=:t WHERE id=:i",
                            {"m": f"Fehler: Auftrag nicht eingereiht ({type(exc).__name__}) / not queued",
                             "t": now(), "i": job_id})
            raise
        return job_id

    def _dispatch(self) -> None:
        """Nothing to dispatch in-process: workers fetch from the queue."""

    # -- reading: say so when nobody could run a waiting job ----------------
    def get(self, job_id: str) -> dict | None:
        return next(iter(self._hint_no_worker([row] if (row := super().get(job_id)) else [])), None)

    def list(self, *, limit: int = 50, status: str | None = None) -> list[dict]:
        return self._hint_no_worker(super().list(limit=limit, status=status))

    def active(self) -> list[dict]:
        return self._hint_no_worker(super().active())

    def _hint_no_worker(self, rows: list[dict]) -> list[dict]:
        """A queued job in a cluster without a live worker (``jobs.portal_worker = false`` and no
        ``kiportal worker`` running) would wait silently forever: its message says why."""
        if any(r["status"] == "queued" for r in rows):
            from assistant.jobs import workers

            if not any(w["alive"] for w in workers(self.db, stale_after=self.stalled_after)):
                for r in rows:
                    if r["status"] == "queued":
                        r["message"] = NO_WORKER
        return rows

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Across the cluster: a PostgreSQL advisory lock (e.g. one OParl due-check at a time)."""
        with database_lock(self.db.engine, f"kiportal:{name}"):
            yield

    # -- working -----------------------------------------------------------
    def serve(self) -> None:
        """Work jobs until SIGINT/SIGTERM (``kiportal worker``). The first signal lets running jobs
        finish; a second one ends the process at once (its jobs are then retried elsewhere, as
        after a crash). A worker that loses the database starts again instead of exiting."""
        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._signalled)
            await self._serve_until_stopped()

        asyncio.run(main())

    def _signalled(self) -> None:
        if self._stop.is_set():
            log.warning("second stop signal: ending now; the running jobs will be retried by another worker")
            os._exit(1)
        log.warning("stopping: running jobs finish first (again to end at once)")
        self._stop.set()
        if self._worker is not None:
            self._worker.stop()

    def _serve_in_thread(self) -> None:
        asyncio.run(self._serve_until_stopped())

    async def _serve_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                await self._serve()
            except Exception:
                log.exception("job worker stopped; starting it again in %.0f s", self.heartbeat)
            if not self._stop.is_set():
                await asyncio.to_thread(self._stop.wait, self.heartbeat)

    async def _serve(self) -> None:
        from procrastinate import RetryStrategy
        from procrastinate.worker import Worker

        logging.getLogger("procrastinate.worker").addFilter(_QUIET)  # idempotent: the same filter object
        app = self._queue_app(sync=False)
        app.task(name=TASK, queue=QUEUE, pass_context=False,
                 retry=RetryStrategy(wait=WAIT_RETRY_S, retry_exceptions={CollectionBusy}))(self._run_queued)
        async with app.open_async():
            self._worker = Worker(app=app, queues=[QUEUE], concurrency=self._workers, name=self._owner,
                                  install_signal_handlers=False,  # ours: see serve()
                                  update_heartbeat_interval=self.heartbeat, stalled_worker_timeout=self.stalled_after,
                                  fetch_job_polling_interval=max(1.0, self.heartbeat), delete_jobs="successful")
            if self._stop.is_set():
                return
            await asyncio.to_thread(self._register)
            sweeper = asyncio.create_task(self._sweep_loop(app), name="kiportal-sweep")
            try:
                await self._worker.run()
            finally:
                sweeper.cancel()
                # first and not awaited: a cancellation arriving here must not skip it (a beat still
                # running in its thread only UPDATEs, so it cannot bring the row back)
                try:
                    self._unregister()
                except Exception:  # noqa: BLE001 - shutdown() tries again; the sweep removes stale rows
                    log.warning("unregistering the job worker failed", exc_info=True)
                await asyncio.gather(sweeper, return_exceptions=True)

    def _run_queued(self, job_id: str) -> None:
        """The procrastinate task: claim the row, run its handler, write the outcome (fenced)."""
        ctx = self._claim(job_id)
        if ctx is None:
            return
        with self._lock:
            self._running[job_id] = ctx.collection
        try:
            self._execute(ctx)
        finally:
            with self._lock:
                self._running.pop(job_id, None)
                self._attempts.pop(job_id, None)
                self._idle.notify_all()

    def _claim(self, job_id: str) -> JobContext | None:
        """Start the job if its collection is free (one transaction under the claim lock).

        Returns None when there is nothing to run (finished already, e.g. a retried message of
        a job whose worker died after writing its outcome; or an unknown row)."""
        with self.db.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(CLAIM_LOCK)})
            row = conn.execute(text("SELECT * FROM jobs WHERE id=:i"), {"i": job_id}).mappings().first()
            if row is None or row["status"] in ("done", "failed"):
                return None
            if row["kind"] not in self.handlers:
                conn.execute(text("UPDATE jobs SET status='failed', message=:m, finished_at=:t WHERE id=:i"),
                             {"m": f"Fehler: unbekannte Auftragsart {row['kind']} / unknown job kind", "t": now(),
                              "i": job_id})
                return None
            others = conn.execute(text(
                "SELECT id, collection, status, created_at FROM jobs WHERE id<>:i AND status IN ('queued','running') "
                "ORDER BY created_at, id"), {"i": job_id}).mappings().all()
            blocker = claim_blocker(row, others)
            if blocker is not None:  # say what it waits for (committed), then let procrastinate retry
                conn.execute(text("UPDATE jobs SET message=:m WHERE id=:i AND status='queued'"),
                             {"m": f"wartet auf einen laufenden Auftrag ({_coll_label(blocker['collection'])})",
                              "i": job_id})
            else:
                attempt = int(row["attempt"] or 0) + 1
                conn.execute(text(
                    "UPDATE jobs SET status='running', started_at=COALESCE(started_at, :t), message=:m, owner=:o, "
                    "attempt=:n WHERE id=:i"),
                    {"t": now(), "m": "läuft" if attempt == 1 else f"läuft erneut (Versuch {attempt})",
                     "o": self._owner, "n": attempt, "i": job_id})
        if blocker is not None:
            raise CollectionBusy(f"job {job_id} waits for job {blocker['id']}")
        with self._lock:
            self._attempts[job_id] = attempt
        return JobContext(job_id, row["kind"], row["collection"], json.loads(row["params"] or "{}"), row["actor"],
                          self)

    def _fence(self, job_id: str) -> tuple[str, dict]:
        """Writes of a running job only land while this process still holds the claim."""
        attempt = self._attempts.get(job_id)
        if attempt is None:
            return "", {}
        return " AND attempt=:fence", {"fence": attempt}

    # -- worker registry and sweep -----------------------------------------
    def _register(self) -> None:
        import os
        import socket

        t = now()
        # an upsert: after a database outage the worker starts serving again, and its row may still
        # be there (the delete on the way out failed with the database)
        self.db.execute(
            "INSERT INTO job_workers(id, host, pid, role, concurrency, started_at, heartbeat_at, running) "
            "VALUES (:i, :h, :p, :r, :c, :t, :t, '') "
            "ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at, running = ''",
            {"i": self._worker_id, "h": socket.gethostname(), "p": os.getpid(), "r": self.role,
             "c": self._workers, "t": t})

    def _unregister(self) -> None:
        self.db.execute("DELETE FROM job_workers WHERE id=:i", {"i": self._worker_id})

    def _beat(self) -> None:
        with self._lock:
            running = ",".join(sorted(self._running))
        self.db.execute("UPDATE job_workers SET heartbeat_at=:t, running=:r WHERE id=:i",
                        {"t": now(), "r": running, "i": self._worker_id})

    async def _sweep_loop(self, app) -> None:
        while True:
            if self._stop.is_set() and self._worker is not None:
                self._worker.stop()  # a stop that came before the worker's run() began (run() resets it)
            try:
                await asyncio.to_thread(self._beat)
                await self.sweep(app)
            except asyncio.CancelledError:
                raise
            except Exception:  # a DB hiccup must not stop the worker; next beat tries again
                log.exception("job sweep failed")
            await asyncio.sleep(self.heartbeat)

    async def sweep(self, app) -> dict:
        """Retry the jobs of dead workers; fail rows whose queue entry is gone. One sweeper at a time.

        Returns {"retried": [job ids], "lost": [job ids]}."""
        import psycopg

        out: dict[str, list[str]] = {"retried": [], "lost": []}
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as lock_conn:
            got = (await (await lock_conn.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(SWEEP_LOCK)]))
                   .fetchone())[0]
            if not got:
                return out
            try:
                stalled = await app.job_manager.get_stalled_jobs(queue=QUEUE, task_name=TASK,
                                                                 seconds_since_heartbeat=self.stalled_after)
                for job in stalled:
                    job_id = str(job.task_kwargs.get("job_id", ""))
                    await asyncio.to_thread(self._requeue_row, job_id)
                    await app.job_manager.retry_job_by_id_async(job.id, retry_at=dt.datetime.now(dt.timezone.utc))
                    log.warning("job %s: its worker stopped beating, retrying it", job_id)
                    out["retried"].append(job_id)
                out["lost"] = await asyncio.to_thread(self._fail_lost_rows)
                await asyncio.to_thread(self._prune_workers)
            finally:
                await lock_conn.execute("SELECT pg_advisory_unlock(%s)", [lock_key(SWEEP_LOCK)])
        return out

    def _requeue_row(self, job_id: str) -> None:
        with self.db.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(CLAIM_LOCK)})
            row = conn.execute(text("SELECT owner FROM jobs WHERE id=:i AND status='running'"),
                               {"i": job_id}).mappings().first()
            if row is not None:
                conn.execute(text("UPDATE jobs SET status='queued', message=:m WHERE id=:i AND status='running'"),
                             {"m": RETRIED.format(owner=row["owner"]), "i": job_id})

    def _fail_lost_rows(self) -> list[str]:
        """Rows queued/running for a while whose queue message is neither waiting nor being worked."""
        with self.db.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(CLAIM_LOCK)})
            lost = [r[0] for r in conn.execute(text(
                "SELECT j.id FROM jobs j WHERE j.status IN ('queued','running') AND j.created_at < :old "
                "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs p WHERE p.task_name=:task "
                "AND p.args->>'job_id' = j.id AND p.status IN ('todo','doing'))"),
                {"old": now() - ORPHAN_GRACE_S, "task": TASK})]
            if lost:
                conn.execute(text("UPDATE jobs SET status='failed', message=:m, finished_at=:t WHERE id = ANY(:ids)"),
                             {"m": LOST, "t": now(), "ids": lost})
        for job_id in lost:
            log.warning("job %s has no queue entry any more: marked failed", job_id)
        return lost

    def _prune_workers(self) -> None:
        """Forget registry rows of workers silent for a day (``kiportal status`` shows the rest as gone)."""
        self.db.execute("DELETE FROM job_workers WHERE heartbeat_at < :t", {"t": now() - 86400})
