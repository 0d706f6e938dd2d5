from __future__ import annotations

import pytest

from assistant.retrieval import rrf_fuse


def test_rrf_worked_example():
    # a: 1/(60+1) + 1/(60+2); b: 1/(60+2) + 1/(60+1); c: 1/(60+3)
    fused = dict(rrf_fuse([["a", "b", "c"], ["b", "a"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["b"] == pytest.approx(fused["a"])
    assert fused["c"] == pytest.approx(1 / 63)


def test_rrf_agreement_beats_single_first_place():
    fused = rrf_fuse([["x", "y"], ["z", "y"]], k=60)
    assert fused[0][0] == "y"


def test_rrf_weights():
    fused = rrf_fuse([["a"], ["b"]], k=1, weights=[2.0, 1.0])
    assert fused == [("a", 1.0), ("b", 0.5)]


def test_rrf_ties_are_broken_by_the_first_ranking_not_by_id():
    fused = rrf_fuse([["zz-bm25"], ["aa-dense"]], k=60)
    assert fused[0][1] == fused[1][1] and [i for i, _ in fused] == ["zz-bm25", "aa-dense"]
