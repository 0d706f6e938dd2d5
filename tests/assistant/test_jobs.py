"""Job runner: progress, results, failures, one job per collection, crash recovery."""
from __future__ import annotations

import threading
import time

import pytest

from assistant.appdb import AppDB
from assistant.jobs import ABORTED, ALL, NOT_STARTED, JobError, JobRunner
from corpus.db import LockLost


@pytest.fixture
def db(tmp_path):
    return AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")


@pytest.fixture
def runner(db):
    r = JobRunner(db, workers=4, progress_interval=0.0)
    r.start()
    yield r
    r.shutdown()


def _blocking(runner, kind="block"):
    """Register a job kind that waits for its event; returns {job param 'name': Event}."""
    gates: dict[str, threading.Event] = {}
    started: list[str] = []

    def handler(job):
        started.append(job.params["name"])
        gates.setdefault(job.params["name"], threading.Event()).wait(10)
        return {"name": job.params["name"]}

    runner.register(kind, handler)
    return gates, started


def _until(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_job_runs_with_progress_and_result(runner):
    seen = []

    def handler(job):
        cb = job.ingest_progress()
        for n in range(1, 5):
            cb(n, 4, f"datei{n}.pdf")
            seen.append(runner.get(job.id)["progress"])
        return {"files": 4}, "4 Dateien indexiert"

    runner.register("work", handler)
    job_id = runner.submit("work", {"x": 1}, collection="Bauamt", actor="anna")
    job = runner.wait(job_id, timeout=5)
    assert job["status"] == "done" and job["progress"] == 1.0
    assert job["message"] == "4 Dateien indexiert" and job["result"] == {"files": 4}
    assert job["params"] == {"x": 1} and job["actor"] == "anna" and job["collection"] == "Bauamt"
    assert job["started_at"] and job["finished_at"] >= job["started_at"]
    assert seen == [0.25, 0.5, 0.75, 1.0]


def test_failures_keep_a_readable_message(runner):
    runner.register("refuse", lambda job: (_ for _ in ()).throw(JobError("Ordner nicht gefunden: /x")))
    runner.register("crash", lambda job: 1 / 0)
    runner.register("lost", lambda job: (_ for _ in ()).throw(LockLost("kiportal-writer")))
    a = runner.wait(runner.submit("refuse"), timeout=5)
    b = runner.wait(runner.submit("crash"), timeout=5)
    c = runner.wait(runner.submit("lost"), timeout=5)
    assert (a["status"], a["message"]) == ("failed", "Ordner nicht gefunden: /x")
    assert (c["status"], c["message"]) == ("failed", str(LockLost("kiportal-writer")))  # its sentence, no class name
    assert b["status"] == "failed" and "ZeroDivisionError" in b["message"]
    with pytest.raises(ValueError):
        runner.submit("unknown")


def test_one_job_per_collection_others_queue(runner):
    gates, started = _blocking(runner)
    a1 = runner.submit("block", {"name": "a1"}, collection="A")
    a2 = runner.submit("block", {"name": "a2"}, collection="A")
    b1 = runner.submit("block", {"name": "b1"}, collection="B")
    assert _until(lambda: set(started) == {"a1", "b1"})
    time.sleep(0.1)
    assert runner.get(a2)["status"] == "queued" and "wartet" in runner.get(a2)["message"]
    assert runner.get(b1)["status"] == "running"  # other collections are not held up
    gates.setdefault("a1", threading.Event()).set()
    assert runner.wait(a1, 5)["status"] == "done"
    assert _until(lambda: "a2" in started)
    for g in ("a2", "b1"):
        gates.setdefault(g, threading.Event()).set()
    assert runner.wait(a2, 5)["status"] == "done" and runner.wait(b1, 5)["status"] == "done"


def test_job_for_everything_excludes_all_others_in_order(runner):
    gates, started = _blocking(runner)
    runner.submit("block", {"name": "a"}, collection="A")
    everything = runner.submit("block", {"name": "all"}, collection=ALL)
    b = runner.submit("block", {"name": "b"}, collection="B")  # must not overtake the waiting "*"
    assert _until(lambda: started == ["a"])
    time.sleep(0.1)
    assert [runner.get(j)["status"] for j in (everything, b)] == ["queued", "queued"]
    gates.setdefault("a", threading.Event()).set()
    assert _until(lambda: started == ["a", "all"])
    time.sleep(0.1)
    assert runner.get(b)["status"] == "queued"
    gates.setdefault("all", threading.Event()).set()
    assert _until(lambda: started == ["a", "all", "b"])
    gates.setdefault("b", threading.Event()).set()
    assert runner.wait(b, 5)["status"] == "done"
    assert runner.wait_idle(5)


def test_jobs_of_a_dead_process_are_marked_failed(db):
    first = JobRunner(db)
    first.start()
    gates, _ = _blocking(first)
    running = first.submit("block", {"name": "r"}, collection="A")
    queued = first.submit("block", {"name": "q"}, collection="A")
    assert _until(lambda: first.get(running)["status"] == "running")
    # the process "dies": no shutdown, a new runner starts on the same database
    second = JobRunner(db)
    assert second.start() == 2
    r, q = second.get(running), second.get(queued)
    assert (r["status"], r["message"]) == ("failed", ABORTED)
    assert (q["status"], q["message"]) == ("failed", NOT_STARTED)
    assert "abgebrochen" in r["message"]
    gates.setdefault("r", threading.Event()).set()
    first.shutdown()


def test_jobs_are_visible_to_a_fresh_reader(db, runner):
    """A page reload builds nothing new: the job table is the state."""
    runner.register("quick", lambda job: {"ok": True})
    job_id = runner.submit("quick", collection="A", actor="anna")
    runner.wait(job_id, 5)
    other = JobRunner(db)  # e.g. another handler instance, no start()
    assert other.get(job_id)["status"] == "done"
    assert [j["id"] for j in other.list(limit=5)] == [job_id]
    assert other.active() == []


def test_progress_writes_are_throttled(db):
    r = JobRunner(db, progress_interval=10.0)
    r.start()
    writes = []

    def handler(job):
        for n in range(100):
            job.progress(n / 100, f"{n}")
            writes.append(r.get(job.id)["message"])
        return {}

    r.register("many", handler)
    r.wait(r.submit("many"), 5)
    assert len(set(writes)) <= 2  # first write, then nothing for 10 s
    r.shutdown()


def test_periodic_task(runner):
    calls = []
    runner.every(0.05, lambda: calls.append(1), "tick", run_now=True)
    runner.every(0.05, lambda: 1 / 0, "broken")  # must not kill anything
    assert _until(lambda: len(calls) >= 3)


def test_worker_limit_queues_other_collections_too(db):
    r = JobRunner(db, workers=1)
    r.start()
    gates, started = _blocking(r)
    a = r.submit("block", {"name": "a"}, collection="A")
    b = r.submit("block", {"name": "b"}, collection="B")
    assert _until(lambda: started == ["a"])
    time.sleep(0.1)
    assert r.get(b)["status"] == "queued" and "freien Platz" in r.get(b)["message"]
    gates.setdefault("a", threading.Event()).set()
    assert _until(lambda: started == ["a", "b"])
    gates.setdefault("b", threading.Event()).set()
    assert r.wait(b, 5)["status"] == "done" and r.get(a)["status"] == "done"
    r.shutdown()


def test_queue_depth_and_workers_read_without_creating_tables(tmp_path):
    """`kiportal status` on an installation that never started jobs: zeros, no tables made."""
    from sqlalchemy import inspect

    from assistant.jobs import queue_depth, workers

    db = AppDB(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    assert queue_depth(db) == {"queued": 0, "running": 0} and workers(db) == []
    assert not inspect(db.engine).has_table("jobs")


def test_queue_depth_counts_every_process_and_workers_are_empty_when_embedded(db, runner):
    from assistant.jobs import queue_depth, workers

    gates, _ = _blocking(runner)
    running = runner.submit("block", {"name": "r"}, collection="A")
    runner.submit("block", {"name": "q"}, collection="A")
    assert _until(lambda: runner.get(running)["status"] == "running")
    assert queue_depth(db) == {"queued": 1, "running": 1}
    assert workers(db) == []  # in-process jobs: no worker registers
    for name in ("r", "q"):
        gates.setdefault(name, threading.Event()).set()
    assert runner.wait_idle(5)
    assert queue_depth(db) == {"queued": 0, "running": 0}


def _row(i: str, coll: str, status: str = "queued", at: float = 0.0) -> dict:
    return {"id": i, "collection": coll, "status": status, "created_at": at}


@pytest.mark.parametrize("others, blocker", [
    ([], None),                                                        # alone
    ([_row("o", "b", "running")], None),                               # another collection runs
    ([_row("o", "a", "running", at=9)], "o"),                          # the same one runs (younger or not)
    ([_row("o", "*", "running", at=9)], "o"),                          # a job for all collections runs
    ([_row("o", "a", "queued", at=1)], "o"),                           # an older one waits: FIFO
    ([_row("o", "a", "queued", at=9)], None),                          # a younger one waits: we go first
    ([_row("o", "*", "queued", at=1)], "o"),                           # an older job for all waits
    ([_row("o", "a", "done", at=1), _row("p", "a", "failed")], None),  # finished rows never block
    ([_row("j", "a", "running", at=1)], None),                         # the job itself (a retried message)
    ([_row("i", "a", "queued", at=5)], "i"),                           # same time: the smaller id first
    ([_row("k", "a", "queued", at=5)], None),                          # ... so a larger one waits for us
])
def test_claim_blocker(others, blocker):
    from assistant.jobs import claim_blocker

    got = claim_blocker(_row("j", "a", at=5), others)
    assert (got["id"] if got else None) == blocker


def test_claim_blocker_of_a_job_for_all_collections():
    from assistant.jobs import claim_blocker

    assert claim_blocker(_row("j", "*", at=5), [_row("o", "x", "running")])["id"] == "o"
    assert claim_blocker(_row("j", "*", at=5), [_row("o", "x", "queued", at=6)]) is None
