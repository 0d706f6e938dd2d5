"""The database lock holds across processes (and, on PostgreSQL, machines), gives up after its
timeout, and is released when its holder dies, so a killed replica never blocks the others."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from corpus.db import LockTimeout, ReentrantLock, database_lock, make_engine

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
