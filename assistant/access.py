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
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

EVERYONE = "alle"
_GROUP_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


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
def check_group_name(name: str) -> str:
    name = (name or "").strip()
    if not _GROUP_RE.match(name):
        raise AccessError(f"Ungültiger Gruppenname „{name}“ (Kleinbuchstaben, Ziffern, . _ -) / "
                          f"invalid group name: {name!r}")
    return name


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
            listed = ", ".join(sorted(known)) or "keine – access.groups ist leer"
            raise AccessError(f"Unbekannte Gruppe „{name}“ (bekannt: {listed}) / unknown group: {name}")
        if name not in out:
            out.append(name)
    return out


def split_groups(text: str | Sequence[str] | None) -> list[str]:
    """``"a,b c"`` or ``["a", "b,c"]`` → ``["a", "b", "c"]`` (commas or spaces separate)."""
    if not text:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    return [g for p in parts for g in re.split(r"[,\s]+", p) if g]


def readers_label(readers: Sequence[str]) -> str:
    """German display of a collection's readers."""
    if EVERYONE in readers:
        return "alle"
    return ", ".join(sorted(readers)) or "nur Administratoren"


def visible_citations(scope: Scope, citations: Sequence[dict], catalog) -> list[dict]:
    """Stored citations the scope may read, by the document's collection *now* (so a revoke or a
    move hides them); a deleted document counts by the collection stored with the citation, and
    one without any known collection is hidden from everyone but the full scope."""
    if scope.collections is None:
        return list(citations)
    out = []
    for c in citations:
        rec = catalog.get(str(c.get("doc_id") or ""))
        collection = rec.collection if rec is not None else c.get("collection")
        if collection is not None and scope.allows(collection):
            out.append(c)
    return out
