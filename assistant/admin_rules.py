"""The admin's refusals and name rules, apart from :mod:`assistant.admin` so that the admin's parts
(:mod:`assistant.oparl_admin`) use them without importing the admin that imports them."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

from assistant.policy.zones import CLASSIFICATIONS

BUSY = "Gerade läuft eine Indexierung. Bitte in einigen Minuten erneut versuchen."
_COLLECTION_RE = re.compile(r"^[\w][\w \-]{0,63}$", re.UNICODE)


class AdminError(Exception):
    """An admin action was refused; the message is a German sentence for the admin."""


class Busy(AdminError):
    """Another write holds the knowledge base's writer lock."""


def validate_collection_name(name: str) -> str:
    name = (name or "").strip()
    if not _COLLECTION_RE.match(name):
        raise AdminError("Ungültiger Sammlungsname: 1–64 Zeichen, Buchstaben, Ziffern, Leerzeichen, - und _.")
    return name


def validate_classification(classification: str) -> str:
    c = (classification or "").strip().lower().replace("ö", "oe")
    if c not in CLASSIFICATIONS:
        raise AdminError(f"Unbekannte Einstufung „{classification}“ (erlaubt: {', '.join(CLASSIFICATIONS)}).")
    return c


def refused_sync_folder(path: Path, protected: Mapping[str, Path]) -> str | None:
    """Why an admin may not sync ``path`` (German, for the refusal), or None.

    ``protected`` names folders of the portal itself (see :meth:`assistant.wiring.App.protected_folders`).
    Refused are each of them, anything inside one and any folder that holds one: syncing the data
    directory or the stored originals indexes the portal into itself, and gradio's upload folder holds
    other users' uploads and exports, which would become documents an admin (or everyone) can read.
    The system root holds them all. Paths are compared as given: the caller resolves symlinks first."""
    if path == Path(path.anchor):
        return "Systemwurzel"
    for what, folder in protected.items():
        if path == folder or folder in path.parents or path in folder.parents:
            return f"{what}, ein Ordner darin oder darüber"
    return None


# -- portal users (Verwaltung > Benutzer) ---------------------------------------------------------
# Pure functions of the acting admin, the target and every stored user's role ({name: role}), so the
# rules are tested as a table. A name not in ``roles`` is no concern of theirs (the caller says the
# user does not exist). The CLI, the operator's tool, keeps the last admin too unless given --force.
ADMIN_ROLE = "admin"


def _admin_count(roles: Mapping[str, str]) -> int:
    return sum(1 for role in roles.values() if role == ADMIN_ROLE)


def refused_user_removal(actor: str, target: str, roles: Mapping[str, str]) -> str | None:
    """Why ``actor`` may not remove ``target`` (German, for the refusal), or None.

    Nobody removes their own account (a slip would lock them out mid-session), and the last admin is
    never removed: without one, nobody could manage the portal from the portal any more."""
    if target not in roles:
        return None
    if target == actor:
        return "Das eigene Konto kann nicht gelöscht werden."
    if roles[target] == ADMIN_ROLE and _admin_count(roles) <= 1:
        return f"„{target}“ ist die letzte Person mit der Rolle Administration und kann nicht gelöscht werden."
    return None


def refused_role_change(actor: str, target: str, new_role: str, roles: Mapping[str, str]) -> str | None:
    """Why ``actor`` may not give ``target`` the role ``new_role`` (German), or None.

    Only taking the admin role away is guarded: not from oneself, and never from the last admin."""
    if target not in roles or roles[target] != ADMIN_ROLE or new_role == ADMIN_ROLE:
        return None
    if target == actor:
        return "Die eigene Rolle Administration kann man sich nicht selbst entziehen."
    if _admin_count(roles) <= 1:
        return f"„{target}“ ist die letzte Person mit der Rolle Administration; die Rolle bleibt."
    return None
