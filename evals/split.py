"""Split a question dataset into a dev part (tune on it) and a frozen test part (report only).

Why: the checks of the answer chain were tuned on the very questions they were measured on
(issue 14: key facts 0.49 on the tuned set, 0.12 on held-out questions). The split is seeded
and stratified by (answerable, kind), so both parts hold near misses and every kind of page;
re-running it reproduces the same files byte for byte.

``python -m evals.split evals/datasets/shared.jsonl`` writes ``shared_dev.jsonl`` and
``shared_test.jsonl`` next to it.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 14
TEST_SHARE = 0.5


def split_records(records: list[dict], seed: int = SEED, test_share: float = TEST_SHARE) -> tuple[list[dict], list[dict]]:
    """(dev, test), each in the original order; per stratum ``round(n * test_share)`` go to test."""
    strata: dict[tuple, list[int]] = {}
    for i, rec in enumerate(records):
        strata.setdefault((bool(rec.get("answerable", True)), rec.get("kind") or ""), []).append(i)
    rng = random.Random(seed)
    test: set[int] = set()
    for key in sorted(strata, key=str):
        idx = strata[key]
        test.update(rng.sample(idx, round(len(idx) * test_share)))
    dev = [r for i, r in enumerate(records) if i not in test]
    return dev, [r for i, r in enumerate(records) if i in test]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m evals.split DATASET.jsonl\n")
        return 2
    path = Path(argv[0])
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for name, part in zip(("dev", "test"), split_records(records)):
        out = path.with_name(f"{path.stem}_{name}.jsonl")
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
