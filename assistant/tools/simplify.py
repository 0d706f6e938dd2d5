"""Einfache / Leichte Sprache: draft by the model, rule check in code, at most N revisions.

Why revise only the offending sentences: a small model asked to "rewrite the whole text
shorter" drops facts; asked to fix three named sentences with the rule they break, it
keeps the rest untouched and the facts check has less to catch. A revision is kept only
when it lowers the number of violations (a pass can make things worse).
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, Iterator

from assistant.wording import counted
from assistant.tools import prompts
from assistant.tools.facts import compare_facts
from assistant.tools.readability import readability
from assistant.tools.rules import Level, RuleReport, check_text
from assistant.tools.text import split_sentences

log = logging.getLogger(__name__)

LEICHT_DRAFT_NOTICE = ("Entwurf: Texte in Leichter Sprache müssen von Menschen aus der Ziel-Gruppe geprüft werden, "
                       "bevor sie veröffentlicht werden.")
MAX_REVISE_SENTENCES = 12
_NUMBERED = re.compile(r"^\s*(\d{1,2})[.):]\s*(.+?)\s*$")


def split_parts(text: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """Paragraph-aligned parts of at most ``max_tokens`` (a longer paragraph is cut at sentences)."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    units: list[str] = []
    for para in re.split(r"\n\s*\n", text.strip()):
        if count(para) <= max_tokens:
            units.append(para)
        else:
            units.extend(split_sentences(para))
    for unit in units:
        n = count(unit)
        if current and size + n > max_tokens:
            parts.append("\n\n".join(current))
            current, size = [], 0
        current.append(unit)
        size += n
    if current:
        parts.append("\n\n".join(current))
    return parts


# What a chatty model says about its own answer ("Hier ist der Text in Einfacher Sprache:", "Ich hoffe,
# das hilft."). Such lines would be counted as sentences by the rule check and shown to staff.
# A lead-in counts only when it talks about the text itself (Text, Fassung, Sprache, vereinfacht …):
# "Hier sind die Öffnungszeiten:" or "Sie brauchen drei Dinge:" belong to the text and stay.
_POLITE = re.compile(r"^(?:sehr\s+gerne|gerne|gern|natürlich|klar|okay|ok|selbstverständlich|alles\s+klar)\b[\s,!.]*",
                     re.IGNORECASE)
_META = re.compile(r"\b(?:texte?s?|fassung|version|übersetzung|übertragung|umschreibung|sprache|"
                   r"vereinfacht\w*|umgeschrieben\w*|überarbeitet\w*|übertragen\w*|übersetzt\w*)\b", re.IGNORECASE)
# what may follow the word about the text: "… Fassung für Sie", not "… Fassung der Satzung"
_META_TAIL = re.compile(r"(?:\s+(?:in|auf)\s+(?:einfache[rn]?|leichte[rn]?)\s+sprache|\s+für\s+sie|\s+dazu|\s+davon"
                        r"|\s+(?:des|vom|von\s+dem)\s+(?:\w+\s+)?(?:textes|texts|text|originals|ausgangstextes))*\s*$",
                        re.IGNORECASE)
_LEAD_IN = re.compile(r"^(?:hier|nachfolgend|im\s+folgenden|folgend|unten|das\s+ist|dies\s+ist|ich\s+habe|ich\s+hab)\b",
                      re.IGNORECASE)
_LABEL = re.compile(r"^(?:(?:der|die|das|ihr|mein)\s+)?(?:"
                    r"(?:vereinfachte|überarbeitete|neue)[rs]?\s+(?:text|fassung|version)"
                    r"(?:\s+in\s+(?:einfacher|leichter)\s+sprache)?"
                    r"|(?:text|fassung|version|übersetzung|übertragung)\s+in\s+(?:einfacher|leichter)\s+sprache"
                    r"|(?:einfache|leichte)\s+sprache)$", re.IGNORECASE)
_CLOSING = re.compile(
    r"(?:^|(?<=[.!?…])\s)\s*(?:"
    r"ich\s+hoffe,?\s+(?:das|dies|es|der\s+text|die(?:se)?\s+(?:fassung|version)|diese[rs]?\s+text)\b[^\n]*"
    r"|lass(?:en\s+sie|t)\s+(?:mich|es\s+mich)\s+wissen\b[^\n]*"
    r"|möchten\s+sie,\s+dass\s+ich\b[^\n]*"
    r"|soll\s+ich\s+(?:den\s+text|die\s+fassung|die\s+version|noch\s+etwas)\b[^\n]*"
    r"|(?:sagen\s+sie|geben\s+sie)\s+(?:mir\s+)?bescheid\b[^\n]*"
    r")\s*$", re.IGNORECASE)
_QUOTE_PAIRS = {"„": "“", "“": "”", "»": "«", "«": "»", "‚": "‘", "\"": "\"", "'": "'"}
_MAX_LEAD_IN = 120  # characters before the colon; a longer first sentence is content, not a lead-in


def _is_lead_in(head: str) -> bool:
    """Does ``head`` (the words before a colon) announce the model's answer instead of belonging to it?"""
    head = head.strip().strip("*_#").strip()
    polite = _POLITE.match(head)
    body = head[polite.end():] if polite else head
    if not body or len(head) > _MAX_LEAD_IN or re.search(r"[.!?;]", body):
        return False  # empty, long, or more than one sentence: content, leave it alone
    if _LABEL.match(body):
        return True  # "Text in Einfacher Sprache", "Vereinfachte Fassung", "Leichte Sprache"
    if _LEAD_IN.match(body):
        # "Hier ist die vereinfachte Fassung" – not "Hier sind die Öffnungszeiten" or "Hier ist der Text der Satzung"
        about_answer = any(_META_TAIL.match(body, m.end()) for m in _META.finditer(body))
        return about_answer or (polite is not None and body.lower().startswith("hier"))
    return False


def _strip_lead_in(text: str) -> str:
    first, _, rest = text.partition("\n")
    stripped = first.strip()
    if stripped.startswith("#") and _is_lead_in(stripped.rstrip(":")):
        return rest  # a Markdown heading "## Text in Einfacher Sprache"
    head, colon, tail = stripped.partition(":")
    if not colon or not _is_lead_in(head):
        return text
    tail = tail.strip().strip("*_").strip()
    return f"{tail}\n{rest}" if tail else rest


def _strip_closing(text: str) -> str:
    text = text.rstrip()
    lines = text.split("\n")
    while lines and lines[-1].strip() in ("", "---", "***"):
        lines.pop()
    last = lines[-1] if lines else ""
    m = _CLOSING.search(last)
    if m:
        lines[-1] = last[:m.start()].rstrip()
    while lines and lines[-1].strip() in ("", "---", "***"):
        lines.pop()
    return "\n".join(lines)


def _strip_quotes(text: str) -> str:
    """Drop one pair of quotation marks around the whole text, only when they belong together."""
    text = text.strip()
    close = _QUOTE_PAIRS.get(text[:1])
    if len(text) < 2 or close is None or not text.endswith(close):
        return text
    opening, inner = text[0], text[1:-1]
    if opening == close:
        return text if opening in inner else inner.strip()
    depth = 0
    for ch in inner:
        if ch == opening:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth < 0:
                return text  # „A“ und „B“: two quotations, not one around everything
    return inner.strip() if depth == 0 else text


def strip_model_chatter(text: str) -> str:
    """The model's text without a lead-in line, a closing remark, and quotation marks around all of it.

    "Hier ist der Text in Einfacher Sprache:\n„Sie zahlen 120 Euro.“\nIch hoffe, das hilft." becomes
    "Sie zahlen 120 Euro."; "Sie brauchen drei Dinge:\n- …" stays as it is."""
    text = (text or "").strip()
    for _ in range(2):  # a lead-in can sit inside the quotes, or a closing remark outside them
        before = text
        text = _strip_quotes(_strip_closing(_strip_lead_in(text).strip()))
        if text == before:
            break
    return text.strip()


def clean_output(text: str) -> str:
    """Drop the markers, a heading or the chatter a small model adds around its answer."""
    text = text.replace("<<<", "").replace(">>>", "").strip()
    text = re.sub(r"^(Der Text in (Einfacher|Leichter) Sprache:|Text:)\s*", "", text, flags=re.IGNORECASE)
    return strip_model_chatter(text)


def parse_numbered(text: str, n: int) -> dict[int, str]:
    """``{1: "Neuer Satz.", …}`` from the model's numbered lines (only numbers 1..n)."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        m = _NUMBERED.match(line)
        if m and 1 <= int(m.group(1)) <= n and int(m.group(1)) not in out:
            out[int(m.group(1))] = clean_output(m.group(2)).strip("„“\"")
    return out


def apply_revisions(text: str, report: RuleReport, revised: dict[int, str], targets: list[int]) -> str:
    """Replace each target sentence by its revision in ``text`` (the first occurrence)."""
    for i, sentence_no in enumerate(targets, start=1):
        new = revised.get(i)
        old = report.sentences[sentence_no]
        if not new:
            continue
        if old in text:
            text = text.replace(old, new, 1)
        else:  # white space differs from the split: match it loosely
            pattern = r"\s+".join(re.escape(w) for w in old.split())
            text = re.sub(pattern, lambda _m: new, text, count=1)
    return text


def simplify(text: str, level: Level, llm: Any, *, max_revisions: int, part_tokens: int, output_tokens: int,
             count: Callable[[str], int]) -> Iterator[dict]:
    """Events: ``progress``, ``token``, ``reset`` (text replaced after a revision), ``done`` with details."""
    t0 = time.perf_counter()
    parts = split_parts(text, part_tokens, count)
    drafts: list[str] = []
    for i, part in enumerate(parts, start=1):
        yield {"type": "progress", "done": i - 1, "total": len(parts), "label": f"Teil {i} von {len(parts)}"}
        if drafts:
            yield {"type": "token", "text": "\n\n"}
        pieces: list[str] = []
        for chunk in llm.stream(prompts.simplify_messages(part, level), max_tokens=output_tokens):
            piece = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
            if piece:
                pieces.append(piece)
                yield {"type": "token", "text": piece}
        drafts.append(clean_output("".join(pieces)))
    output = "\n\n".join(d for d in drafts if d)
    timings = {"draft_ms": round((time.perf_counter() - t0) * 1000, 1)}
    yield {"type": "reset", "text": output}

    report = check_text(output, level)
    first_report = report
    passes = 0
    t1 = time.perf_counter()
    while report.violations and passes < max_revisions:
        passes += 1
        targets = report.offending()[:MAX_REVISE_SENTENCES]
        by_sentence = report.by_sentence()
        items = [(report.sentences[s], [v.rule for v in by_sentence[s]]) for s in targets]
        yield {"type": "progress", "done": passes - 1, "total": max_revisions,
               "label": f"Überarbeitung {passes}: {counted(len(targets), 'Satz verstößt', 'Sätze verstoßen')} gegen Regeln"}
        reply = "".join(str(c.content) for c in llm.stream(prompts.revise_messages(items, level),
                                                             max_tokens=output_tokens))
        candidate = apply_revisions(output, report, parse_numbered(reply, len(targets)), targets)
        new_report = check_text(candidate, level)
        log.info("revision %d: %d -> %d violations", passes, len(report.violations), len(new_report.violations))
        if len(new_report.violations) >= len(report.violations):
            break  # no better: keep the previous text
        output, report = candidate, new_report
        yield {"type": "reset", "text": output}
    timings["revise_ms"] = round((time.perf_counter() - t1) * 1000, 1)
    yield {"type": "done", "output": output, "timings": timings, "details": details(text, output, first_report, report,
                                                                                     passes, level)}


def details(source: str, output: str, first: RuleReport, final: RuleReport, passes: int, level: Level) -> dict:
    """The figures shown with the result (and in ``--json``)."""
    before, after = readability(source), readability(output)
    return {
        "level": level.key,
        "readability_before": before.as_dict(),
        "readability_after": after.as_dict(),
        "facts_changed": [c.as_dict() for c in compare_facts(source, output)],
        "rule_check": final.as_dict(),
        "violations_before_revision": len(first.violations),
        "revisions": passes,
    }
