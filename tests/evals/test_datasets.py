"""Schema checks for every evaluation dataset in evals/datasets/*.jsonl.

Only the JSONL files themselves are read: nothing here touches ../shared, so
these tests pass on a fresh clone. Whether the key terms really occur on the
expected pages of the shared corpus is checked when the dataset is written,
not in the unit tests.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

DATASETS_DIR = Path(__file__).resolve().parents[2] / "evals" / "datasets"
DATASET_FILES = sorted(p for p in DATASETS_DIR.glob("*.jsonl") if p.name != "pii_examples.jsonl")  # PII set has its own schema
SHARED = DATASETS_DIR / "shared.jsonl"

KINDS = {"slide", "statute", "table", "report", "handbook", "web", "page", "fact"}
PAGED_SUFFIXES = (".pdf", ".xlsx")  # xlsx: page = 1-based sheet number
REQUIRED = ("id", "question", "expected_source", "expected_page", "key_terms", "answerable")


def _load(path: Path) -> list[dict]:
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        assert line.strip(), f"{path.name}:{lineno}: blank line"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            pytest.fail(f"{path.name}:{lineno}: invalid JSON: {exc}")
        assert isinstance(rec, dict), f"{path.name}:{lineno}: not a JSON object"
        records.append(rec)
    return records


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_dataset_files_exist():
    assert SHARED in DATASET_FILES


@pytest.mark.parametrize("path", DATASET_FILES, ids=_ids(DATASET_FILES))
def test_every_line_parses_and_is_non_empty(path: Path):
    assert _load(path), f"{path.name} has no records"


@pytest.mark.parametrize("path", DATASET_FILES, ids=_ids(DATASET_FILES))
def test_required_fields_and_types(path: Path):
    for rec in _load(path):
        where = f"{path.name}:{rec.get('id')}"
        missing = [f for f in REQUIRED if f not in rec]
        assert not missing, f"{where}: missing {missing}"

        assert isinstance(rec["id"], str) and rec["id"].strip(), where
        assert isinstance(rec["question"], str) and rec["question"].strip(), where
        assert isinstance(rec["answerable"], bool), f"{where}: answerable must be bool"

        src = rec["expected_source"]
        assert src is None or (isinstance(src, str) and src.strip()), where

        page = rec["expected_page"]
        # bool is an int subclass; reject it explicitly.
        assert page is None or (type(page) is int and page >= 1), f"{where}: page {page!r}"

        terms = rec["key_terms"]
        assert isinstance(terms, list), where
        assert all(isinstance(t, str) and t.strip() for t in terms), f"{where}: key_terms"

        if "kind" in rec:
            assert rec["kind"] in KINDS, f"{where}: kind {rec['kind']!r}"
        if "alt_sources" in rec:
            alts = rec["alt_sources"]
            assert isinstance(alts, list) and alts, where
            assert all(isinstance(a, str) and a.strip() for a in alts), where
            assert src not in alts, f"{where}: alt_sources repeats expected_source"


@pytest.mark.parametrize("path", DATASET_FILES, ids=_ids(DATASET_FILES))
def test_ids_unique_per_file(path: Path):
    counts = Counter(rec["id"] for rec in _load(path))
    dupes = sorted(i for i, n in counts.items() if n > 1)
    assert not dupes, f"{path.name}: duplicate ids {dupes}"


@pytest.mark.parametrize("path", DATASET_FILES, ids=_ids(DATASET_FILES))
def test_answerability_is_consistent(path: Path):
    for rec in _load(path):
        where = f"{path.name}:{rec['id']}"
        if rec["answerable"]:
            assert rec["expected_source"], f"{where}: answerable without expected_source"
        else:
            assert rec["expected_source"] is None, where
            assert rec["expected_page"] is None, where
            assert rec["key_terms"] == [], where
            assert "alt_sources" not in rec, where


# ---------------------------------------------------------------- shared.jsonl


@pytest.fixture(scope="module")
def shared() -> list[dict]:
    return _load(SHARED)


def test_shared_size_and_unanswerable_share(shared):
    assert len(shared) >= 40
    assert sum(1 for r in shared if not r["answerable"]) >= 8


def test_shared_ids_are_numbered(shared):
    assert [r["id"] for r in shared] == [f"shared-{i:03d}" for i in range(1, len(shared) + 1)]


def test_shared_every_record_has_a_kind(shared):
    assert all(r.get("kind") in KINDS for r in shared)


def test_shared_covers_every_kind(shared):
    kinds = Counter(r["kind"] for r in shared if r["answerable"])
    minimum = {"slide": 8, "statute": 10, "table": 5, "web": 2}
    for kind, n in minimum.items():
        assert kinds[kind] >= n, f"{kind}: {kinds[kind]} < {n}"
    assert kinds["report"] + kinds["handbook"] >= 8
    assert sum(1 for r in shared if r["answerable"] and r["expected_source"].endswith(".xlsx")) >= 1
    assert sum(1 for r in shared if r["answerable"] and r["expected_source"].endswith(".html")) >= 2


def test_shared_answerable_records_are_well_formed(shared):
    for rec in shared:
        if not rec["answerable"]:
            continue
        where = rec["id"]
        src = rec["expected_source"]
        assert "/" not in src and "\\" not in src, f"{where}: bare file name expected"
        assert 1 <= len(rec["key_terms"]) <= 3, f"{where}: 1-3 key terms"
        if src.lower().endswith(PAGED_SUFFIXES):
            assert rec["expected_page"] is not None, f"{where}: paged format needs a page"
        else:
            assert rec["expected_page"] is None, f"{where}: pageless format has no page"


def test_shared_questions_are_distinct(shared):
    counts = Counter(r["question"].strip().casefold() for r in shared)
    assert max(counts.values()) == 1


def test_follow_up_pairs_have_their_own_schema():
    """evals/datasets/followups/*.jsonl (python -m evals.followups): a previous question, a follow-up
    to ask with it as history, the key terms of the follow-up's answer, and the split it belongs to."""
    rows = [json.loads(line) for path in sorted((DATASETS_DIR / "followups").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert rows and len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert set(r) == {"id", "split", "previous", "question", "key_terms"}, r
        assert r["split"] in ("dev", "test") and r["previous"].endswith("?") and r["question"].endswith("?")
        assert r["key_terms"] and all(isinstance(k, str) and k for k in r["key_terms"])
