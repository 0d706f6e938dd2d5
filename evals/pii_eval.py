"""Precision/recall of the personal-data detector on the labelled German example corpus.

Scored at the level of (example, kind) pairs rather than character spans: what the
Ampel policy acts on is *whether* a question contains a kind of personal data, not the
exact span, and span boundaries of names and addresses are a matter of taste.

The corpus has a ``dev`` split (the detector's rules were tuned on it) and a
``heldout`` split (never used for tuning); quote held-out numbers.

    python -m evals.pii_eval --split heldout
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

from assistant.policy.pii import KINDS, detect_pii

logger = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).resolve().parent / "datasets" / "pii_examples.jsonl"
SPLITS = ("dev", "heldout")


def load_examples(path: str | Path = DEFAULT_PATH) -> list[dict]:
    """Read and validate the corpus; a malformed line is an error, not something to skip silently."""
    examples, seen = [], set()
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = {"id", "text", "kinds", "split"} - row.keys()
        if missing:
            raise ValueError(f"{path}:{lineno}: missing fields {sorted(missing)}")
        if row["id"] in seen:
            raise ValueError(f"{path}:{lineno}: duplicate id {row['id']!r}")
        if row["split"] not in SPLITS:
            raise ValueError(f"{path}:{lineno}: unknown split {row['split']!r}")
        unknown = set(row["kinds"]) - set(KINDS)
        if unknown:
            raise ValueError(f"{path}:{lineno}: unknown kinds {sorted(unknown)}")
        seen.add(row["id"])
        examples.append(row)
    return examples


def _prf(tp: int, fp: int, fn: int) -> dict:
    # With nothing predicted there is nothing wrong (precision 1.0); with nothing to find,
    # nothing was missed (recall 1.0). F1 still drops to 0 when only one side is empty.
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "support": tp + fn,
            "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def score(examples: Iterable[dict]) -> dict:
    """Per-kind and micro-averaged overall scores, plus the ids of every miss and false alarm."""
    counts = {kind: [0, 0, 0] for kind in KINDS}
    errors, n = [], 0
    for ex in examples:
        n += 1
        gold = set(ex["kinds"])
        predicted = {d.kind for d in detect_pii(ex["text"])}
        for kind in KINDS:
            if kind in gold and kind in predicted:
                counts[kind][0] += 1
            elif kind in predicted:
                counts[kind][1] += 1
            elif kind in gold:
                counts[kind][2] += 1
        if gold != predicted:
            # ids and kinds only: the texts contain (synthetic) personal data.
            errors.append({"id": ex["id"], "missed": sorted(gold - predicted), "spurious": sorted(predicted - gold)})
    per_kind = {kind: _prf(*c) for kind, c in counts.items()}
    overall = _prf(*(sum(c[i] for c in counts.values()) for i in range(3)))
    return {"examples": n, "per_kind": per_kind, "overall": overall, "errors": errors}


def evaluate_pii(path: str | Path = DEFAULT_PATH, split: str | None = None) -> dict:
    """Score the detector on ``split`` ("dev", "heldout") or on all examples (``None``)."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS} or None")
    examples = [ex for ex in load_examples(path) if split is None or ex["split"] == split]
    report = score(examples)
    report["split"] = split or "all"
    logger.info("PII eval split=%s examples=%d overall=%s", report["split"], report["examples"], report["overall"])
    return report


def format_markdown(report: dict) -> str:
    """A Markdown table for the eval report and the docs."""
    lines = [
        f"### Erkennung personenbezogener Daten – Split `{report.get('split', 'all')}` ({report['examples']} Beispiele)",
        "",
        "| Art | Precision | Recall | F1 | TP | FP | FN |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = list(report["per_kind"].items()) + [("**gesamt**", report["overall"])]
    for kind, m in rows:
        lines.append(f"| {kind} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['tp']} | {m['fp']} | {m['fn']} |")
    if report.get("errors"):
        lines += ["", "Abweichungen (nur IDs):", ""]
        for err in report["errors"]:
            detail = ", ".join(
                part for part in (
                    f"übersehen: {', '.join(err['missed'])}" if err["missed"] else "",
                    f"fälschlich: {', '.join(err['spurious'])}" if err["spurious"] else "",
                ) if part
            )
            lines.append(f"- `{err['id']}` – {detail}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=str(DEFAULT_PATH))
    parser.add_argument("--split", choices=SPLITS, default=None)
    args = parser.parse_args(argv)
    sys.stdout.write(format_markdown(evaluate_pii(args.path, args.split)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
