"""„Blick unter die Haube“: what happened behind one answer, as a view model with renderers.

Trainers use this to show a group why the assistant answered as it did: the question after
rewriting, every retrieved passage with its BM25 rank, dense rank and fused score, whether
it went into the prompt (and if not, whether the Ampel or the budget kept it out), the exact
prompt, the model with its zone, token counts and timings.

Document text is data written by third parties. Every string that reaches HTML or Markdown
goes through :func:`~assistant.escaping.esc` / :func:`~assistant.escaping.md_esc` here, so no markup from a document (or from a
model's answer) is ever interpreted by the browser. The renderers build the markup; nothing
else may concatenate raw text into it.

The Ampel preview ("what would the Ampel do?", no model call) is in
:mod:`assistant.training.preview`.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any, Sequence

from assistant.answer_checks import NOTICE_NO_ANSWER
from assistant.escaping import esc, md_code_block, md_esc
from assistant.grounding import is_warning
from assistant.policy.pii import KIND_LABELS_DE
from assistant.policy.zones import ACTION_LABELS_DE, CLASSIFICATION_LABELS_DE, ZONE_COLORS, zone_label
from assistant.settings import ModelProfile
from corpus.models import page_kind_of, page_label

log = logging.getLogger(__name__)

TIMING_DE = {
    "rewrite_ms": "Frage umformulieren", "retrieve_ms": "Suche", "prepare_ms": "Suche + Auswahl + Prompt",
    "prompt_eval_ms": "Prompt lesen (bis 1. Token)", "first_token_ms": "Zeit bis zum ersten Wort",
    "generate_ms": "Antwort erzeugen", "total_ms": "Gesamt",
}


# -- the view model ------------------------------------------------------------------------
@dataclass
class PassageRow:
    rank: int
    title: str
    source: str
    page: int | None
    bm25_rank: int | None
    dense_rank: int | None
    fused_score: float
    dense_score: float | None
    in_prompt: bool
    n: int | None
    status: str
    text: str
    late_rank: int | None = None


@dataclass
class InspectView:
    question: str
    standalone_question: str
    rewritten: bool
    answer: str
    refused: bool
    model: str
    mode: str
    zone: str
    operator: str
    location: str
    prompt: str
    prompt_sent: bool
    prompt_tokens: int
    completion_tokens: int
    timings: list[tuple[str, float]]
    passages: list[PassageRow]
    notices: list[str]
    policy_action: str | None
    pii: list[dict]
    removed_by_class: dict[str, int]
    use_documents: bool = True
    citations: list[dict] = field(default_factory=list)
    #: how likely the model was to begin with the refusal sentence (local model only)
    refusal_probability: float | None = None
    #: the verbatim quotes the answer rests on ({n, title, source, page, text})
    quotes: list[dict] = field(default_factory=list)
    #: why the answer was given or refused, in words
    why: str = ""
    search_query: str = ""  # set when the search took the previous question along (a follow-up)

    def as_dict(self) -> dict:
        return asdict(self)


def build_view(result, profile: ModelProfile | None = None, *, k: int | None = None,
               use_documents: bool = True) -> InspectView:
    """Turn an :class:`~assistant.chain.AnswerResult` into the trainer's view model.

    ``k`` is the number of passages the model may get; with it, a passage left out although
    fewer than ``k`` went in was left out for the token budget, otherwise for the count.
    """
    in_count = sum(1 for p in result.passages if p.in_prompt)
    rows: list[PassageRow] = []
    for i, p in enumerate(result.passages, 1):
        if p.in_prompt:
            status = f"im Prompt als [{p.n}]"
        elif p.removed_reason == "Ampel":
            status = "nicht im Prompt: Ampel (Zone darf diese Einstufung nicht sehen)"
        elif p.removed_reason:
            status = f"nicht im Prompt: {p.removed_reason}"
        elif result.refused and in_count == 0 and result.policy.get("action") == "block":
            status = "nicht im Prompt: Anfrage blockiert"
        elif k is not None and in_count >= k:
            status = f"nicht im Prompt: Budget (höchstens {k} Textstellen)"
        else:
            status = "nicht im Prompt: Budget (Token-Budget ausgeschöpft)"
        rows.append(PassageRow(rank=i, title=p.title, source=PurePath(p.source).name, page=p.page,
                               bm25_rank=p.bm25_rank, dense_rank=p.dense_rank, fused_score=p.fused_score,
                               dense_score=p.dense_score, in_prompt=p.in_prompt, n=p.n, status=status, text=p.text,
                               late_rank=p.late_rank))
    pol = result.policy or {}
    standalone = result.standalone_question or result.question
    return InspectView(
        question=result.question, standalone_question=standalone, rewritten=standalone != result.question,
        search_query=result.search_query if result.search_query not in ("", standalone) else "",
        answer=result.answer, refused=result.refused, model=result.model, mode=result.mode, zone=result.zone,
        operator=profile.operator if profile else "", location=profile.location if profile else "",
        prompt=result.prompt, prompt_sent=bool(result.prompt) and result.mode != "extractive",
        prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
        timings=[(TIMING_DE.get(key, key), ms) for key, ms in result.timings.items()],
        passages=rows, notices=list(result.notices), policy_action=pol.get("action"),
        pii=list(pol.get("pii") or []), removed_by_class=dict(pol.get("removed_by_class") or {}),
        use_documents=use_documents,
        citations=[{"n": c.n, "title": c.title, "source": PurePath(c.source).name, "page": c.page} for c in result.citations],
        refusal_probability=result.refusal_probability,
        quotes=[{"n": q.n, "title": q.title, "source": PurePath(q.source).name, "page": q.page, "text": q.text}
                for q in getattr(result, "quotes", None) or []],
        why=decision_reason(result),
    )


def decision_reason(result) -> str:
    """Why the chain gave this answer or refused, for trainers: the rule that decided."""
    quotes = getattr(result, "quotes", None) or []
    if result.refused:
        if result.notices:
            return "Abgelehnt: " + result.notices[-1]
        return "Abgelehnt: keine gefundene Textstelle passt zur Frage."
    if not quotes:
        return "Beantwortet ohne wörtliches Zitat."
    q = quotes[0]
    if result.answer.lstrip().startswith(("„", "Laut den Dokumenten")):
        if result.mode == "extractive":
            return f"Ohne Sprachmodell: die passendste Textstelle [{q.n}] ist die Antwort."
        if NOTICE_NO_ANSWER in result.notices:  # the model refused or wrote nothing usable
            return f"Die Textstelle [{q.n}] selbst ist die Antwort: das Modell fand keine, diese Textstelle passt am besten zur Frage"
        return f"Die Textstelle [{q.n}] selbst ist die Antwort: die Aussage des Modells stand so nicht in den Quellen"
    return (f"Beantwortet: jede Zahl, jedes Datum, jeder Name und jede Verneinung der Antwort steht wörtlich im "
            f"Zitat aus Quelle [{q.n}].")


def doubt_label(p: float | None) -> str | None:
    """The model's own doubt in words, for trainers ("how close was it to saying 'no idea'?")."""
    if p is None:
        return None
    return f"Ablehnung war zu {round(p * 100)} % wahrscheinlich (erstes Wort der Antwort)"


# -- renderers ----------------------------------------------------------------------------
TABLE_STYLE = "border-collapse:collapse;width:100%;font-size:0.92em"
_TD = "border:1px solid #ccc;padding:4px 6px;vertical-align:top;overflow-wrap:anywhere"
# headers break at their hyphens and syllables ("Fusions-|Score"), never inside a syllable ("Fusi|ons-Scor|e",
# which overflow-wrap:anywhere did in narrow columns: a browser review)
_TH = "border:1px solid #ccc;padding:4px 6px;vertical-align:bottom;overflow-wrap:normal;hyphens:auto"


def html_row(cells: Sequence[str], header: bool = False, style: str = "") -> str:
    tag = "th" if header else "td"
    return f"<tr{f' style={chr(34)}{style}{chr(34)}' if style else ''}>" + "".join(
        f"<{tag} style=\"{_TH if header else _TD}\">{c}</{tag}>" for c in cells) + "</tr>"


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render_html(view: InspectView, *, title: str = "Blick unter die Haube") -> str:
    """Self-contained HTML fragment; every dynamic string is escaped."""
    z = view.zone
    parts = [f"<div class=\"kiportal-inspect\" style=\"overflow-x:auto;min-width:0\"><h3>{esc(title)}</h3>"]
    facts = [
        ("Frage", esc(view.question)),
        ("Eigenständige Frage (für die Suche)",
         esc(view.standalone_question) + (" <em>(umformuliert)</em>" if view.rewritten else " <em>(unverändert)</em>")),
        *([("Gesucht mit der vorigen Frage", esc(view.search_query))] if view.search_query else []),
        ("Modell", f"{esc(view.model)} ({esc(view.mode)})"),
        ("Zone", f"<span style=\"color:{ZONE_COLORS.get(z, '#444')};font-weight:bold\">{esc(zone_label(z))}</span>"
                 + (f" · {esc(view.operator)} · {esc(view.location)}" if view.operator else "")),
        ("Tokens", f"Prompt {view.prompt_tokens} · Antwort {view.completion_tokens}"),
    ]
    if view.why:
        facts.append(("Warum diese Antwort", esc(view.why)))
    if doubt := doubt_label(view.refusal_probability):
        facts.append(("Unsicherheit des Modells", esc(doubt)))
    if view.policy_action:
        facts.append(("Ampel", esc(ACTION_LABELS_DE.get(view.policy_action, view.policy_action))))
    if view.pii:
        facts.append(("Erkannte Personendaten (maskiert)", esc(", ".join(
            f"{KIND_LABELS_DE.get(d.get('kind'), d.get('kind'))}: {d.get('masked')}" for d in view.pii))))
    if view.removed_by_class:
        facts.append(("Von der Ampel entfernt", esc(", ".join(
            f"{CLASSIFICATION_LABELS_DE.get(c, c)}: {n}" for c, n in view.removed_by_class.items()))))
    parts.append(f"<table style=\"{TABLE_STYLE}\">" + "".join(html_row([f"<b>{k}</b>", v]) for k, v in facts) + "</table>")
    if view.notices:
        parts.append("<ul>" + "".join(f"<li>{'⚠ <b>Prüfen:</b> ' if is_warning(n) else ''}{esc(n)}</li>"
                                      for n in view.notices) + "</ul>")

    if view.quotes:
        parts.append("<h4>Zitate, auf die sich die Antwort stützt</h4><ul>" + "".join(
            f"<li>[{int(q['n'])}] {esc(q['title'])}"
            + (f", {esc(page_label(q['page'], page_kind_of(q['source'])))}" if q.get("page") is not None else "")
            + f": <q>{esc(q['text'])}</q></li>" for q in view.quotes) + "</ul>")
    if not view.use_documents:
        parts.append("<p><b>Ohne Dokumente:</b> Es wurde nichts gesucht; das Modell antwortet nur aus seinem "
                     "Training – jede Aussage ist ungeprüft.</p>")
    else:
        parts.append(f"<h4>Gefundene Textstellen ({len(view.passages)})</h4>")
        head = ["#", "Dokument", "Fundstelle", "BM25-Rang", "Dense-Rang", "Fusions-Score", "Dense-Ähnlichkeit",
                "Abgleich-Rang", "Im Prompt?", "Textstelle"]
        rows = [html_row(head, header=True)]
        for p in view.passages:
            bg = "background:#eef7ee" if p.in_prompt else "background:#f6f6f6;color:#555"
            excerpt = p.text if len(p.text) <= 600 else p.text[:600] + " …"
            rows.append(html_row([
                str(p.rank), esc(p.title),
                esc(p.source) + (f"<br>{esc(page_label(p.page, page_kind_of(p.source)))}" if p.page is not None else ""),
                _num(p.bm25_rank), _num(p.dense_rank), _num(p.fused_score), _num(p.dense_score), _num(p.late_rank),
                esc(p.status), f"<div style=\"white-space:pre-wrap;max-height:12em;overflow:auto\">{esc(excerpt)}</div>",
            ], style=bg))
        parts.append(f"<table style=\"{TABLE_STYLE}\">" + "".join(rows) + "</table>")
        parts.append("<p style=\"font-size:0.85em\">BM25 = Stichwortsuche, Dense = Bedeutungssuche (Vektoren); "
                     "„–“ = von dieser Suche nicht gefunden. Der Fusions-Score (Reciprocal Rank Fusion) "
                     "verbindet beide Ränge. Abgleich = Feinabgleich Wort für Wort: Für jedes Wort der Frage sucht "
                     "das Modell die ähnlichste Stelle im Text; danach werden die ersten Treffer neu geordnet "
                     "(„–“ = nicht neu geordnet).</p>")

    label = "Prompt (genau so an das Modell gesendet)" if view.prompt_sent else (
        "Prompt (nicht gesendet: kein Sprachmodell beteiligt)" if view.prompt else "Prompt")
    parts.append(f"<h4>{esc(label)}</h4>")
    if view.prompt:
        parts.append("<pre style=\"white-space:pre-wrap;max-height:30em;overflow:auto;border:1px solid #ccc;"
                     f"padding:6px\">{esc(view.prompt)}</pre>")
    else:
        parts.append("<p><em>Es wurde kein Prompt erzeugt (Anfrage vorher beendet).</em></p>")

    if view.timings:
        parts.append("<h4>Zeiten</h4>")
        parts.append(f"<table style=\"{TABLE_STYLE}\">" + "".join(
            html_row([esc(label), f"{ms:.0f} ms"]) for label, ms in view.timings) + "</table>")
    parts.append("</div>")
    return "\n".join(parts)


def render_markdown(view: InspectView, *, title: str = "Blick unter die Haube") -> str:
    """Markdown version (CLI ``--trace``, handouts); text escaped, prompt in an unclosable fence."""
    lines = [f"### {md_esc(title)}", "",
             f"- **Frage:** {md_esc(view.question, cell=True)}",
             f"- **Eigenständige Frage:** {md_esc(view.standalone_question, cell=True)}"
             + (" *(umformuliert)*" if view.rewritten else ""),
             *([f"- **Gesucht mit der vorigen Frage:** {md_esc(view.search_query, cell=True)}"] if view.search_query else []),
             f"- **Modell:** {md_esc(view.model, cell=True)} ({md_esc(view.mode)}), Zone {md_esc(zone_label(view.zone))}"
             + (f" · {md_esc(view.operator, cell=True)} · {md_esc(view.location, cell=True)}" if view.operator else ""),
             f"- **Tokens:** Prompt {view.prompt_tokens} · Antwort {view.completion_tokens}"]
    if view.why:
        lines.append(f"- **Warum diese Antwort:** {md_esc(view.why, cell=True)}")
    for q in view.quotes:
        where = f", {page_label(q['page'], page_kind_of(q['source']))}" if q.get("page") is not None else ""
        lines.append(f"- **Zitat [{int(q['n'])}]** {md_esc(q['title'], cell=True)}{md_esc(where)}: "
                     f"„{md_esc(q['text'], cell=True)}“")
    if doubt := doubt_label(view.refusal_probability):
        lines.append(f"- **Unsicherheit des Modells:** {doubt}")
    if view.policy_action:
        lines.append(f"- **Ampel:** {md_esc(ACTION_LABELS_DE.get(view.policy_action, view.policy_action))}")
    if view.pii:
        lines.append("- **Erkannte Personendaten (maskiert):** " + md_esc(", ".join(
            f"{KIND_LABELS_DE.get(d.get('kind'), d.get('kind'))}: {d.get('masked')}" for d in view.pii), cell=True))
    for n in view.notices:
        lines.append(f"- *{'⚠ Prüfen' if is_warning(n) else 'Hinweis'}:* {md_esc(n, cell=True)}")
    if view.use_documents:
        lines += ["", "| # | Dokument | Fundstelle | BM25 | Dense | Fusion | Abgleich | Im Prompt? | Textstelle |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for p in view.passages:
            excerpt = p.text if len(p.text) <= 200 else p.text[:200] + " …"
            where = f" {md_esc(page_label(p.page, page_kind_of(p.source)))}" if p.page is not None else ""
            lines.append(f"| {p.rank} | {md_esc(p.title, cell=True)} | {md_esc(p.source, cell=True)}{where} | "
                         f"{_num(p.bm25_rank)} | {_num(p.dense_rank)} | "
                         f"{_num(p.fused_score)} | {_num(p.late_rank)} | {md_esc(p.status, cell=True)} | "
                         f"{md_esc(excerpt, cell=True)} |")
    if view.prompt:
        lines += ["", "**Prompt:**", "", md_code_block(view.prompt)]
    if view.timings:
        lines += ["", "**Zeiten:** " + ", ".join(f"{md_esc(label)} {ms:.0f} ms" for label, ms in view.timings)]
    return "\n".join(lines) + "\n"


def render_answer_html(result) -> str:
    """The answer with its sources, escaped (answers can quote hostile document text)."""
    parts = [f"<div class=\"kiportal-answer\"><p style=\"white-space:pre-wrap\">{esc(result.answer)}</p>"]
    if result.citations:
        parts.append("<ol style=\"font-size:0.9em\">" + "".join(
            f"<li value=\"{int(c.n)}\">{esc(c.title)} – {esc(PurePath(c.source).name)}"
            f"{', ' + esc(page_label(c.page, page_kind_of(c.source))) if c.page is not None else ''}</li>"
            for c in result.citations) + "</ol>")
    parts.append("</div>")
    return "".join(parts)
