"""Who may read which collection: the one home of the department rule.

A collection is readable by everyone (``alle``) or by the groups listed for it (Ämter,
Fachbereiche: ``personalamt``, ``bauamt``, …). A user belongs to zero or more groups.
Admins read every collection: they upload, move and delete documents anyway.

The decision is a pure function (:func:`readable_collections`) of the user's role and
groups and the collections' readers, so it can be tested as a table. Everything that
shows passages, titles, file names or links asks it through a :class:`Scope`:
retrieval puts the scope's collections into the query itself (never a filter after the
top-k), and every other door (sources, document links, reopened chats, exports, the
trainer's views) hides what the scope does not allow.

The CLI without ``--as`` is the server operator's tool and runs with :data:`FULL`.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Iterator, Mapping, Sequence

EVERYONE = "alle"
_GROUP_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
#: the installation-wide lock around "check a group, then change who has it" (:class:`Departments`)
GROUPS_LOCK = "kiportal-groups"


class AccessError(ValueError):
    """A bad group name, an unknown group or a duplicate grant (German and English message)."""


def may_read(role: str, groups: Iterable[str], readers: Iterable[str]) -> bool:
    """May a user with ``role`` and ``groups`` read a collection with ``readers``?"""
    if role == "admin":
        return True
    readers = set(readers)
    return EVERYONE in readers or bool(readers & set(groups))


def readable_collections(role: str, groups: Iterable[str], collections: Mapping[str, Sequence[str]]) -> list[str]:
    """The names of the collections (``{name: readers}``) the user may read, sorted."""
    groups = set(groups)
    return sorted(name for name, readers in collections.items() if may_read(role, groups, readers))


@dataclass(frozen=True)
class Scope:
    """The collections one request may read; ``collections=None`` means all (the operator's CLI)."""

    collections: frozenset[str] | None

    def allows(self, collection: str | None) -> bool:
        return self.collections is None or (collection or "") in self.collections

    def restrict(self, chosen: Sequence[str] | None) -> list[str] | None:
        """The collections to search: the chosen ones within the scope, or the whole scope.

        ``None`` = no filter (full scope, nothing chosen); an empty list = nothing readable.
        A chosen collection outside the scope is dropped, never widened to."""
        if self.collections is None:
            return list(chosen) if chosen else None
        if chosen:
            return sorted(c for c in dict.fromkeys(chosen) if c in self.collections)
        return sorted(self.collections)


FULL = Scope(None)


def scope_for(role: str, groups: Iterable[str], catalog) -> Scope:
    """The scope of a user, read from the catalog's current collection readers."""
    return Scope(frozenset(readable_collections(role, groups, catalog.collection_readers())))


# -- names ------------------------------------------------------------------------------
def valid_group_name(name: str) -> bool:
    """Lower-case letters, digits and ``. _ -``, at most 64, starting with a letter or digit: the rule
    for ``access.groups`` (checked by the settings) and for groups created in the portal."""
    return bool(_GROUP_RE.match(name))


def check_group_name(name: str) -> str:
    name = (name or "").strip()
    if not valid_group_name(name):
        raise AccessError(f"Ungültiger Gruppenname „{name}“ (Kleinbuchstaben, Ziffern, . _ -) / "
                          f"invalid group name: {name!r}")
    return name


def check_new_group_name(name: str | None, existing: Iterable[str]) -> str:
    """A name for a group to create: valid (:func:`check_group_name`), not ``alle`` (everyone, in a
    collection's readers) and not the name of a group that exists."""
    name = (name or "").strip()
    if not name:
        raise AccessError("Bitte einen Gruppennamen eingeben. / group name missing")
    name = check_group_name(name)
    if name == EVERYONE:
        raise AccessError(f"„{EVERYONE}“ steht für alle Benutzer und kann keine Gruppe sein. / "
                          f"'{EVERYONE}' means everyone and cannot be a group")
    if name in set(existing):
        raise AccessError(f"Die Gruppe „{name}“ gibt es schon. / group exists: {name}")
    return name


def _names(names: Sequence[str], most: int = 10) -> str:
    """``a, b, c`` – at most ``most`` names, then how many more."""
    shown = ", ".join(names[:most])
    return shown + (f" und {len(names) - most} weitere" if len(names) > most else "")


def check_groups(names: Iterable[str], known: Iterable[str], *, allow_everyone: bool = False) -> list[str]:
    """Valid, known, de-duplicated group names (``alle`` only where a collection's readers are set)."""
    known = set(known)
    out: list[str] = []
    for raw in names:
        name = check_group_name(raw)
        if name == EVERYONE:
            if not allow_everyone:
                raise AccessError(f"„{EVERYONE}“ ist keine Gruppe eines Benutzers / '{EVERYONE}' is not a user group")
        elif name not in known:
            listed = ", ".join(sorted(known)) or "keine – noch keine Gruppe eingerichtet"
            raise AccessError(f"Unbekannte Gruppe „{name}“ (bekannt: {listed}) / unknown group: {name}")
        if name not in out:
            out.append(name)
    return out


def check_readers(readers: Iterable[str], known: Iterable[str]) -> list[str]:
    """A collection's readers: ``["alle"]``, known groups, or none (only admins)."""
    readers = check_groups(readers, known, allow_everyone=True)
    if EVERYONE in readers and len(readers) > 1:
        raise AccessError(f"„{EVERYONE}“ schließt alle Gruppen ein; bitte nicht mit Gruppen mischen. / "
                          f"'{EVERYONE}' cannot be combined with groups")
    return readers


def exclusive_readers(selected: Sequence[str], clicked: str, checked: bool) -> list[str]:
    """The readers ticked in a form after one click: "alle" and groups exclude each other, so ticking
    a group unticks "alle" and ticking "alle" unticks the groups. The form for a new collection starts
    with "alle" ticked, and ticking a department beside it ended in :func:`check_readers`' error
    (found by a browser review). ``selected`` may be the ticks before or after the click (gradio's
    form passes the ones before): the click is applied to it either way."""
    if not checked:
        return [r for r in selected if r != clicked]
    if clicked == EVERYONE:
        return [EVERYONE]
    return [r for r in selected if r != EVERYONE] + ([clicked] if clicked not in selected else [])


def split_groups(text: str | Sequence[str] | None) -> list[str]:
    """``"a,b c"`` or ``["a", "b,c"]`` → ``["a", "b", "c"]`` (commas or spaces separate)."""
    if not text:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    return [g for p in parts for g in re.split(r"[,\s]+", p) if g]


def sso_groups(header: str | None, mapping: Mapping[str, str]) -> tuple[tuple[str, ...], list[str]]:
    """The kiportal groups for an SSO group header: ``(groups, ignored)``.

    The header is comma-separated (oauth2-proxy's ``X-Forwarded-Groups``); each entry counts only
    when ``mapping`` names it (exact match after trimming spaces), so a group someone adds in the
    identity provider grants nothing until an admin maps it. Empty or missing header: no groups.
    """
    groups: list[str] = []
    ignored: list[str] = []
    for raw in (header or "").split(","):
        name = raw.strip()
        if not name:
            continue
        target = mapping.get(name)
        if target is None:
            ignored.append(name)
        elif target not in groups:
            groups.append(target)
    return tuple(sorted(groups)), ignored


def readers_label(readers: Sequence[str]) -> str:
    """German display of a collection's readers."""
    if EVERYONE in readers:
        return "alle"
    return ", ".join(sorted(readers)) or "nur Administratoren"


def citation_records(citations: Sequence[dict], catalog) -> dict:
    """``{doc_id: record}`` of the documents stored citations name, in one query."""
    return catalog.records(str(c.get("doc_id") or "") for c in citations)


def visible_citations(scope: Scope, citations: Sequence[dict], catalog, records: dict | None = None) -> list[dict]:
    """Stored citations the scope may read, by the document's collection *now* (so a revoke or a
    move hides them); a deleted document counts by the collection stored with the citation, and
    one without any known collection is hidden from everyone but the full scope. ``records``: the
    documents' records, when the caller has read them (:func:`citation_records`) for more."""
    if scope.collections is None:
        return list(citations)
    if records is None:
        records = citation_records(citations, catalog)
    out = []
    for c in citations:
        rec = records.get(str(c.get("doc_id") or ""))
        collection = rec.collection if rec is not None else c.get("collection")
        if collection is not None and scope.allows(collection):
            out.append(c)
    return out


# -- administration (Verwaltung tab and CLI share it) --------------------------------------
class Departments:
    """Changing who may read what: users' groups and collections' readers.

    One implementation for the Verwaltung tab and the CLI, so both validate the same way and
    leave the same audit entry (who, what, before and after). The known groups are those of the
    setting ``access.groups`` and those admins created (:meth:`create_group`, stored in the app
    database); a collection's readers may also be ``alle``.

    Group rules: a configured group is removed only in the configuration; a created one only while
    no user and no collection has it (:meth:`remove_group`), so a group of the same name created
    later never hands old members or readers a right. Checking a group and changing who has it run
    under one installation-wide lock (:data:`GROUPS_LOCK`), so a removal cannot slip between the
    check and the change of a concurrent assignment, in a cluster too.
    """

    def __init__(self, catalog, users, audit, settings) -> None:
        self.catalog = catalog
        self.users = users
        self.audit = audit
        self.settings = settings

    # -- groups ------------------------------------------------------------------------
    @cached_property
    def group_store(self):
        from assistant.users import GroupStore

        return GroupStore(self.users.db)

    @property
    def configured_groups(self) -> list[str]:
        return sorted(self.settings.access.groups)

    @property
    def known_groups(self) -> list[str]:
        """``access.groups`` and the groups created in the portal or the CLI, read fresh (another
        process or replica may have created one)."""
        return sorted(set(self.settings.access.groups) | set(self.group_store.names()))

    @contextmanager
    def _groups_fixed(self) -> Iterator[None]:
        from corpus.db import LockTimeout, database_lock

        try:
            with database_lock(self.users.db.engine, GROUPS_LOCK, timeout=30):
                yield
        except LockTimeout:
            raise AccessError("Gerade ändert jemand anderes Gruppen; bitte gleich noch einmal versuchen. / "
                              "another group change is running, try again") from None

    def groups(self) -> list[dict]:
        """Every group with where it comes from (``config``: access.groups, ``portal``: created by an
        admin, ``unknown``: neither, but still held by a user or a collection), its users and the
        collections it may read."""
        created = {r["name"]: r for r in self.group_store.list()}
        members: dict[str, list[str]] = {}
        for u in self.users.list():
            for g in u["groups"]:
                members.setdefault(g, []).append(u["name"])
        readers: dict[str, list[str]] = {}
        for coll, groups in sorted(self.catalog.collection_readers().items()):
            for g in groups:
                if g != EVERYONE:
                    readers.setdefault(g, []).append(coll)
        configured = set(self.settings.access.groups)
        out = []
        for name in sorted(configured | set(created) | set(members) | set(readers)):
            source = "config" if name in configured else "portal" if name in created else "unknown"
            row = created.get(name) or {}
            out.append({"name": name, "source": source, "users": sorted(members.get(name, [])),
                        "collections": readers.get(name, []), "created_at": row.get("created_at"),
                        "created_by": row.get("created_by")})
        return out

    def _usage(self, name: str) -> tuple[list[str], list[str]]:
        users = self.group_store.members(name)
        collections = sorted(c for c, readers in self.catalog.collection_readers().items() if name in readers)
        return users, collections

    def create_group(self, name: str | None, actor: str) -> str:
        """A new group (audited ``group.create``); its name as stored."""
        name = check_new_group_name(name, ())
        with self._groups_fixed():
            if name in self.settings.access.groups:
                raise AccessError(f"Die Gruppe „{name}“ gibt es schon (Einstellung access.groups). / "
                                  f"group exists in access.groups: {name}")
            if not self.group_store.add(name, actor):
                raise AccessError(f"Die Gruppe „{name}“ gibt es schon. / group exists: {name}")
        self.audit.record("group.create", actor, name, {})
        return name

    def remove_group(self, name: str | None, actor: str) -> str:
        """Remove a created group (audited ``group.remove``); refused for a configured group and for a
        group some user or collection still has (the message names them)."""
        name = (name or "").strip()
        if not name:
            raise AccessError("Bitte eine Gruppe auswählen. / no group chosen")
        if name in self.settings.access.groups:
            raise AccessError(f"Die Gruppe „{name}“ ist in der Einstellung access.groups eingerichtet und lässt sich "
                              f"nur dort entfernen (kiportal.toml). / configured groups are removed in the config: {name}")
        with self._groups_fixed():
            if name not in self.group_store.names():
                raise AccessError(f"Die Gruppe „{name}“ gibt es nicht. / no such group: {name}")
            users, collections = self._usage(name)
            if users or collections:
                used = "; ".join(part for part in (
                    f"Benutzer: {_names(users)}" if users else "",
                    f"Sammlungen (Leserecht): {_names(collections)}" if collections else "") if part)
                raise AccessError(f"Die Gruppe „{name}“ wird noch verwendet ({used}). Bitte sie dort zuerst "
                                  f"entfernen. / group still in use: {name}")
            self.group_store.remove(name)
        self.audit.record("group.remove", actor, name, {})
        return name

    def _readers(self, collection: str) -> list[str]:
        readers = self.catalog.collection_readers()
        if collection not in readers:
            raise AccessError(f"Die Sammlung „{collection}“ gibt es nicht. / no such collection: {collection}")
        return readers[collection]

    # -- users -------------------------------------------------------------------------
    def add_user(self, name: str, password: str, role: str, groups: Sequence[str], actor: str, *,
                 must_change: bool = False, subject: str | None = None):
        """``subject``: the SSO subject that owns the account from the start (header mode)."""
        with self._groups_fixed():
            groups = check_groups(groups, self.known_groups)
            user = self.users.add(name, password, role, groups, must_change=must_change, subject=subject)
        self.audit.record("user_add", actor, name, {"role": role, "groups": list(user.groups)}
                          | ({"subject": subject} if subject is not None else {}))
        return user

    def set_user_groups(self, name: str, groups: Sequence[str], actor: str) -> tuple[str, ...]:
        with self._groups_fixed():
            groups = check_groups(groups, self.known_groups)
            before = self.users.get(name)
            if before is None:
                raise AccessError(f"Benutzer „{name}“ gibt es nicht. / no such user: {name}")
            after = self.users.set_groups(name, groups)
        self.audit.record("user_groups", actor, name, {"before": list(before.groups), "after": list(after)})
        return after

    # -- collections -------------------------------------------------------------------
    def default_readers(self) -> list[str]:
        return list(self.catalog.new_collection_readers)

    def check_readers(self, readers: Sequence[str]) -> list[str]:
        return check_readers(readers, self.known_groups)

    def set_readers(self, collection: str, readers: Sequence[str], actor: str) -> list[str]:
        with self._groups_fixed():
            before = self._readers(collection)
            readers = self.check_readers(readers)
            self.catalog.set_collection_readers(collection, readers)
            after = self._readers(collection)
        self.audit.record("collection.readers", actor, collection, {"before": before, "after": after})
        return after

    def grant(self, collection: str, group: str, actor: str) -> list[str]:
        """Let ``group`` (or ``alle``) read ``collection``; granting what is granted is an error."""
        with self._groups_fixed():
            before = self._readers(collection)
            group = check_groups([group], self.known_groups, allow_everyone=True)[0]
            if group in before:
                raise AccessError(f"Die Gruppe „{group}“ darf „{collection}“ schon lesen. / already granted")
            if EVERYONE in before:
                # a grant that silently narrowed 'alle' to one group would surprise: say so instead
                raise AccessError(f"„{collection}“ ist für alle lesbar; zuerst `revoke {collection} {EVERYONE}`. / "
                                  f"readable by everyone: revoke '{EVERYONE}' first")
            after = [group] if group == EVERYONE else before + [group]
            self.catalog.set_collection_readers(collection, after)
        self.audit.record("collection.grant", actor, collection,
                          {"group": group, "before": before, "after": self._readers(collection)})
        return self._readers(collection)

    def revoke(self, collection: str, group: str, actor: str) -> list[str]:
        before = self._readers(collection)
        group = check_group_name(group)
        if group not in before:
            raise AccessError(f"Die Gruppe „{group}“ darf „{collection}“ gar nicht lesen. / not granted")
        self.catalog.set_collection_readers(collection, [g for g in before if g != group])
        after = self._readers(collection)
        self.audit.record("collection.revoke", actor, collection, {"group": group, "before": before, "after": after})
        return after

    def show(self, collection: str) -> dict:
        """Who may read ``collection``: its readers and the users that follow from them."""
        readers = self._readers(collection)
        info = next(c for c in self.catalog.collections() if c["name"] == collection)
        users = [u for u in self.users.list() if may_read(u["role"], u["groups"], readers)]
        return {"name": collection, "classification": info["classification"], "documents": info["documents"],
                "readers": readers, "readers_label": readers_label(readers),
                "users": [{"name": u["name"], "role": u["role"], "groups": u["groups"]} for u in users]}
