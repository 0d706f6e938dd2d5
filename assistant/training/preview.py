"""The Ampel preview: what the policy would do for a question and a model or zone – no model call.

Trainers use it to show a group, with real cases, why a question may (not) go to a
model: it runs retrieval and the chain's own policy step (:class:`assistant.policy_step.PolicyStep`),
and never calls a model. Questions shown or kept (projector, session log, handout) are
masked first, because an Ampel exercise may well be typed with a real case.
"""
from __future__ import annotations

from pathlib import PurePath
from typing import Sequence

from assistant.access import FULL, Scope
from assistant.escaping import esc
from assistant.policy.ampel import normalize_classification
from assistant.policy.pii import KIND_LABELS_DE, assess, detect_pii
from assistant.questions import checked_question
from assistant.policy.zones import ACTION_LABELS_DE, CLASSIFICATION_LABELS_DE, ZONE_COLORS, ZONE_LABELS_DE, ZONES, zone_label
from assistant.training.inspect import TABLE_STYLE, html_row
from corpus.models import page_kind_of, page_label


def mask_question(question: str, *, of: str | None = None) -> str:
    """The question with every detected personal datum replaced by its masked form.

    Used wherever a question is shown to others or kept (projector, session log, handout):
    an Ampel exercise may well be typed with a real case. ``of``: mask in ``question`` (an answer)
    the personal data found in ``of`` (the question it answers, which the answer often repeats);
    the documents' own names stay, since the room's rights decide over those."""
    if of is not None:
        for d in detect_pii(of):
            question = question.replace(of[d.start:d.end], d.masked)
        return question
    out, last = [], 0
    for d in sorted(detect_pii(question), key=lambda d: d.start):
        if d.start < last:
            continue
        out.append(question[last:d.start])
        out.append(d.masked)
        last = d.end
    out.append(question[last:])
    return "".join(out)


def policy_preview(app, question: str, *, model: str | None = None, zone: str | None = None,
                   collections: Sequence[str] | None = None, k: int | None = None, scope: Scope = FULL) -> dict:
    """What the Ampel would do for ``question`` with ``model`` (or a bare ``zone``): no model call.

    Retrieval as in the chain, then the chain's policy step once over question and passages:
    ``action`` is the stricter of the personal-data rule and the passage filter,
    ``question_action`` the personal-data rule alone.
    """
    question = checked_question(question)
    settings = app.settings
    profile = None
    if model is not None:
        if model not in settings.llm.models:
            raise ValueError(f"Unbekanntes Modell / unknown model: {model} ({', '.join(settings.llm.models)})")
        profile = settings.llm.models[model]
        zone = profile.zone
    zone = zone or "green"
    if zone not in ZONES:
        raise ValueError(f"Unbekannte Zone / unknown zone: {zone}")
    policy = app.policy
    n = k or settings.llm.passages
    hits = list(app.retriever.search(question, k=max(n + 2, app.retriever.k), collections=scope.restrict(collections),
                                     wait_for_index=False,
                                     late=profile is not None and profile.mode != "extractive").hits)  # as the chain
    # the chain's policy step, once: personal data in the question and the passage filter together
    decision = policy(question=question, zone=zone, passages=hits or None, confirmed=False)
    allowed = {h.chunk.chunk_id for h in decision.get("allowed", [])}
    passages: list[dict] = []
    for h in hits:
        raw = policy.classification(h)
        cls = normalize_classification(raw) or "personenbezogen"
        passages.append({"title": h.chunk.title, "source": h.chunk.source, "page": h.chunk.page,
                         "classification": cls, "classification_missing": normalize_classification(raw) is None,
                         "allowed": h.chunk.chunk_id in allowed})
    action = decision["action"]
    messages = list(decision.get("messages_de") or [])
    pii = [{"kind": d["kind"], "label": KIND_LABELS_DE.get(d["kind"], d["kind"]), "masked": d["masked"]}
           for d in decision.get("pii", [])]
    return {
        "masked_question": mask_question(question),
        "model": model, "model_label": (profile.label or model) if profile else None,
        "zone": zone, "zone_label": ZONE_LABELS_DE[zone],
        "operator": profile.operator if profile else None, "location": profile.location if profile else None,
        "action": action, "action_label": ACTION_LABELS_DE[action], "question_action": assess(question, zone).action,
        "pii": pii, "messages_de": messages,
        "passages": passages, "removed": sum(1 for p in passages if not p["allowed"]),
        "removed_by_class": decision.get("removed_by_class", {}),
        "allowed_classifications": sorted(settings.policy.zone_access.get(zone, [])),
        "suggest_green": bool(decision.get("suggest_green")),
        "model_called": False,
    }


def render_policy_html(preview: dict) -> str:
    z = preview["zone"]
    color = {"allow": "#1b7f3b", "warn": "#9a6b00", "block": "#b3261e"}[preview["action"]]
    who = esc(preview.get("model_label") or f"ein Modell der Zone {ZONE_LABELS_DE[z]}")
    parts = [f"<div class=\"kiportal-policy\"><h3>Ampel-Vorschau: {who}</h3>",
             f"<p>Zone <b style=\"color:{ZONE_COLORS[z]}\">{esc(zone_label(z))}</b>"
             + (f" · {esc(preview['operator'])} · {esc(preview['location'])}" if preview.get("operator") else "")
             + f" – Ergebnis: <b style=\"color:{color}\">{esc(preview['action_label'])}</b>. "
               "Es wurde kein Modell aufgerufen.</p>"]
    if preview["pii"]:
        parts.append("<p><b>Erkannte Personendaten (maskiert):</b></p><ul>" + "".join(
            f"<li>{esc(d['label'])}: <code>{esc(d['masked'])}</code></li>" for d in preview["pii"]) + "</ul>")
    else:
        parts.append("<p>Keine Personendaten in der Frage erkannt.</p>")
    for m in preview["messages_de"]:
        parts.append(f"<p style=\"border-left:4px solid {color};padding-left:8px\">{esc(m)}</p>")
    if preview["passages"]:
        rows = [html_row(["Dokument", "Fundstelle", "Einstufung", "Darf das Modell sehen?"], header=True)]
        for p in preview["passages"]:
            cls = CLASSIFICATION_LABELS_DE.get(p["classification"], p["classification"])
            if p["classification_missing"]:
                cls += " (keine gültige Einstufung – vorsichtshalber)"
            rows.append(html_row([esc(p["title"]), esc(PurePath(p["source"]).name) + " " + esc(page_label(p["page"], page_kind_of(p["source"])) or "–"),
                             esc(cls), "ja" if p["allowed"] else "<b>nein – wird entfernt</b>"]))
        parts.append(f"<table style=\"{TABLE_STYLE}\">" + "".join(rows) + "</table>")
    parts.append("</div>")
    return "\n".join(parts)
