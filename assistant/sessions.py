"""Login sessions of password mode, in the app database.

Why not gradio's own token dict: it lives in one process's memory, never expires and
knows nothing about the user database, so a session outlived a password change, a role
change and the removal of its user. Here every session stores the user's credential
stamp (:meth:`assistant.users.UserStore.stamp`) and is valid only while

* the user still exists with the same stamp (password, role and the user row unchanged:
  ``kiportal users passwd/role/remove`` end all their sessions, from any process),
* it was used within ``auth.session_idle_minutes``, and
* it is younger than ``auth.session_max_hours``.

Only a SHA-256 of the token is stored: a copy of the database opens no session.
"""
from __future__ import annotations

import hashlib
import logging
import secrets

from assistant.appdb import AppDB, now
from assistant.users import UserStore

log = logging.getLogger(__name__)

_MIGRATIONS = [
    "CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, stamp TEXT NOT NULL, "
    "created_at DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL)",
]
TOUCH_EVERY_S = 30.0  # last_seen is written at most this often per session (one write per request is waste)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionStore:
    def __init__(self, db: AppDB, users: UserStore, *, idle_s: float, max_age_s: float) -> None:
        self.db = db
        self.users = users
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        db.ensure_schema("sessions", _MIGRATIONS)

    @classmethod
    def from_settings(cls, db: AppDB, users: UserStore, settings) -> "SessionStore":
        a = settings.auth
        return cls(db, users, idle_s=a.session_idle_minutes * 60.0, max_age_s=a.session_max_hours * 3600.0)

    def open(self, name: str, token: str | None = None) -> str | None:
        """Start a session for ``name`` (known user) and return its token (None if unknown)."""
        stamp = self.users.stamp(name)
        if stamp is None:
            return None
        token = token or secrets.token_urlsafe(32)
        t = now()
        self.db.execute("INSERT INTO sessions(token_hash, user_name, stamp, created_at, last_seen) "
                        "VALUES (:h, :u, :s, :t, :t)", {"h": _hash(token), "u": name, "s": stamp, "t": t})
        return token

    def user_of(self, token: str | None, *, at: float | None = None) -> str | None:
        """The user name of a valid session; an invalid one is deleted on the way."""
        if not token:
            return None
        h = _hash(token)
        row = self.db.one("SELECT user_name, stamp, created_at, last_seen FROM sessions WHERE token_hash=:h", {"h": h})
        if row is None:
            return None
        t = at if at is not None else now()
        reason = None
        if t - row["last_seen"] > self.idle_s:
            reason = "idle"
        elif t - row["created_at"] > self.max_age_s:
            reason = "max_age"
        elif self.users.stamp(row["user_name"]) != row["stamp"]:
            reason = "user_changed"
        if reason:
            log.info("session of %s ended (%s)", row["user_name"], reason)
            self.db.execute("DELETE FROM sessions WHERE token_hash=:h", {"h": h})
            return None
        if t - row["last_seen"] > TOUCH_EVERY_S:
            self.db.execute("UPDATE sessions SET last_seen=:t WHERE token_hash=:h", {"h": h, "t": t})
        return row["user_name"]

    def close(self, token: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE token_hash=:h", {"h": _hash(token)})

    def close_user(self, name: str) -> int:
        return self.db.execute("DELETE FROM sessions WHERE user_name=:u", {"u": name})

    def tokens_of(self, name: str) -> int:
        row = self.db.one("SELECT COUNT(*) AS n FROM sessions WHERE user_name=:u", {"u": name})
        return int(row["n"]) if row else 0

    def purge(self, *, at: float | None = None) -> int:
        """Delete sessions past their idle time or maximum age (stale rows, not a security need)."""
        t = at if at is not None else now()
        return self.db.execute("DELETE FROM sessions WHERE last_seen < :i OR created_at < :m",
                               {"i": t - self.idle_s, "m": t - self.max_age_s})
