"""Side-by-side comparisons for one question: the same chain with one setting changed.

Four kinds, each teaching one lesson:

* ``documents`` – with vs. without documents (``use_documents=False``): a language model
  without sources invents fluent answers; with sources it cites or refuses.
* ``models`` – two model profiles (and so possibly two Ampel zones): the policy removes
  what a zone may not see, and answers differ in quality and speed.
* ``k`` – how many passages the model gets (e.g. 2 vs. 6).
* ``budget`` – the token budget for sources (small vs. large): passages are condensed or dropped.

Chunk size is deliberately missing: comparing it would need a second index.
Both sides run one after the other (the local model serves one request at a time).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

from assistant.questions import checked_question
from assistant.access import FULL, Scope
from assistant.settings import Settings
from assistant.policy.zones import zone_label
from assistant.training.inspect import InspectView, build_view

log = logging.getLogger(__name__)

KINDS_DE = {
    "documents": "Mit Dokumenten vs. ohne Dokumente",
    "models": "Zwei Modelle / Zonen",
    "k": "Anzahl Textstellen (k)",
    "budget": "Token-Budget für Quellen",
}


@dataclass(frozen=True)
class Variant:
    """One side of a comparison: keyword arguments for ``Assistant.answer`` plus a label."""

    label: str
    model: str | None = None
    use_documents: bool = True
    k: int | None = None
    budget_tokens: int | None = None

    def kwargs(self) -> dict:
        return {"model": self.model, "use_documents": self.use_documents, "k": self.k, "budget_tokens": self.budget_tokens}


@dataclass
class Side:
    variant: Variant
    result: object  # AnswerResult
    view: InspectView
    error: str | None = None


@dataclass
class Comparison:
    question: str
    kind: str
    sides: list[Side] = field(default_factory=list)

    def summary_rows(self) -> list[tuple[str, str, str]]:
        """(what, left, right): the differences worth pointing at, in German."""
        a, b = self.sides
        def row(label, f):
            return (label, f(a), f(b))
        return [
            row("Einstellung", lambda s: s.variant.label),
            row("Modell / Zone", lambda s: f"{s.view.model} · {zone_label(s.view.zone)}"),
            row("Abgelehnt?", lambda s: "ja" if s.view.refused else "nein"),
            row("Quellen zitiert", lambda s: str(len(s.view.citations))),
            row("Textstellen im Prompt", lambda s: f"{sum(p.in_prompt for p in s.view.passages)} von {len(s.view.passages)}"),
            row("Tokens Prompt / Antwort", lambda s: f"{s.view.prompt_tokens} / {s.view.completion_tokens}"),
            row("Zeit gesamt", lambda s: f"{dict(s.view.timings).get('Gesamt', 0):.0f} ms"),
        ]


def variants(kind: str, settings: Settings, *, model: str | None = None,
             left: str | int | None = None, right: str | int | None = None) -> tuple[Variant, Variant]:
    """The two sides for ``kind``; ``left``/``right`` are model keys (models) or numbers (k, budget)."""
    model = model or settings.llm.default
    if kind == "documents":
        return Variant("Mit Dokumenten", model=model), Variant("Ohne Dokumente", model=model, use_documents=False)
    if kind == "models":
        keys = [str(left or model), str(right or "extraktiv")]
        for key in keys:
            if key not in settings.llm.models:
                raise ValueError(f"Unbekanntes Modell: {key}")
        return tuple(Variant(f"Modell {settings.llm.models[key].label or key}", model=key) for key in keys)  # type: ignore[return-value]
    if kind == "k":
        lo, hi = int(left or 2), int(right or 6)
        if not (1 <= lo <= 20 and 1 <= hi <= 20):
            raise ValueError("k muss zwischen 1 und 20 liegen.")
        return Variant(f"k = {lo}", model=model, k=lo), Variant(f"k = {hi}", model=model, k=hi)
    if kind == "budget":
        lo, hi = int(left or 150), int(right or 1500)
        if not (50 <= lo <= 8000 and 50 <= hi <= 8000):
            raise ValueError("Das Token-Budget muss zwischen 50 und 8000 liegen.")
        return (Variant(f"Budget {lo} Tokens", model=model, budget_tokens=lo),
                Variant(f"Budget {hi} Tokens", model=model, budget_tokens=hi))
    raise ValueError(f"Unbekannte Vergleichsart: {kind} ({', '.join(KINDS_DE)})")


def run_side(assistant, question: str, variant: Variant, settings: Settings, *,
             collections: Sequence[str] | None = None, confirmed: bool = False, scope: Scope = FULL) -> Side:
    """One side; a failing model becomes a visible error on that side, not a crash of both."""
    from assistant.chain import AnswerResult

    key = variant.model or settings.llm.default
    profile = settings.llm.models.get(key)
    try:
        result = assistant.answer(question, collections=collections, confirmed=confirmed, scope=scope,
                                  **variant.kwargs())
        error = None
    except Exception as exc:  # one side failing must not hide the other side's lesson
        log.warning("comparison side %r failed: %s", variant.label, exc)
        result = AnswerResult(question=question, answer=f"Fehler: {exc}", refused=True, model=key,
                              zone=profile.zone if profile else "green")
        error = str(exc)
    k = variant.k or settings.llm.passages
    return Side(variant, result, build_view(result, profile, k=k, use_documents=variant.use_documents), error)


def run_comparison(assistant, question: str, pair: tuple[Variant, Variant], settings: Settings, *,
                   kind: str = "", collections: Sequence[str] | None = None, confirmed: bool = False,
                   scope: Scope = FULL) -> Comparison:
    question = checked_question(question)  # once for both sides, before either runs
    cmp = Comparison(question=question, kind=kind)
    for variant in pair:
        cmp.sides.append(run_side(assistant, question, variant, settings, collections=collections, confirmed=confirmed,
                                  scope=scope))
    return cmp
