"""The blind draw's options: a seeded draw that leaves out another dataset's gold pages.

The corpus is replaced by synthetic units, so nothing here reads ../shared.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import blind_draw
from evals.blind_draw import Unit

_SLIDE = "Folie mit etwas Text " * 10
_PAGE = "Ein gewöhnlicher Absatz ohne Besonderheiten " * 5


def _units() -> list[Unit]:
    out = [Unit("deck.pdf", p, p - 1, True, _SLIDE) for p in range(1, 11)]
    out += [Unit("bericht.pdf", p, p - 1, False, _PAGE) for p in range(1, 11)]
    out += [Unit("satzung.md", None, i, False, _PAGE) for i in range(5)]
    return out


@pytest.fixture
def fake_corpus(monkeypatch):
    monkeypatch.setattr(blind_draw, "units", lambda corpus: _units())


def _dataset(tmp_path: Path) -> Path:
    rows = [
        {"id": "q1", "expected_source": "deck.pdf", "expected_page": 3},
        {"id": "q2", "expected_source": "bericht.pdf", "expected_page": 2,
         "also_sources": [{"source": "satzung.md", "page": None}]},
        {"id": "q3", "expected_source": None, "expected_page": None},  # a near miss has no gold page
    ]
    path = tmp_path / "frozen.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _keys(result: dict) -> set[str]:
    return {d["key"] for pool in result["pools"].values() for d in pool}


def test_gold_pages_include_also_sources(tmp_path):
    assert blind_draw.gold_pages(_dataset(tmp_path)) == {("deck.pdf", 3), ("bericht.pdf", 2), ("satzung.md", None)}


def test_exclude_leaves_out_gold_pages_and_whole_pageless_documents(fake_corpus, tmp_path):
    result = blind_draw.draw(Path("corpus"), seed=7, exclude=blind_draw.gold_pages(_dataset(tmp_path)))
    keys = _keys(result)
    assert "deck.pdf#3" not in keys and "bericht.pdf#2" not in keys
    assert not any(k.startswith("satzung.md#") for k in keys)
    assert len(keys) == 25 - 7 and result["excluded_units"] == 7


def test_without_exclude_the_draw_is_unchanged(fake_corpus):
    result = blind_draw.draw(Path("corpus"), seed=7)
    assert result == blind_draw.draw(Path("corpus"), seed=7, exclude=())
    assert "excluded_units" not in result
    assert len(_keys(result)) == 25


def test_cli_draw_writes_seed_and_exclusion_to_out(fake_corpus, tmp_path):
    out = tmp_path / "draws.json"
    dataset = _dataset(tmp_path)
    assert blind_draw.main(["draw", "corpus", "--seed", "11", "--out", str(out), "--exclude", str(dataset)]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["seed"] == 11 and result["excluded_gold_of"] == [str(dataset)]
    assert result["pools"] == blind_draw.draw(Path("corpus"), seed=11, exclude=blind_draw.gold_pages(dataset))["pools"]
