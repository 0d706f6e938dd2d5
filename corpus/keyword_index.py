"""BM25 keyword index (German Snowball stemmer) that takes single documents in and out.

Why not bm25s any more: bm25s scores eagerly (every posting carries its final BM25 score,
which depends on the corpus size and average length), so its index is immutable and was
rebuilt whole after every change – seconds at 100,000 passages, minutes at a million.
Here postings keep only the term frequency and BM25 is computed at query time from the
live statistics (N, document frequency, average length). Adding a document appends a
small segment; deleting one marks its rows dead. The result is the same ranking a full
rebuild gives (tests/corpus/test_keyword_index.py checks it), and one change costs
milliseconds. Tokenisation is bm25s's (same pattern, German stopwords, PyStemmer), so
rankings match the previous index.

Layout on disk (``save``): immutable files that are written once – ``seg-N.npz``
(postings of some rows) and ``blk-N.npz`` (chunk ids, doc ids and lengths of the rows
one batch added) – plus the small mutable state (dead rows, collections per document)
and ``manifest.json``, which is renamed into place last. A crash before that rename
leaves the previous manifest and its files intact; files no manifest names are removed
on the next save.

Several processes keep an index of the same folder (the portal, and ``kiportal ingest`` beside
it): saves and loads take turns through a file lock next to the folder, and each process names its
files with a token of its own (two processes once wrote different ``seg-000011.npz`` under one
name, and a manifest then named a file the other process had written or removed: the next start
found the index unreadable and rebuilt it). The last save wins, even one of an older catalog
generation: a load brings it up to the catalog by each document's fingerprint.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import uuid
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from corpus.db import LockTimeout, file_lock
from corpus.text import new_stemmer
from corpus.vector_store import matches_nothing

log = logging.getLogger(__name__)

_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
K1 = 1.5
B = 0.75
FORMAT = 2
# small segments are merged once there are this many; segments above MERGE_MAX_POSTINGS
# are never merged again, so one added document never waits for a merge of the big one
MAX_SEGMENTS = 12
MERGE_MAX_POSTINGS = 4_000_000


def _stopwords() -> frozenset[str]:
    """bm25s's German list only (not corpus.text's, which adds question words): the keyword
    ranking stays what it was."""
    from bm25s.stopwords import STOPWORDS_GERMAN

    return frozenset(STOPWORDS_GERMAN)


class Tokenizer:
    """Lower-case words of two or more letters, German stopwords dropped, Snowball stems.

    Stems are cached per word: a municipal corpus repeats its words, and PyStemmer's call
    overhead dominates otherwise."""

    def __init__(self) -> None:
        self._split = re.compile(_TOKEN_PATTERN).findall
        self._stop = _stopwords()
        self._stem = new_stemmer()  # its own: stemWords runs under this tokenizer's lock
        self._cache: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def words(self, text: str) -> list[str]:
        return self._split(text.lower())

    def stems(self, words: Sequence[str]) -> list[str | None]:
        """The stem of each word, None for a stopword (cached)."""
        cache = self._cache
        new = set(words).difference(cache)
        if new:
            keep = [w for w in new if w not in self._stop]
            with self._lock:
                stems = self._stem.stemWords(keep)
                if len(cache) > 2_000_000:  # a pathological corpus must not grow it without end
                    cache.clear()
                cache.update(dict.fromkeys(new))
                cache.update(zip(keep, stems))
        get = cache.get
        return [get(w) if w in cache else self._one(w) for w in words]

    def stems_uncached(self, words: Sequence[str]) -> list[str | None]:
        """Like ``stems`` for words seen once (the index keeps its own word → term map)."""
        keep = [w for w in words if w not in self._stop]
        with self._lock:
            stemmed = dict(zip(keep, self._stem.stemWords(keep)))
        return [stemmed.get(w) for w in words]

    def _one(self, word: str) -> str | None:
        return None if word in self._stop else self._stem.stemWord(word)

    def __call__(self, text: str) -> list[str]:
        return [s for s in self.stems(self.words(text)) if s is not None]


@dataclass(eq=False)  # compared by identity (merging removes exactly these objects)
class _Segment:
    """Postings of some rows: for each term (sorted global ids) the rows and their counts."""

    terms: np.ndarray  # int64, sorted
    indptr: np.ndarray  # int64, len(terms) + 1
    rows: np.ndarray  # int32
    tfs: np.ndarray  # float32
    file: str = ""

    @property
    def postings(self) -> int:
        return int(self.rows.size)

    def lookup(self, term: int) -> tuple[np.ndarray, np.ndarray] | None:
        i = int(np.searchsorted(self.terms, term))
        if i == self.terms.size or self.terms[i] != term:
            return None
        a, b = self.indptr[i], self.indptr[i + 1]
        return self.rows[a:b], self.tfs[a:b]

    @classmethod
    def from_triples(cls, terms: np.ndarray, rows: np.ndarray, tfs: np.ndarray) -> "_Segment":
        order = np.lexsort((rows, terms))
        terms, rows, tfs = terms[order], rows[order], tfs[order]
        uniq, starts = np.unique(terms, return_index=True)
        indptr = np.append(starts, terms.size).astype(np.int64)
        return cls(uniq.astype(np.int64), indptr, rows.astype(np.int32), tfs.astype(np.float32))

    def triples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        counts = np.diff(self.indptr)
        return np.repeat(self.terms, counts), self.rows, self.tfs


class BM25Index:
    """Keyword search over (chunk_id, text, collection, doc_id) rows; ``query`` returns (chunk_id, score).

    Thread-safe: changes and queries take one lock; a change of one document holds it for
    milliseconds."""

    def __init__(self) -> None:
        self.generation = -1
        self._tok = Tokenizer()
        self._lock = threading.RLock()
        self._vocab: dict[str, int] = {}
        self._terms: list[str] = []
        self._word_ids: dict[str, int] = {}  # surface word → term id (-1: stopword), filled while adding
        self._segments: list[_Segment] = []
        # rows (never reused; a deleted row stays dead until the index is rebuilt)
        self._ids: list[str] = []
        self._row_doc = np.zeros(0, dtype=np.int32)
        self._len = np.zeros(0, dtype=np.float64)
        self._alive = np.zeros(0, dtype=bool)
        self._row_of: dict[str, int] = {}
        self._live = 0
        self._total_len = 0
        # documents
        self._docs: list[str] = []
        self._doc_index: dict[str, int] = {}
        self._doc_coll: list[str] = []
        self._doc_fp: list[str] = []
        self._doc_rows: dict[int, list[int]] = {}
        # persistence bookkeeping
        self._blocks: list[tuple[str, int, int]] = []  # (file, first row, end row)
        self._unsaved_segments: list[_Segment] = []
        self._unsaved_blocks: list[tuple[int, int]] = []
        self._next_file = 0
        self._token = uuid.uuid4().hex[:8]  # this process's file names (see the module docstring)

    # -- building and changing --------------------------------------------
    def build(self, ids: Sequence[str], texts: Sequence[str], collections: Sequence[str], doc_ids: Sequence[str],
              generation: int, fingerprints: dict[str, str] | None = None) -> None:
        """Replace the content with these rows (a full rebuild)."""
        fresh = BM25Index()
        fresh.add(ids, texts, collections, doc_ids, fingerprints=fingerprints)
        with self._lock:
            for name in ("_vocab", "_terms", "_word_ids", "_segments", "_ids", "_row_doc", "_len", "_alive", "_row_of", "_live",
                         "_total_len", "_docs", "_doc_index", "_doc_coll", "_doc_fp", "_doc_rows", "_blocks",
                         "_unsaved_segments", "_unsaved_blocks"):
                setattr(self, name, getattr(fresh, name))
            self.generation = generation

    def _doc(self, doc_id: str, collection: str) -> int:
        d = self._doc_index.get(doc_id)
        if d is None:
            d = len(self._docs)
            self._doc_index[doc_id] = d
            self._docs.append(doc_id)
            self._doc_coll.append(collection)
            self._doc_fp.append("")
        else:
            self._doc_coll[d] = collection
        return d

    def add(self, ids: Sequence[str], texts: Sequence[str], collections: Sequence[str], doc_ids: Sequence[str],
            fingerprints: dict[str, str] | None = None) -> None:
        """Add rows (a chunk id already present is replaced).

        Vectorised per batch: words are split per text, every distinct word is stemmed and
        given a term id once, and the postings come from one ``np.unique`` – a million
        passages take minutes, not hours, in CPython."""
        if not ids:
            return
        words_per = [self._tok.words(t) for t in texts]
        lens = np.fromiter(map(len, words_per), dtype=np.int64, count=len(words_per))
        flat = list(chain.from_iterable(words_per))
        del words_per
        with self._lock:
            word_ids = self._word_ids
            new = list(set(flat).difference(word_ids))
            if new:
                for w, stem in zip(new, self._tok.stems_uncached(new)):
                    word_ids[w] = -1 if stem is None else self._term_id(stem)
            term = np.fromiter(map(word_ids.__getitem__, flat), dtype=np.int64, count=len(flat))
            del flat
            n = len(ids)
            local = np.repeat(np.arange(n, dtype=np.int64), lens)
            keep = term >= 0
            term, local = term[keep], local[keep]
            lengths = np.bincount(local, minlength=n).astype(np.float64)

            replaced = [cid for cid in ids if cid in self._row_of]
            if replaced:
                self._kill_rows([self._row_of[c] for c in replaced])
            first = len(self._ids)
            docs = np.empty(n, dtype=np.int32)
            doc_cache: dict[str, int] = {}
            for k, (cid, coll, doc_id) in enumerate(zip(ids, collections, doc_ids)):
                d = doc_cache.get(doc_id)
                if d is None:
                    d = doc_cache[doc_id] = self._doc(doc_id, coll)
                docs[k] = d
                self._doc_rows.setdefault(d, []).append(first + k)
                self._row_of[cid] = first + k
            if fingerprints:
                for doc_id, fp in fingerprints.items():
                    if doc_id in self._doc_index:
                        self._doc_fp[self._doc_index[doc_id]] = fp
            self._ids.extend(ids)
            self._row_doc = np.concatenate([self._row_doc, docs])
            self._len = np.concatenate([self._len, lengths])
            self._alive = np.concatenate([self._alive, np.ones(n, dtype=bool)])
            self._live += n
            self._total_len += int(lengths.sum())
            if term.size:
                key = term * (1 << 32) + (local + first)
                uniq, counts = np.unique(key, return_counts=True)
                seg = _Segment.from_triples(uniq >> 32, (uniq & 0xFFFFFFFF).astype(np.int32), counts.astype(np.float32))
                self._segments.append(seg)
                self._unsaved_segments.append(seg)
            self._unsaved_blocks.append((first, first + n))
            self._maybe_merge()

    def _kill_rows(self, rows: Iterable[int]) -> None:
        for r in rows:
            if self._alive[r]:
                self._alive[r] = False
                self._live -= 1
                self._total_len -= int(self._len[r])
                self._row_of.pop(self._ids[r], None)
                rows_of_doc = self._doc_rows.get(int(self._row_doc[r]))
                if rows_of_doc is not None:
                    try:
                        rows_of_doc.remove(r)
                    except ValueError:
                        pass

    def delete_documents(self, doc_ids: Iterable[str]) -> int:
        """Mark every row of these documents dead; returns how many rows went."""
        n = 0
        with self._lock:
            for doc_id in doc_ids:
                d = self._doc_index.get(doc_id)
                if d is None:
                    continue
                rows = list(self._doc_rows.get(d, ()))
                self._kill_rows(rows)
                self._doc_rows.pop(d, None)
                self._doc_fp[d] = ""
                n += len(rows)
        return n

    def _maybe_merge(self) -> None:
        small = [s for s in self._segments if s.postings < MERGE_MAX_POSTINGS]
        if len(self._segments) <= MAX_SEGMENTS or len(small) < 2:
            return
        parts = [s.triples() for s in small]
        terms = np.concatenate([p[0] for p in parts])
        rows = np.concatenate([p[1] for p in parts])
        tfs = np.concatenate([p[2] for p in parts])
        keep = self._alive[rows]  # merging drops the postings of dead rows
        merged = _Segment.from_triples(terms[keep], rows[keep], tfs[keep])
        self._segments = [s for s in self._segments if s.postings >= MERGE_MAX_POSTINGS] + [merged]
        self._unsaved_segments = [s for s in self._unsaved_segments if s not in small] + [merged]

    # -- catalog sync -------------------------------------------------------
    def documents(self) -> dict[str, tuple[str, str]]:
        """doc_id → (fingerprint, collection) of every document with live rows."""
        with self._lock:
            return {self._docs[d]: (self._doc_fp[d], self._doc_coll[d]) for d, rows in self._doc_rows.items() if rows}

    def set_collection(self, doc_ids: set[str], collection: str) -> None:
        with self._lock:
            for doc_id in doc_ids:
                d = self._doc_index.get(doc_id)
                if d is not None:
                    self._doc_coll[d] = collection

    def chunk_ids(self) -> set[str]:
        """The chunk ids of all live rows."""
        with self._lock:
            return set(self._row_of)

    def __len__(self) -> int:
        return self._live

    # -- search -------------------------------------------------------------
    def query(self, text: str, k: int, flt: dict | None = None) -> list[tuple[str, float]]:
        """The top ``k`` chunks for ``text`` among those ``flt`` allows (see
        :class:`corpus.vector_store.Filter`: a list restricts, an empty list allows nothing).
        Disallowed chunks are dropped before the top-k is taken, so k allowed hits come back."""
        if matches_nothing(flt):
            return []
        tokens = self._tok(text)
        with self._lock:
            if not self._live or not tokens:
                return []
            counts: dict[int, int] = {}
            for t in tokens:
                tid = self._vocab.get(t)
                if tid is not None:
                    counts[tid] = counts.get(tid, 0) + 1
            if not counts:
                return []
            n_docs = self._live
            avgdl = self._total_len / n_docs if n_docs else 1.0
            all_rows, all_scores = [], []
            for tid, qtf in counts.items():
                found = [p for p in (s.lookup(tid) for s in self._segments) if p is not None]
                if not found:
                    continue
                rows = np.concatenate([f[0] for f in found]) if len(found) > 1 else found[0][0]
                tfs = np.concatenate([f[1] for f in found]) if len(found) > 1 else found[0][1]
                alive = self._alive[rows]
                rows, tfs = rows[alive], tfs[alive].astype(np.float64)
                df = rows.size
                if df == 0:
                    continue
                idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
                tfc = tfs / (K1 * ((1 - B) + B * self._len[rows] / avgdl) + tfs)
                all_rows.append(rows)
                all_scores.append(qtf * idf * tfc)
            if not all_rows:
                return []
            rows = np.concatenate(all_rows)
            scores = np.concatenate(all_scores)
            if rows.size * 8 > len(self._ids):  # many candidates: a dense accumulator beats sorting them
                acc = np.bincount(rows, weights=scores, minlength=len(self._ids))
                cand = np.flatnonzero(acc)
                total = acc[cand]
            else:
                cand, inv = np.unique(rows, return_inverse=True)
                total = np.bincount(inv, weights=scores, minlength=cand.size)
            if flt and (flt.get("collections") is not None or flt.get("doc_ids") is not None):
                ok_doc = np.ones(len(self._docs), dtype=bool)
                if flt.get("collections") is not None:
                    allowed = set(flt["collections"])
                    ok_doc &= np.fromiter((c in allowed for c in self._doc_coll), dtype=bool, count=len(self._docs))
                if flt.get("doc_ids") is not None:
                    allowed_docs = {self._doc_index[d] for d in flt["doc_ids"] if d in self._doc_index}
                    mask = np.zeros(len(self._docs), dtype=bool)
                    mask[list(allowed_docs)] = True
                    ok_doc &= mask
                keep = ok_doc[self._row_doc[cand]]
                cand, total = cand[keep], total[keep]
            keep = total > 0
            cand, total = cand[keep], total[keep]
            if cand.size == 0:
                return []
            if cand.size > k:
                kth = np.partition(-total, k - 1)[k - 1]
                sel = -total <= kth  # everything tied with the k-th stays, so ties break by id below
                cand, total = cand[sel], total[sel]
            ranked = sorted(zip(total.tolist(), (self._ids[r] for r in cand.tolist())), key=lambda x: (-x[0], x[1]))
            return [(cid, score) for score, cid in ranked[:k]]

    # -- persistence ----------------------------------------------------------
    def _file(self, prefix: str) -> str:
        self._next_file += 1
        return f"{prefix}-{self._token}-{self._next_file:06d}.npz"

    #: a save waits this long for another process's save or load, then leaves it to the next one
    #: (the index in memory is current; the saved one only spares the next start a sync)
    SAVE_WAIT_S = 10

    @staticmethod
    def _turns(path: Path, timeout: float | None = None):
        """Saves and loads of one folder take turns, across processes (a lock file beside it)."""
        return file_lock(path.with_name(path.name + ".lock"), timeout, what="BM25")

    def save(self, path: Path) -> None:
        """Write what changed since the last save; the manifest rename makes it visible."""
        path = Path(path)
        try:
            with self._turns(path, timeout=self.SAVE_WAIT_S):
                self._save(path)
        except LockTimeout:  # only the turn raises it
            log.warning("BM25 index at %s not saved: another process has held it for %d s (the next save "
                        "writes it)", path, self.SAVE_WAIT_S)

    def _save(self, path: Path) -> None:
        # the file lock first, then the index's own: queries (which take the latter) never wait
        # for another process's save
        with self._lock:
            # files another process's save removed (it keeps only what its manifest names): write all again
            fresh = not (path / "manifest.json").exists() or any(
                not (path / f).exists() for f in [s.file for s in self._segments if s.file] + [b[0] for b in self._blocks])
            path.mkdir(parents=True, exist_ok=True)
            if fresh:  # another folder, or files gone: write everything
                self._unsaved_segments = list(self._segments)
                self._unsaved_blocks = [(a, b) for _, a, b in self._blocks] + self._unsaved_blocks
                self._blocks = []
            for seg in self._unsaved_segments:
                seg.file = self._file("seg")
                terms_blob = np.frombuffer("\n".join(self._terms[t] for t in seg.terms.tolist()).encode(), dtype=np.uint8)
                _savez(path / seg.file, terms=terms_blob, indptr=seg.indptr, rows=seg.rows, tfs=seg.tfs)
            for a, b in self._unsaved_blocks:
                name = self._file("blk")
                _savez(path / name, first=np.array([a], dtype=np.int64),
                       ids=_blob(self._ids[a:b]), docs=_blob([self._docs[d] for d in self._row_doc[a:b].tolist()]),
                       lengths=self._len[a:b])
                self._blocks.append((name, a, b))
            self._unsaved_segments, self._unsaved_blocks = [], []
            state = self._file("state")
            dead = np.flatnonzero(~self._alive).astype(np.int64)
            _savez(path / state, dead=dead)
            manifest = {
                "format": FORMAT, "generation": self.generation, "next_file": self._next_file,
                "segments": [s.file for s in self._segments], "blocks": [b[0] for b in self._blocks], "state": state,
                "docs": {self._docs[d]: [self._doc_fp[d], self._doc_coll[d]] for d, rows in self._doc_rows.items() if rows},
            }
            tmp = path / f"manifest.json.{self._token}.tmp"
            tmp.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path / "manifest.json")
            named = {*manifest["segments"], *manifest["blocks"], state, "manifest.json"}
            for f in path.iterdir():
                if f.name not in named:
                    if f.is_dir():
                        import shutil

                        shutil.rmtree(f, ignore_errors=True)
                    else:
                        f.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path) -> "BM25Index":
        """Load a saved index; an absent, older-format or broken one gives an empty index (generation -1)."""
        path = Path(path)
        if not (path / "manifest.json").exists():
            return cls()
        with cls._turns(path):  # a save in another process removes the files its manifest no longer names
            return cls._load(path)

    @classmethod
    def _load(cls, path: Path) -> "BM25Index":
        index = cls()
        try:
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return index
        try:
            if manifest.get("format") != FORMAT:
                raise ValueError(f"format {manifest.get('format')}")
            docs = manifest["docs"]
            ids: list[str] = []
            row_docs: list[str] = []
            lengths = []
            blocks = []
            for name in manifest["blocks"]:
                with np.load(path / name) as z:
                    if int(z["first"][0]) != len(ids):
                        raise ValueError(f"{name} does not continue the rows")
                    ids += _unblob(z["ids"])
                    row_docs += _unblob(z["docs"])
                    lengths.append(z["lengths"])
                blocks.append((name, len(ids) - int(lengths[-1].size), len(ids)))
            n = len(ids)
            index._ids = ids
            index._len = np.concatenate(lengths) if lengths else np.zeros(0)
            alive = np.ones(n, dtype=bool)
            with np.load(path / manifest["state"]) as z:
                alive[z["dead"]] = False
            index._alive = alive
            row_doc = np.empty(n, dtype=np.int32)
            for r, doc_id in enumerate(row_docs):
                fp, coll = docs.get(doc_id, ("", ""))
                d = index._doc(doc_id, coll)
                row_doc[r] = d
                if alive[r]:
                    index._doc_rows.setdefault(d, []).append(r)
                    index._row_of[ids[r]] = r
            for doc_id, (fp, coll) in docs.items():
                if doc_id in index._doc_index:
                    index._doc_fp[index._doc_index[doc_id]] = fp
            index._row_doc = row_doc
            index._live = int(alive.sum())
            index._total_len = int(index._len[alive].sum())
            for name in manifest["segments"]:
                with np.load(path / name) as z:
                    words = _unblob(z["terms"])
                    terms = np.fromiter((index._term_id(w) for w in words), dtype=np.int64, count=len(words))
                    indptr, rows, tfs = z["indptr"], z["rows"], z["tfs"]
                order = np.argsort(terms, kind="stable")
                if np.any(order != np.arange(order.size)):  # vocab ids differ from the saved order: re-sort
                    counts = np.diff(indptr)
                    seg = _Segment.from_triples(np.repeat(terms, counts), rows, tfs)
                else:
                    seg = _Segment(terms, indptr, rows, tfs)
                seg.file = name
                index._segments.append(seg)
            index._blocks = blocks
            index._next_file = int(manifest["next_file"])
            index.generation = int(manifest["generation"])
        except Exception as exc:  # a torn or foreign file: rebuild from the catalog
            log.warning("BM25 index at %s unreadable (%s); it will be rebuilt", path, exc)
            return cls()
        return index

    def _term_id(self, word: str) -> int:
        tid = self._vocab.get(word)
        if tid is None:
            tid = self._vocab[word] = len(self._terms)
            self._terms.append(word)
        return tid


def _blob(items: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(items).encode("utf-8"), dtype=np.uint8)


def _unblob(arr: np.ndarray) -> list[str]:
    if arr.size == 0:
        return []
    return arr.tobytes().decode("utf-8").split("\n")


def _savez(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())
