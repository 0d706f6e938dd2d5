"""The Ampel step of the chain: adapts :mod:`assistant.policy.ampel` to catalog records.

A passage's classification is its document's, else its collection's (catalog). Every
decision with detections or removals is handed to ``audit`` (masked values only).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from assistant.policy.ampel import check_request
from assistant.settings import Settings
from corpus.catalog import Catalog
from corpus.models import Hit

log = logging.getLogger(__name__)


class PolicyStep:
    def __init__(self, catalog: Catalog, settings: Settings, audit: Callable[[str, dict], None] | None = None) -> None:
        self.catalog = catalog
        self.settings = settings
        self.audit = audit

    def classification(self, hit: Hit, collections: dict[str, str] | None = None) -> str | None:
        """The passage's document's classification, else its collection's. ``collections`` (name →
        classification) saves the catalog query when many passages are classified at once; it is
        read fresh for every request, so a re-classification on another replica holds at once."""
        rec = self.catalog.get(hit.chunk.doc_id)
        if rec is not None and rec.classification:
            return rec.classification
        if collections is None:
            collections = self.collection_classes()
        return collections.get(hit.chunk.collection)

    def collection_classes(self) -> dict[str, str]:
        return {c["name"]: c["classification"] for c in self.catalog.collections()}

    def __call__(self, *, question: str, zone: str, passages: Sequence[Hit] | None, confirmed: bool) -> dict[str, Any]:
        classes = self.collection_classes() if passages else {}
        check = check_request(question, zone, passages, lambda hit: self.classification(hit, classes),
                              self.settings.policy.zone_access)
        decision: dict[str, Any] = {
            "action": check.action,
            "zone": zone,
            "messages_de": check.messages_de,
            "pii": [{"kind": d.kind, "masked": d.masked} for d in check.pii.detections],
        }
        if check.outcome is not None:
            decision["allowed"] = check.outcome.allowed
            decision["removed"] = len(check.outcome.removed)
            decision["removed_by_class"] = check.outcome.removed_by_class
            decision["suggest_green"] = check.outcome.suggest_green
        if self.audit and (decision["pii"] or decision.get("removed")):
            self.audit("policy", {k: v for k, v in decision.items() if k != "allowed"} | {"confirmed": confirmed})
        return decision
