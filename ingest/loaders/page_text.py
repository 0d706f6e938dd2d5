"""One page of extracted text → heading and paragraph blocks: the rules every text page follows,
whether its text came from a PDF's text layer (ingest.loaders.pdf) or from text recognition
(ingest.loaders.scans). pypdf and Tesseract both emit one line per text line and rarely blank
lines, so paragraphs and headings are reconstructed with cheap, conservative heuristics.
"""
from __future__ import annotations

import re
import statistics

from corpus.text import page_furniture, page_number_alone
from ingest.loaders.blocks import BlockBuilder, dehyphenate, heading_level, label_heading

_BULLET_RE = re.compile(r"^(?:[•▪●◦■□➢►–—*-]\s|\(?[a-z0-9]{1,2}\)\s)")
_SENTENCE_END = (".", "!", "?", ":", "“", '"', "»", "«")
# A line ending like this has a period that does not end a sentence ("Vom 8." / "gem. Abs.").
_NOT_SENTENCE_END_RE = re.compile(
    r"(?:\b\d{1,2}\.|\b(?:Abs|Nr|Art|bzw|vgl|ggf|inkl|evtl|ca|Dr|Prof|St|S|ff|gem|Ziff|lfd|z\.\s?B|u\.\s?a|d\.\s?h)\.)$"
)
_EDGE_LINES = 4  # running headers/footers live in the first/last lines of a page
_DIGITS_RE = re.compile(r"\d+")


def _norm_line(line: str) -> str:
    return _DIGITS_RE.sub("#", line.lower())


def _edge_indices(lines: list[str]) -> list[int]:
    idx = [i for i, ln in enumerate(lines) if ln]
    return sorted(set(idx[:_EDGE_LINES] + idx[-_EDGE_LINES:]))


def running_lines(texts: list[str | None]) -> frozenset[str]:
    """Lines repeated at the top/bottom of most pages: running headers and footers.

    They carry no content ("Bekanntmachung ... Seite 3 von 8") but would be
    glued into every page's first paragraph and pollute search results.
    """
    pages = [t for t in texts if t]
    if len(pages) < 4:
        return frozenset()
    counts: dict[str, int] = {}
    for text in pages:
        lines = text.split("\n")
        for key in {_norm_line(lines[i]) for i in _edge_indices(lines)}:
            counts[key] = counts.get(key, 0) + 1
    threshold = max(3, len(pages) // 2)
    return frozenset(k for k, n in counts.items() if n >= threshold and len(k) <= 200)


def page_blocks(text: str, page_no: int, builder: BlockBuilder, repeated: frozenset[str] = frozenset()) -> None:
    """Turn one page's extracted text into heading and paragraph blocks."""
    if not text:
        return
    lines = text.split("\n")
    # Running headers/footers and page numbers at the top or bottom are noise inside paragraphs,
    # unless they are all the page has (then they are the content, e.g. a one-line page). A titled
    # footer ("Programm … - Seite 1 von 3") goes in documents too short to repeat it on four pages,
    # as the page's very first or last line only: a wrapped sentence ending "… auf Seite 3 von 8"
    # with its end on the next line is text (a review).
    edges = _edge_indices(lines)
    outermost = {edges[0], edges[-1]} if edges else set()
    drop = [i for i in edges
            if page_number_alone(lines[i]) or (i in outermost and page_furniture(lines[i]))
            or _norm_line(lines[i]) in repeated]
    if len(drop) < sum(1 for ln in lines if ln):
        for i in drop:
            lines[i] = ""
    lines = dehyphenate("\n".join(lines)).split("\n")

    long_lines = [len(ln) for ln in lines if len(ln) >= 20]
    typical = statistics.median(long_lines) if long_lines else 60.0

    para: list[str] = []

    def flush() -> None:
        if para:
            builder.add(" ".join(para), page=page_no)
            para.clear()

    at_boundary = True  # start of page, after a blank line, a heading or a sentence end
    for idx, line in enumerate(lines):
        if not line:
            flush()
            at_boundary = True
            continue
        nxt = lines[idx + 1] if idx + 1 < len(lines) else ""
        if at_boundary:
            # "§ 2" on its own line with the title on the next: one heading "§ 2 Zuständige Behörden".
            heading, used = label_heading(line, lines[idx + 1: idx + 4])
            if used:
                for k in range(1, used + 1):
                    lines[idx + k] = ""
                flush()
                builder.add(heading, page=page_no, kind="heading", level=2)
                continue
        standalone = at_boundary and not nxt
        level = heading_level(line, standalone=standalone) if at_boundary else 0
        if level and ((nxt[:1].islower()) or (typical >= 30 and len(line) >= 0.85 * typical)):
            level = 0  # continues on the next line / runs full width: the start of a paragraph
        if level:
            flush()
            builder.add(line, page=page_no, kind="heading", level=level)
            at_boundary = True
            continue
        if _BULLET_RE.match(line) and para:
            flush()
        para.append(line)
        ends_sentence = line.endswith(_SENTENCE_END) and not _NOT_SENTENCE_END_RE.search(line)
        at_boundary = ends_sentence
        if ends_sentence and len(line) < 0.75 * typical:
            flush()  # a short last line ending a sentence closes the paragraph
    flush()
