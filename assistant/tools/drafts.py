"""Drafts: an e-mail, a Bürgerbrief or a Vermerk from a short instruction plus, optionally,
cited knowledge-base passages.

Why a check after the model: the prompt asks for placeholders ("[Aktenzeichen]", "[Name]")
wherever the instruction and the sources give no value, but a small model still invents
a date or a file number now and then. Every name, number, date, amount, file number,
phone number or e-mail address of the draft that stands neither in the instruction nor in
a source is replaced by its placeholder, and the replacement is listed – an invented
deadline in a letter to a citizen is the error to prevent.
"""
from __future__ import annotations

import re
import time
from typing import Any, Iterator, Sequence

from assistant.citations import parse_citations, strip_invalid_citations
from assistant.tools import prompts
from assistant.tools.facts import Fact, added_facts

PLACEHOLDERS = {
    "name": "[Name]", "file_number": "[Aktenzeichen]", "date": "[Datum]", "time": "[Uhrzeit]", "amount": "[Betrag]",
    "percent": "[Prozentsatz]", "deadline": "[Frist]", "paragraph": "[Paragraf]", "email": "[E-Mail]",
    "phone": "[Telefonnummer]", "iban": "[IBAN]", "number": "[Zahl]",
}
KINDS = tuple(prompts.DRAFT_KINDS)


def replace_invented(draft: str, known: str) -> tuple[str, list[Fact]]:
    """The draft with every fact not in ``known`` replaced by its placeholder, and those facts."""
    invented = added_facts(known, draft)
    # the draft's own greeting year or today's date are not ours to judge: a date is replaced like any other
    out = draft
    for fact in sorted(invented, key=lambda f: f.start, reverse=True):
        placeholder = PLACEHOLDERS.get(fact.kind, "[prüfen]")
        if fact.kind == "name":
            out = re.sub(rf"\b{re.escape(fact.text)}\b", placeholder, out)
        else:
            out = out.replace(fact.text, placeholder)
    return out, invented


def draft(kind: str, instruction: str, sources: Sequence[tuple[int, str, str]], llm: Any, *,
          output_tokens: int) -> Iterator[dict]:
    """Events: ``token`` while the model writes, ``reset`` with the checked draft, ``done``."""
    if kind not in prompts.DRAFT_KINDS:
        raise ValueError(f"Unbekannte Art / unknown kind: {kind!r} ({', '.join(KINDS)})")
    t0 = time.perf_counter()
    parts: list[str] = []
    for chunk in llm.stream(prompts.draft_messages(kind, instruction, sources), max_tokens=output_tokens):
        piece = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
        if piece:
            parts.append(piece)
            yield {"type": "token", "text": piece}
    raw = "".join(parts).replace("<<<", "").replace(">>>", "").strip()
    raw = re.sub(r"^Entwurf:\s*", "", raw)
    valid = {n for n, _, _ in sources}
    text = strip_invalid_citations(raw, valid) if sources else re.sub(r"\s*\[\d{1,2}\]", "", raw)
    known = instruction + "\n" + "\n".join(f"{label}\n{body}" for _, label, body in sources)
    checked, invented = replace_invented(text, known)
    if checked != raw:
        yield {"type": "reset", "text": checked}
    cited = [n for n in parse_citations(checked) if n in valid]
    yield {"type": "done", "output": checked, "timings": {"generate_ms": round((time.perf_counter() - t0) * 1000, 1)},
           "details": {"kind": kind, "invented_replaced": [{"kind": f.kind, "text": f.text,
                                                              "placeholder": PLACEHOLDERS.get(f.kind, "[prüfen]")}
                                                             for f in invented],
                       "cited": cited, "placeholders": sorted(set(re.findall(r"\[[A-ZÄÖÜ][\wäöüß -]*\]", checked)))}}
