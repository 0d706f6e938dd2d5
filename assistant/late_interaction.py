"""Late interaction: the fused top candidates re-ranked by how well each question word finds its match.

Why: BM25 and the e5 vector each squeeze a passage into one view, and every way of fusing, weighting
or re-ranking the two by word signals tried in sessions 24–35 landed within a question or two of the
fused order (docs/results.md). The passage holding the facts was retrieved (top 20 for 0.87 of
blind_dev's questions) but ranked below the four that reach the model. Late interaction (MaxSim, as
in ColBERT) compares the question and the passage token by token in the e5 model's own context: for
each of the question's tokens the most similar token of the passage, averaged. A question word meets
its inflection, compound part or near-synonym wherever it stands in the passage, and a passage that
answers *all* of the question beats one that matches its topic. No new model: the token vectors come
from the same multilingual-e5-small (its int8 ONNX token graph, :mod:`corpus.onnx_model`), which was
not trained for it; as a second opinion fused with the retrievers' order it still moved what reaches
the model (session 36, tuning sets only: evidence recall blind_dev 0.61 → 0.65, shared_dev 0.70 → 0.80;
docs/results.md).

The cost is one pass of the encoder over the candidates per question (about 0.7 s for 20 passages on
2 cores with the int8 graph, 1.5 s with torch); passages recur between questions, so their token
vectors are kept (float16, a bounded number of passages).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from typing import Protocol, Sequence

import numpy as np

log = logging.getLogger(__name__)


class TokenEncoder(Protocol):
    def token_vectors(self, texts: Sequence[str], *, query: bool = False) -> list[np.ndarray]: ...


def maxsim(question: np.ndarray, passage: np.ndarray) -> float:
    """Mean over the question's tokens of the best cosine with any passage token (rows normalised)."""
    if len(question) == 0 or len(passage) == 0:
        return 0.0
    return float((question @ passage.T.astype(np.float32)).max(axis=1).mean())


def late_order(scores: Sequence[float], *, weight: float, k: int) -> list[int]:
    """Positions of the candidates (given in fused order) in their new order.

    Reciprocal rank fusion of the fused order (weight 1) with the order by ``scores`` (``weight``):
    1 / (k + fused rank) + weight / (k + late rank). Ties keep the fused order. Pure."""
    by_score = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    late_rank = {i: r for r, i in enumerate(by_score, start=1)}
    fused = {i: 1.0 / (k + i + 1) + weight / (k + late_rank[i]) for i in range(len(scores))}
    return sorted(range(len(scores)), key=lambda i: (-fused[i], i))


class LateInteraction:
    """Re-ranks the first ``candidates`` of a fused list by MaxSim (see the module's docstring)."""

    def __init__(self, encoder: TokenEncoder, *, candidates: int = 20, weight: float = 4.0, k: int = 20,
                 keep_passages: int = 2000) -> None:
        self.encoder = encoder
        self.candidates = candidates
        self.weight = weight
        self.k = k
        self.keep_passages = keep_passages
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def scores(self, question: str, texts: Sequence[str]) -> list[float]:
        """MaxSim of ``question`` against each text."""
        q = self.encoder.token_vectors([question], query=True)[0]
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        with self._lock:
            have = {key: self._kept[key] for key in keys if key in self._kept}
        todo = list(dict.fromkeys(key for key in keys if key not in have))
        if todo:
            text_of = dict(zip(keys, texts))
            for key, rows in zip(todo, self.encoder.token_vectors([text_of[key] for key in todo])):
                have[key] = rows.astype(np.float16)
            with self._lock:
                for key in todo:
                    self._kept[key] = have[key]
                while len(self._kept) > self.keep_passages:
                    self._kept.popitem(last=False)
        with self._lock:
            for key in have:
                if key in self._kept:
                    self._kept.move_to_end(key)
        return [maxsim(q, have[key]) for key in keys]

    def forget(self) -> None:
        """Drop the kept token vectors (the evaluation times each answer as a new question would be)."""
        with self._lock:
            self._kept.clear()

    def order(self, question: str, texts: Sequence[str]) -> tuple[list[int], list[float]]:
        """(new order of the first ``candidates`` texts as positions, their MaxSim scores)."""
        head = list(texts[: self.candidates])
        if len(head) < 2 or self.weight <= 0:
            return list(range(len(head))), []
        scores = self.scores(question, head)
        return late_order(scores, weight=self.weight, k=self.k), scores
