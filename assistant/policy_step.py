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

    def classification(self, hit: Hit) -> str | None:
        rec = self.catalog.get(hit.chunk.doc_id)
        if rec is not None and rec.classification:
            return rec.classification
        for coll in self.catalog.collections():
            if coll["name"] == hit.chunk.collection:
                return coll["classification"]
        return None

    def __call__(self, *, question: str, zone: str, passages: Sequence[Hit] | None, confirmed: bool) -> dict[str, Any]:
        check = check_request(question, zone, passages, self.classification, self.settings.policy.zone_access)
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
