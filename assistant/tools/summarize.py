"""Summary of a whole document by map-reduce over all its passages, each point with its page.

Why not retrieval: a summary built from the top-k passages misses most of a document
(Open WebUI #3129, #2286). Here every passage is read: consecutive passages are packed
into batches that fit the model's context (``summary_batch_tokens``), each batch becomes a
few key points with the page they stand on (map), and the points are merged into the
requested length (reduce). Citations are checked in code: a point must cite a page of the
batch it came from and share most of its content words with that page; otherwise it is
re-cited to the page that holds it, or marked unchecked.

The fast path (``preselect``) keeps only the most central sentences of each passage – those
whose words recur across the document – before the model reads them. Reading the prompt is
the cost on 2 cores, so this cuts the time about in proportion to the share kept.

Documents without pages (Markdown, HTML, text) are cited by passage ("Abschn. 7").
"""
from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from corpus.text import content_stems, page_furniture
from assistant.tools import prompts
from assistant.tools.text import split_sentences
from corpus.models import Chunk

log = logging.getLogger(__name__)

LENGTHS = {"kurz": 5, "mittel": 10, "ausfuehrlich": 20}
MAP_POINTS = {"kurz": 3, "mittel": 4, "ausfuehrlich": 6}
LENGTH_ALIASES = {"ausführlich": "ausfuehrlich"}
MAX_REDUCE_ROUNDS = 3
MIN_SUPPORT = 0.5  # share of a point's content words that must stand on its cited page
_LOC = re.compile(r"\((?:S\.|Seite|Folie|Abschn\.|Abschnitt)\s*([\d,;–\-f. und]+)\)\s*$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•–]|\d+[.)])\s+")


def normalise_length(value: str | None) -> str:
    key = LENGTH_ALIASES.get((value or "mittel").strip().lower(), (value or "mittel").strip().lower())
    if key not in LENGTHS:
        raise ValueError(f"Unbekannte Länge / unknown length: {value!r} (kurz, mittel, ausfuehrlich)")
    return key


@dataclass(frozen=True)
class Passage:
    loc: int  # the number cited: page/slide, or the passage number for documents without pages
    text: str
    section: str | None = None


@dataclass
class Point:
    text: str
    locs: list[int] = field(default_factory=list)
    checked: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def loc_label(page_kind: str | None, has_pages: bool) -> str:
    if not has_pages:
        return "Abschn."
    return "Folie" if page_kind == "slide" else "S."


def passages_of(chunks: Iterable[Chunk], pages: tuple[int, int] | None = None) -> tuple[list[Passage], bool]:
    """Passages in document order (optionally of a page range) and whether they have pages."""
    chunks = sorted(chunks, key=lambda c: c.ordinal)
    has_pages = any(c.page is not None for c in chunks)
    out = []
    for i, c in enumerate(chunks, start=1):
        if pages and has_pages and (c.page is None or not pages[0] <= c.page <= pages[1]):
            continue
        out.append(Passage(c.page if has_pages and c.page is not None else i, c.text, c.section))
    return out, has_pages


def centrality(sentence: str, df: Counter[str]) -> float:
    """The mean document frequency (log-damped) of a sentence's content words, times 1.25 when it
    holds a number (deadlines, amounts).

    Summed with ``math.fsum`` because the words come from a set: a plain sum's last bit depended
    on the set's order, which changes with Python's hash seed, and decided ties between table rows
    (a summary test passed on one machine and failed in CI)."""
    stems = set(content_stems(sentence))
    score = math.fsum(math.log1p(df[w]) for w in stems) / (len(stems) + 2) if stems else 0.0
    return score * 1.25 if re.search(r"\d", sentence) else score


def preselect(passages: Sequence[Passage], share: float) -> list[Passage]:
    """Each passage reduced to its most central sentences (at least one), order kept.

    A sentence's centrality is the mean document frequency (log-damped) of its content words,
    with a bonus for numbers (deadlines, amounts): the sentences a summary most likely needs."""
    sents = [(p, split_sentences(p.text)) for p in passages]
    df: Counter[str] = Counter()
    for _, ss in sents:
        for s in ss:
            df.update(set(content_stems(s)))
    out = []
    for p, ss in sents:
        if len(ss) <= 1:
            out.append(p)
            continue
        scored = []
        for i, s in enumerate(ss):
            scored.append((centrality(s, df), i))
        keep = max(1, round(len(ss) * share))
        chosen = sorted(i for _, i in sorted(scored, reverse=True)[:keep])
        out.append(Passage(p.loc, " ".join(ss[i] for i in chosen), p.section))
    return out


def batches(passages: Sequence[Passage], max_tokens: int, count: Callable[[str], int]) -> list[list[Passage]]:
    """Consecutive passages packed up to ``max_tokens`` each (a single longer passage stands alone)."""
    out: list[list[Passage]] = []
    current: list[Passage] = []
    size = 0
    for p in passages:
        n = count(p.text) + 4
        if current and size + n > max_tokens:
            out.append(current)
            current, size = [], 0
        current.append(p)
        size += n
    if current:
        out.append(current)
    return out


def format_batch(batch: Sequence[Passage], label: str) -> str:
    return "\n\n".join(f"[{label} {p.loc}] {p.text}" for p in batch)


def _locs(raw: str) -> list[int]:
    nums = [int(n) for n in re.findall(r"\d+", raw)]
    if re.search(r"\d\s*[–-]\s*\d", raw) and len(nums) == 2 and 0 <= nums[1] - nums[0] <= 20:
        return list(range(nums[0], nums[1] + 1))
    return list(dict.fromkeys(nums))


def parse_points(text: str) -> list[Point]:
    """Key points from the model's bullet list; a trailing "(S. 3)" becomes the point's locations."""
    points = []
    for line in text.replace("<<<", "").replace(">>>", "").splitlines():
        if not _BULLET.match(line):
            continue
        body = _BULLET.sub("", line).strip()
        m = _LOC.search(body)
        locs = _locs(m.group(1)) if m else []
        body = body[: m.start()].rstrip() if m else body
        body = re.sub(r"\s*\[(?:S\.|Seite|Abschn\.)\s*\d+\]\s*", " ", body).strip()
        if len(body.split()) >= 3:
            points.append(Point(body, locs))
    return points


def support(point_text: str, passage_text: str) -> float:
    stems = set(content_stems(point_text))
    if not stems:
        return 0.0
    return len(stems & set(content_stems(passage_text))) / len(stems)


def check_points(points: Sequence[Point], passages: Sequence[Passage]) -> list[Point]:
    """Each point cites only locations whose text supports it; a point without one is re-cited
    to the best supporting passage, else left unchecked (``checked`` False)."""
    by_loc: dict[int, str] = {}
    for p in passages:
        by_loc[p.loc] = by_loc.get(p.loc, "") + " " + p.text
    out = []
    for pt in points:
        good = [loc for loc in pt.locs if loc in by_loc and support(pt.text, by_loc[loc]) >= MIN_SUPPORT]
        if not good:
            best = max(by_loc, key=lambda loc: support(pt.text, by_loc[loc]), default=None)
            if best is not None and support(pt.text, by_loc[best]) >= MIN_SUPPORT:
                good = [best]
        out.append(Point(pt.text, good or pt.locs, bool(good)))
    return out


def citations_valid(points: Sequence[Point], passages: Sequence[Passage]) -> tuple[int, int]:
    """(points whose cited locations exist and support them, points) – the eval metric."""
    by_loc: dict[int, str] = {}
    for p in passages:
        by_loc[p.loc] = by_loc.get(p.loc, "") + " " + p.text
    ok = sum(1 for pt in points if pt.locs and all(loc in by_loc for loc in pt.locs)
             and any(support(pt.text, by_loc[loc]) >= MIN_SUPPORT for loc in pt.locs))
    return ok, len(points)


def render_points(points: Sequence[Point], label: str) -> str:
    lines = []
    for pt in points:
        where = f" ({label} {', '.join(str(x) for x in pt.locs)})" if pt.locs else ""
        mark = "" if pt.checked else " [Stelle nicht belegt]"
        lines.append(f"- {pt.text}{where}{mark}")
    return "\n".join(lines)


def _stream_text(llm: Any, messages, max_tokens: int, emit: bool) -> Iterator[dict]:
    parts: list[str] = []
    for chunk in llm.stream(messages, max_tokens=max_tokens):
        piece = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
        if piece:
            parts.append(piece)
            if emit:
                yield {"type": "token", "text": piece}
    return "".join(parts)


def summarize(title: str, passages: Sequence[Passage], label: str, llm: Any, *, length: str, batch_tokens: int,
              map_tokens: int, output_tokens: int, count: Callable[[str], int]) -> Iterator[dict]:
    """Events: ``progress`` per map call, ``reset`` with the points so far, ``token`` during the final
    reduce, ``done`` with ``output`` and ``details`` (points, timings, batches)."""
    length = normalise_length(length)
    target = LENGTHS[length]
    groups = batches(passages, batch_tokens, count)
    t0 = time.perf_counter()
    points: list[Point] = []
    map_ms: list[float] = []
    for i, batch in enumerate(groups, start=1):
        yield {"type": "progress", "done": i - 1, "total": len(groups) + 1,
               "label": f"Abschnitt {i} von {len(groups)} wird gelesen ({label} {batch[0].loc}–{batch[-1].loc})"}
        t = time.perf_counter()
        raw = yield from _stream_text(llm, prompts.map_messages(title, format_batch(batch, label), MAP_POINTS[length],
                                                                label), map_tokens, emit=False)
        map_ms.append(round((time.perf_counter() - t) * 1000, 1))
        points.extend(check_points(parse_points(raw), batch))
        yield {"type": "reset", "text": render_points(points, label)}
    t_reduce = time.perf_counter()
    reduce_calls = 0
    if len(points) > target:
        current = points
        for round_no in range(1, MAX_REDUCE_ROUNDS + 1):
            # the last round merges everything in one call, so the loop always ends
            groups_text = _point_groups(current, label, batch_tokens if round_no < MAX_REDUCE_ROUNDS else None, count)
            last = len(groups_text) == 1
            merged: list[Point] = []
            for g in groups_text:
                reduce_calls += 1
                yield {"type": "progress", "done": len(groups), "total": len(groups) + 1,
                       "label": "Die Stichpunkte werden zusammengeführt"}
                if last:
                    yield {"type": "reset", "text": ""}
                raw = yield from _stream_text(llm, prompts.reduce_messages(title, g, target, label), output_tokens,
                                              emit=last)
                merged.extend(check_points(parse_points(raw), passages))
            if not merged:  # the model wrote no usable list: keep the map points
                merged = current[:target]
            current = merged
            if last or len(current) <= target:
                break
        points = current[: target + 2]
    output = render_points(points, label)
    ok, total = citations_valid(points, passages)
    details = {
        "length": length, "points": [p.as_dict() for p in points], "batches": len(groups),
        "passages": len(passages), "reduce_calls": reduce_calls, "citations_valid": ok, "citations_total": total,
        "map_ms": map_ms,
    }
    timings = {"map_ms": round((t_reduce - t0) * 1000, 1), "reduce_ms": round((time.perf_counter() - t_reduce) * 1000, 1)}
    yield {"type": "done", "output": output, "details": details, "timings": timings}


def _point_groups(points: Sequence[Point], label: str, max_tokens: int | None, count) -> list[str]:
    """Rendered point lines in groups of at most ``max_tokens`` (None: one group)."""
    if max_tokens is None:
        return ["\n".join(render_points([pt], label).replace(" [Stelle nicht belegt]", "") for pt in points)]
    groups: list[str] = []
    current: list[str] = []
    size = 0
    for pt in points:
        line = render_points([pt], label).replace(" [Stelle nicht belegt]", "")
        n = count(line)
        if current and size + n > max_tokens:
            groups.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += n
    if current:
        groups.append("\n".join(current))
    return groups


_CUT_START = re.compile(r"^[a-zäöüß]")  # a sentence a passage begins in the middle of (its start is one passage up)
_WHOLE_END = re.compile(r"[.!;:)\"“”»]$")


def table_row(header: str | None, row: str) -> str | None:
    """A table's row as one statement, its cells named by the header's ("Leistung: Reisepass;
    Gebühr: 70,00 Euro"), or None when ``row`` is no row with a figure. Rows are the facts of a fee
    list or a schedule, but end as no sentence ends: the summary took them only where whole
    sentences ran out (a browser review: the Reisepass fee was missing)."""
    if " | " not in row or not re.search(r"\d", row):
        return None
    cells = [c.strip() for c in row.split(" | ")]
    names = [c.strip() for c in header.split(" | ")] if header else []
    if len(names) != len(cells):
        return "; ".join(cells)
    return "; ".join(f"{name}: {cell}" for name, cell in zip(names, cells) if cell)


@dataclass(frozen=True)
class Candidate:
    """A sentence or a table's row that may become a point of the extractive summary."""

    passage: int
    loc: int
    text: str
    whole: bool  # ends as a sentence ends, or is a row with a figure
    row: bool = False
    scored: str = ""  # the words its centrality counts: a row's cells, not its header's names


def summary_sentences(passages: Sequence[Passage], titles: Sequence[str] = ()) -> list[Candidate]:
    """Every sentence and table row of the document once, in order.
    Lines are split first (a slide's heading is no part of the sentence after it). Passages are cut
    by size, so a sentence that starts in lower case began in the passage before, and one that
    ends the passage without a sentence's end goes on in the next (of the same page, or one that
    starts in lower case): both are left out, as are the document's ``titles`` and pages' running
    footers (:func:`corpus.text.page_furniture`). A table's first line is its header when it holds
    no figure (:func:`table_row` names the cells of the rows under it by it); a header with a figure
    ("Produkt | Ansatz 2025") names none. ``whole``: it ends as a sentence ends, or is a row with a
    figure (else a heading or a bullet point, taken only where whole sentences run out)."""
    seen: set[str] = {" ".join(t.lower().split()) for t in titles if t.strip()}
    out: list[Candidate] = []
    for idx, p in enumerate(passages):
        lines = [line for line in p.text.split("\n") if line.strip() and not page_furniture(line)]
        after = passages[idx + 1] if idx + 1 < len(passages) else None
        goes_on = after is not None and (after.loc == p.loc or bool(_CUT_START.match(after.text.lstrip())))
        header: str | None = None
        in_table = False
        for n, line in enumerate(lines):
            line = " ".join(line.split())
            if " | " in line:
                if not in_table:  # a table's first line
                    in_table = True
                    header = None if re.search(r"\d", line) else line
                    if header is not None:
                        continue
                row = table_row(header, line)
                if row is not None and row.lower() not in seen:
                    seen.add(row.lower())
                    out.append(Candidate(idx, p.loc, row, True, True, line.replace(" | ", " ")))
                if row is not None:
                    continue
            else:
                in_table, header = False, None
            parts = [" ".join(x.split()) for x in split_sentences(line) if x.strip()]
            for i, sent in enumerate(parts):
                whole = bool(_WHOLE_END.search(sent))
                cut_off = goes_on and not whole and n == len(lines) - 1 and i == len(parts) - 1  # ends mid-sentence
                key = sent.lower()
                if (len(sent) < 25 or cut_off or _CUT_START.match(sent) or sent.endswith("?") or key in seen
                        or page_furniture(sent)):
                    continue
                seen.add(key)
                out.append(Candidate(idx, p.loc, sent, whole, False, sent))
    return out


def extractive_summary(passages: Sequence[Passage], label: str, length: str,
                       titles: Sequence[str] = ()) -> Iterator[dict]:
    """Without a language model: the document's most central whole sentences and table rows (as many
    as the chosen length asks for, rows at most half of them while sentences last), in document
    order, each with its location.

    Why sentences and not one per passage: a short document has fewer passages than points asked
    for (10 asked, 3 given), and a passage's first sentence was often the end of one cut off
    above it („… des Rathauses eingegeben wurde, lässt sich …“), found by a browser review.
    Centrality is the mean document frequency (log-damped) of a sentence's content words, with
    a bonus for numbers; headings and cut sentences are taken only where whole ones run out. A long
    fee list's rows share their words with each other and would crowd out the rules around them."""
    length = normalise_length(length)
    target = LENGTHS[length]
    candidates = summary_sentences(passages, titles)
    df: Counter[str] = Counter()
    for c in candidates:
        df.update(set(content_stems(c.scored)))
    ranked = []
    for order, c in enumerate(candidates):
        ranked.append((c.whole, centrality(c.scored, df), -order, c))  # a row's figures are in its cells
    ranked.sort(key=lambda r: r[:3], reverse=True)
    rows_most, picked, rows = max(1, target // 2), [], 0
    for r in ranked:
        if len(picked) < target and (not r[3].row or rows < rows_most):
            picked.append(r)
            rows += r[3].row
    if len(picked) < target:  # few sentences: the rows that are left fill the summary
        picked += [r for r in ranked if r not in picked][: target - len(picked)]
    chosen = [(r[0], r[1], r[2], r[3].loc, r[3].text) for r in sorted(picked, key=lambda r: -r[2])]
    points = [Point(sent, [loc], True) for _, _, _, loc, sent in chosen]
    output = render_points(points, label) or ("Ohne Sprachmodell lässt sich dieses Dokument nicht zusammenfassen: "
                                              "es enthält keine vollständigen Sätze. Bitte ein Sprachmodell wählen.")
    yield {"type": "reset", "text": output}
    ok, total = citations_valid(points, passages)
    yield {"type": "done", "output": output, "timings": {},
           "details": {"length": length, "points": [p.as_dict() for p in points], "batches": 0,
                       "passages": len(passages), "reduce_calls": 0, "citations_valid": ok, "citations_total": total,
                       "map_ms": [], "extractive": True, "asked_points": target}}
