"""Users, roles and groups in the app database; passwords hashed with Argon2id.

Groups (Ämter, Fachbereiche) decide which collections a user may read (see
:mod:`assistant.access`). Which group names exist: the setting ``access.groups`` and the groups
admins create at run time (:class:`GroupStore`, Verwaltung or ``kiportal groups add``); the names
are checked by the callers that change groups (:class:`assistant.access.Departments`), not here.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from sqlalchemy import text

from assistant.appdb import AppDB, now

ROLES = ("staff", "trainer", "admin")
RANK = {role: n for n, role in enumerate(ROLES)}


def valid_user_name(name: str) -> bool:
    """Letters, digits and ``. _ - @``, at most 64: safe in paths, HTML, logs and headers (every name
    the portal accepts from a login or an SSO proxy)."""
    return (0 < len(name) <= 64 and name.strip(".") != ""
            and all(ch.isalnum() or ch in "._-@" for ch in name))


def _latin(ch: str) -> bool:
    return ch.isascii() or ("\u00c0" <= ch <= "\u00ff" and ch not in "\u00d7\u00f7")


def valid_new_user_name(name: str) -> bool:
    """A name for a new account: :func:`valid_user_name` in Latin letters only (ASCII and those of
    Latin-1: "jürgen", "rené").

    Why: a name in another script can look exactly like an existing one ("аdam" with a Cyrillic
    а, "ａｄａｍ" in fullwidth), and an admin would give a role or groups to the wrong account, or
    read an audit line as someone else's (found by an attacker's probe). Only new accounts are
    held to it: existing ones, and names an SSO proxy sends, keep working as before."""
    return valid_user_name(name) and all(_latin(ch) for ch in name)


# letters and digits without look-alikes (0/O, 1/l/I): the admin reads the password out or copies it
PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_password(groups: int = 4, size: int = 5) -> str:
    """A fresh random password for a new user or a reset, e.g. ``Kx7pq-3aRtz-...``.

    ``secrets`` (the system's CSPRNG); 4 groups of 5 from 57 characters are about 116 bits. Shown to
    the admin once and stored only as its Argon2id hash (never logged, never in the audit)."""
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(size)) for _ in range(groups))


MIN_PASSWORD = 8
MAX_PASSWORD = 256  # Argon2 hashes any length; a limit keeps a megabyte "password" from costing time


def new_password_problem(name: str, current: str, new: str, repeat: str) -> str | None:
    """Why a user's own new password is refused (German), or None: the decision, a pure function.

    Long enough, typed the same twice, not the old one, and not the user name in another spelling."""
    if not current:
        return "Bitte geben Sie Ihr bisheriges Passwort ein."
    if len(new) < MIN_PASSWORD:
        return f"Das neue Passwort ist zu kurz (mindestens {MIN_PASSWORD} Zeichen)."
    if len(new) > MAX_PASSWORD:
        return f"Das neue Passwort ist zu lang (höchstens {MAX_PASSWORD} Zeichen)."
    if new != repeat:
        return "Die beiden Eingaben des neuen Passworts stimmen nicht überein."
    if new == current:
        return "Das neue Passwort muss sich vom bisherigen unterscheiden."
    if len(name) >= 4 and name.casefold() in new.casefold():  # a name as short as "kai" stands in many words
        return "Das neue Passwort darf den Benutzernamen nicht enthalten."
    return None


_MIGRATIONS = [
    "CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL, "
    "created_at DOUBLE PRECISION NOT NULL, last_login DOUBLE PRECISION)",
    # 2: groups per user (an existing user starts with none: they read what everyone reads)
    ["CREATE TABLE user_groups (user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, "
     "grp TEXT NOT NULL, PRIMARY KEY (user_name, grp))"],
    # 3: a start password an admin handed out must be changed by its owner before anything else
    "ALTER TABLE users ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0",
]


@dataclass(frozen=True)
class User:
    name: str
    role: str
    groups: tuple[str, ...] = ()
    must_change: bool = False  # signed in with a start password an admin handed out (ui.security)

    def has(self, role: str) -> bool:
        """Roles are ordered: an admin may do what a trainer may, a trainer what staff may."""
        return RANK.get(self.role, -1) >= RANK[role]


class UserStore:
    def __init__(self, db: AppDB) -> None:
        self.db = db
        self._hasher = PasswordHasher()
        db.ensure_schema("users", _MIGRATIONS)

    @staticmethod
    def _check(name: str | None, role: str | None = None) -> None:
        """``name``: a new account's name (None: an existing account, which keeps its name)."""
        if name is not None and not valid_new_user_name(name):
            raise ValueError("Ungültiger Benutzername / invalid user name")
        if role is not None and role not in ROLES:
            raise ValueError(f"Unbekannte Rolle / unknown role: {role} ({', '.join(ROLES)})")

    def add(self, name: str, password: str, role: str = "staff", groups: Sequence[str] = (), *,
            must_change: bool = False, subject: str | None = None) -> User:
        """A new user; ``must_change``: the password is a start password its owner replaces first.

        Creating an account names a person anew (header mode, :mod:`assistant.sso_subjects`): the
        name's SSO binding goes to ``subject`` if given, else to the next subject that signs in, in
        the same transaction as the account, so no sign-in between the two can take it."""
        from assistant.sso_subjects import SubjectBindings, check_subject, own_in

        self._check(name, role)
        if subject is not None:
            check_subject(subject)
        if len(password) < 8:
            raise ValueError("Passwort zu kurz (mindestens 8 Zeichen) / password too short")
        if self.get(name):
            raise ValueError(f"Benutzer existiert bereits / user exists: {name}")
        groups = tuple(sorted(dict.fromkeys(groups)))
        hashed = self._hasher.hash(password)  # before the transaction: it takes a moment
        self._forget(name)  # what an earlier account of this name left (removed before that was done, or saved late)
        SubjectBindings(self.db)  # its table
        with self.db.begin() as conn:
            own_in(conn, name, subject)
            conn.execute(text("INSERT INTO users(name, password_hash, role, created_at, must_change) "
                              "VALUES (:n, :h, :r, :t, :m)"),
                         {"n": name, "h": hashed, "r": role, "t": now(), "m": int(must_change)})
            for g in groups:
                conn.execute(text("INSERT INTO user_groups(user_name, grp) VALUES (:n, :g)"), {"n": name, "g": g})
        return User(name, role, groups, must_change)

    def groups(self, name: str) -> tuple[str, ...]:
        rows = self.db.query("SELECT grp FROM user_groups WHERE user_name=:n ORDER BY grp", {"n": name})
        return tuple(r["grp"] for r in rows)

    def set_groups(self, name: str, groups: Sequence[str]) -> tuple[str, ...]:
        """Replace the user's groups (callers validate the names); returns the new groups."""
        groups = tuple(sorted(dict.fromkeys(groups)))
        with self.db.begin() as conn:
            if conn.execute(text("SELECT 1 FROM users WHERE name=:n"), {"n": name}).first() is None:
                raise KeyError(name)
            conn.execute(text("DELETE FROM user_groups WHERE user_name=:n"), {"n": name})
            for g in groups:
                conn.execute(text("INSERT INTO user_groups(user_name, grp) VALUES (:n, :g)"), {"n": name, "g": g})
        return groups

    def get(self, name: str) -> User | None:
        row = self.db.one("SELECT name, role, must_change FROM users WHERE name=:n", {"n": name})
        return User(row["name"], row["role"], self.groups(row["name"]), bool(row["must_change"])) if row else None

    def list(self) -> list[dict]:
        rows = self.db.query("SELECT name, role, created_at, last_login FROM users ORDER BY name")
        groups: dict[str, list[str]] = {}
        for r in self.db.query("SELECT user_name, grp FROM user_groups ORDER BY grp"):
            groups.setdefault(r["user_name"], []).append(r["grp"])
        return [dict(r, groups=groups.get(r["name"], [])) for r in rows]

    def remove(self, name: str) -> dict[str, int]:
        """Remove the account and what it leaves behind (:mod:`assistant.user_data`: chats, tool runs,
        its training sessions), so a later account of the same name starts empty; the counts."""
        with self.db.begin() as conn:  # explicit: PRAGMA foreign_keys may be off on other engines
            conn.execute(text("DELETE FROM user_groups WHERE user_name=:n"), {"n": name})
            if conn.execute(text("DELETE FROM users WHERE name=:n"), {"n": name}).rowcount == 0:
                raise KeyError(name)
        return self._forget(name)

    def _forget(self, name: str) -> dict[str, int]:
        from assistant.user_data import forget_user  # the stores of chats, runs and sessions build on this one

        return forget_user(self.db, name)

    def set_password(self, name: str, password: str, *, must_change: bool = False) -> None:
        """A new password; ``must_change``: a start password that its owner must replace first."""
        if len(password) < 8:
            raise ValueError("Passwort zu kurz (mindestens 8 Zeichen) / password too short")
        if self.db.execute("UPDATE users SET password_hash=:h, must_change=:m WHERE name=:n",
                           {"n": name, "h": self._hasher.hash(password), "m": int(must_change)}) == 0:
            raise KeyError(name)

    def set_role(self, name: str, role: str) -> None:
        self._check(None, role)
        if self.db.execute("UPDATE users SET role=:r WHERE name=:n", {"n": name, "r": role}) == 0:
            raise KeyError(name)

    def stamp(self, name: str) -> str | None:
        """A fingerprint of the user's credentials and role (None for an unknown user).

        A login session stores the stamp it was created with and ends when it changes:
        a new password (new salted hash), a new role, or removal (a re-added user has a new
        hash) end every session of that user, also when another process (the CLI) changed it.
        """
        row = self.db.one("SELECT name, role, password_hash, created_at FROM users WHERE name=:n", {"n": name})
        if row is None:
            return None
        raw = f"{row['name']}\x1f{row['role']}\x1f{row['password_hash']}\x1f{row['created_at']}"
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]

    def password_matches(self, name: str, password: str) -> bool:
        """The password check alone (changing one's password is no login: last_login stays)."""
        row = self.db.one("SELECT password_hash FROM users WHERE name=:n", {"n": name})
        if row is None:
            self._hasher.hash(password)  # same cost whether or not the user exists
            return False
        try:
            return self._hasher.verify(row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify(self, name: str, password: str) -> User | None:
        row = self.db.one("SELECT name, role, password_hash FROM users WHERE name=:n", {"n": name})
        if row is None:
            self._hasher.hash(password)  # same cost whether or not the user exists
            return None
        try:
            self._hasher.verify(row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        self.db.execute("UPDATE users SET last_login=:t WHERE name=:n", {"n": name, "t": now()})
        return User(row["name"], row["role"], self.groups(row["name"]))


# -- groups created at run time ----------------------------------------------------------
_GROUP_MIGRATIONS = [
    # 1: groups (Ämter) admins create in the portal or with `kiportal groups add`; the configured
    # ones (access.groups) are not stored: the known groups are both together
    "CREATE TABLE access_groups (name TEXT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL, "
    "created_by TEXT NOT NULL)",
]


class GroupStore:
    """The group names admins created (``access_groups``); callers check the names and the rules
    (:meth:`assistant.access.Departments.create_group`, ``remove_group``)."""

    def __init__(self, db: AppDB) -> None:
        self.db = db
        db.ensure_schema("groups", _GROUP_MIGRATIONS)

    def names(self) -> list[str]:
        return [r["name"] for r in self.db.query("SELECT name FROM access_groups ORDER BY name")]

    def list(self) -> list[dict]:
        return self.db.query("SELECT name, created_at, created_by FROM access_groups ORDER BY name")

    def add(self, name: str, actor: str) -> bool:
        """Store ``name``; False when it is stored already (nothing changes then)."""
        return self.db.execute("INSERT INTO access_groups(name, created_at, created_by) VALUES (:n, :t, :a) "
                               "ON CONFLICT (name) DO NOTHING", {"n": name, "t": now(), "a": actor}) == 1

    def remove(self, name: str) -> bool:
        return self.db.execute("DELETE FROM access_groups WHERE name=:n", {"n": name}) == 1

    def members(self, name: str) -> list[str]:
        """The users whose stored groups include ``name``."""
        rows = self.db.query("SELECT user_name FROM user_groups WHERE grp=:g ORDER BY user_name", {"g": name})
        return [r["user_name"] for r in rows]
