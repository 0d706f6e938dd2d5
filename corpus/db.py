"""Database engines and locks shared by every process of an installation.

The catalog (:mod:`corpus.catalog`) and the app database (``assistant.appdb``) reach their
database through :func:`make_engine`: a SQLite file in the data directory for the embedded
default, PostgreSQL in a cluster. :func:`database_lock` is a lock that holds across processes
and, on PostgreSQL, across machines: schema migrations run under it (so replicas starting
together on a fresh database never race), and so does every write that could delete vectors
another replica still needs (the writer lock, orphan sweeps, repairs).

* PostgreSQL: ``pg_advisory_lock`` on a connection of its own. The server releases it when the
  connection closes, so a replica that dies (or loses its network) never leaves it held. The flip
  side: a holder whose lock connection breaks while it works does not notice, and another process
  may take the lock and write beside it. A *fenced* lock (the writer lock) therefore hands out a
  :class:`Fence`: every acquisition raises a counter in the database, and the holder's commits (and
  its vector deletions) check, inside their own transaction and under a row lock on that counter,
  that it is still theirs – a holder that lost the lock gets :class:`LockLost` and commits nothing,
  and the next holder waits until a check in progress has finished.
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
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

#: how often a waiting lock asks again (PostgreSQL ``pg_try_advisory_lock``, ``flock`` non-blocking)
POLL_S = 0.05


class LockTimeout(TimeoutError):
    """A lock was not free within the given time (someone else is writing)."""


class LockLost(RuntimeError):
    """A fenced lock was taken by another process while this one believed it held it (its lock
    connection broke): nothing of the write in progress was committed. Run it again."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Schreibsperre „{name}“ verloren: die Verbindung zur Datenbank brach ab und ein anderer "
                         f"Prozess schreibt jetzt; von diesem Schreibvorgang wurde nichts übernommen, bitte erneut "
                         f"starten. / Lock {name!r} lost (its database connection broke and another process took "
                         f"it); nothing of this write was committed, run it again.")


#: one row per fenced lock: its epoch, raised by every acquisition
FENCE_TABLE = "kiportal_lock_epochs"


class Fence:
    """The fencing token of one acquisition of a fenced PostgreSQL lock (``epoch``); the no-op
    :data:`NO_FENCE` for every other lock (a file lock or an in-process lock cannot be lost while
    its process lives).

    ``check(conn)`` inside a write transaction: locks the lock's epoch row until that transaction
    ends and raises :class:`LockLost` when another process has taken the lock since. ``hold()``: a
    transaction of its own around work that is not a catalog commit (deleting vectors), so the next
    holder waits until it is done. Within ``hold()`` the same thread's checks pass at once: the row
    is already held, so the epoch cannot move (and a second row lock would wait for the first)."""

    def __init__(self, engine: Engine | None = None, name: str = "", epoch: int = 0, pid: int = 0) -> None:
        self.engine, self.name, self.epoch = engine, name, epoch
        self.pid = pid  # the lock connection's server process (logs, tests)
        self._local = threading.local()

    def check(self, conn: Connection) -> None:
        if self.engine is None or getattr(self._local, "depth", 0):
            return
        now = conn.execute(text(f"SELECT epoch FROM {FENCE_TABLE} WHERE name=:n FOR UPDATE"), {"n": self.name}).scalar()
        if now != self.epoch:
            log.error("lock %s lost: epoch %s, now %s", self.name, self.epoch, now)
            raise LockLost(self.name)

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self.engine is None or getattr(self._local, "depth", 0):
            yield
            return
        with self.engine.begin() as conn:
            self.check(conn)
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0


NO_FENCE = Fence()


_UNDEFINED_TABLE = "42P01"
#: unique_violation (on pg_type) and duplicate_table: another fenced lock created it at the same moment
_CREATED_BESIDE = frozenset({"23505", "42P07"})


def _create_fence_table(conn: Connection) -> None:
    """Create the epoch table; a concurrent creator is fine, any other error (a role without
    CREATE, say) is raised as it is, not hidden behind the table that is still missing."""
    try:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {FENCE_TABLE} (name TEXT PRIMARY KEY, epoch BIGINT NOT NULL)"))
    except (IntegrityError, ProgrammingError) as exc:
        if getattr(exc.orig, "sqlstate", None) not in _CREATED_BESIDE:
            raise


def _next_epoch(conn: Connection, name: str, deadline: float | None) -> Fence:
    """Raise and return the epoch of ``name`` (on the lock's own autocommit connection, right after
    the lock was granted). Waits while an earlier holder's check holds the row, at most until
    ``deadline`` (then :class:`LockTimeout`, like a lock that is not free).

    The table is created only when it is missing (the first fenced lock of a database), not with
    DDL on every acquisition."""
    if deadline is not None:
        conn.execute(text(f"SET lock_timeout = {max(1, int(_left(deadline) * 1000))}"))
    try:
        for attempt in range(2):
            try:
                epoch = conn.execute(text(f"INSERT INTO {FENCE_TABLE}(name, epoch) VALUES (:n, 1) ON CONFLICT (name) "
                                          f"DO UPDATE SET epoch = {FENCE_TABLE}.epoch + 1 RETURNING epoch"),
                                     {"n": name}).scalar()
                break
            except ProgrammingError as exc:
                if getattr(exc.orig, "sqlstate", None) != _UNDEFINED_TABLE or attempt:
                    raise
                _create_fence_table(conn)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # not lock_timeout: the connection broke
            raise
        raise LockTimeout(name) from exc  # lock_timeout: the former holder's step is still running
    finally:
        if deadline is not None:
            conn.execute(text("RESET lock_timeout"))
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    return Fence(conn.engine, name, int(epoch), int(pid))


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
def database_lock(engine: Engine, name: str, timeout: float | None = None, *, fenced: bool = False) -> Iterator[Fence]:
    """Hold the installation-wide lock ``name`` of the database behind ``engine``; yields its
    :class:`Fence` (``fenced`` on PostgreSQL, else :data:`NO_FENCE`).

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
                yield NO_FENCE
            finally:
                plock.release()
            return
        with file_lock(db.with_name(f"{db.name}.{name}.lock"), timeout, what=name):
            yield NO_FENCE
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
            try:
                fence = _next_epoch(conn, name, deadline) if fenced else NO_FENCE
            except OperationalError as exc:  # the lock connection broke while the fence was being set up
                log.warning("lock %s: connection lost while taking it: %s", name, exc)
                raise LockLost(name) from exc
            yield fence
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
    database lock exclude each other like two processes would. ``fence()`` is the holding thread's
    :class:`Fence` (:data:`NO_FENCE` for locks that cannot be lost, and outside the lock)."""

    def __init__(self, factory: Callable[[float | None], ContextManager[Fence | None]]) -> None:
        self._factory = factory
        self._local = threading.local()

    def held(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def fence(self) -> Fence:
        return getattr(self._local, "fence", NO_FENCE) if self.held() else NO_FENCE

    @contextmanager
    def __call__(self, timeout: float | None = None) -> Iterator[None]:
        if self.held():
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        with self._factory(timeout) as token:
            self._local.depth = 1
            self._local.fence = token if isinstance(token, Fence) else NO_FENCE
            try:
                yield
            finally:
                self._local.depth = 0
                self._local.fence = NO_FENCE


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
