"""Embedders: the real sentence-transformers one and a deterministic twin for tests.

Both implement LangChain's ``Embeddings`` interface so that LangChain components can
use them too, plus ``embed_passages``/``embed_query`` returning numpy arrays for the
hot path (no list-of-floats round trip). Chroma never embeds anything itself: we always
hand it vectors, because its default embedding function would try to download a model.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

log = logging.getLogger(__name__)


class Embedder(Embeddings):
    """Base: subclasses implement ``_encode(texts) -> np.ndarray`` (L2-normalised rows)."""

    name: str = "embedder"
    dim: int = 0
    query_prefix: str = ""
    passage_prefix: str = ""

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts], batch_size)

    def embed_query_vector(self, text: str) -> np.ndarray:
        return self._encode([self.query_prefix + text], 1)[0]

    def embed_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._encode([self.query_prefix + t for t in texts], batch_size)

    # LangChain interface
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_vector(text).tolist()


class HashEmbedder(Embedder):
    """Deterministic bag-of-words hashing embedder for unit tests.

    Texts sharing words get similar vectors, so ranking tests behave sensibly,
    yet nothing is loaded and results never change between runs.
    """

    name = "hash"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                if word in ("query", "passage"):
                    continue
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            if norm > 0:
                out[i] /= norm
        return out


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model, loaded on first use (never at import time)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        query_prefix: str = "query: ",
        passage_prefix: str = "passage: ",
        max_seq_length: int = 512,
        threads: int = 0,
        query_threads: int = 1,
    ) -> None:
        self.model_path = str(model_path)
        self.name = Path(self.model_path).name or self.model_path
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.max_seq_length = max_seq_length
        self.threads = threads
        self.query_threads = query_threads
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    import torch
                    from sentence_transformers import SentenceTransformer

                    if self.threads:
                        torch.set_num_threads(self.threads)
                    log.info("loading embedding model %s", self.model_path)
                    model = SentenceTransformer(self.model_path, device="cpu", local_files_only=True)
                    model.max_seq_length = self.max_seq_length
                    self.dim = model.get_embedding_dimension()
                    self._model = model
        return self._model

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vecs = self.model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vecs.astype(np.float32, copy=False)

    def embed_query_vector(self, text: str) -> np.ndarray:
        """One short query: a single thread is as fast as two on an idle machine and ten times
        faster when the cores are busy (the local LLM, an ingest), where torch's threads spin."""
        if not self.query_threads:
            return super().embed_query_vector(text)
        import torch

        _ = self.model  # load outside the thread switch
        before = torch.get_num_threads()
        torch.set_num_threads(self.query_threads)
        try:
            return super().embed_query_vector(text)
        finally:
            torch.set_num_threads(before)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])
