"""Draw the pages of the blind question set by a seeded random generator, and check the questions.

Why: a question set written by the people who tune the chain drifts towards what the chain
already answers ("easy" pages, words copied from the page). Here the *pages* are drawn by a
seeded generator, the question writer takes them in draw order and records every skipped
draw with its reason, and the questions are checked in code for copied wording.

Pools (each shuffled with its own seeded generator, so adding a pool never changes another):

* ``slide``   – pages of slide decks (the loader's ``page_kind == "slide"``, or a PDF of mostly
  landscape pages: decks exported to PDF);
* ``rule``    – pages/passages holding an exception or condition marker ("ausgenommen",
  "es sei denn", "außer", "gilt nicht", "sofern", "nur wenn", …): yes/no questions;
* ``table``   – pages/passages with at least four amounts, fees or figures: lookups;
* ``page``    – every other page or passage: cross-document pairs and near-miss topics.

A pageless document (Markdown, HTML) contributes its passages (page ``None``).

``python -m evals.blind_draw draw CORPUS_DIR`` writes ``evals/datasets/blind_draws.json``
(seed and every draw); ``python -m evals.blind_draw check DATASET CORPUS_DIR`` reports, for
every question, its content-word overlap with its gold page and fails when a question shares a
run of three content words with the page.

A second set written the same blind way (the tuning set ``blind_dev.jsonl``) is drawn with
``draw CORPUS_DIR --seed N --out FILE --exclude evals/datasets/blind.jsonl``: ``--exclude`` drops
every gold page of the given dataset (``also_sources`` included) from the pools before drawing,
so the tuning set never shares a gold page with the frozen set it must not leak into. A gold
page ``None`` (pageless document: the check reads the whole document) excludes every passage of
that document. Without these options the draw is the frozen one, unchanged.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SEED = 20261202
DRAWS_PER_POOL = {"slide": 45, "rule": 30, "table": 30, "page": 60}
DRAWS_FILE = Path(__file__).resolve().parent / "datasets" / "blind_draws.json"

_RULE = re.compile(r"\b(ausgenommen|es sei denn|außer|gilt nicht|gelten nicht|sofern|soweit|nur wenn|nur dann|"
                   r"abweichend|unbeschadet|mit ausnahme|befreit)\b", re.IGNORECASE)
_AMOUNT = re.compile(r"\d[\d.,]*\s*(?:€|euro|eur\b|%|prozent|mio|tage|wochen|monate|jahre)", re.IGNORECASE)


@dataclass(frozen=True)
class Unit:
    """One drawable piece: a page of a paged document, or a passage of a pageless one."""

    source: str
    page: int | None
    ordinal: int
    slide: bool
    text: str

    @property
    def key(self) -> str:
        return f"{self.source}#{self.page if self.page is not None else 'p' + str(self.ordinal)}"


def units(corpus: Path) -> list[Unit]:
    """Every page (paged formats) or passage (pageless) with at least 150 characters of text."""
    from ingest.chunking import chunk_blocks
    from ingest.errors import IngestError
    from ingest.loaders import load_document

    out: list[Unit] = []
    for path in sorted(p for p in corpus.iterdir() if p.is_file()):
        try:
            doc = load_document(path)
        except IngestError as exc:
            log.info("skip %s: %s", path.name, exc)
            continue
        slide = doc.page_kind == "slide" or (doc.format == "pdf" and landscape_pdf(path))
        pages: dict[int, list[str]] = {}
        if any(b.page is not None for b in doc.blocks):
            for b in doc.blocks:
                pages.setdefault(b.page or 0, []).append(b.text)
            for i, (page, texts) in enumerate(sorted(pages.items())):
                text = "\n".join(texts)
                if len(text) >= 150:
                    out.append(Unit(path.name, page or None, i, slide, text))
        else:
            for i, piece in enumerate(chunk_blocks(doc.blocks)):
                if len(piece.text) >= 150:
                    out.append(Unit(path.name, None, i, False, piece.text))
    return out


def landscape_pdf(path: Path) -> bool:
    """A PDF whose pages are mostly landscape is an exported slide deck (the loader reads it as pages)."""
    from pypdf import PdfReader

    pages = PdfReader(path, strict=False).pages
    wide = sum(1 for p in pages if float(p.mediabox.width) > 1.15 * float(p.mediabox.height))
    return bool(pages) and wide > len(pages) / 2


def pool_of(u: Unit) -> str:
    if u.slide:
        return "slide"
    if len(_AMOUNT.findall(u.text)) >= 4:
        return "table"
    if _RULE.search(u.text):
        return "rule"
    return "page"


def gold_pages(dataset: Path) -> set[tuple[str, int | None]]:
    """Every (source, page) a dataset's questions take as gold, ``also_sources`` included."""
    out: set[tuple[str, int | None]] = set()
    for line in dataset.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("expected_source"):
            out.add((rec["expected_source"], rec["expected_page"]))
        out.update((s["source"], s.get("page")) for s in rec.get("also_sources", []))
    return out


def draw(corpus: Path, seed: int = SEED, exclude: Collection[tuple[str, int | None]] = ()) -> dict:
    """The seeded draws per pool, in the order the question writer must take them.

    ``exclude``: (source, page) pairs left out of every pool (a pageless document's passages
    have page ``None``, so its pair leaves out the whole document)."""
    by_pool: dict[str, list[Unit]] = {p: [] for p in DRAWS_PER_POOL}
    skipped = 0
    for u in units(corpus):
        if (u.source, u.page) in exclude:
            skipped += 1
            continue
        by_pool[pool_of(u)].append(u)
    result = {"seed": seed, "corpus_units": {p: len(v) for p, v in by_pool.items()}, "pools": {}}
    if exclude:
        result["excluded_units"] = skipped
    for i, (pool, n) in enumerate(DRAWS_PER_POOL.items()):
        rng = random.Random(seed * 100 + i)
        picked = rng.sample(by_pool[pool], min(n, len(by_pool[pool])))
        result["pools"][pool] = [{"draw": j + 1, "source": u.source, "page": u.page, "ordinal": u.ordinal,
                                  "key": u.key, "chars": len(u.text)} for j, u in enumerate(picked)]
    return result


# ---------------------------------------------------------------- copied-wording check
def _stems(text: str) -> list[str]:
    from corpus.text import content_stems

    return content_stems(text)


def shared_run(question: str, page_text: str, n: int = 3) -> tuple[str, ...] | None:
    """The first run of ``n`` consecutive content words (stemmed) of the question that also
    stands consecutively (stopwords aside) in the page, or None."""
    q = _stems(question)
    p = _stems(page_text)
    grams = {tuple(p[i : i + n]) for i in range(len(p) - n + 1)}
    for i in range(len(q) - n + 1):
        if tuple(q[i : i + n]) in grams:
            return tuple(q[i : i + n])
    return None


def word_overlap(question: str, page_text: str) -> float:
    """Share of the question's distinct content words (stemmed) that occur on the page."""
    q = set(_stems(question))
    if not q:
        return 0.0
    return round(len(q & set(_stems(page_text))) / len(q), 3)


def page_text(corpus: Path, source: str, page: int | None, cache: dict) -> str:
    """The text of one page (or, for a pageless document, the whole document)."""
    from ingest.loaders import load_document

    if source not in cache:
        cache[source] = load_document(corpus / source)
    doc = cache[source]
    if page is None:
        return doc.text
    return "\n".join(b.text for b in doc.blocks if b.page == page)


def check(dataset: Path, corpus: Path) -> list[dict]:
    """Overlap and copied runs of every answerable question against each of its gold pages, and
    whether each key fact stands on one of them (as the evaluation counts it)."""
    from evals.metrics import contains_key_terms

    cache: dict = {}
    rows = []
    for line in dataset.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        golds = [(rec["expected_source"], rec["expected_page"])] if rec.get("expected_source") else []
        golds += [(s["source"], s.get("page")) for s in rec.get("also_sources", [])]
        texts = [page_text(corpus, s, p, cache) for s, p in golds]
        runs = [shared_run(rec["question"], t) for t in texts]
        rows.append({"id": rec["id"], "overlap": max((word_overlap(rec["question"], t) for t in texts), default=None),
                     "run": next((r for r in runs if r), None),
                     "facts_on_page": all(any(contains_key_terms(t, [k]) == 1.0 for t in texts)
                                          for k in rec.get("key_terms", []))})
    return rows


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m evals.blind_draw")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("draw", help="draw the pages into pools (seeded)")
    d.add_argument("corpus", type=Path)
    d.add_argument("--seed", type=int, default=SEED)
    d.add_argument("--out", type=Path, default=DRAWS_FILE)
    d.add_argument("--exclude", type=Path, action="append", default=[], metavar="DATASET",
                   help="leave out every gold page of this dataset (repeatable)")
    c = sub.add_parser("check", help="copied wording and key facts of a dataset")
    c.add_argument("dataset", type=Path)
    c.add_argument("corpus", type=Path)
    args = parser.parse_args(argv)

    if args.command == "draw":
        exclude: set[tuple[str, int | None]] = set()
        for dataset in args.exclude:
            exclude |= gold_pages(dataset)
        result = draw(args.corpus, seed=args.seed, exclude=exclude)
        if args.exclude:
            result["excluded_gold_of"] = [str(p) for p in args.exclude]
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        log.warning("draws written to %s", args.out)
        return 0
    rows = check(args.dataset, args.corpus)
    bad = [r for r in rows if r["run"] or not r["facts_on_page"]]
    json.dump(rows, sys.stdout, ensure_ascii=False, indent=0)
    sys.stdout.write("\n")
    for r in bad:
        log.warning("%s: %s", r["id"], f"copied run {r['run']}" if r["run"] else "key facts not on the gold page(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
