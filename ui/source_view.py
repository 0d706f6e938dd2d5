"""Sources under an answer, as a person reads them: title, page, the quoted sentence, more on demand.

Why: four long excerpts pushed the answer out of the chat window, near-identical passages of one
page appeared as separate sources, and staff saw fusion scores ("Relevanz 0,033") that mean
nothing to them (issue 14). Here the passages of one page are merged into one source, each source
shows the sentence the answer quotes (or the start of its excerpt) and keeps the longer excerpt
in a collapsed ``<details>``; scores are left to the trainer's "Blick unter die Haube". Marks are
plain characters in a styled box, never emoji (an emoji font is missing on many office PCs).

Pure functions over citation dicts (as stored with a chat message); every value is escaped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from assistant.escaping import esc

CITATION_MARK = re.compile(r"\s*\[\d+\]")
QUOTE_CHARS = 240
EXCERPT_CHARS = 900
NOTICE_MARK = '<span class="kp-mark" aria-hidden="true">i</span>'
WARNING_MARK = '<span class="kp-mark kp-mark-warn" aria-hidden="true">!</span>'

CSS = """
.kp-sources-list blockquote.kp-quote { margin: .15rem 0 .1rem 0; padding-left: .6rem; border-left: 3px solid #0b57d0; }
.kp-sources-list details { font-size: .9em; color: #3c4043; }
.kp-sources-list details summary { cursor: pointer; }
.kp-mark { display: inline-block; min-width: 1.1em; padding: 0 .2em; margin-right: .3em; border-radius: .2em;
  background: #0b57d0; color: #fff; font-weight: 700; text-align: center; font-style: normal; }
.kp-mark-warn { background: #b3261e; }
"""


@dataclass
class SourceItem:
    """One page of one document, with every citation number that points to it."""

    numbers: list[int]
    doc_id: str
    title: str
    page: int | None
    quote: str
    excerpt: str
    citations: list[dict] = field(default_factory=list)


def shortened(text: str, limit: int, lines: bool = False) -> str:
    """``text`` in one line (``lines``: its line breaks kept, as a table's header above its row), cut
    at ``limit`` characters."""
    rows = str(text or "").split("\n") if lines else [str(text or "")]
    text = "\n".join(r for r in (" ".join(row.split()) for row in rows) if r)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def merge_sources(citations: Sequence[dict]) -> list[SourceItem]:
    """Citations grouped by (document, page) in their order; the quote is the answer's quote when one
    of them carries it, else the start of the first excerpt; the excerpts are joined without repeats."""
    items: dict[tuple[str, int | None], SourceItem] = {}
    for c in citations:
        key = (str(c.get("doc_id") or c.get("source") or ""), c.get("page"))
        item = items.get(key)
        if item is None:
            item = items[key] = SourceItem([], key[0], str(c.get("title") or c.get("source") or ""), c.get("page"), "", "")
        item.numbers.append(int(c.get("n") or 0))
        item.citations.append(c)
        if c.get("quote") and not item.quote:
            item.quote = shortened(c["quote"], QUOTE_CHARS * 2, lines=True)
        snippet = " ".join(str(c.get("snippet") or "").split())
        if snippet and snippet not in item.excerpt:
            item.excerpt = f"{item.excerpt} … {snippet}" if item.excerpt else snippet
    for item in items.values():
        if not item.quote:
            item.quote = shortened(item.excerpt, QUOTE_CHARS)
        item.excerpt = shortened(item.excerpt, EXCERPT_CHARS)
    return list(items.values())


def sources_html(items: Sequence[SourceItem], *, heading: str, where: Callable[[SourceItem], str],
                 link: Callable[[SourceItem], str | None], more_label: str = "Längerer Auszug",
                 text_link: Callable[[SourceItem], str | None] = lambda _item: None,
                 text_label: str = "Stelle im Text markiert", answer: str = "") -> str:
    """The sources block: one list entry per page (numbers merged), the quote, the excerpt on demand.

    ``answer``: the answer shown above; a quote it already shows verbatim is not repeated under its
    source (the answer is "„quote“ [1]" or "sentence [1]" plus the quote, so a browser review read
    every quote twice), the source keeps its title, page and longer excerpt.
    ``text_link``: where the title opens the original (a PDF's page, a scan's image, a public source)
    that cannot mark the quoted sentence, the portal's text view with it marked, as a second link."""
    if not items:
        return ""
    rows = []
    for item in items:
        nums = ", ".join(f"[{n}]" for n in item.numbers)
        place = where(item)
        label = f"{nums} {item.title}" + (f" – {place}" if place else "")
        url = link(item)
        head = (f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer" class="kp-src-link">'
                f"{esc(label)}</a>") if url else f"<span>{esc(label)}</span>"
        marked = text_link(item)
        if marked:
            head += (f' <a href="{esc(marked)}" target="_blank" rel="noopener noreferrer" '
                     f'class="kp-src-text">{esc(text_label)}</a>')
        quoted = "<br>".join(esc(line) for line in item.quote.split("\n"))
        body = (f'<blockquote class="kp-quote">„{quoted}“</blockquote>'
                if item.quote and not shown_in(item.quote, answer) else "")
        if adds_to_quote(item.excerpt, item.quote):
            body += f"<details><summary>{esc(more_label)}</summary>{esc(item.excerpt)}</details>"
        rows.append(f"<li>{head}{body}</li>")
    # a list without numbers of its own: the [n] of each entry is its number (an <ol> read "1. [2] …")
    return (f'<div class="kp-sources"><p class="kp-sources-title"><strong>{esc(heading)}</strong></p>'
            f'<ul class="kp-sources-list">{"".join(rows)}</ul></div>')


def shown_in(quote: str, answer: str) -> bool:
    """Whether ``answer`` shows ``quote`` verbatim (compared in one line without citation marks, a cut
    quote by its kept part): "„quote“ [1]", or the model's sentence that is the quote, "… 90 Minuten [1]."."""
    core = " ".join(quote.rstrip("…").split())
    return bool(core) and core in " ".join(CITATION_MARK.sub("", str(answer or "")).split())


#: a longer excerpt is offered only when it shows this many characters more than its quote
MORE_CHARS = 30


def adds_to_quote(excerpt: str, quote: str) -> bool:
    """Whether "Längerer Auszug" shows more than the quote above it: not when it is the quote itself
    or the quote and a few words (a short passage repeated the same text a second time)."""
    if not excerpt:
        return False
    # compared in one line: a quoted table row keeps its header line, the excerpt is one line
    core, excerpt = " ".join(quote.rstrip("…").split()), " ".join(excerpt.split())
    return not (core and core in excerpt and len(excerpt) - len(core) < MORE_CHARS)


def notice_html(notice: str, warning: bool) -> str:
    """A notice under the answer with a mark that renders without an emoji font."""
    cls = "kp-notice kp-warning" if warning else "kp-notice"
    return f'<p class="{cls}">{WARNING_MARK if warning else NOTICE_MARK}{esc(notice)}</p>'


def attach_quotes(citations: list[dict], quotes: Sequence) -> list[dict]:
    """Store each quote with the citation of its source, so a stored chat shows it again."""
    by_n = {int(q.n): q.text for q in quotes}
    for c in citations:
        if int(c.get("n") or 0) in by_n:
            c["quote"] = by_n[int(c["n"])]
    return citations
