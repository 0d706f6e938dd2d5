"""Database engines and locks shared by every process of an installation.

The catalog (:mod:`corpus.catalog`) and the app database (``assistant.appdb``) reach their
database through :func:`make_engine`: a SQLite file in the data directory for the embedded
default, PostgreSQL in a cluster. :func:`database_lock` is a lock that holds across processes
and, on PostgreSQL, across machines: schema migrations run under it (so replicas starting
together on a fresh database never race), and so does every write that could delete vectors
another replica still needs (the writer lock, orphan sweeps, repairs).

* PostgreSQL: ``pg_advisory_lock`` on a connection of its own. The server releases it when the
  connection closes, so a replica that dies (or loses its network) never leaves it held.
* SQLite: ``fcntl.flock`` on a file next to the database file plus a lock inside the process
  (``flock`` excludes other open files, the process lock other threads; both end with the process).

The locks are not re-entrant: a thread that takes a lock it holds waits (and with a timeout gets
:class:`LockTimeout`). :class:`ReentrantLock` wraps one for code that nests, e.g. an ingest that
sweeps orphans at its end under the writer lock it already holds.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

#: how often a waiting lock asks again (PostgreSQL ``pg_try_advisory_lock``, ``flock`` non-blocking)
POLL_S = 0.05


class LockTimeout(TimeoutError):
    """A lock was not free within the given time (someone else is writing)."""


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else engine_or_url.url.drivername
    return str(url).startswith("sqlite")


def sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (None for an in-memory database)."""
    database = engine.url.database
    return Path(database) if database and database != ":memory:" else None


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite files get WAL (readers never wait for the writer),
    ``synchronous=NORMAL``, foreign keys and a 30 s busy timeout; an in-memory SQLite database is
    one connection shared by all threads; PostgreSQL connections are checked before use (a
    restarted server must not fail the first request of every pooled connection)."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if memory:
            engine = create_engine("sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool)
        else:
            Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
            # no limit on open connections: the catalog keeps one per reading thread (a portal has
            # dozens of worker threads), and a SQLite connection costs a file handle, not a server slot
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, max_overflow=-1)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def lock_key(name: str) -> int:
    """The 64-bit advisory-lock key of a lock name (stable across processes and machines)."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)


_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(key: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _left(deadline: float | None) -> float:
    return -1 if deadline is None else max(0.0, deadline - time.monotonic())


@contextmanager
def file_lock(path: Path, timeout: float | None = None, *, what: str = "") -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing) plus a process lock; waits at most
    ``timeout`` seconds (None: as long as it takes), then raises :class:`LockTimeout`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = _deadline(timeout)
    plock = _process_lock(f"file:{path.resolve()}")
    if not plock.acquire(timeout=_left(deadline)):
        raise LockTimeout(what or str(path))
    try:
        with open(path, "a") as fh:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | (fcntl.LOCK_NB if deadline is not None else 0))
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(what or str(path)) from None
                    time.sleep(POLL_S)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        plock.release()


@contextmanager
def database_lock(engine: Engine, name: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the installation-wide lock ``name`` of the database behind ``engine``.

    PostgreSQL: a session advisory lock on a dedicated autocommit connection, so the caller's
    own transactions (on other pooled connections) commit independently of it. SQLite: a file
    lock ``<database>.<name>.lock`` next to the database file (an in-memory database: the process
    lock alone)."""
    if is_sqlite(engine):
        db = sqlite_file(engine)
        if db is None:
            plock = _process_lock(f"memory:{id(engine)}:{name}")
            if not plock.acquire(timeout=_left(_deadline(timeout))):
                raise LockTimeout(name)
            try:
                yield
            finally:
                plock.release()
            return
        with file_lock(db.with_name(f"{db.name}.{name}.lock"), timeout, what=name):
            yield
        return
    key = lock_key(name)
    deadline = _deadline(timeout)
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        if deadline is None:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        else:
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                if time.monotonic() >= deadline:
                    raise LockTimeout(name)
                time.sleep(POLL_S)
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            except Exception:  # the connection is gone: the server has dropped the lock with it
                log.warning("advisory lock %s: connection lost before unlock", name, exc_info=True)
                conn.invalidate()
    finally:
        conn.close()


class ReentrantLock:
    """A lock from ``factory(timeout)`` that the thread holding it may take again (the inner
    ``with`` is then free). Each object is one holder: two :class:`ReentrantLock` over the same
    database lock exclude each other like two processes would."""

    def __init__(self, factory: Callable[[float | None], ContextManager[None]]) -> None:
        self._factory = factory
        self._local = threading.local()

    def held(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def __call__(self, timeout: float | None = None) -> Iterator[None]:
        if self.held():
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        with self._factory(timeout):
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0


def process_lock() -> ReentrantLock:
    """A writer lock for one process only (a knowledge base built without a shared one: tests, tools)."""
    lock = threading.Lock()

    @contextmanager
    def take(timeout: float | None) -> Iterator[None]:
        if not lock.acquire(timeout=-1 if timeout is None else timeout):
            raise LockTimeout("writer")
        try:
            yield
        finally:
            lock.release()

    return ReentrantLock(take)
