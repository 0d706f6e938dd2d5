"""Which person a single-sign-on name belongs to (header mode with ``auth.subject_header``).

Why: everything a user owns in the portal (chats, tool runs, training sessions, a role or
departments an admin gave the name) is keyed by the user *name*. An identity provider may hand a
name on: a colleague leaves, a new one gets the same short name. The name was all header mode saw,
so the new person opened the old one's chats, with answers from departments they may not read, and
kept any role the old one had. The IdP's subject (the OIDC ``sub``, a stable id it never reuses)
tells the two apart.

The first subject seen for a name is bound to it. A different subject later is refused (audited as
``sso_subject_conflict``), nothing is changed: it may be the name handed on, but also an IdP
mistake, a renamed account or a subject header that changed meaning, and deciding on its own the
portal would delete a person's data for good. An admin hands the name on (``kiportal users
handover NAME``): the previous account is removed as if an admin removed it, its subject refused
from then on, and the next subject to sign in owns the name. Creating an account for the name
(:meth:`assistant.users.UserStore.add`) unbinds it the same way, without refusing anyone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Binding:
    """The outcome for one request: ``refused`` with the reason (``conflict``: the name belongs to
    another subject; ``replaced``: this subject's name was handed on), or ``bound`` (first sight)."""

    refused: bool = False
    reason: str = ""
    bound: bool = False


INVALID_SUBJECT = "Ungültige SSO-Kennung (druckbar, ohne Leerzeichen, höchstens 255 Zeichen) / invalid SSO subject"


def check_subject(subject: str) -> None:
    if not valid_subject(subject):
        raise ValueError(INVALID_SUBJECT)


def own_in(conn, name: str, subject: str | None) -> None:
    """In the caller's transaction: ``name`` is bound to ``subject`` from now on (None: to the next
    subject that signs in). A subject refused for the name before is the admin's choice now."""
    conn.execute(text("DELETE FROM sso_subjects WHERE name=:n AND replaced=0"), {"n": name})
    if subject is not None:
        conn.execute(text("DELETE FROM sso_subjects WHERE name=:n AND subject=:s"), {"n": name, "s": subject})
        conn.execute(text("INSERT INTO sso_subjects(name, subject, replaced, bound_at) VALUES (:n, :s, 0, :t)"),
                     {"n": name, "s": subject, "t": now()})


class SubjectBindings:
    """Name → the subject it belongs to, in the app database."""

    def __init__(self, db: AppDB) -> None:
        self.db = db
        db.ensure_schema("sso_subjects", _MIGRATIONS)

    def current(self, name: str) -> str | None:
        row = self.db.one("SELECT subject FROM sso_subjects WHERE name=:n AND replaced=0", {"n": name})
        return row["subject"] if row else None

    def bind(self, name: str, subject: str) -> Binding:
        """Confirm ``subject`` for ``name``, or bind it at first sight; refuse another subject."""
        for _ in range(3):  # a first sight on another replica at the same moment: read again
            rows = self.db.query("SELECT subject, replaced FROM sso_subjects WHERE name=:n", {"n": name})
            mine = [r for r in rows if r["subject"] == subject]
            if mine:
                return Binding(refused=True, reason="replaced") if mine[0]["replaced"] else Binding()
            if any(not r["replaced"] for r in rows):
                return Binding(refused=True, reason="conflict")
            try:
                self.db.execute("INSERT INTO sso_subjects(name, subject, replaced, bound_at) VALUES (:n, :s, 0, :t)",
                                {"n": name, "s": subject, "t": now()})
            except IntegrityError:
                continue
            return Binding(bound=True)
        raise RuntimeError(f"SSO-Zuordnung für {name!r} nicht möglich / could not bind the SSO subject")

    def assign(self, name: str, subject: str) -> None:
        """An admin names the subject that owns ``name`` (an account prepared before its owner's first
        sign-in, whose stored role would else go to whoever signs in first with the name). Refused,
        with a German message, while another subject owns the name (a hand-over comes first), also
        when that subject signs in at the same moment."""
        check_subject(subject)
        try:
            with self.db.begin() as conn:
                owner = conn.execute(text("SELECT subject FROM sso_subjects WHERE name=:n AND replaced=0"),
                                     {"n": name}).first()
                if owner is not None and owner[0] == subject:
                    return
                if owner is not None:
                    raise ValueError(f"„{name}“ gehört bereits einer anderen SSO-Kennung; erst `kiportal users "
                                     f"handover {name}` / the name belongs to another subject")
                own_in(conn, name, subject)
        except IntegrityError:  # another replica bound a subject between our read and write
            raise ValueError(f"„{name}“ wurde eben von einer anderen SSO-Kennung angemeldet; bitte erneut prüfen "
                             f"/ another subject signed in with the name just now") from None

    def hand_over(self, name: str, users=None) -> dict:
        """An admin hands ``name`` on: its current subject is refused from now on, the previous account
        is removed (data, role, departments; training sessions released), the next subject owns the
        name. The counts, for the audit."""
        from assistant.user_data import forget_user

        with self.db.begin() as conn:
            had = conn.execute(text("UPDATE sso_subjects SET replaced=1 WHERE name=:n AND replaced=0"),
                               {"n": name}).rowcount
        if users is not None and users.get(name) is not None:
            role = users.get(name).role
            removed = {"role": role, **users.remove(name)}  # remove() unbinds nothing: the row is replaced above
        else:
            removed = forget_user(self.db, name)
        log.warning("SSO name %s handed on by an admin (%s)", name, removed)
        return {"subject_replaced": bool(had), **removed}

    def forgive(self, name: str) -> int:
        """Subjects refused for ``name`` may sign in again (an admin undoing a hand-over's refusal)."""
        return self.db.execute("DELETE FROM sso_subjects WHERE name=:n AND replaced=1", {"n": name})
