"""The tools eval's pure parts: excerpts from real files, key-point coverage, metrics, datasets valid."""
from __future__ import annotations

from pathlib import Path

import pytest

from evals.tools_eval import covered, draft_metrics, einfach_metrics, excerpt, is_tools_dataset, load_items

DATASETS = Path(__file__).resolve().parents[2] / "evals" / "datasets" / "tools"


def test_excerpt_takes_one_section_without_front_matter(tmp_path):
    f = tmp_path / "s.md"
    f.write_text("---\ntitel: X\n---\n# S\n\n### § 1 A\n\n**(1)** Eins gilt.\n\n### § 2 B\n\nZwei.\n", encoding="utf-8")
    assert excerpt(f, "### § 1 A") == "(1) Eins gilt."
    with pytest.raises(ValueError):
        excerpt(f, "### § 9 Fehlt")


def test_covered_needs_every_group_with_alternatives():
    assert covered("Die Ruhezeit beträgt 20 Jahre.", ["Ruhezeit", "20 Jahre|zwanzig Jahre"])
    assert not covered("Die Ruhezeit ist lang.", ["Ruhezeit", "20 Jahre|zwanzig Jahre"])


def test_metrics_pool_sentences_and_facts():
    rows = [{"flesch_after": 60, "flesch_before": 20, "wiener_before": 14, "wiener_after": 8, "sentences": 10,
             "violations": 2, "violations_before_revision": 5, "facts_total": 4, "facts_kept": 3, "seconds": 10},
            {"flesch_after": 50, "flesch_before": 30, "wiener_before": 12, "wiener_after": 10, "sentences": 10,
             "violations": 0, "violations_before_revision": 1, "facts_total": 0, "facts_kept": 0, "seconds": 20}]
    m = einfach_metrics(rows)
    assert m["readability_gain_flesch"] == 30 and m["readability_gain_wiener"] == 4
    assert m["violations_per_100_sentences"] == 10.0 and m["violations_per_100_sentences_draft"] == 30.0
    assert m["facts_kept"] == 0.75
    d = draft_metrics([{"invented_raw": 2, "invented_after_check": 0, "expected_facts": 2, "expected_kept": 1,
                        "seconds": 3}])
    assert d["drafts_with_invented_raw"] == 1 and d["facts_kept"] == 0.5


@pytest.mark.parametrize("name", ["einfach", "zusammenfassung", "entwurf"])
def test_datasets_load_and_reference_the_shared_corpus_by_path(name):
    path = DATASETS / f"{name}.jsonl"
    assert is_tools_dataset(path)
    items = load_items(path)
    assert items and all(i["tool"] == name for i in items)
    for i in items:
        for rel in [i.get("path"), *(i.get("corpus") or [])]:
            assert rel is None or rel.startswith("corpus/docs/")
