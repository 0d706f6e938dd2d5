"""Late interaction: the fused top candidates re-ranked by how well each question word finds its match.

Why: BM25 and the e5 vector each squeeze a passage into one view, and every way of fusing, weighting
or re-ranking the two by word signals tried in sessions 24–35 landed within a question or two of the
fused order (docs/results.md). The passage holding the facts was retrieved (top 20 for 0.87 of
blind_dev's questions) but ranked below the four that reach the model. Late interaction (MaxSim, as
in ColBERT) compares the question and the passage token by token in the e5 model's own context: for
each of the question's tokens the most similar token of the passage, averaged. A question word meets
its inflection, compound part or near-synonym wherever it stands in the passage, and a passage that
answers *all* of the question beats one that matches its topic. No new model: the token vectors come
from the same multilingual-e5-small (its fp32 ONNX token graph, :mod:`corpus.onnx_model`), which was
not trained for it; as a second opinion fused with the retrievers' order it still moved what reaches
the model. Chosen on the tuning sets; on the frozen blind set (session 36, local model, docs/results.md)
evidence recall 0.50 → 0.56, gold page in the top 5 0.68 → 0.71, key facts 0.33 → 0.36.

The cost is one pass of the encoder over the candidates per question (0.4-0.8 s for 20 passages on 2
cores with the ONNX graph, each passage in a run of its own, so no padding; 1.5 s with torch in runs
of 16); passages recur between questions, so their token vectors are kept (float16, within
``keep_mb``). The graph is fp32 on purpose: int8 quantises activations per run, so a passage's vectors,
and a question's order, depended on what was encoded beside it and before (blind_dev's evidence recall
0.65 batched, 0.61 alone). Between two passages the step looks
at the stop signal (:mod:`assistant.stopping`). If the encoder fails, the search keeps the fused order
(:meth:`assistant.retrieval.HybridRetriever.search`): an optional step never costs an answer.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from typing import Protocol, Sequence

import numpy as np

from assistant import stopping

log = logging.getLogger(__name__)


class TokenEncoder(Protocol):
    def token_vectors(self, texts: Sequence[str], *, query: bool = False) -> list[np.ndarray]: ...


def maxsim(question: np.ndarray, passage: np.ndarray) -> float:
    """Mean over the question's tokens of the best cosine with any passage token (rows normalised)."""
    if len(question) == 0 or len(passage) == 0:
        return 0.0
    return float((question @ passage.T.astype(np.float32)).max(axis=1).mean())


def late_ranks(scores: Sequence[float]) -> list[int]:
    """Each candidate's place (1 = best) by ``scores``; ties keep the fused order. Pure."""
    ranks = [0] * len(scores)
    for rank, i in enumerate(sorted(range(len(scores)), key=lambda i: (-scores[i], i)), start=1):
        ranks[i] = rank
    return ranks


def late_order(scores: Sequence[float], *, weight: float, k: int) -> list[int]:
    """Positions of the candidates (given in fused order) in their new order.

    Reciprocal rank fusion of the fused order (weight 1) with the order by ``scores`` (``weight``):
    1 / (k + fused rank) + weight / (k + late rank). Ties keep the fused order. Pure."""
    ranks = late_ranks(scores)
    fused = [1.0 / (k + i + 1) + weight / (k + ranks[i]) for i in range(len(scores))]
    return sorted(range(len(scores)), key=lambda i: (-fused[i], i))


class LateInteraction:
    """Re-ranks the first ``candidates`` of a fused list by MaxSim (see the module's docstring)."""

    def __init__(self, encoder: TokenEncoder, *, candidates: int = 20, weight: float = 4.0, k: int = 20,
                 keep_mb: float = 128.0) -> None:
        self.encoder = encoder
        self.candidates = candidates
        self.weight = weight
        self.k = k
        self.keep_bytes = int(keep_mb * 1024 * 1024)
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()
        self._kept_bytes = 0
        self._lock = threading.Lock()

    def scores(self, question: str, texts: Sequence[str]) -> list[float]:
        """MaxSim of ``question`` against each text."""
        q = self.encoder.token_vectors([question], query=True)[0]
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        have: dict[str, np.ndarray] = {}
        with self._lock:
            for key in keys:
                if key in self._kept:
                    have[key] = self._kept[key]
                    self._kept.move_to_end(key)
        text_of = dict(zip(keys, texts))
        for key in dict.fromkeys(key for key in keys if key not in have):
            stopping.check()  # the user left: no more passages for an answer nobody waits for
            have[key] = self.encoder.token_vectors([text_of[key]])[0].astype(np.float16)
            self._keep(key, have[key])
        return [maxsim(q, have[key]) for key in keys]

    def _keep(self, key: str, rows: np.ndarray) -> None:
        with self._lock:
            if key in self._kept or rows.nbytes > self.keep_bytes:
                return
            self._kept[key] = rows
            self._kept_bytes += rows.nbytes
            while self._kept_bytes > self.keep_bytes:
                self._kept_bytes -= self._kept.popitem(last=False)[1].nbytes

    def forget(self) -> None:
        """Drop the kept token vectors (the evaluation times each answer as a new question would be)."""
        with self._lock:
            self._kept.clear()
            self._kept_bytes = 0

    def order(self, question: str, texts: Sequence[str]) -> tuple[list[int], list[int]]:
        """(new order of the first ``candidates`` texts as positions, each one's place by MaxSim);
        ``([0, 1, …], [])`` when there is nothing to re-rank."""
        head = list(texts[: self.candidates])
        if len(head) < 2 or self.weight <= 0:
            return list(range(len(head))), []
        scores = self.scores(question, head)
        return late_order(scores, weight=self.weight, k=self.k), late_ranks(scores)
