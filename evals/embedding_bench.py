"""Embedding runtimes side by side: torch fp32 (the old default), ONNX Runtime fp32 and int8.

Why a comparison in one run: on a shared 2-core machine absolute passages/s depend on who
else holds the cores, so the figure that decides is the ratio measured on the same passages
in the same process, one runtime right after the other (and repeated in alternation, so a
burst of load hits all of them). Quality is compared on XQuAD-de through the real ingest
pipeline: int8 only becomes the default if hybrid MRR@10 drops at most 0.5 points and dense
at most 1 point against torch (``quality_gate``).
"""
from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

RUNTIMES = ("e5", "e5_onnx", "e5_int8")
LABELS = {"e5": "torch fp32", "e5_onnx": "ONNX fp32", "e5_int8": "ONNX int8"}
MAX_HYBRID_DROP = 0.005
MAX_DENSE_DROP = 0.01


def quality_gate(torch_modes: dict, candidate_modes: dict) -> dict[str, Any]:
    """Does a runtime hold quality? Drops in MRR@10 against torch, in absolute points (0.005 = 0.5 points)."""
    hybrid = torch_modes["hybrid"]["mrr@10"] - candidate_modes["hybrid"]["mrr@10"]
    dense = torch_modes["dense"]["mrr@10"] - candidate_modes["dense"]["mrr@10"]
    return {"hybrid_mrr_drop": round(hybrid, 4), "dense_mrr_drop": round(dense, 4),
            "ok": bool(hybrid <= MAX_HYBRID_DROP + 1e-9 and dense <= MAX_DENSE_DROP + 1e-9)}


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def throughput(embedders: dict[str, Any], texts: Sequence[str], *, batch_size: int = 32, rounds: int = 2) -> dict[str, dict]:
    """Passages per second of each embedder on the same ``texts``; the runtimes take turns for
    ``rounds`` rounds and the best round counts (the least disturbed by other load)."""
    for emb in embedders.values():  # load models and warm up outside the clock
        emb.embed_passages(list(texts[:batch_size]), batch_size=batch_size)
    best: dict[str, float] = {k: 0.0 for k in embedders}
    for _ in range(rounds):
        for key, emb in embedders.items():
            t0 = time.perf_counter()
            emb.embed_passages(list(texts), batch_size=batch_size)
            best[key] = max(best[key], len(texts) / (time.perf_counter() - t0))
    return {k: {"passages_per_s": round(v, 2)} for k, v in best.items()}


def query_latency(embedders: dict[str, Any], questions: Sequence[str], *, warmup: int = 5) -> dict[str, dict]:
    """One question at a time, as the portal embeds them; p50/p95 in ms per embedder."""
    out = {}
    for key, emb in embedders.items():
        for q in questions[:warmup]:
            emb.embed_query_vector(q)
        lat = []
        for q in questions:
            t0 = time.perf_counter()
            emb.embed_query_vector(q)
            lat.append((time.perf_counter() - t0) * 1000)
        out[key] = {"query_p50_ms": round(_percentile(lat, 50), 2), "query_p95_ms": round(_percentile(lat, 95), 2),
                    "queries": len(lat)}
    return out


def agreement(embedders: dict[str, Any], texts: Sequence[str], reference: str = "e5") -> dict[str, float]:
    """Minimum and mean cosine of each runtime's passage vectors against the reference's."""
    ref = embedders[reference].embed_passages(list(texts))
    out = {}
    for key, emb in embedders.items():
        if key == reference:
            continue
        cos = np.sum(emb.embed_passages(list(texts)) * ref, axis=1)
        out[key] = {"min_cosine": round(float(cos.min()), 5), "mean_cosine": round(float(cos.mean()), 5)}
    return out


def compare_runtimes(make_embedder: Callable[[str], Any], passages: Sequence[str], questions: Sequence[str],
                     xquad: Callable[[str], dict] | None = None, *, batch_size: int = 32,
                     runtimes: Sequence[str] = RUNTIMES, seed: int = 7) -> dict[str, Any]:
    """Throughput, question latency, agreement and (with ``xquad``) retrieval quality per runtime.

    ``make_embedder(mode)`` builds an embedder for an ``embedding.mode``; ``xquad(mode)`` returns
    ``xquad_eval``'s result with that embedder."""
    embedders = {m: make_embedder(m) for m in runtimes}
    qs = list(questions)
    random.Random(seed).shuffle(qs)
    res: dict[str, Any] = {"passages": len(passages), "batch_size": batch_size, "runtimes": {}}
    tp = throughput(embedders, passages, batch_size=batch_size)
    lat = query_latency(embedders, qs)
    agree = agreement(embedders, passages[:200])
    for m in runtimes:
        res["runtimes"][m] = {"label": LABELS.get(m, m), **tp[m], **lat[m], **agree.get(m, {})}
    base = tp["e5"]["passages_per_s"] if "e5" in tp else None
    for m in runtimes:
        res["runtimes"][m]["speedup_vs_torch"] = round(tp[m]["passages_per_s"] / base, 2) if base else None
    if xquad is not None:
        for m in runtimes:
            xq = xquad(m)
            res["runtimes"][m]["xquad"] = {mode: {k: v[k] for k in ("hit@1", "hit@5", "mrr@10", "latency_p95_ms") if k in v}
                                           for mode, v in xq["modes"].items()}
        torch_modes = res["runtimes"]["e5"]["xquad"]
        for m in runtimes:
            if m != "e5":
                res["runtimes"][m]["quality_gate"] = quality_gate(torch_modes, res["runtimes"][m]["xquad"])
    return res


def format_comparison(res: dict) -> list[str]:
    """Markdown table lines of one comparison."""
    lines = ["| Laufzeit | Abschnitte/s | × torch | Frage p50 ms | Frage p95 ms | min. Kosinus | XQuAD dense MRR@10 | hybrid MRR@10 | Qualität gehalten |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m, r in res["runtimes"].items():
        xq = r.get("xquad", {})
        gate = r.get("quality_gate", {})
        lines.append(f"| {r['label']} | {r['passages_per_s']} | {r.get('speedup_vs_torch')} | {r['query_p50_ms']} | "
                     f"{r['query_p95_ms']} | {r.get('min_cosine', '–')} | {xq.get('dense', {}).get('mrr@10', '–')} | "
                     f"{xq.get('hybrid', {}).get('mrr@10', '–')} | {'–' if not gate else ('ja' if gate['ok'] else 'nein')} |")
    return lines


__all__ = ["LABELS", "RUNTIMES", "compare_runtimes", "format_comparison", "quality_gate"]


def _unused(_: Path) -> None:  # pragma: no cover - keeps Path imported for type hints in callers
    return None
