"""`kiportal bench --scale N`: what happens at 10,000, 100,000 and 1,000,000 passages.

Nobody has a city's million passages at hand, and embedding them with the real model
would take days on 2 cores, so the corpus is synthetic but built from real parts:

* passages are three German sentences of ``../shared`` (XQuAD-de's Wikipedia paragraphs
  and the seed texts) drawn at random and recombined, plus a unique file number
  ("Vorgang KX0001234") – so a known-item question has exactly one right answer;
* each sentence is embedded once by the real model; a passage's vector is the mean of its
  sentences' vectors plus a little noise, normalised. Close to what the model would give
  the passage, and cheap enough that 1,000,000 passages take minutes.

The passages go through the real stores (SQLite catalog, embedded Chroma, the BM25 index),
written in bulk the way ``KnowledgeBase.store_version`` writes them. Then it measures, per
size: bulk load time and peak RAM (child process), disk, the startup of a portal on that
index (a fresh process: App, warm-up, first search – time and RAM), hybrid search
p50/p95 including the question's embedding, known-item hit@10, the time until one new
document (real file through the real ingest pipeline) is searchable, and the time until
a deleted one is gone. Plots against size on log axes go into the report.

Known-item questions name the file number and words of two of the passage's sentences,
the way staff ask about a case ("Vorgang KX0001234: Ruhezeit Urnengrab … Gebühren …").
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
PASSAGES_PER_DOC = 10
SENTENCES_PER_PASSAGE = 3
NOISE = 0.01  # per dimension; |noise| ≈ 0.2, cosine to the clean mean ≈ 0.98
BATCH_DOCS = 500
QUESTIONS = 200
COLLECTION = "scale"

# goals of issue 19 (2 cores): per size, None = no goal at that size
GOALS = {
    "hybrid_p95_ms": {100_000: 50.0, 1_000_000: 150.0},
    "add_searchable_s": {1_000_000: 5.0},
    "delete_gone_s": {1_000_000: 5.0},
    "portal_rss_mb": {1_000_000: 6144.0},
    "startup_s": {10_000: 30.0, 100_000: 30.0, 1_000_000: 30.0},
}

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9„\"])")


# ---------------------------------------------------------------- the synthetic corpus
def base_sentences(shared_dir: Path, limit: int = 4000) -> list[str]:
    """German sentences of ../shared: XQuAD-de's paragraphs and the seed texts (40–300 characters)."""
    shared_dir = Path(shared_dir)
    texts: list[str] = []
    ctx = shared_dir / "benchmarks" / "xquad_de" / "xquad_de_contexts.jsonl"
    if ctx.exists():
        texts += [json.loads(line)["text"] for line in ctx.read_text(encoding="utf-8").splitlines() if line.strip()]
    seeds = shared_dir / "seeds"
    if seeds.is_dir():
        texts += [p.read_text(encoding="utf-8", errors="replace") for p in sorted(seeds.glob("*.txt"))]
    out, seen = [], set()
    for text in texts:
        for s in _SENT_SPLIT.split(" ".join(text.split())):
            s = s.strip()
            if 40 <= len(s) <= 300 and s not in seen:
                seen.add(s)
                out.append(s)
    if len(out) < 50:
        raise FileNotFoundError(f"zu wenige Sätze in {shared_dir} (XQuAD-de oder seeds fehlen)")
    return out[:limit]


def marker(i: int) -> str:
    return f"KX{i:07d}"


def passage_plan(n: int, n_sentences: int, seed: int) -> np.ndarray:
    """Row i: the sentence numbers of passage i (distinct within a passage), reproducible by seed."""
    rng = np.random.default_rng(seed)
    plan = np.empty((n, SENTENCES_PER_PASSAGE), dtype=np.int32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = rng.integers(0, n_sentences, size=(m, SENTENCES_PER_PASSAGE))
        # make the three distinct: shift duplicates (rare) to the next sentence
        block[:, 1] = np.where(block[:, 1] == block[:, 0], (block[:, 1] + 1) % n_sentences, block[:, 1])
        clash = (block[:, 2] == block[:, 0]) | (block[:, 2] == block[:, 1])
        while clash.any():
            block[clash, 2] = (block[clash, 2] + 1) % n_sentences
            clash = (block[:, 2] == block[:, 0]) | (block[:, 2] == block[:, 1])
        plan[start : start + m] = block
    return plan


def passage_text(i: int, plan: np.ndarray, sentences: Sequence[str]) -> str:
    return " ".join(sentences[j] for j in plan[i]) + f" Vorgang {marker(i)}."


def passage_vectors(rows: np.ndarray, sent_vecs: np.ndarray, seed: int) -> np.ndarray:
    """Mean of the sentences' real vectors plus noise, L2-normalised (float32)."""
    rng = np.random.default_rng(seed)
    v = sent_vecs[rows].mean(axis=1)
    v += rng.normal(0.0, NOISE, size=v.shape).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32)


def _words(sentence: str, n: int) -> str:
    return " ".join(re.findall(r"\w+", sentence)[:n])


def known_item_question(i: int, plan: np.ndarray, sentences: Sequence[str]) -> str:
    a, b = plan[i][0], plan[i][1]
    return f"Vorgang {marker(i)}: {_words(sentences[a], 6)} … {_words(sentences[b], 6)}"


# ---------------------------------------------------------------- bulk load (child process)
def bulk_load(settings, n: int, sentences: list[str], sent_vecs: np.ndarray, seed: int) -> dict[str, Any]:
    """Write ``n`` synthetic passages through the real stores; seconds per store."""
    from assistant.wiring import App
    from corpus.catalog import DocumentRecord
    from corpus.models import Chunk, text_hash

    app = App(settings)
    kb = app.kb
    plan = passage_plan(n, len(sentences), seed)
    t_catalog = t_vectors = 0.0
    t0 = time.perf_counter()
    n_docs = (n + PASSAGES_PER_DOC - 1) // PASSAGES_PER_DOC
    for first_doc in range(0, n_docs, BATCH_DOCS):
        docs = range(first_doc, min(first_doc + BATCH_DOCS, n_docs))
        per_doc: list[tuple[DocumentRecord, list[Chunk]]] = []
        all_chunks: list[Chunk] = []
        for d in docs:
            doc_id = f"scale{d:07d}"
            rows = range(d * PASSAGES_PER_DOC, min((d + 1) * PASSAGES_PER_DOC, n))
            chunks = []
            for o, i in enumerate(rows):
                text = passage_text(i, plan, sentences)
                chunks.append(Chunk(chunk_id=f"{doc_id}:{seed}:{o}", doc_id=doc_id, ordinal=o, text=text,
                                    source=f"/scale/{doc_id}.txt", title=f"Akte {d:07d}", page=None, section=None,
                                    collection=COLLECTION, content_hash=text_hash(text)))
            rec = DocumentRecord(doc_id=doc_id, source=f"/scale/{doc_id}.txt", path=f"/scale/{doc_id}.txt",
                                 collection=COLLECTION, status="indexed", original_name=f"{doc_id}.txt",
                                 sha256=str(seed), format="txt", title=f"Akte {d:07d}", indexed_at=time.time())
            per_doc.append((rec, chunks))
            all_chunks += chunks
        first_row = docs[0] * PASSAGES_PER_DOC
        vecs = passage_vectors(plan[first_row : first_row + len(all_chunks)], sent_vecs, seed + first_doc)
        t = time.perf_counter()
        kb.vectors.add(all_chunks, vecs)  # vectors first, then the catalog: the order of store_version
        t_vectors += time.perf_counter() - t
        t = time.perf_counter()
        for rec, chunks in per_doc:
            kb.catalog.commit_document(rec, chunks)
        t_catalog += time.perf_counter() - t
        if first_doc and first_doc % (BATCH_DOCS * 20) == 0:
            log.info("scale %d: %d/%d documents (%.0f s)", n, first_doc, n_docs, time.perf_counter() - t0)
    t = time.perf_counter()
    kb.refresh_keyword_index()
    t_bm25 = time.perf_counter() - t
    return {"passages": n, "documents": n_docs, "seconds": round(time.perf_counter() - t0, 1),
            "catalog_s": round(t_catalog, 1), "vectors_s": round(t_vectors, 1), "bm25_s": round(t_bm25, 1)}


def probe_startup(settings, question: str) -> dict[str, Any]:
    """What a portal process does before its first answer: App, warm-up (model and both
    indexes), one hybrid search."""
    t0 = time.perf_counter()
    from assistant.wiring import App

    app = App(settings)
    app.warm_up(llm=False)
    _ = app.vectors.count()
    hits = app.retriever.search(question, k=10).hits
    return {"startup_s": round(time.perf_counter() - t0, 2), "first_hits": len(hits)}


def _child(kind: str, settings, args: dict, log_dir: Path) -> dict[str, Any]:
    """Run ``kind`` in a fresh interpreter: wall time and its own peak RSS (``os.wait4``)."""
    spec = {"kind": kind, "home": str(settings.home), "args": args,
            "settings": {k: getattr(settings, k).model_dump(mode="json") for k in ("embedding", "vector", "retrieval", "chunking")}}
    spec_path = log_dir / f"{kind}-spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    out_path, err_path = log_dir / f"{kind}.out", log_dir / f"{kind}.err"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "evals.scale_bench", str(spec_path)], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, env=env, cwd=str(REPO))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise RuntimeError(f"scale {kind} exited with {rc}: {err_path.read_text(errors='replace')[-1500:]}")
    result = json.loads(out_path.read_text(encoding="utf-8").strip().splitlines()[-1])
    result.setdefault("peak_rss_mb", round(usage.ru_maxrss / 1024, 1))
    return {**result, "wall_s": round(wall, 2)}


def _settings_from_spec(spec: dict):
    """The child's settings: its own data dir, SQLite there (never a configured cluster database)."""
    from assistant.settings import load_settings

    return load_settings(spec["home"], app_db_url="", **spec["settings"])


def _main(spec_path: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    settings = _settings_from_spec(spec)
    args = spec["args"]
    if spec["kind"] == "load":
        sent = json.loads(Path(args["sentences"]).read_text(encoding="utf-8"))
        result = bulk_load(settings, args["n"], sent, np.load(args["vectors"]), args["seed"])
    elif spec["kind"] == "probe":
        result = probe_startup(settings, args["question"])
    else:
        raise SystemExit(f"unknown kind {spec['kind']}")
    result["peak_rss_mb"] = _own_peak_rss_mb()
    sys.stdout.write(json.dumps(result) + "\n")


def _own_peak_rss_mb() -> float | None:
    """This process's RAM high-water mark (VmHWM). Not ``wait4``'s ru_maxrss: Linux carries the
    parent's peak across fork and exec into it, so a child of a big bench process would report
    the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ---------------------------------------------------------------- measurements in this process
def _disk_mb(home: Path) -> dict[str, float]:
    def size(p: Path) -> int:
        if p.is_file():
            return p.stat().st_size
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())

    parts = {"catalog": home / "catalog.sqlite3", "chroma": home / "chroma", "bm25": home / "bm25"}
    out = {k: round(size(p) / 2**20, 1) for k, p in parts.items() if p.exists()}
    out["total"] = round(sum(out.values()), 1)
    return out


def _search_until(app, query: str, doc_id: str, present: bool, timeout_s: float = 300.0, done=None) -> float:
    """Seconds until the top-10 for ``query`` contains ``doc_id`` (``present``) or no longer does.
    Searches the way the portal's answer chain does (``wait_for_index=False``: a stale keyword
    index keeps serving while it catches up in the background)."""
    t0 = time.perf_counter()
    while True:
        docs = [h.chunk.doc_id for h in app.retriever.search(query, k=10, wait_for_index=False).hits]
        if (doc_id in docs) == present:
            return time.perf_counter() - t0
        if done is not None and done() and not done.get("settled"):
            done["settled"] = True  # the job is over: one more search (the keyword index catches up), then give up
            continue
        if done is not None and done.get("settled"):
            raise RuntimeError(f"Änderung nach Ende des Auftrags nicht sichtbar: {done.get('result')!r:.500}")
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError(f"nach {timeout_s:.0f} s {'nicht gefunden' if present else 'noch gefunden'}: {query}")
        time.sleep(0.05)


def _while_running(fn, app, query: str, doc_id: str, present: bool) -> tuple[float, float, Any]:
    """Run ``fn`` (an ingest or a delete) in a thread, as the portal's job queue does, and poll the
    search meanwhile: (seconds until the search shows the change, seconds ``fn`` took, its result)."""
    import threading

    class Box(dict):
        def __call__(self) -> bool:
            return "seconds" in self

    box = Box()

    def work() -> None:
        t = time.perf_counter()
        try:
            box["result"] = fn()
        except BaseException as exc:  # reported below
            box["error"] = exc
        box["seconds"] = time.perf_counter() - t

    th = threading.Thread(target=work, name="scale-change")
    t0 = time.perf_counter()
    th.start()
    try:
        try:
            _search_until(app, query, doc_id, present, done=box)
        except RuntimeError:
            th.join()
            if "error" in box:
                raise box["error"] from None
            raise
        seen = time.perf_counter() - t0
    finally:
        th.join()
    if "error" in box:
        raise box["error"]
    return seen, box["seconds"], box.get("result")


def measure_live(app, n: int, plan: np.ndarray, sentences: Sequence[str], work: Path, seed: int,
                 questions: int = QUESTIONS) -> dict[str, Any]:
    """Latency and known-item hit@10 of hybrid search, then add one document and delete it."""
    rng = random.Random(seed)
    items = [rng.randrange(n) for _ in range(questions + 5)]
    qs = [known_item_question(i, plan, sentences) for i in items]
    for q in qs[:5]:  # warm-up: model, both indexes, SQLite caches
        app.retriever.search(q, k=10)
    lat, hits, first = [], 0, 0
    for i, q in zip(items[5:], qs[5:]):
        t0 = time.perf_counter()
        res = app.retriever.search(q, k=10)
        lat.append((time.perf_counter() - t0) * 1000)
        ranked = [h.chunk.chunk_id for h in res.hits]
        target = f"scale{i // PASSAGES_PER_DOC:07d}:{seed}:{i % PASSAGES_PER_DOC}"
        hits += target in ranked
        first += bool(ranked) and ranked[0] == target
    parts = search_parts(app, qs[5:55])
    # one new document through the real pipeline (loader, chunking, embedding, both indexes)
    new_marker = f"NEU{seed}{n}"
    doc = work / f"neu-{n}.txt"
    doc.write_text(f"Bescheid über die Sondernutzung des Marktplatzes, Vorgang {new_marker}.\n\n"
                   + " ".join(sentences[j] for j in plan[0]) + "\n", encoding="utf-8")
    question = f"Vorgang {new_marker} Sondernutzung Marktplatz"
    from ingest.pipeline import doc_id_for

    doc_id = doc_id_for(doc)
    add_s, ingest_s, summary = _while_running(lambda: app.ingestor.ingest([doc], collection=COLLECTION),
                                              app, question, doc_id, True)
    if summary.failed:
        raise RuntimeError(f"neues Dokument nicht aufgenommen: {summary.failed}")
    delete_s, _, _ = _while_running(lambda: app.ingestor.delete(doc_id), app, question, doc_id, False)
    t0 = time.perf_counter()
    app.kb.sweep_orphans()  # part of every ingest: lists every vector id and every catalog chunk id
    sweep_s = time.perf_counter() - t0
    a = np.asarray(lat)
    return {"search_parts_ms": parts, "ingest_parts_s": {"pipeline": round(ingest_s, 2),
            "embedding": round(summary.embed_seconds, 2), "sweep_orphans": round(sweep_s, 2)},
            "questions": len(lat), "hybrid_p50_ms": round(float(np.percentile(a, 50)), 1),
            "hybrid_p95_ms": round(float(np.percentile(a, 95)), 1), "hit@10": round(hits / len(lat), 3),
            "hit@1": round(first / len(lat), 3), "add_searchable_s": round(add_s, 2), "add_ingest_s": round(ingest_s, 2),
            "delete_gone_s": round(delete_s, 2)}


def search_parts(app, questions: Sequence[str]) -> dict[str, dict[str, float]]:
    """p50/p95 ms of each part of a hybrid search, to say which part limits it at a size."""
    kb, n = app.kb, app.retriever.candidates
    times: dict[str, list[float]] = {"question_embedding": [], "bm25": [], "vectors": [], "catalog": []}
    for q in questions:
        t0 = time.perf_counter()
        vec = kb.embedder.embed_query_vector(q)
        t1 = time.perf_counter()
        kw = kb.keyword_search(q, n)
        t2 = time.perf_counter()
        dense = kb.vectors.query(vec, n)
        t3 = time.perf_counter()
        kb.catalog.chunks_by_ids([c for c, _ in (kw[:15] + dense[:15])])
        t4 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[key].append(dt * 1000)
    return {k: {"p50": round(float(np.percentile(v, 50)), 1), "p95": round(float(np.percentile(v, 95)), 1)}
            for k, v in times.items() if v}


def _sentence_vectors(embedder, sentences: list[str], cache: Path) -> np.ndarray:
    if cache.exists():
        vecs = np.load(cache)
        if len(vecs) == len(sentences):
            return vecs
    vecs = embedder.embed_passages(sentences, batch_size=32).astype(np.float32)
    np.save(cache, vecs)
    return vecs


def run_scale(sizes: Sequence[int], shared_dir: Path, settings, work_dir: Path, *, seed: int = 19,
              questions: int = QUESTIONS) -> dict[str, Any]:
    """Every measurement for every size; each size gets its own fresh data dir under ``work_dir``."""
    from assistant.wiring import App
    from evals.workdirs import bench_settings, link_models

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    sentences = base_sentences(shared_dir)
    emb_home = work / "embedder"
    link_models(emb_home, settings.models_dir)
    embedder = App(bench_settings(settings, emb_home)).kb.embedder
    t = time.perf_counter()
    _sentence_vectors(embedder, sentences, work / f"sentences-{settings.embedding.mode}.npy")
    (work / "sentences.json").write_text(json.dumps(sentences, ensure_ascii=False), encoding="utf-8")
    report: dict[str, Any] = {"sentences": len(sentences), "sentence_embedding_s": round(time.perf_counter() - t, 1),
                              "passages_per_doc": PASSAGES_PER_DOC, "noise": NOISE, "seed": seed,
                              "embedding_mode": settings.embedding.mode, "sizes": {}}
    for n in sizes:
        load0 = os.getloadavg()[0]
        home = work / f"scale-{n}"
        if home.exists():
            shutil.rmtree(home)
        link_models(home, settings.models_dir)
        s = bench_settings(settings, home)
        logs = work / f"logs-{n}"
        logs.mkdir(exist_ok=True)
        log.info("scale %d: bulk load …", n)
        load = _child("load", s, {"n": n, "seed": seed, "sentences": str(work / "sentences.json"),
                                  "vectors": str(work / f"sentences-{settings.embedding.mode}.npy")}, logs)
        plan = passage_plan(n, len(sentences), seed)
        log.info("scale %d: portal startup …", n)
        probe = _child("probe", s, {"question": known_item_question(n // 2, plan, sentences)}, logs)
        log.info("scale %d: search, add, delete …", n)
        app = App(s)
        app.kb._embedder = embedder  # the model is loaded once for all sizes
        live = measure_live(app, n, plan, sentences, work, seed, questions)
        row = {"load": load, "startup_s": probe["startup_s"], "portal_rss_mb": probe["peak_rss_mb"],
               "disk_mb": _disk_mb(home), **live, "load_avg_1m_start_end": f"{load0:.2f} / {os.getloadavg()[0]:.2f}"}
        row["goals"] = {k: {"target": g[n], "ok": row[k] <= g[n]} for k, g in GOALS.items() if n in g}
        report["sizes"][str(n)] = row
        log.info("scale %d: %s", n, row)
        del app
    return report


# ---------------------------------------------------------------- report
def plot_scale(report: dict, path: Path) -> Path:
    from evals.report import _pyplot

    plt = _pyplot()
    sizes = sorted(int(n) for n in report["sizes"])
    rows = [report["sizes"][str(n)] for n in sizes]
    panels = [
        ("Suche hybrid (ms)", {"p50": [r["hybrid_p50_ms"] for r in rows], "p95": [r["hybrid_p95_ms"] for r in rows]}),
        ("Start Portal (s)", {"Start": [r["startup_s"] for r in rows]}),
        ("RAM / Platte (MB)", {"RAM Portal": [r["portal_rss_mb"] for r in rows], "RAM Laden": [r["load"]["peak_rss_mb"] for r in rows],
                               "Platte": [r["disk_mb"]["total"] for r in rows]}),
        ("Laden / Ändern (s)", {"Massenladen": [r["load"]["seconds"] for r in rows],
                                "neu suchbar": [r["add_searchable_s"] for r in rows],
                                "gelöscht": [r["delete_gone_s"] for r in rows]}),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (title, series) in zip(axes, panels):
        for label, values in series.items():
            ax.plot(sizes, values, marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("Abschnitte")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def render_scale_markdown(report: dict, plot_name: str | None) -> str:
    lines = [f"## Skalierung ({report['embedding_mode']}, {report['sentences']} Sätze aus ../shared, "
             f"{report['passages_per_doc']} Abschnitte je Dokument)", ""]
    lines += ["| Abschnitte | Laden s (Katalog/Chroma/BM25) | RAM Laden MB | Platte MB | Start s | RAM Portal MB | "
              "hybrid p50/p95 ms | hit@10 | neu suchbar s | gelöscht s | Last (1 min) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, r in sorted(report["sizes"].items(), key=lambda kv: int(kv[0])):
        ld = r["load"]
        lines.append(f"| {int(n):,} | {ld['seconds']} ({ld['catalog_s']}/{ld['vectors_s']}/{ld['bm25_s']}) | {ld['peak_rss_mb']} | "
                     f"{r['disk_mb']['total']} | {r['startup_s']} | {r['portal_rss_mb']} | {r['hybrid_p50_ms']}/{r['hybrid_p95_ms']} | "
                     f"{r['hit@10']} | {r['add_searchable_s']} | {r['delete_gone_s']} | {r['load_avg_1m_start_end']} |")
    lines += ["", "Anteile einer Suche (p50/p95 ms) und des Aufnehmens eines Dokuments (s):", "",
              "| Abschnitte | Frage-Embedding | BM25 | Vektoren (Chroma) | Katalog | Ingest gesamt | davon Embedding | Waisen-Suche |",
              "|---|---|---|---|---|---|---|---|"]
    for n, r in sorted(report["sizes"].items(), key=lambda kv: int(kv[0])):
        p, g = r.get("search_parts_ms", {}), r.get("ingest_parts_s", {})
        cell = lambda k: f"{p[k]['p50']}/{p[k]['p95']}" if k in p else "–"  # noqa: E731
        lines.append(f"| {int(n):,} | {cell('question_embedding')} | {cell('bm25')} | {cell('vectors')} | {cell('catalog')} | "
                     f"{g.get('pipeline', '–')} | {g.get('embedding', '–')} | {g.get('sweep_orphans', '–')} |")
    goals = [(n, k, g) for n, r in report["sizes"].items() for k, g in r.get("goals", {}).items()]
    if goals:
        lines += ["", "Ziele: " + "; ".join(f"{k} bei {int(n):,}: {report['sizes'][n][k]} ≤ {g['target']} {'✓' if g['ok'] else '✗'}"
                                              for n, k, g in goals)]
    if plot_name:
        lines += ["", f"![Skalierung]({plot_name})"]
    return "\n".join(lines) + "\n"


def write_scale_report(report: dict, out_dir: Path, name: str) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = None
    if report["sizes"]:
        plot = plot_scale(report, out_dir / f"{name}.png").name
    json_path = out_dir / f"{name}.json"
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    md_path = out_dir / f"{name}.md"
    md_path.write_text(f"# kiportal Skalierungs-Benchmark – {report.get('created', '')}\n\n{report.get('host', '')}\n\n"
                       + render_scale_markdown(report, plot), encoding="utf-8")
    return json_path, md_path


def run_scale_bench(sizes: Sequence[int], shared_dir: Path, out_dir: Path, *, settings, work_dir: Path | None = None,
                    keep_work: bool = False) -> dict[str, Any]:
    import platform

    from evals.bench import check_ready

    check_ready(settings)
    own = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="kiportal-scale-")) if own else Path(work_dir)
    t0 = time.perf_counter()
    try:
        report = run_scale(sizes, shared_dir, settings, work)
    finally:
        if own and not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    report["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    report["host"] = f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()}"
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    name = "scale-" + time.strftime("%Y%m%d-%H%M%S")
    json_path, md_path = write_scale_report(report, out_dir, name)
    shutil.copyfile(json_path, Path(out_dir) / "scale-latest.json")
    shutil.copyfile(md_path, Path(out_dir) / "scale-latest.md")
    report["files"] = {"json": json_path.name, "md": md_path.name}
    return report


if __name__ == "__main__":
    _main(sys.argv[1])
