"""The Ampel (traffic-light) data policy: which documents a model in a zone may see.

Every model has a zone – green (the city's own machine), yellow (EU-hosted, under a
data-processing agreement, open-weight), red (large commercial model, public data only) –
and every collection or document a classification. A table maps zones to the
classifications they may see. The policy runs *between* retrieval and prompt building,
so a forbidden passage never reaches the prompt, and it fails closed: a passage whose
classification is missing or unknown is treated as ``personenbezogen``, the strictest
class, because a labelling mistake must not turn into a data leak.

Pure functions, no I/O: the table comes from settings, the passages from retrieval.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from assistant.policy.pii import PiiDecision, assess
from assistant.policy.zones import CLASSIFICATION_LABELS_DE, CLASSIFICATIONS, DEFAULT_ZONE_ACCESS, ZONE_LABELS_DE, ZONES

logger = logging.getLogger(__name__)

T = TypeVar("T")

STRICTEST = "personenbezogen"
# Spellings people type into settings or metadata that unambiguously mean a known class.
_ALIASES = {"öffentlich": "oeffentlich", "offentlich": "oeffentlich", "public": "oeffentlich"}


@dataclass(frozen=True)
class PolicyOutcome(Generic[T]):
    """The passages a model may see, what was removed, and what to tell the person asking.

    ``removed_by_class`` counts removed passages by their *effective* class (an unknown
    label counts as ``personenbezogen``, the class it was treated as).
    """

    allowed: list[T]
    removed: list[T]
    removed_by_class: dict[str, int]
    message_de: str | None
    suggest_green: bool


@dataclass(frozen=True)
class PolicyCheck:
    """Everything the chain needs before calling a model: go / ask / stop, and why (German)."""

    action: Literal["allow", "warn", "block"]
    pii: PiiDecision
    outcome: PolicyOutcome | None
    messages_de: list[str] = field(default_factory=list)


def allowed_classifications(zone: str, access: Mapping[str, Iterable[str]] = DEFAULT_ZONE_ACCESS) -> frozenset[str]:
    """Classifications a model in ``zone`` may see. An unknown zone is an error, never a default."""
    if zone not in ZONES or zone not in access:
        raise ValueError(f"unknown zone {zone!r}; expected one of {ZONES}")
    permitted = set()
    for label in access[zone]:
        canonical = normalize_classification(label)
        if canonical is None:  # a typo in the table must not widen access – drop it, loudly
            logger.warning("Ignoring unknown classification %r in the access table for zone %s", label, zone)
        else:
            permitted.add(canonical)
    return frozenset(permitted)


def normalize_classification(value: Any) -> str | None:
    """The canonical class for a label, or ``None`` if it is missing or not one of CLASSIFICATIONS."""
    if not isinstance(value, str):
        return None
    key = value.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in CLASSIFICATIONS else None


def metadata_classification(passage: Any) -> str | None:
    """Default ``classify``: ``passage.metadata["classification"]`` (LangChain documents), else
    ``passage["classification"]`` (plain dicts); anything else has no label and fails closed."""
    metadata = getattr(passage, "metadata", passage)
    if isinstance(metadata, Mapping):
        value = metadata.get("classification")
        return value if isinstance(value, str) else None
    return None


def quoted_classes(classes: Iterable[str]) -> str:
    """German labels of ``classes``, quoted and joined: „öffentlich“, „intern“ oder „vertraulich“."""
    names = [f"„{CLASSIFICATION_LABELS_DE[c]}“" for c in classes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " oder " + names[-1]


def _removal_message(zone: str, removed_by_class: dict[str, int], unknown: int) -> str:
    total = sum(removed_by_class.values())
    classes = [c for c in CLASSIFICATIONS if removed_by_class.get(c)]
    verb = "Passage wurde" if total == 1 else "Passagen wurden"
    counts = ""
    if len(classes) > 1:
        counts = " (" + ", ".join(f"{CLASSIFICATION_LABELS_DE[c]}: {removed_by_class[c]}" for c in classes) + ")"
    message = (
        f"{total} {verb} entfernt, weil das Modell in der Zone {ZONE_LABELS_DE[zone]} "
        f"keine als {quoted_classes(classes)} eingestuften Dokumente sehen darf{counts}."
    )
    if unknown:
        message += (
            f" {unknown} davon hat keine gültige Einstufung und wird"
            if unknown == 1
            else f" {unknown} davon haben keine gültige Einstufung und werden"
        ) + " vorsichtshalber wie „personenbezogen“ behandelt."
    return message


def filter_passages(
    passages: Sequence[T],
    zone: str,
    classify: Callable[[T], str | None] = metadata_classification,
    access: Mapping[str, Iterable[str]] = DEFAULT_ZONE_ACCESS,
) -> PolicyOutcome[T]:
    """Keep, in their original order, only the passages the zone may see.

    ``classify`` returns the passage's classification (the document's, else its
    collection's). Missing or unknown labels count as ``personenbezogen`` (fail closed).
    If ``classify`` raises, the exception propagates: no prompt is built, which is closed too.
    """
    permitted = allowed_classifications(zone, access)
    allowed: list[T] = []
    removed: list[T] = []
    by_class: Counter[str] = Counter()
    removed_unlabelled = 0
    for passage in passages:
        raw = classify(passage)
        effective = normalize_classification(raw)
        unlabelled = effective is None
        if unlabelled:
            effective = STRICTEST
            logger.warning("Passage without a valid classification (%r) treated as %s", raw, STRICTEST)
        if effective in permitted:
            allowed.append(passage)
        else:
            removed.append(passage)
            by_class[effective] += 1
            removed_unlabelled += unlabelled
    removed_by_class = {c: by_class[c] for c in CLASSIFICATIONS if by_class[c]}
    message = None
    suggest_green = False
    if removed:
        message = _removal_message(zone, removed_by_class, removed_unlabelled)
        if not allowed:
            green = allowed_classifications("green", access) if "green" in access else frozenset()
            suggest_green = zone != "green" and any(c in green for c in removed_by_class)
            if suggest_green:
                message += (
                    " Damit bleiben für diese Frage keine freigegebenen Quellen übrig. Wählen Sie das lokale "
                    "Modell (Zone Grün): Es läuft auf dem Server der Verwaltung und darf auch diese Dokumente "
                    "einbeziehen."
                )
            else:
                message += " Damit bleiben für diese Frage keine freigegebenen Quellen übrig."
    logger.info(
        "Ampel filter: zone=%s kept=%d removed=%d by_class=%s", zone, len(allowed), len(removed), removed_by_class
    )
    return PolicyOutcome(allowed, removed, removed_by_class, message, suggest_green)


def check_request(
    question: str,
    zone: str,
    passages: Sequence[T] | None = None,
    classify: Callable[[T], str | None] | None = None,
    access: Mapping[str, Iterable[str]] = DEFAULT_ZONE_ACCESS,
) -> PolicyCheck:
    """The single gate before a model call: personal data in the question plus passage filtering.

    block – personal data in the question for a red model, or retrieval found passages but
    the zone may see none of them; warn – personal data for a yellow model (the person
    must confirm); allow – otherwise. Without ``passages`` only the question is checked.
    """
    allowed_classifications(zone, access)  # validate the zone before anything else
    pii = assess(question, zone)
    outcome = None
    if passages is not None:
        outcome = filter_passages(passages, zone, classify or metadata_classification, access)
    nothing_left = outcome is not None and bool(outcome.removed) and not outcome.allowed
    if pii.action == "block" or nothing_left:
        action: Literal["allow", "warn", "block"] = "block"
    else:
        action = pii.action
    messages = [m for m in (pii.message_de, outcome.message_de if outcome else None) if m]
    logger.info("Ampel check: zone=%s action=%s pii_kinds=%s", zone, action, pii.kinds)
    return PolicyCheck(action, pii, outcome, messages)
