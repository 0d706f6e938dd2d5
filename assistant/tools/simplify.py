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


def clean_output(text: str) -> str:
    """Drop the markers or a heading a small model copies from the prompt."""
    text = text.replace("<<<", "").replace(">>>", "").strip()
    text = re.sub(r"^(Der Text in (Einfacher|Leichter) Sprache:|Text:)\s*", "", text, flags=re.IGNORECASE)
    return text.strip()


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
