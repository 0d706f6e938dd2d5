"""Users and roles in the app database; passwords hashed with Argon2id."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from assistant.appdb import AppDB, now

ROLES = ("staff", "trainer", "admin")
RANK = {role: n for n, role in enumerate(ROLES)}


def valid_user_name(name: str) -> bool:
    """Letters, digits and ``. _ - @``, at most 64: safe in paths, HTML, logs and headers."""
    return (0 < len(name) <= 64 and name.strip(".") != ""
            and all(ch.isalnum() or ch in "._-@" for ch in name))

_MIGRATIONS = [
    "CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL, "
    "created_at DOUBLE PRECISION NOT NULL, last_login DOUBLE PRECISION)",
]


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def has(self, role: str) -> bool:
        """Roles are ordered: an admin may do what a trainer may, a trainer what staff may."""
        return RANK.get(self.role, -1) >= RANK[role]


class UserStore:
    def __init__(self, db: AppDB) -> None:
        self.db = db
        self._hasher = PasswordHasher()
        db.ensure_schema("users", _MIGRATIONS)

    @staticmethod
    def _check(name: str, role: str | None = None) -> None:
        if not valid_user_name(name):
            raise ValueError("Ungültiger Benutzername / invalid user name")
        if role is not None and role not in ROLES:
            raise ValueError(f"Unbekannte Rolle / unknown role: {role} ({', '.join(ROLES)})")

    def add(self, name: str, password: str, role: str = "staff") -> User:
        self._check(name, role)
        if len(password) < 8:
            raise ValueError("Passwort zu kurz (mindestens 8 Zeichen) / password too short")
        if self.get(name):
            raise ValueError(f"Benutzer existiert bereits / user exists: {name}")
        self.db.execute("INSERT INTO users(name, password_hash, role, created_at) VALUES (:n, :h, :r, :t)",
                        {"n": name, "h": self._hasher.hash(password), "r": role, "t": now()})
        return User(name, role)

    def get(self, name: str) -> User | None:
        row = self.db.one("SELECT name, role FROM users WHERE name=:n", {"n": name})
        return User(row["name"], row["role"]) if row else None

    def list(self) -> list[dict]:
        return self.db.query("SELECT name, role, created_at, last_login FROM users ORDER BY name")

    def remove(self, name: str) -> None:
        if self.db.execute("DELETE FROM users WHERE name=:n", {"n": name}) == 0:
            raise KeyError(name)

    def set_password(self, name: str, password: str) -> None:
        if len(password) < 8:
            raise ValueError("Passwort zu kurz (mindestens 8 Zeichen) / password too short")
        if self.db.execute("UPDATE users SET password_hash=:h WHERE name=:n", {"n": name, "h": self._hasher.hash(password)}) == 0:
            raise KeyError(name)

    def set_role(self, name: str, role: str) -> None:
        self._check(name, role)
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
        return User(row["name"], row["role"])
