"""Cluster jobs (issue 16) on a real PostgreSQL: procrastinate carries the jobs, the jobs table
stays the state, one job per collection across runners and processes, dead workers' jobs
retried. The first tests run ClusterJobRunners in this process (fast); the later ones run real
``kiportal worker`` processes on a real Chroma server, one of them killed with SIGKILL."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant.appdb import AppDB
from assistant.jobs import ALL, JobError, queue_depth, workers

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]


def _until(cond, timeout=15.0, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)
    return False


@pytest.fixture
def db(pg_url):
    return AppDB(pg_url)


@pytest.fixture
def runners(db):
    """Build ClusterJobRunners on the test's database; all are shut down afterwards."""
    from assistant.job_queue import ClusterJobRunner

    made = []

    def build(**kw):
        kw.setdefault("workers", 2)
        kw.setdefault("progress_interval", 0.0)
        kw.setdefault("heartbeat", 0.3)
        kw.setdefault("stalled_after", 2.0)
        r = ClusterJobRunner(AppDB(db.url), **kw)
        made.append(r)
        return r

    yield build
    for r in made:
        r.shutdown(wait=True, timeout=10)


def _gated(runner, gates, log):
    """A job kind 'block' that records start/end and waits for its gate (an Event per name)."""

    def handler(job):
        name = job.params["name"]
        log.append(("start", name, time.monotonic()))
        gates.setdefault(name, threading.Event()).wait(20)
        log.append(("end", name, time.monotonic()))
        return {"name": name}

    runner.register("block", handler)


# -- in-process runners --------------------------------------------------------------------------
def test_job_runs_on_a_worker_and_another_runner_reads_its_progress(runners):
    worker, reader = runners(), runners(run_jobs=False)
    seen = []

    def handler(job):
        cb = job.ingest_progress()
        for n in range(1, 4):
            cb(n, 4, f"datei{n}.pdf")
            seen.append(reader.get(job.id)["progress"])  # another runner (App) on the same DB
        return {"files": 4}, "4 Dateien indexiert"

    for r in (worker, reader):
        r.register("work", handler)
        r.start()
    job_id = reader.submit("work", {"x": 1}, collection="Bauamt", actor="anna")
    job = reader.wait(job_id, timeout=20)
    assert job["status"] == "done" and job["progress"] == 1.0 and job["attempt"] == 1
    assert job["message"] == "4 Dateien indexiert" and job["result"] == {"files": 4}
    assert job["params"] == {"x": 1} and job["actor"] == "anna"
    assert seen == [0.25, 0.5, 0.75]
    assert job["owner"] == worker._owner


def test_failures_keep_a_readable_message(runners):
    r = runners()
    r.register("refuse", lambda job: (_ for _ in ()).throw(JobError("Ordner nicht gefunden: /x")))
    r.register("crash", lambda job: 1 / 0)
    r.start()
    a = r.wait(r.submit("refuse", collection="A"), timeout=20)
    b = r.wait(r.submit("crash", collection="B"), timeout=20)
    assert (a["status"], a["message"]) == ("failed", "Ordner nicht gefunden: /x")
    assert b["status"] == "failed" and "ZeroDivisionError" in b["message"]


def test_one_job_per_collection_across_runners_and_everything_waits_in_order(runners):
    """Two runners (two replicas) with two slots each: A2 waits for A1 although slots are free;
    the '*' job waits for everything before it and B (later) does not overtake it."""
    gates: dict[str, threading.Event] = {}
    log: list = []
    one, two = runners(), runners()
    for r in (one, two):
        _gated(r, gates, log)
        r.start()
    started = lambda: [e[1] for e in log if e[0] == "start"]  # noqa: E731
    a1 = one.submit("block", {"name": "a1"}, collection="A")
    assert _until(lambda: started() == ["a1"])
    a2 = two.submit("block", {"name": "a2"}, collection="A")
    c1 = two.submit("block", {"name": "c1"}, collection="C")
    assert _until(lambda: sorted(started()) == ["a1", "c1"])
    everything = one.submit("block", {"name": "all"}, collection=ALL)
    b1 = two.submit("block", {"name": "b1"}, collection="B")
    time.sleep(1.5)  # several claim retries
    assert sorted(started()) == ["a1", "c1"]
    row = one.get(a2)
    assert row["status"] == "queued" and "wartet auf einen laufenden Auftrag (Sammlung A)" in row["message"]
    assert queue_depth(one.db) == {"queued": 3, "running": 2}
    for name in ("a1", "c1"):
        gates.setdefault(name, threading.Event()).set()
    assert _until(lambda: "a2" in started())
    time.sleep(1.2)
    assert "all" not in started() and "b1" not in started()
    gates.setdefault("a2", threading.Event()).set()
    assert _until(lambda: "all" in started())
    time.sleep(1.2)
    assert "b1" not in started()  # '*' runs alone
    gates.setdefault("all", threading.Event()).set()
    gates.setdefault("b1", threading.Event()).set()
    for job_id in (a1, a2, c1, everything, b1):
        assert one.wait(job_id, 20)["status"] == "done"
    assert started() == ["a1", "c1", "a2", "all", "b1"] or started() == ["c1", "a1", "a2", "all", "b1"]
    assert queue_depth(one.db) == {"queued": 0, "running": 0}


def test_a_starting_replica_leaves_other_jobs_alone(runners):
    submitter = runners(run_jobs=False)
    gates: dict[str, threading.Event] = {}
    _gated(submitter, gates, [])
    submitter.start()
    job_id = submitter.submit("block", {"name": "x"}, collection="A")
    late = runners(run_jobs=False)  # a second portal replica starting
    _gated(late, gates, [])
    assert late.start() == 0
    assert late.get(job_id)["status"] == "queued"
    worker = runners()
    _gated(worker, gates, [])
    worker.start()
    assert _until(lambda: late.get(job_id)["status"] == "running")
    gates.setdefault("x", threading.Event()).set()
    assert late.wait(job_id, 20)["status"] == "done"


def test_workers_are_listed_with_host_pid_and_heartbeat(runners, db):
    assert workers(db) == [] or all(not w["alive"] for w in workers(db))
    w = runners(workers=3)
    w.register("noop", lambda job: {})
    w.start()
    assert _until(lambda: len(workers(db)) == 1)
    first = workers(db)[0]
    assert first["pid"] == os.getpid() and first["role"] == "portal" and first["concurrency"] == 3 and first["alive"]
    assert _until(lambda: workers(db)[0]["last_heartbeat"] > first["last_heartbeat"], timeout=5)
    w.shutdown(wait=True, timeout=10)
    assert _until(lambda: workers(db) == [], timeout=10)


def test_a_stale_claim_cannot_overwrite_its_successor(runners):
    """A worker wrongly taken for dead finishes late: its outcome must not land on the re-run row."""
    r = runners(run_jobs=False)
    r.register("noop", lambda job: {})
    r.start()
    job_id = r.submit("noop", collection="A")
    ctx = r._claim(job_id)
    assert ctx is not None and r.get(job_id)["attempt"] == 1
    # the sweep gave the job to another worker, which claimed it (attempt 2)
    r.db.execute("UPDATE jobs SET attempt=2, owner='other:1', message='läuft erneut (Versuch 2)' WHERE id=:i",
                 {"i": job_id})
    ctx.progress(0.5, "alt")
    r._execute(ctx)
    row = r.get(job_id)
    assert (row["status"], row["owner"], row["message"]) == ("running", "other:1", "läuft erneut (Versuch 2)")


def test_stalled_job_is_retried_by_the_sweep(runners, db):
    """A job held by a worker that stopped beating goes back to the queue and runs again."""
    from assistant.job_queue import ClusterJobRunner

    r = runners()
    runs = []
    r.register("count", lambda job: runs.append(job.id) or {"n": len(runs)})
    # a "dead worker": a procrastinate worker row with an old heartbeat holding the job
    dead = ClusterJobRunner(AppDB(db.url), run_jobs=False)
    dead.register("count", lambda job: {})
    dead.start()
    job_id = dead.submit("count", collection="A")
    assert dead._claim(job_id) is not None  # the dead worker had started it
    with db.begin() as conn:
        from sqlalchemy import text

        wid = conn.execute(text("INSERT INTO procrastinate_workers(last_heartbeat) VALUES (now() - interval '1 hour') "
                                "RETURNING id")).scalar()
        conn.execute(text("UPDATE procrastinate_jobs SET status='doing', worker_id=:w WHERE args->>'job_id'=:j"),
                     {"w": wid, "j": job_id})
    r.start()
    job = r.wait(job_id, timeout=20)
    assert job["status"] == "done" and job["attempt"] == 2 and runs == [job_id]
    dead.shutdown()


def test_schema_is_applied_once_by_replicas_starting_together(pg_server):
    from assistant.job_queue import ensure_queue_schema

    url = pg_server.new_database()
    AppDB(url)  # schema_migrations exists (the app DB's own migration race is not this module's)
    results: list = []

    def go():
        try:
            results.append(ensure_queue_schema(AppDB(url)))
        except Exception as exc:  # pragma: no cover - the failure we guard against
            results.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=str) == [False, False, False, True]


def test_worker_command_refuses_the_embedded_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIPORTAL_") or k == "KIPORTAL_TEST_CACHE"}
    env.update(PYTHONPATH=str(REPO), KIPORTAL_HOME=str(tmp_path / "data"))
    out = subprocess.run([sys.executable, "-m", "ui.cli", "worker"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0 and "Cluster-Betrieb" in out.stderr and "PostgreSQL" in out.stderr


