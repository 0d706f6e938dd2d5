"""The runtime comparison: the quality gate of issue 19 and the measurements on a fake-free,
model-free embedder (the hash embedder stands in for the runtimes)."""
from __future__ import annotations

import pytest

from corpus.embeddings import HashEmbedder
from evals.embedding_bench import agreement, compare_runtimes, quality_gate, query_latency, throughput


def _modes(dense: float, hybrid: float) -> dict:
    return {"dense": {"mrr@10": dense}, "hybrid": {"mrr@10": hybrid}}


@pytest.mark.parametrize("dense, hybrid, ok", [
    (0.800, 0.900, True),    # equal
    (0.790, 0.895, True),    # exactly at both limits (1 point dense, 0.5 points hybrid)
    (0.789, 0.900, False),   # dense drops 1.1 points
    (0.800, 0.894, False),   # hybrid drops 0.6 points
    (0.850, 0.950, True),    # better is fine
])
def test_quality_gate(dense, hybrid, ok):
    gate = quality_gate(_modes(0.800, 0.900), _modes(dense, hybrid))
    assert gate["ok"] is ok
    assert gate["dense_mrr_drop"] == pytest.approx(0.800 - dense, abs=1e-4)


def test_compare_runtimes_reports_every_figure_per_runtime():
    embedders = {"e5": HashEmbedder(), "e5_int8": HashEmbedder()}
    texts = [f"Satzung Nummer {i} über Gebühren" for i in range(40)]
    res = compare_runtimes(lambda m: embedders[m], texts, ["Was kostet das?"] * 8, runtimes=("e5", "e5_int8"))
    for m in ("e5", "e5_int8"):
        r = res["runtimes"][m]
        assert r["passages_per_s"] > 0 and r["query_p95_ms"] >= r["query_p50_ms"] >= 0
    assert res["runtimes"]["e5"]["speedup_vs_torch"] == 1.0
    assert "min_cosine" in res["runtimes"]["e5_int8"] and "min_cosine" not in res["runtimes"]["e5"]


def test_agreement_of_identical_embedders_is_one():
    texts = ["Hundesteuer", "Biotonne und Sperrmüll"]
    got = agreement({"e5": HashEmbedder(), "e5_onnx": HashEmbedder()}, texts)
    assert got["e5_onnx"]["min_cosine"] == pytest.approx(1.0)
    assert throughput({"x": HashEmbedder()}, texts, rounds=1)["x"]["passages_per_s"] > 0
    assert query_latency({"x": HashEmbedder()}, texts, warmup=1)["x"]["queries"] == 2
