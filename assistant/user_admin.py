"""Portal users managed by an admin in the portal (Verwaltung > Benutzer).

The CLI (``kiportal users``) is the server operator's tool; this is the admin's in the browser, with
the safety rules of :mod:`assistant.admin_rules` (nobody removes or demotes themself, the last admin
stays) and one audit entry per change, as the CLI writes them (``user_add``, ``user_role``,
``user_passwd``, ``user_remove``; groups: ``user_groups`` via :class:`assistant.access.Departments`).

Passwords are never chosen by the admin: a new user and a reset get a random password from
:func:`assistant.users.new_password`, returned once for the admin to pass on, stored only as its
Argon2id hash, and never logged or audited. With a login other than ``auth.mode = "password"``
(SSO proxy, or no login on one machine) the portal does not use passwords, so it creates none.
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

from assistant.access import AccessError, Departments
from assistant.admin_rules import AdminError, refused_role_change, refused_user_removal
from assistant.users import ROLES, User, UserStore, new_password, valid_new_user_name
from corpus.db import database_lock

USERS_LOCK = "kiportal-users"


def format_login(ts: float | None) -> str:
    """A last login as the CLI shows it (``31.12.2025 14:05``), ``nie`` for never."""
    return datetime.fromtimestamp(ts).strftime("%d.%m.%Y %H:%M") if ts else "nie"


def no_passwords_reason(mode: str) -> str | None:
    """Why the portal manages no passwords with this ``auth.mode`` (German), or None."""
    if mode == "password":
        return None
    if mode == "header":
        return ("Die Anmeldung läuft über den SSO-Proxy (auth.mode = „header“): Benutzer und Passwörter "
                "kommen von dort und werden hier nicht verwaltet.")
    return (f"Das Portal läuft ohne Anmeldung (auth.mode = „{mode}“): es gibt keine Passwörter, "
            "die hier verwaltet werden könnten.")


class UserAdmin:
    def __init__(self, users: UserStore, departments: Departments, audit, auth_mode: str) -> None:
        self.users = users
        self.departments = departments
        self.audit = audit
        self.auth_mode = auth_mode

    # -- reading -----------------------------------------------------------------------
    def list(self) -> list[dict]:
        return self.users.list()

    def _roles(self) -> dict[str, str]:
        return {u["name"]: u["role"] for u in self.users.list()}

    def _existing(self, name: str | None) -> User:
        name = (name or "").strip()
        if not name:
            raise AdminError("Bitte zuerst einen Benutzer auswählen.")
        user = self.users.get(name)
        if user is None:
            raise AdminError(f"Den Benutzer „{name}“ gibt es nicht.")
        return user

    def _passwords_here(self) -> None:
        why = no_passwords_reason(self.auth_mode)
        if why:
            raise AdminError(why)

    @staticmethod
    def _role(role: str | None) -> str:
        if role not in ROLES:
            raise AdminError(f"Unbekannte Rolle „{role or ''}“.")
        return role

    # -- changes -----------------------------------------------------------------------
    def create(self, name: str | None, role: str | None, groups: Sequence[str] | None, actor: str) -> tuple[User, str]:
        """A new user with a generated password: ``(user, password)``; the password is shown once."""
        self._passwords_here()
        name = (name or "").strip()
        if not name:
            raise AdminError("Bitte einen Benutzernamen eingeben.")
        if not valid_new_user_name(name):
            raise AdminError(f"Ungültiger Benutzername „{name}“: 1–64 Zeichen, nur lateinische Buchstaben "
                             "(auch ä, ö, ü, ß, é …), Ziffern und . _ - @.")
        role = self._role(role)
        if self.users.get(name) is not None:
            raise AdminError(f"Den Benutzernamen „{name}“ gibt es schon.")
        password = new_password()
        try:
            # audits user_add; a start password: its owner replaces it first (hashed once, Argon2 is slow on purpose)
            user = self.departments.add_user(name, password, role, list(groups or []), actor, must_change=True)
        except (AccessError, ValueError) as exc:
            raise AdminError(str(exc)) from None
        return user, password

    def reset_password(self, name: str | None, actor: str) -> tuple[User, str]:
        """A new generated password for ``name`` (their sessions end: the stored stamp changes)."""
        self._passwords_here()
        user = self._existing(name)
        password = new_password()
        self.users.set_password(user.name, password, must_change=True)
        self.audit.record("user_passwd", actor, user.name, {"generated": True})
        return user, password

    def _one_change_at_a_time(self):
        """The installation-wide lock around "check the admins, then change": without it two admins
        demoting each other at the same moment both saw two admins and left none (every replica
        of a cluster takes the same lock in the shared database)."""
        return database_lock(self.users.db.engine, USERS_LOCK, timeout=30)

    def set_role(self, name: str | None, role: str | None, actor: str) -> tuple[str, str]:
        """``(before, after)``; refused for oneself losing admin and for the last admin."""
        with self._one_change_at_a_time():
            return self._set_role(name, role, actor)

    def _set_role(self, name: str | None, role: str | None, actor: str) -> tuple[str, str]:
        user = self._existing(name)
        role = self._role(role)
        why = refused_role_change(actor, user.name, role, self._roles())
        if why:
            raise AdminError(why)
        if role != user.role:
            self.users.set_role(user.name, role)
            self.audit.record("user_role", actor, user.name, {"before": user.role, "after": role})
        return user.role, role

    def remove(self, name: str | None, actor: str) -> User:
        with self._one_change_at_a_time():
            return self._remove(name, actor)

    def _remove(self, name: str | None, actor: str) -> User:
        user = self._existing(name)
        why = refused_user_removal(actor, user.name, self._roles())
        if why:
            raise AdminError(why)
        try:
            left = self.users.remove(user.name)  # with its chats and tool runs (assistant.user_data)
        except KeyError:
            raise AdminError(f"Den Benutzer „{user.name}“ gibt es nicht.") from None
        self.audit.record("user_remove", actor, user.name, {"role": user.role, "groups": list(user.groups)} | left)
        return user
