"""BM25 keyword index (bm25s + German Snowball stemmer), persisted next to the catalog.

bm25s indexes are immutable, so the index is rebuilt from the catalog's chunks when the
catalog generation moves on; rebuilding ~20k chunks takes about a second. The saved
index records the generation it was built from, and is written to a temporary folder
and renamed, so a crash never leaves a torn index behind.
"""
from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from corpus.text import new_stemmer
from corpus.vector_store import matches_nothing

log = logging.getLogger(__name__)

_TOKEN_PATTERN = r"(?u)\b\w\w+\b"


class BM25Index:
    """Keyword search over (chunk_id, text, meta) triples; ``query`` returns (chunk_id, score)."""

    def __init__(self) -> None:
        self._retriever = None
        self._ids: list[str] = []
        self._collections: list[str] = []
        self._doc_ids: list[str] = []
        self.generation = -1
        self._stem = new_stemmer()
        self._lock = threading.Lock()

    def _tokenize(self, texts: Sequence[str]):
        import bm25s

        return bm25s.tokenize(
            list(texts), stopwords="de", stemmer=self._stem, token_pattern=_TOKEN_PATTERN,
            show_progress=False, return_ids=True,
        )

    def build(self, ids: Sequence[str], texts: Sequence[str], collections: Sequence[str], doc_ids: Sequence[str], generation: int) -> None:
        import bm25s

        retriever = None
        if ids:
            retriever = bm25s.BM25()
            retriever.index(self._tokenize(texts), show_progress=False)
        with self._lock:
            self._retriever = retriever
            self._ids = list(ids)
            self._collections = list(collections)
            self._doc_ids = list(doc_ids)
            self.generation = generation

    def __len__(self) -> int:
        return len(self._ids)

    def query(self, text: str, k: int, flt: dict | None = None) -> list[tuple[str, float]]:
        """The top ``k`` chunks for ``text`` among those ``flt`` allows (see
        :class:`corpus.vector_store.Filter`: a list restricts, an empty list allows nothing).
        Disallowed chunks are scored 0 before the top-k is taken, so k allowed hits come back."""
        with self._lock:
            retriever, ids, colls, docs = self._retriever, self._ids, self._collections, self._doc_ids
        if retriever is None or not ids or matches_nothing(flt):
            return []
        import bm25s

        tokens = bm25s.tokenize([text], stopwords="de", stemmer=self._stem, token_pattern=_TOKEN_PATTERN,
                                show_progress=False, return_ids=False)
        # bm25s needs a vocabulary mapping; compute scores over the whole corpus
        query_tokens = [t for t in tokens[0] if t in retriever.vocab_dict]
        if not query_tokens:
            return []
        scores = retriever.get_scores(query_tokens)
        if flt:
            mask = np.ones(len(ids), dtype=bool)
            if flt.get("collections") is not None:
                allowed = set(flt["collections"])
                mask &= np.fromiter((c in allowed for c in colls), dtype=bool, count=len(ids))
            if flt.get("doc_ids") is not None:
                allowed_docs = set(flt["doc_ids"])
                mask &= np.fromiter((d in allowed_docs for d in docs), dtype=bool, count=len(ids))
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(ids[i], float(scores[i])) for i in top if scores[i] > 0]

    # -- persistence -------------------------------------------------------
    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        if self._retriever is not None:
            self._retriever.save(str(tmp / "bm25"))
        (tmp / "ids.json").write_text(
            json.dumps({"generation": self.generation, "ids": self._ids, "collections": self._collections, "doc_ids": self._doc_ids}),
            encoding="utf-8",
        )
        old = path.with_name(path.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        if old.exists():
            shutil.rmtree(old)

    @classmethod
    def load(cls, path: Path) -> "BM25Index":
        """Load a saved index; an absent or broken one gives an empty index (generation -1)."""
        index = cls()
        meta_file = path / "ids.json"
        if not meta_file.exists():
            old = path.with_name(path.name + ".old")  # crash between the two renames
            if (old / "ids.json").exists():
                path = old
                meta_file = path / "ids.json"
            else:
                return index
        try:
            import bm25s

            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            if meta["ids"]:
                index._retriever = bm25s.BM25.load(str(path / "bm25"))
            index._ids = meta["ids"]
            index._collections = meta["collections"]
            index._doc_ids = meta["doc_ids"]
            index.generation = int(meta["generation"])
        except Exception as exc:  # a torn or foreign file: rebuild from the catalog
            log.warning("BM25 index at %s unreadable (%s); it will be rebuilt", path, exc)
            return cls()
        return index

    def set_collection(self, doc_ids: set[str], collection: str) -> None:
        with self._lock:
            self._collections = [collection if d in doc_ids else c for c, d in zip(self._collections, self._doc_ids)]
