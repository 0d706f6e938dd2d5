"""Cluster jobs (issue 16) on a real PostgreSQL: procrastinate carries the jobs, the jobs table
stays the state, one job per collection across runners and processes, dead workers' jobs
retried. The first tests run ClusterJobRunners in this process (fast); the later ones run real
``kiportal worker`` processes on a real Chroma server, one of them killed with SIGKILL."""
from __future__ import annotations

import os
import subprocess
import sys
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from assistant.appdb import AppDB
from assistant.jobs import ALL, JobError, JobRunner, queue_depth, workers

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
    assert "kein Worker verbunden" in submitter.get(job_id)["message"]  # nobody could run it: say so
    late = runners(run_jobs=False)  # a second portal replica starting
    _gated(late, gates, [])
    assert late.start() == 0
    assert late.get(job_id)["status"] == "queued"
    worker = runners()
    _gated(worker, gates, [])
    worker.start()
    assert _until(lambda: late.get(job_id)["status"] == "running")
    assert late.get(job_id)["message"] == "läuft"
    gates.setdefault("x", threading.Event()).set()
    assert late.wait(job_id, 20)["status"] == "done"


def test_a_worker_serving_again_after_an_outage_registers_over_its_old_row(runners, db):
    """The database went away: the worker's run failed and so did the delete of its row. When it
    serves again it registers with the same id; a plain INSERT failed there on every retry, for good."""
    from assistant.job_queue import ensure_queue_schema

    w = runners(run_jobs=False)
    ensure_queue_schema(w.db)
    w._register()
    w._register()  # the row is still there
    rows = [x for x in workers(db) if x["id"] == w._worker_id]
    assert len(rows) == 1 and rows[0]["alive"] and rows[0]["running"] == []


def test_workers_are_listed_with_host_pid_and_heartbeat(runners, db):
    assert workers(db) == [] or all(not w["alive"] for w in workers(db))
    w = runners(workers=3)
    w.register("noop", lambda job: {})
    w.start()
    assert _until(lambda: len(workers(db)) == 1)
    first = workers(db)[0]
    assert first["pid"] == os.getpid() and first["role"] == "portal" and first["concurrency"] == 3 and first["alive"]
    assert _until(lambda: workers(db)[0]["last_heartbeat"] > first["last_heartbeat"], timeout=5)
    # deadlines, not timings: 10 s ran out once with the full suite beside it (alone it takes about 1 s)
    w.shutdown(wait=True, timeout=60)
    # failed twice in full runs, never alone or under CPU load: say what was left if it fails again
    assert _until(lambda: workers(db) == [], timeout=60), (workers(db), w._thread and w._thread.is_alive())


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




# -- real `kiportal worker` processes on PostgreSQL + a Chroma server --------------------------------
def _cluster_env(home: Path, pg_url: str, chroma, collection: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIPORTAL_") or k == "KIPORTAL_TEST_CACHE"}
    env.update(PYTHONPATH=str(REPO), KIPORTAL_HOME=str(home), KIPORTAL_APP_DB_URL=pg_url,
               KIPORTAL_EMBEDDING__MODE="hash", KIPORTAL_VECTOR__MODE="chroma_http",
               KIPORTAL_VECTOR__HOST=chroma.host, KIPORTAL_VECTOR__PORT=str(chroma.port),
               KIPORTAL_VECTOR__COLLECTION=collection, KIPORTAL_JOBS__HEARTBEAT_SECONDS="0.5",
               KIPORTAL_JOBS__STALLED_AFTER_SECONDS="3", KIPORTAL_JOBS__PORTAL_WORKER="false",
               KIPORTAL_JOBS__WORKER_CONCURRENCY="1",
               KIPORTAL_AUTH__SECRET="s" * 40)  # cluster processes refuse to start without the shared secret
    return env


class Cluster:
    """A portal-side App (submits, reads rows; works no jobs) and `kiportal worker` processes."""

    def __init__(self, home: Path, env: dict, app, logs: Path) -> None:
        self.home, self.env, self.app, self.logs = home, env, app, logs
        self.procs: list[subprocess.Popen] = []

    @property
    def jobs(self):
        return self.app.admin.jobs

    def worker(self) -> subprocess.Popen:
        """Start `kiportal worker` and wait until it has registered (heartbeat in job_workers)."""
        log = open(self.logs / f"worker{len(self.procs)}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "-v", "worker"], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        ok = _until(lambda: any(w["pid"] == proc.pid and w["alive"] for w in workers(self.app.app_db))
                    or proc.poll() is not None, timeout=90)
        assert ok and proc.poll() is None, (self.logs / f"worker{len(self.procs) - 1}.log").read_text(errors="replace")
        return proc

    def owner(self, proc: subprocess.Popen) -> str:
        import socket

        return f"{socket.gethostname()}:{proc.pid}"

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.app.stop_jobs(wait=False)


@pytest.fixture
def cluster(tmp_path, pg_url, chroma_server, app_factory):
    home = tmp_path / "data"
    collection = f"jobs_{uuid.uuid4().hex[:10]}"
    env = _cluster_env(home, pg_url, chroma_server, collection)
    app = app_factory(home, app_db_url=pg_url,
                      vector={"mode": "chroma_http", "host": chroma_server.host, "port": chroma_server.port,
                              "collection": collection},
                      jobs={"heartbeat_seconds": 0.5, "stalled_after_seconds": 3.0, "portal_worker": False})
    app.start_jobs()  # every schema exists before workers start (the app DB's own migration race is not ours)
    logs = tmp_path / "logs"
    logs.mkdir()
    c = Cluster(home, env, app, logs)
    yield c
    c.stop()


def _files(folder: Path, n: int, prefix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{prefix}{i:03d}.txt").write_text(
            f"Dokument {prefix} {i}. Die Satzung regelt die Gebühr Nummer {i} für {prefix}.\n" * 3, encoding="utf-8")
    return folder


def test_a_job_submitted_by_a_process_that_exits_is_run_by_a_worker(cluster, tmp_path):
    src = _files(tmp_path / "src" / "a", 3, "a")
    cluster.app.ingestor.ingest([src], collection="A")
    script = ("from assistant.settings import load_settings; from assistant.wiring import App; "
              "app = App(load_settings()); print(app.start_jobs().submit_reindex('collection', 'A', 'test'))")
    out = subprocess.run([sys.executable, "-c", script], env=cluster.env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip().splitlines()[-1]
    assert cluster.jobs.get(job_id)["status"] == "queued"  # its submitter is gone; nobody failed it
    proc = cluster.worker()
    job = cluster.jobs.wait(job_id, timeout=60)
    assert job["status"] == "done", job
    assert job["owner"] == cluster.owner(proc) and job["result"]["updated"] == 3
    proc.terminate()  # SIGTERM: a clean stop, and the worker leaves the list of `kiportal status`
    assert proc.wait(timeout=90) == 0  # a deadline, not a timing: 30 s ran out once with the full suite beside it
    assert all(w["pid"] != proc.pid for w in workers(cluster.app.app_db))


def test_two_workers_never_run_two_jobs_of_one_collection_at_once(cluster, tmp_path):
    w1, w2 = cluster.worker(), cluster.worker()
    folders = {name: _files(tmp_path / "src" / name, 25, name) for name in ("a1", "a2", "a3", "b1")}
    admin = cluster.app.admin
    for coll in ("A", "B"):
        admin.create_collection(coll, admin.settings.policy.default_classification, "test")
    ids = {"a1": admin.submit_sync(str(folders["a1"]), "A", "test"),
           "b1": admin.submit_sync(str(folders["b1"]), "B", "test"),
           "a2": admin.submit_sync(str(folders["a2"]), "A", "test"),
           "all": admin.submit_reindex("changed", None, "test"),
           "a3": admin.submit_sync(str(folders["a3"]), "A", "test")}
    rows = {name: cluster.jobs.wait(job_id, timeout=120) for name, job_id in ids.items()}
    assert all(r["status"] == "done" for r in rows.values()), rows
    colls = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "all": ALL}
    names = list(rows)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            if colls[x] == colls[y] or ALL in (colls[x], colls[y]):
                a, b = rows[x], rows[y]
                assert a["finished_at"] <= b["started_at"] or b["finished_at"] <= a["started_at"], (x, y)
    # FIFO per collection: the A syncs ran in submission order, the '*' job after a2 and before a3
    assert rows["a1"]["finished_at"] <= rows["a2"]["started_at"] <= rows["a2"]["finished_at"] \
        <= rows["all"]["started_at"] <= rows["all"]["finished_at"] <= rows["a3"]["started_at"]
    assert {r["owner"] for r in rows.values()} == {cluster.owner(w1), cluster.owner(w2)}
    assert len(cluster.app.catalog.documents()) == 100


def test_sigkill_during_a_reindex_another_worker_finishes_it_without_duplicates(cluster, tmp_path):
    n = 60  # ~0.1 s each on 2 cores: the re-index runs for seconds, long enough to be killed mid-way
    src = _files(tmp_path / "src" / "k", n, "k")
    cluster.app.ingestor.ingest([src], collection="K")
    before = {r.doc_id: r.path for r in cluster.app.catalog.documents()}
    assert len(before) == n
    first = cluster.worker()
    job_id = cluster.app.admin.submit_reindex("collection", "K", "test")
    # progress written by the worker, read here by another App on the same database
    assert _until(lambda: 0 < (cluster.jobs.get(job_id) or {}).get("progress", 0) < 0.9, timeout=60, every=0.02), \
        cluster.jobs.get(job_id)
    running = cluster.jobs.get(job_id)
    assert running["status"] == "running" and running["owner"] == cluster.owner(first)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert cluster.jobs.get(job_id)["status"] == "running"  # nobody knows yet
    second = cluster.worker()
    job = cluster.jobs.wait(job_id, timeout=120)
    assert job["status"] == "done", job
    assert job["owner"] == cluster.owner(second) and job["attempt"] == 2
    assert job["result"]["updated"] == n and not job["result"]["failed"]
    # every document exactly once, the same ids; no duplicate chunk; no orphan vector
    docs = cluster.app.catalog.documents()
    assert {r.doc_id: r.path for r in docs} == before
    chunk_ids = [c.chunk_id for r in docs for c in cluster.app.catalog.iter_chunks(r.doc_id)]
    assert len(chunk_ids) == len(set(chunk_ids)) > 0
    assert cluster.app.vectors.ids() == set(chunk_ids)
    report = cluster.app.kb.check()
    assert report.ok, report.as_dict()
    # and re-running an ingest of the same files changes nothing committed (content hashes)
    again = cluster.app.ingestor.ingest([src], collection="K").as_dict()
    assert (again["unchanged"], again["added"], again["updated"]) == (n, 0, 0)
    assert {c.chunk_id for r in docs for c in cluster.app.catalog.iter_chunks(r.doc_id)} == set(chunk_ids)


def test_exclusive_steps_are_serialised_across_replicas(runners):
    """E.g. the OParl due-check: two replicas must not both see a source due and submit it."""
    one, two = runners(run_jobs=False), runners(run_jobs=False)
    inside: list[str] = []
    entered = threading.Event()

    def hold():
        with one.exclusive("oparl-due"):
            inside.append("one")
            entered.set()
            time.sleep(1.0)
            inside.append("one-out")

    t = threading.Thread(target=hold)
    t.start()
    assert entered.wait(10)
    with two.exclusive("oparl-due"):
        inside.append("two")
    t.join()
    assert inside == ["one", "one-out", "two"]


def test_a_row_without_queue_entry_is_failed_after_the_grace_period(runners):
    """The submitter died between inserting the row and deferring it: the row must not block
    its collection forever. A fresh row (still being submitted) is left alone."""
    from assistant.job_queue import LOST, ORPHAN_GRACE_S

    r = runners(run_jobs=False)
    r.register("noop", lambda job: {})
    r.start()
    queued = r.submit("noop", collection="A")  # has its queue entry
    for job_id, age in (("old", ORPHAN_GRACE_S + 5), ("young", 1.0)):
        r.db.execute("INSERT INTO jobs(id, kind, collection, params, status, created_at) "
                     "VALUES (:i, 'noop', 'A', '{}', 'queued', :t)", {"i": job_id, "t": time.time() - age})
    assert r._fail_lost_rows() == ["old"]
    assert (r.get("old")["status"], r.get("old")["message"]) == ("failed", LOST)
    assert r.get("young")["status"] == "queued" and r.get(queued)["status"] == "queued"


def test_a_cluster_portal_works_jobs_on_its_own_thread_by_default(tmp_path, pg_url, chroma_server, app_factory):
    """One portal on PostgreSQL needs no extra worker (jobs.portal_worker defaults to true); the
    wiring builds the cluster runner from the settings, and another App reads the outcome."""
    from assistant.job_queue import ClusterJobRunner

    vector = {"mode": "chroma_http", "host": chroma_server.host, "port": chroma_server.port,
              "collection": f"jobs_{uuid.uuid4().hex[:10]}"}
    home = tmp_path / "data"
    app = app_factory(home, app_db_url=pg_url, vector=vector)
    src = _files(tmp_path / "src", 3, "p")
    try:
        admin = app.start_jobs()
        assert isinstance(admin.jobs, ClusterJobRunner) and admin.jobs.run_jobs
        admin.create_collection("P", admin.settings.policy.default_classification, "test")
        job_id = admin.submit_sync(str(src), "P", "anna")
        other = app_factory(tmp_path / "other", app_db_url=pg_url, vector=vector)  # a second replica's App
        job = JobRunner(other.app_db).wait(job_id, timeout=60)  # reading needs no runner started
        assert job["status"] == "done" and job["result"]["added"] == 3, job
        assert [w["role"] for w in workers(app.app_db)] == ["portal"]
    finally:
        app.stop_jobs(wait=True)

