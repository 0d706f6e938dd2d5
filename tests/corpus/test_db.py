"""The database lock holds across processes (and, on PostgreSQL, machines), gives up after its
timeout, and is released when its holder dies, so a killed replica never blocks the others; a
fenced lock whose connection broke refuses its former holder's commits."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from sqlalchemy import text

from corpus.db import NO_FENCE, LockLost, LockTimeout, ReentrantLock, database_lock, file_lock, make_engine, process_lock

REPO = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent("""
    import sys, time
    from corpus.db import database_lock, make_engine
    with database_lock(make_engine(sys.argv[1]), "kiportal-writer"):
        print("held", flush=True)
        time.sleep(600)
""")


def test_a_lock_another_process_holds_times_out_and_is_free_once_that_process_is_killed(any_db_url, tmp_path):
    engine = make_engine(any_db_url)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, any_db_url], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        with pytest.raises(LockTimeout):
            with database_lock(engine, "kiportal-writer", timeout=0.5):
                pass
        with database_lock(engine, "another-lock", timeout=0.5):  # locks by other names are independent
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with database_lock(engine, "kiportal-writer", timeout=10):  # the server (or the kernel) dropped it
        pass
    engine.dispose()


def test_the_holding_thread_may_nest_a_reentrant_lock_and_other_threads_wait(any_db_url):
    engine = make_engine(any_db_url)
    lock = ReentrantLock(lambda timeout: database_lock(engine, "kiportal-writer", timeout))
    other = ReentrantLock(lambda timeout: database_lock(engine, "kiportal-writer", timeout))  # a second replica
    failures: list[BaseException] = []

    def try_other() -> None:
        try:
            with other(0.3):
                pass
        except LockTimeout as exc:
            failures.append(exc)

    with lock():
        with lock(0.1):  # the same thread: free
            assert lock.held()
        t = threading.Thread(target=try_other)
        t.start()
        t.join()
    assert len(failures) == 1 and not lock.held()
    with other(5):
        pass
    engine.dispose()


def writer(engine) -> ReentrantLock:
    return ReentrantLock(lambda timeout: database_lock(engine, "kiportal-writer", timeout, fenced=True))


def cut_connection(engine, pid: int) -> None:
    """What a network cut or a restarted connection pooler does to a lock connection."""
    with engine.connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()


@pytest.mark.cluster
def test_a_fenced_lock_whose_connection_broke_refuses_its_former_holders_commits(pg_url):
    engine = make_engine(pg_url)
    a, b = writer(engine), writer(engine)
    with a():
        fa = a.fence()
        assert fa.epoch >= 1 and fa.pid
        with engine.begin() as conn:
            fa.check(conn)  # still a's
        cut_connection(engine, fa.pid)
        with b(10):  # the server dropped a's lock with its connection; a does not know
            fb = b.fence()
            assert fb.epoch == fa.epoch + 1
            with pytest.raises(LockLost, match="verloren.*lost"):
                with engine.begin() as conn:
                    fa.check(conn)
            with pytest.raises(LockLost):
                with fa.hold():
                    pass
            with engine.begin() as conn, fb.hold():
                fb.check(conn)  # within hold() the holder's own checks pass at once
    with a(5):  # a's way out found the connection gone; the lock is free
        assert a.fence().epoch == fb.epoch + 1
    engine.dispose()


@pytest.mark.cluster
def test_every_catalog_write_of_a_former_holder_is_refused_not_only_commits(pg_url):
    """The catalog checks the lock's fence in each write transaction (``Catalog.fence_writes``), so
    writes that are not commits (metadata such as an in-flight note, a new collection) are refused
    too; the same writes outside the lock, and the new holder's, go through."""
    from corpus.catalog import Catalog

    engine = make_engine(pg_url)
    a, b = writer(engine), writer(engine)
    cat_a, cat_b = Catalog(engine), Catalog(engine)
    cat_a.fence_writes(a)
    cat_b.fence_writes(b)
    with a():
        cat_a.set_meta("fence-probe", "a1")  # still a's
        cut_connection(engine, a.fence().pid)
        with b(10):
            with pytest.raises(LockLost):
                cat_a.set_meta("fence-probe", "a2")
            with pytest.raises(LockLost):
                cat_a.ensure_collection("fence-probe-collection")
            cat_b.set_meta("fence-probe", "b1")
        assert cat_a.get_meta("fence-probe") == "b1"
        assert "fence-probe-collection" not in {c["name"] for c in cat_a.collections()}
    cat_a.set_meta("fence-probe", "a3")  # not holding the lock: no fence to fail
    assert cat_b.get_meta("fence-probe") == "a3"
    cat_a.delete_meta("fence-probe")
    engine.dispose()


@pytest.mark.cluster
def test_the_first_fenced_lock_of_a_database_creates_the_epoch_table_later_ones_only_count(pg_url):
    from corpus.db import FENCE_TABLE

    engine = make_engine(pg_url)  # a fresh database: no epoch table yet
    with database_lock(engine, "neu", fenced=True) as first:
        assert first.epoch == 1
    with database_lock(engine, "neu", fenced=True) as second, engine.connect() as conn:
        assert second.epoch == 2
        assert conn.execute(text(f"SELECT epoch FROM {FENCE_TABLE} WHERE name = 'neu'")).scalar() == 2
    engine.dispose()


@pytest.mark.cluster
def test_a_role_that_may_not_create_the_epoch_table_gets_the_servers_own_reason(pg_url):
    """Not the "relation does not exist" of the INSERT that found the table missing."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ProgrammingError

    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text("CREATE ROLE leser LOGIN"))
        conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    reader = make_engine(make_url(pg_url).set(username="leser", password=None).render_as_string(hide_password=False))
    with pytest.raises(ProgrammingError, match="permission denied"):
        with database_lock(reader, "neu", fenced=True):
            pass
    reader.dispose()
    admin.dispose()


@pytest.mark.cluster
def test_once_the_epoch_table_exists_a_role_without_create_takes_the_lock(pg_url):
    """A replica may run as a role that can write the table but not create tables: a fenced lock
    then issues no DDL (it once ran CREATE TABLE IF NOT EXISTS on every acquisition)."""
    from sqlalchemy.engine import make_url

    from corpus.db import FENCE_TABLE

    admin = make_engine(pg_url)
    with database_lock(admin, "neu", fenced=True) as first:
        assert first.epoch == 1
    with admin.begin() as conn:
        conn.execute(text("CREATE ROLE replik LOGIN"))
        conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
        conn.execute(text(f"GRANT SELECT, INSERT, UPDATE ON {FENCE_TABLE} TO replik"))
    replica = make_engine(make_url(pg_url).set(username="replik", password=None).render_as_string(hide_password=False))
    with database_lock(replica, "neu", fenced=True) as second:
        assert second.epoch == 2
    replica.dispose()
    admin.dispose()


@pytest.mark.cluster
def test_the_next_holder_waits_until_a_fenced_step_in_progress_has_finished(pg_url):
    """A sweep that began while its lock was valid finishes before anyone else writes."""
    engine = make_engine(pg_url)
    a, b = writer(engine), writer(engine)
    got: list[int] = []

    def take_b() -> None:
        with b(10):
            got.append(b.fence().epoch)

    with a():
        fa = a.fence()
        with fa.hold():
            cut_connection(engine, fa.pid)
            t = threading.Thread(target=take_b)
            t.start()
            time.sleep(1.0)
            assert got == []  # b has the advisory lock, but its epoch waits for a's row
        t.join(10)
    assert got == [fa.epoch + 1]
    engine.dispose()


@pytest.mark.cluster
def test_a_holder_that_cannot_get_its_epoch_in_time_times_out_and_frees_the_lock(pg_url):
    """A former holder stuck inside a fenced step keeps the epoch row: the next holder waits at most
    its timeout (LockTimeout, as for a lock that is not free) and leaves the lock free."""
    engine = make_engine(pg_url)
    a, b = writer(engine), writer(engine)
    with a():
        fa = a.fence()
        with fa.hold():
            cut_connection(engine, fa.pid)
            t0 = time.monotonic()
            with pytest.raises(LockTimeout):
                with b(0.5):
                    pass
            assert time.monotonic() - t0 < 5
            with engine.connect() as conn:  # b left the advisory lock free again
                assert conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar() == 0
        with b(5):  # the step is over: the next holder gets its epoch
            assert b.fence().epoch == fa.epoch + 1
    engine.dispose()


@pytest.mark.parametrize("lock", ["sqlite", "file", "process"])
def test_locks_that_cannot_be_lost_while_their_process_lives_have_no_fence(tmp_path, lock):
    if lock == "process":
        held = process_lock()
    elif lock == "file":
        held = ReentrantLock(lambda timeout: file_lock(tmp_path / "writer.lock", timeout))
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
        held = ReentrantLock(lambda timeout: database_lock(engine, "kiportal-writer", timeout, fenced=True))
    with held():
        assert held.fence() is NO_FENCE
        NO_FENCE.check(None)  # never touches a connection
    assert held.fence() is NO_FENCE


@pytest.mark.cluster
def test_a_lock_whose_connection_breaks_while_it_is_being_taken_says_lost_not_an_internal_error(pg_url, monkeypatch):
    """Found by the cluster test of a cut during an upload: the cut can fall between the advisory lock
    being granted and its fence being set up; that raised a raw OperationalError ("terminating
    connection"), now the same LockLost as a cut later on."""
    import corpus.db as db

    engine = make_engine(pg_url)
    real = db._next_epoch

    def cut_first(conn, name, deadline):
        cut_connection(engine, conn.execute(text("SELECT pg_backend_pid()")).scalar())
        return real(conn, name, deadline)

    monkeypatch.setattr(db, "_next_epoch", cut_first)
    with pytest.raises(LockLost, match="verloren"):
        with database_lock(engine, "kiportal-writer", 10, fenced=True):
            pass
    monkeypatch.setattr(db, "_next_epoch", real)
    with database_lock(engine, "kiportal-writer", 10, fenced=True) as fence:  # the lock is free again
        assert fence.epoch >= 1
    engine.dispose()
