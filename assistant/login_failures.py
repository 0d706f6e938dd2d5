"""The counters of failed logins, in the app database (the state of ``ui.login.LoginThrottle``).

Why the database and not process memory: behind a load balancer every replica would count only
the failures it saw itself, so an attacker spreading guesses over n replicas got n times the
tries (and a restart wiped the back-off). In the app database all replicas count together.

Each counter is one row ``(key, failures, last_at)``; a failure is one atomic upsert (no read
before the write), so two replicas counting at once lose nothing. A counter whose last failure
is older than the throttle's window starts again at one. The decision what the counters mean
stays a pure function in :mod:`ui.login`.

The attempts being checked right now live here too (``login_checks``: one row per attempt and
counter, removed when its check ends). Kept per process they let each replica check its own few
parallel guesses for one name: behind a load balancer n replicas gave a burst n times the checks.
A row older than :data:`CHECK_STALE_S` is ignored and purged (its replica died mid-check).
"""
from __future__ import annotations

import threading
from typing import Iterable

from assistant.appdb import AppDB

_MIGRATIONS = [
    "CREATE TABLE login_failures (key TEXT PRIMARY KEY, failures INTEGER NOT NULL, "
    "last_at DOUBLE PRECISION NOT NULL)",
]
_CHECK_MIGRATIONS = [
    "CREATE TABLE login_checks (token TEXT NOT NULL, key TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (token, key))",
    "CREATE INDEX login_checks_key ON login_checks (key)",
]
_KNOWN_MIGRATIONS = [
    "CREATE TABLE login_known (key TEXT PRIMARY KEY, last_at DOUBLE PRECISION NOT NULL)",
]
#: How long an address stays known for a name after a successful login there (the name's counter
#: then does not hold it back: strangers guessing the name cannot lock its owner out).
KNOWN_S = 30 * 24 * 3600.0
PURGE_EVERY_S = 600.0  # rows past the window are deleted at most this often per process
#: How long a counter remembers its last failure. One window for every counter in the table (logins and
#: training join codes), since a purge deletes every row past the window it is given.
WINDOW_S = 3600.0
#: A check still running after this long is taken for a dead replica's and no longer counted (an
#: Argon2 check takes well under a second; a login request times out long before a minute).
CHECK_STALE_S = 60.0

#: A counter stops growing here: an address hammering for weeks must not overflow the column.
MAX_COUNT = 1_000_000

_UPSERT = (
    "INSERT INTO login_failures(key, failures, last_at) VALUES (:k, 1, :t) "
    "ON CONFLICT (key) DO UPDATE SET "
    "failures = CASE WHEN :t - login_failures.last_at > :w THEN 1 "
    f"WHEN login_failures.failures >= {MAX_COUNT} THEN {MAX_COUNT} ELSE login_failures.failures + 1 END, "
    "last_at = :t"
)


class DBLoginFailures:
    """Failure counters shared by every process on the same app database."""

    def __init__(self, db: AppDB) -> None:
        self.db = db
        db.ensure_schema("login_failures", _MIGRATIONS)
        db.ensure_schema("login_checks", _CHECK_MIGRATIONS)
        db.ensure_schema("login_known", _KNOWN_MIGRATIONS)
        self._purged = 0.0
        self._lock = threading.Lock()

    def get(self, keys: Iterable[str]) -> dict[str, tuple[int, float]]:
        keys = list(keys)
        if not keys:
            return {}
        names = {f"k{n}": key for n, key in enumerate(keys)}
        rows = self.db.query(f"SELECT key, failures, last_at FROM login_failures WHERE key IN "
                             f"({', '.join(':' + n for n in names)})", names)
        return {r["key"]: (int(r["failures"]), float(r["last_at"])) for r in rows}

    def add(self, keys: Iterable[str], now: float, window_s: float) -> None:
        """Count one failure for each key (starting again at one after ``window_s`` without one)."""
        params = [{"k": key, "t": float(now), "w": float(window_s)} for key in keys]
        if params:
            with self.db.begin() as conn:
                from sqlalchemy import text

                for p in params:  # one statement per key: executemany of an upsert is not portable
                    conn.execute(text(_UPSERT), p)
        self._purge(now, window_s)

    def clear(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            names = {f"k{n}": key for n, key in enumerate(keys)}
            self.db.execute(f"DELETE FROM login_failures WHERE key IN ({', '.join(':' + n for n in names)})", names)

    def remember(self, key: str, now: float) -> None:
        """A successful login at this (address, name): known for :data:`KNOWN_S`."""
        self.db.execute("INSERT INTO login_known(key, last_at) VALUES (:k, :t) "
                        "ON CONFLICT (key) DO UPDATE SET last_at = :t", {"k": key, "t": float(now)})

    def known(self, key: str, now: float) -> bool:
        row = self.db.one("SELECT last_at FROM login_known WHERE key=:k", {"k": key})
        return row is not None and now - float(row["last_at"]) <= KNOWN_S

    def start_checks(self, keys: Iterable[str], token: str, now: float) -> None:
        """An attempt (``token``) is being checked: it counts for ``keys`` until :meth:`end_checks`."""
        params = [{"tok": token, "k": key, "t": float(now)} for key in keys]
        if params:
            self.db.execute("INSERT INTO login_checks(token, key, started_at) VALUES (:tok, :k, :t)", params)

    def checks(self, keys: Iterable[str], now: float) -> dict[str, int]:
        """Attempts being checked right now per key, by every process on this database."""
        keys = list(keys)
        if not keys:
            return {}
        names = {f"k{n}": key for n, key in enumerate(keys)}
        rows = self.db.query(f"SELECT key, COUNT(*) AS n FROM login_checks WHERE started_at >= :since AND key IN "
                             f"({', '.join(':' + n for n in names)}) GROUP BY key",
                             {**names, "since": now - CHECK_STALE_S})
        return {r["key"]: int(r["n"]) for r in rows}

    def end_checks(self, token: str) -> None:
        self.db.execute("DELETE FROM login_checks WHERE token=:tok", {"tok": token})

    def state(self, keys: Iterable[str], now: float) -> tuple[dict[str, tuple[int, float]], dict[str, int]]:
        """:meth:`get` and :meth:`checks` in one statement, so one snapshot: an attempt whose failure
        is being recorded is seen either still checked or failed, never both and never neither."""
        keys = list(keys)
        if not keys:
            return {}, {}
        names = {f"k{n}": key for n, key in enumerate(keys)}
        among = ", ".join(":" + n for n in names)
        rows = self.db.query(
            f"SELECT 'f' AS kind, key, failures AS n, last_at FROM login_failures WHERE key IN ({among}) "
            f"UNION ALL SELECT 'c' AS kind, key, COUNT(*) AS n, 0.0 AS last_at FROM login_checks "
            f"WHERE started_at >= :since AND key IN ({among}) GROUP BY key",
            {**names, "since": now - CHECK_STALE_S})
        counts = {r["key"]: (int(r["n"]), float(r["last_at"])) for r in rows if r["kind"] == "f"}
        return counts, {r["key"]: int(r["n"]) for r in rows if r["kind"] == "c"}

    def end_check(self, token: str, *, failed: Iterable[str] = (), cleared: Iterable[str] = (),
                  now: float, window_s: float) -> None:
        """End one attempt's check and count its failure (``failed``) or clear counters (``cleared``)
        in one transaction: a parallel attempt never sees the failure twice or not at all."""
        from sqlalchemy import text

        failed, cleared = list(failed), list(cleared)
        with self.db.begin() as conn:
            for key in failed:
                conn.execute(text(_UPSERT), {"k": key, "t": float(now), "w": float(window_s)})
            for key in cleared:
                conn.execute(text("DELETE FROM login_failures WHERE key=:k"), {"k": key})
            if token:  # "" = an attempt that was never let through begin(): no check to end
                conn.execute(text("DELETE FROM login_checks WHERE token=:tok"), {"tok": token})
        if failed:
            self._purge(now, window_s)

    def _purge(self, now: float, window_s: float) -> None:
        """Delete counters past the window (they would start again at one anyway): housekeeping."""
        with self._lock:
            if abs(now - self._purged) < PURGE_EVERY_S:
                return
            self._purged = now
        self.db.execute("DELETE FROM login_failures WHERE last_at < :t", {"t": now - window_s})
        self.db.execute("DELETE FROM login_checks WHERE started_at < :t", {"t": now - CHECK_STALE_S})
        self.db.execute("DELETE FROM login_known WHERE last_at < :t", {"t": now - KNOWN_S})
