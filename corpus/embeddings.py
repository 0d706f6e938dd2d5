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

    def has_token_vectors(self) -> bool:
        """Whether :meth:`token_vectors` works (late interaction, :mod:`assistant.late_interaction`)."""
        return False

    def token_vectors(self, texts: Sequence[str], *, query: bool = False) -> list[np.ndarray]:
        """Each text's contextual token vectors, one L2-normalised row per token, for late interaction.
        The start and end markers are left out, and for a question also the query prefix's own tokens
        ("query", ":"), which every question shares and which would match every passage alike."""
        prefix = self.query_prefix if query else self.passage_prefix
        skip = self.count_tokens(prefix.strip()) if query and prefix.strip() else 0
        out = []
        for rows in self._token_rows([prefix + t for t in texts]):
            rows = np.asarray(rows[1 + skip:-1], dtype=np.float32)
            out.append(rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12))
        return out

    def _token_rows(self, texts: Sequence[str]) -> list[np.ndarray]:  # pragma: no cover
        """Each text's last hidden states, <s> … </s> included, no padding rows (with ``count_tokens``,
        what an embedder that has token vectors implements)."""
        raise NotImplementedError

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

    def has_token_vectors(self) -> bool:
        return True

    def _token_rows(self, texts: Sequence[str], batch_size: int = 16) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            out = self.model.encode(list(texts), output_value="token_embeddings", batch_size=batch_size,
                                    convert_to_numpy=False, show_progress_bar=False)
        return [rows.float().numpy() for rows in out]  # cut at each text's last real token (</s>)


class OnnxEmbedder(Embedder):
    """The e5 model as an ONNX graph (see corpus.onnx_model) on ONNX Runtime, fp32 or int8.

    Threads map onto ONNX Runtime like this: the one session runs each call with
    ``query_threads`` intra-op threads (1 keeps a question fast while the LLM or an ingest
    holds the cores, and lets several questions run side by side), and batch embedding
    splits a batch into ``threads`` parts that run at the same time (``session.run`` is
    thread-safe and releases the GIL). One session, so the weights are in memory once.
    Spinning worker threads are switched off: on a shared 2-core machine they only steal
    cycles from the other work.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        model_file: str = "model_int8.onnx",
        query_prefix: str = "query: ",
        passage_prefix: str = "passage: ",
        max_seq_length: int = 512,
        threads: int = 0,
        query_threads: int = 1,
        max_batch_tokens: int = 4096,
        tokens_file: str = "model_tokens.onnx",
    ) -> None:
        self.folder = Path(folder)
        self.max_batch_tokens = max_batch_tokens
        self.model_file = model_file
        self.name = f"{self.folder.name}/{model_file}"
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.max_seq_length = max_seq_length
        self.threads = threads or (os.cpu_count() or 1)
        self.query_threads = query_threads or self.threads
        self.dim = 384
        self.tokens_file = tokens_file
        self._session = None
        self._tokens_session = None
        self._tokenizer = None
        self._lock = threading.Lock()
        self._pool = None

    def _new_session(self, model_file: str, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        log.info("loading ONNX embedding model %s", self.folder / model_file)
        return ort.InferenceSession(str(self.folder / model_file), sess_options=opts, providers=["CPUExecutionProvider"])

    def _load(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    from tokenizers import Tokenizer

                    tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                    tok.enable_truncation(max_length=self.max_seq_length)
                    pad_id = tok.token_to_id("<pad>")
                    self._pad_id = 1 if pad_id is None else pad_id  # padded per batch in _run
                    session = self._new_session(self.model_file, self.query_threads)
                    self.dim = int(session.get_outputs()[0].shape[-1] or 384)
                    self._tokenizer = tok
                    self._session = session
        return self._session

    def _run(self, enc: Sequence, session=None) -> np.ndarray:
        """One ``session.run`` over tokenised texts, right-padded to the longest of them."""
        width = max(len(e.ids) for e in enc)
        ids = np.full((len(enc), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(enc), width), dtype=np.int64)
        for row, e in enumerate(enc):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        return (session or self._session).run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def _batches(self, lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
        """Row indices per ``session.run``, longest texts first, at most ``batch_size`` texts and at
        most ``max_batch_tokens`` padded tokens each (one text alone may exceed it).

        Why a token budget: attention holds batch × heads × length² floats, and ONNX Runtime's
        memory arena keeps the largest run's memory for the life of the process (two runs at
        once with two threads), so the BM25 build at the end of an ingest comes on top of it.
        32 passages of up to 512 tokens took the ingest of ../shared/corpus/docs to a peak RSS
        of 2,565 MB (goal ≤ 2,560). Embedding only the corpus's 575 passages around its longest
        ones (int8, 2 threads): peak 2,480 MB → 1,434 MB with 4,096 tokens a run, and 5.4 → 6.6
        passages per CPU-second (less padding); the whole ingest: peak 2,565 → 1,613 MB, 5.1 → 6.0
        passages per CPU-second. Usual runs (~190 tokens × 32) stay whole. The fp32
        graph gives the same vectors (cosine ≥ 0.99999); int8 quantises activations per run, so its
        vectors move with the batch's make-up anyway (same text alone vs in a batch of 32: 0.995)."""
        order = np.argsort([-n for n in lengths], kind="stable")
        out, start = [], 0
        while start < len(order):
            longest = max(1, lengths[order[start]])
            size = max(1, min(batch_size, self.max_batch_tokens // longest))
            out.append(order[start : start + size])
            start += size
        return out

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # transformers' XLM-R tokenizer strips surrounding whitespace; the bare tokenizer would
        # add a "▁" token for it. Stripping keeps the token ids (and vectors) identical to torch's.
        enc = self._tokenizer.encode_batch([t.strip() for t in texts])
        # like sentence-transformers: sort by length so a batch pads little, then restore the order
        order = self._batches([len(e.ids) for e in enc], batch_size)
        batches = [[enc[i] for i in rows] for rows in order]
        if self.threads > 1 and len(batches) > 1:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="onnx-embed")
            parts = list(self._pool.map(self._run, batches))
        else:
            parts = [self._run(b) for b in batches]
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        out[np.concatenate(order)] = np.concatenate(parts)
        return out

    def count_tokens(self, text: str) -> int:
        self._load()
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def has_token_vectors(self) -> bool:
        return (self.folder / self.tokens_file).is_file()

    def _token_rows(self, texts: Sequence[str], batch_size: int = 16) -> list[np.ndarray]:
        """From the fp32 token graph (corpus.onnx_model), in runs on ``threads`` intra-op threads (a
        question waits for them)."""
        self._load()
        if self._tokens_session is None:
            with self._lock:
                if self._tokens_session is None:
                    self._tokens_session = self._new_session(self.tokens_file, self.threads)
        enc = self._tokenizer.encode_batch([t.strip() for t in texts])
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        for rows in self._batches([len(e.ids) for e in enc], batch_size):
            hidden = self._run([enc[i] for i in rows], self._tokens_session)
            for row, i in enumerate(rows):
                out[i] = hidden[row, : len(enc[i].ids)]
        return out
