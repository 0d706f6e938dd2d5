"""The admin's refusals and name rules, apart from :mod:`assistant.admin` so that the admin's parts
(:mod:`assistant.oparl_admin`) use them without importing the admin that imports them."""
from __future__ import annotations

import re

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
