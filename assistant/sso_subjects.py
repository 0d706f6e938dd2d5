"""Which person a single-sign-on name belongs to (header mode with ``auth.subject_header``).

Why: everything a user owns in the portal (chats, tool runs, training sessions, a role or
departments an admin gave the name) is keyed by the user *name*. An identity provider may hand a
name on: a colleague leaves, a new one gets the same short name. The name is all header mode saw,
so the new person opened the old one's chats, with answers from departments they may not read, and
kept any role the old one had. The IdP's subject (the OIDC ``sub``, a stable id it never reuses)
tells the two apart.

The first subject seen for a name is bound to it. A different subject later is the name handed on:
the old person's account in the portal is removed (its data, role and departments, as when an admin
removes a user) and the new subject bound; the replaced subject is refused from then on, so two
people never take turns on one name. Each decision is one transaction on the app database, so in a
cluster one replica makes it and the others see it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from assistant.appdb import AppDB, now

log = logging.getLogger(__name__)

_MIGRATIONS = [
    "CREATE TABLE sso_subjects (name TEXT NOT NULL, subject TEXT NOT NULL, replaced INTEGER NOT NULL DEFAULT 0, "
    "bound_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (name, subject))",
    # one current subject per name, also when two replicas see two subjects first at the same moment
    "CREATE UNIQUE INDEX sso_subjects_current ON sso_subjects (name) WHERE replaced = 0",
]
MAX_SUBJECT = 255


def valid_subject(subject: str) -> bool:
    """A subject as IdPs write them (a UUID, a number, an e-mail): printable, no spaces, short."""
    return 0 < len(subject) <= MAX_SUBJECT and subject.isprintable() and not any(ch.isspace() for ch in subject)


class _Raced(Exception):
    """The current subject was replaced by another process between reading and writing."""


@dataclass(frozen=True)
class Binding:
    """The outcome for one request: ``refused`` (a replaced subject), or ``handed_on`` with what the
    previous person's account held (for the audit)."""

    refused: bool = False
    handed_on: bool = False
    removed: dict = field(default_factory=dict)


class SubjectBindings:
    """Name → the subject it belongs to, in the app database."""

    def __init__(self, db: AppDB) -> None:
        self.db = db
        db.ensure_schema("sso_subjects", _MIGRATIONS)

    def current(self, name: str) -> str | None:
        row = self.db.one("SELECT subject FROM sso_subjects WHERE name=:n AND replaced=0", {"n": name})
        return row["subject"] if row else None

    def unbind(self, name: str) -> None:
        """The name's current subject owns it no longer (an admin created the account anew)."""
        self.db.execute("DELETE FROM sso_subjects WHERE name=:n AND replaced=0", {"n": name})

    def bind(self, name: str, subject: str, users=None) -> Binding:
        """Bind ``subject`` to ``name`` or confirm it; hand the name on if it belonged to another
        subject (``users``: the UserStore whose account of the name is then removed)."""
        for _ in range(5):  # a parallel first sight on another replica: read again
            rows = self.db.query("SELECT subject, replaced FROM sso_subjects WHERE name=:n", {"n": name})
            mine = [r for r in rows if r["subject"] == subject]
            if mine:
                return Binding(refused=bool(mine[0]["replaced"]))
            current = [r["subject"] for r in rows if not r["replaced"]]
            try:
                with self.db.begin() as conn:
                    if current:
                        moved = conn.execute(text("UPDATE sso_subjects SET replaced=1 WHERE name=:n AND subject=:s "
                                                  "AND replaced=0"), {"n": name, "s": current[0]}).rowcount
                        if moved != 1:
                            raise _Raced()
                    conn.execute(text("INSERT INTO sso_subjects(name, subject, replaced, bound_at) "
                                      "VALUES (:n, :s, 0, :t)"), {"n": name, "s": subject, "t": now()})
            except (IntegrityError, _Raced):  # another replica bound or handed the name on meanwhile
                continue
            if not current:
                return Binding()
            log.warning("SSO name %s now belongs to another subject: the previous account is removed", name)
            return Binding(handed_on=True, removed=self._remove_previous(name, users))
        raise RuntimeError(f"SSO-Zuordnung für {name!r} nicht möglich / could not bind the SSO subject")

    def _remove_previous(self, name: str, users) -> dict:
        """What the previous person's account held goes: data, and the role and departments an admin gave."""
        from assistant.user_data import forget_user

        if users is not None and users.get(name) is not None:
            role = users.get(name).role
            return {"role": role, **users.remove(name)}
        return forget_user(self.db, name)
