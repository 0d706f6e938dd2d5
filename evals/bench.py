"""`kiportal bench`: every performance and quality figure of the product, measured on ../shared.

Why one command: the figures only mean something together and on the same machine
(ingest speed next to the model's raw speed, our retrieval next to the tutorial
baseline, on 2 cores). Every number is measured in this run, none is copied.

Steps (each recorded; a failing step is reported and makes the run exit non-zero, a
missed target never does):

a. ingest ``<shared>/corpus/docs`` into a fresh data dir in a subprocess (peak RSS of
   exactly that process via ``os.wait4``),
b. raw embedding throughput of the same model on a sample of the same chunks,
c. unchanged re-run of the same ingest,
d. query latency and the extractive assistant's time before the first token,
e. XQuAD-de for bm25/dense/hybrid and the LangChain baseline; again inside a copy of the
   municipal index (its passages as distractors),
f. retrieval eval of ``evals/datasets/shared.jsonl``,
f2. OCR: pages per minute on generated scans, and the two scans of the corpus found (evals.ocr_bench),
f3. cluster mode vs embedded when PostgreSQL is installed: search p95 and ingest rate ratios, and
   the time until an ingest on replica A is searchable on replica B (evals.cluster_bench),
g. answer eval with the local LLM on ``shared.jsonl`` and the demo corpus (``--no-llm`` skips),
h. Stopp: seconds from Stopp to the next question's first token, with the stop signal and without
   (evals.stop_bench),
i. a chat question beside a tool's part: seconds to its first token with answers going first and
   without (evals.beside_tool_bench).

Fresh data dirs get a symlink ``<home>/models`` → the prepared models of the main data
dir, so no model is rebuilt or copied.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from evals.cluster_bench import targets as cluster_targets
from evals.datasets import EvalQuestion, load_dataset
from evals.report import format_cell, publish_report
from evals.runner import answer_eval, latency_summary, retrieval_eval
from evals.workdirs import bench_settings, link_models  # noqa: F401 - part of this module's API

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASET = REPO / "evals" / "datasets" / "shared.jsonl"
DEMO_DATASET = REPO / "evals" / "datasets" / "demo.jsonl"
DEMO_FILES = REPO / "corpus" / "demo" / "files"
LLM_KEY = "lokal"
EXTRACTIVE_KEY = "extraktiv"


@dataclass(frozen=True)
class BenchConfig:
    """How much of each step to run. The full run must stay under 35 minutes on 2 cores (CI: under an hour with the tests)."""

    quick: bool = False
    llm: bool = True
    xquad_limit: int | None = None
    xquad_distractor_limit: int | None = 300  # the variant re-runs every query in a 20× larger index
    embed_sample: int = 1000  # a seeded sample of the same chunks: enough for a stable rate
    # torch vs ONNX fp32 vs int8 (with XQuAD per runtime) is opt-in: ~10 minutes, and its first
    # full run still has to be made on an idle machine (`kiportal bench --runtimes`)
    runtimes: bool = False
    runtime_sample: int = 300  # per runtime and round (torch is the slow one: ~45 s per round on 2 cores)
    queries: int = 200
    warmup: int = 5
    answer_limit_shared: int | None = 24
    answer_limit_demo: int | None = None
    answer_budget_s: float = 480.0
    answer_min: int = 5  # answered even when the overall budget is used up
    total_budget_s: float = 30 * 60.0
    seed: int = 7

    @classmethod
    def make(cls, *, quick: bool, llm: bool) -> "BenchConfig":
        if quick:
            return cls(quick=True, llm=llm, xquad_limit=200, xquad_distractor_limit=200, embed_sample=500, runtime_sample=150,
                       answer_limit_shared=5,
                       answer_limit_demo=5, answer_budget_s=180.0)
        return cls(quick=False, llm=llm)


# ---------------------------------------------------------------- departments
def split_into_collections(app, parts: int = 4) -> list[str]:
    """Spread the documents round-robin over ``parts`` new collections (``teil1`` …), so a group
    filter has something to select; the catalog and the vectors' metadata move together."""
    names = [f"teil{i + 1}" for i in range(parts)]
    moved: dict[str, list[str]] = {name: [] for name in names}
    for i, rec in enumerate(sorted(app.catalog.documents(), key=lambda r: r.doc_id)):
        name = names[i % parts]
        app.catalog.move_document(rec.doc_id, name)
        moved[name] += [c.chunk_id for c in app.catalog.iter_chunks(rec.doc_id)]
    for name, ids in moved.items():
        app.vectors.set_collection(ids, name)
    app.kb.refresh_keyword_index()
    return names


def group_filter_latency(app, queries: list[str], *, warmup: int = 5) -> dict[str, Any]:
    """Search latency of a user who may read half the collections against the same searches
    without a filter, interleaved in one run (ABBA order, so drift and caches hit both alike).

    The readable collections go into both index queries (Chroma ``where``, the BM25 mask); the
    goal is p95 with the filter ≤ 1.1 × p95 without. Also reports that every filtered search
    still returned k hits from readable collections."""
    from assistant.access import scope_for

    names = split_into_collections(app)
    half = names[: len(names) // 2]
    for name in names:
        app.catalog.set_collection_readers(name, ["gruppe_a"] if name in half else ["gruppe_b"])
    scope = scope_for("staff", ["gruppe_a"], app.catalog)
    allowed = scope.restrict(None)
    k = app.retriever.k
    readable_chunks = sum(c["chunks"] for c in app.catalog.collections() if c["name"] in allowed)
    for q in queries[:warmup]:
        app.retriever.search(q)
        app.retriever.search(q, collections=allowed)
    plain: list[float] = []
    filtered: list[float] = []
    short = outside = 0
    for i, q in enumerate(queries[warmup:]):
        order = (None, allowed) if i % 2 == 0 else (allowed, None)
        for colls in order:
            t0 = time.perf_counter()
            res = app.retriever.search(q, collections=colls)
            ms = (time.perf_counter() - t0) * 1000
            if colls is None:
                plain.append(ms)
            else:
                filtered.append(ms)
                short += len(res.hits) < k
                outside += sum(h.chunk.collection not in allowed for h in res.hits)
    a, b = latency_summary(plain), latency_summary(filtered)
    ratio = round(b["latency_p95_ms"] / a["latency_p95_ms"], 3) if a.get("latency_p95_ms") else None
    return {"queries": len(plain), "k": k, "collections": len(app.catalog.collections()), "readable": allowed,
            "readable_chunks": readable_chunks, "chunks": app.catalog.stats().chunks,
            "without_filter": a, "with_filter": b, "ratio_p95": ratio,
            "filtered_with_fewer_than_k_hits": short, "hits_outside_scope": outside}


# ---------------------------------------------------------------- helpers
def kiportal_command() -> list[str]:
    """The installed console script beside this interpreter, else the module (an uninstalled checkout)."""
    script = Path(sys.executable).parent / "kiportal"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ui.cli"]


def _child_env(settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))})
    env.pop("KIPORTAL_HOME", None)
    env["KIPORTAL_APP_DB_URL"] = ""  # SQLite in the bench's data dir, never the installation's database
    if settings.vector.mode == "chroma_http":
        env["KIPORTAL_VECTOR__MODE"] = "chroma"
    return env


def run_ingest_process(data_dir: Path, docs_dir: Path, log_dir: Path, settings, tag: str) -> dict[str, Any]:
    """``kiportal --data-dir X ingest DIR --json`` as a child process: wall time, exit code and the
    child's own peak RSS (``os.wait4`` returns the rusage of exactly that process tree)."""
    cmd = kiportal_command() + ["--data-dir", str(data_dir), "ingest", str(docs_dir), "--json"]
    out_path, err_path = log_dir / f"{tag}.stdout", log_dir / f"{tag}.stderr"
    log.info("running %s", " ".join(cmd))
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=_child_env(settings))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = rc = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
    if rc != 0:
        tail = err_path.read_text(encoding="utf-8", errors="replace")[-1500:]
        raise RuntimeError(f"ingest exited with {rc}: {tail}")
    lines = [ln for ln in out_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    summary = json.loads(lines[-1])
    return {"summary": summary, "wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}


def _cpu_seconds() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _round(x: float | None, nd: int) -> float | None:
    return None if x is None else round(x, nd)


def _target(name: str, value: float | None, op: str, target: float, unit: str = "") -> dict[str, Any]:
    ok = value is not None and (value >= target if op == "≥" else value <= target)
    return {"name": name, "value": value, "op": op, "target": target, "unit": unit, "ok": bool(ok)}


def _tool_text(app, chars: int) -> str:
    """A tool's input from the indexed corpus: the first ``chars`` characters of the longest PDF among
    the first 40 indexed documents (sorted by id, so every run takes the same), as Einfache Sprache
    gets a document's text (``Tools.document_text``)."""
    pdfs = [r for r in sorted(app.catalog.documents(status="indexed"), key=lambda r: r.doc_id)[:40] if r.format == "pdf"]
    if not pdfs:
        raise RuntimeError("no indexed PDF to give the tool")
    return max((app.tools.document_text(r.doc_id)[1] for r in pdfs), key=len)[:chars]


def pick_questions(questions: list[EvalQuestion], n: int | None, seed: int) -> list[EvalQuestion]:
    """A fixed, stratified order: round-robin over the kinds (unanswerable ones are a kind of
    their own), so a subset, or a run cut short by its time budget, still covers refusals
    and every document type instead of only the first lines of the file."""
    rng = random.Random(seed)
    groups: dict[str, list[EvalQuestion]] = {}
    for q in questions:
        groups.setdefault("unanswerable" if not q.answerable else (q.kind or "other"), []).append(q)
    for g in groups.values():
        rng.shuffle(g)
    n = len(questions) if not n else min(n, len(questions))
    picked: list[EvalQuestion] = []
    while len(picked) < n:
        for key in sorted(groups, key=lambda g: (g != "unanswerable", g)):
            if groups[key] and len(picked) < n:
                picked.append(groups[key].pop())
    return picked


class _Bench:
    def __init__(self, shared_dir: Path, out_dir: Path, settings, cfg: BenchConfig, work_dir: Path) -> None:
        self.shared = Path(shared_dir)
        self.out_dir = Path(out_dir)
        self.settings = settings
        self.cfg = cfg
        self.work = work_dir
        self.models_dir = settings.models_dir
        self.report: dict[str, Any] = {}
        self.errors: list[dict] = []
        self._embedder = None
        self._apps: dict[str, Any] = {}
        self.started = time.perf_counter()

    # -- plumbing -----------------------------------------------------------
    def app(self, name: str):
        """An in-process App on a bench data dir; all of them share one loaded embedding model."""
        if name not in self._apps:
            from assistant.wiring import App

            home = self.work / name
            link_models(home, self.models_dir)
            app = App(bench_settings(self.settings, home))
            if self._embedder is None:
                self._embedder = app.kb.embedder
            else:
                app.kb._embedder = self._embedder
            self._apps[name] = app
        return self._apps[name]

    def app_factory(self, home: Path):
        from assistant.wiring import App

        link_models(home, self.models_dir)
        app = App(bench_settings(self.settings, home))
        if self._embedder is not None:
            app.kb._embedder = self._embedder
        return app

    def step(self, key: str, fn: Callable[[], dict | None]) -> None:
        t0 = time.perf_counter()
        log.info("bench step %s …", key)
        try:
            result = fn()
        except Exception as exc:
            log.error("bench step %s failed: %s", key, exc)
            log.debug("%s", traceback.format_exc())
            self.errors.append({"step": key, "error": f"{type(exc).__name__}: {exc}"[:1000]})
            return
        if result is not None:
            result["step_seconds"] = round(time.perf_counter() - t0, 1)
            self.report[key] = result
        log.info("bench step %s done in %.1f s", key, time.perf_counter() - t0)

    def need(self, key: str) -> dict:
        if key not in self.report:
            raise RuntimeError(f"needs step '{key}', which did not complete")
        return self.report[key]

    # -- a. ingest ------------------------------------------------------------
    def ingest(self) -> dict:
        docs = self.shared / "corpus" / "docs"
        home = self.work / "shared_data"
        link_models(home, self.models_dir)
        run = run_ingest_process(home, docs, self.work, self.settings, "ingest")
        s = run["summary"]
        from corpus.catalog import Catalog

        stats = Catalog(home / "catalog.sqlite3").stats()
        return {
            "documents": stats.documents, "by_status": stats.by_status, "pages": s["pages"], "chunks": s["chunks"],
            "wall_s": run["wall_s"], "ingest_s": s["seconds"], "embed_s": s["embed_seconds"],
            "chunks_per_s": s["chunks_per_s"], "chunks_per_s_wall": round(s["chunks"] / run["wall_s"], 1),
            "peak_rss_mb": run["peak_rss_mb"], "cpu_s": run["cpu_s"],
            "failures_by_code": dict(Counter(f["code"] for f in s["failed"])),
            "failed": [{"source": Path(f["source"]).name, "code": f["code"]} for f in s["failed"]],
        }

    # -- b. raw embedding ------------------------------------------------------
    def embedding(self) -> dict:
        ing = self.need("ingest")
        from corpus.knowledge_base import index_text

        app = self.app("shared_data")
        chunks = list(app.catalog.iter_chunks())
        sample = random.Random(self.cfg.seed).sample(chunks, min(self.cfg.embed_sample, len(chunks)))
        texts = [index_text(c) for c in sample]
        emb = app.kb.embedder
        bs = self.settings.embedding.batch_size
        emb.embed_passages(texts[:bs], batch_size=bs)  # warm-up: model load is not throughput
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        emb.embed_passages(texts, batch_size=bs)
        dt = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        raw = len(texts) / dt
        # per CPU-second as well: on a machine shared with other jobs the wall-clock ratio
        # mostly measures who got the cores; the CPU ratio shows the pipeline's own overhead
        raw_cpu = len(texts) / cpu if cpu > 0 else None
        ing_cpu = ing["chunks"] / ing["cpu_s"] if ing.get("cpu_s") else None
        return {"sample": len(texts), "batch_size": bs, "seconds": round(dt, 2), "raw_chunks_per_s": round(raw, 1),
                "ingest_chunks_per_s": ing["chunks_per_s"], "ratio": round(ing["chunks_per_s"] / raw, 3),
                "raw_chunks_per_cpu_s": _round(raw_cpu, 2), "ingest_chunks_per_cpu_s": _round(ing_cpu, 2),
                "ratio_per_cpu_s": _round(ing_cpu / raw_cpu, 3) if raw_cpu and ing_cpu else None}

    def embedding_runtimes(self) -> dict:
        """torch fp32 vs ONNX fp32 vs ONNX int8 on the same chunks, same run (evals/embedding_bench.py)."""
        self.need("ingest")
        from corpus.knowledge_base import index_text
        from evals.embedding_bench import compare_runtimes
        from evals.xquad import xquad_eval

        chunks = list(self.app("shared_data").catalog.iter_chunks())
        sample = random.Random(self.cfg.seed).sample(chunks, min(self.cfg.runtime_sample, len(chunks)))
        embedders: dict[str, Any] = {}

        def make(mode: str):
            if mode not in embedders:
                s = self.settings.model_copy(update={"embedding": self.settings.embedding.model_copy(update={"mode": mode})})
                embedders[mode] = self.app_factory_for(s, self.work / "runtime_probe").kb.embedder
            return embedders[mode]

        def xquad(mode: str) -> dict:
            def factory(home: Path):
                app = self.app_factory(home)
                app.kb._embedder = make(mode)
                return app

            return xquad_eval(factory, self.shared, self.work / f"xquad_{mode}", limit=self.cfg.xquad_limit,
                              modes=("dense", "hybrid"))

        return compare_runtimes(make, [index_text(c) for c in sample], self._latency_queries(), xquad,
                                batch_size=self.settings.embedding.batch_size)

    def app_factory_for(self, settings, home: Path):
        from assistant.wiring import App

        link_models(home, self.models_dir)
        return App(bench_settings(settings, home))

    # -- c. unchanged re-run ---------------------------------------------------
    def rerun(self) -> dict:
        self.need("ingest")
        run = run_ingest_process(self.work / "shared_data", self.shared / "corpus" / "docs", self.work, self.settings, "rerun")
        s = run["summary"]
        return {"wall_s": run["wall_s"], "ingest_s": s["seconds"], "unchanged": s["unchanged"],
                "added": s["added"], "updated": s["updated"], "peak_rss_mb": run["peak_rss_mb"]}

    # -- d. latency ---------------------------------------------------------------
    def _latency_queries(self) -> list[str]:
        from evals.xquad import load_xquad

        qs = [q.question for q in load_dataset(SHARED_DATASET)]
        try:
            _, xq = load_xquad(self.shared)
            qs += [q["question"] for q in random.Random(self.cfg.seed).sample(xq, min(len(xq), self.cfg.queries))]
        except FileNotFoundError:
            pass
        n = self.cfg.queries + self.cfg.warmup
        return (qs * (n // max(len(qs), 1) + 1))[:n]

    def query_latency(self) -> dict:
        self.need("ingest")
        app = self.app("shared_data")
        qs = self._latency_queries()
        warm, qs = qs[: self.cfg.warmup], qs[self.cfg.warmup :]
        for q in warm:
            app.retriever.search(q)
        lat = []
        for q in qs:
            t0 = time.perf_counter()
            app.retriever.search(q)
            lat.append((time.perf_counter() - t0) * 1000)
        return {"queries": len(lat), "k": app.retriever.k, "mode": "hybrid", **latency_summary(lat),
                "latencies_ms": [round(v, 2) for v in lat]}

    def group_filter(self) -> dict:
        """Search p95 for a user who may read half the collections vs no filter, same run
        (on a copy of the municipal index, split into four collections)."""
        self.need("ingest")
        src, home = self.work / "shared_data", self.work / "group_filter_data"
        if home.exists():
            shutil.rmtree(home)
        shutil.copytree(src, home, symlinks=True, ignore=shutil.ignore_patterns("ingest.lock"))
        return group_filter_latency(self.app("group_filter_data"), self._latency_queries(), warmup=self.cfg.warmup)

    def first_token_extractive(self) -> dict:
        self.need("ingest")
        app = self.app("shared_data")
        assistant = app.assistant
        qs = self._latency_queries()
        lat = []
        for i, q in enumerate(qs):
            t0 = time.perf_counter()
            events = assistant.stream(q, model=EXTRACTIVE_KEY)
            for ev in events:
                if ev["type"] in ("sources", "done"):
                    break
            ms = (time.perf_counter() - t0) * 1000
            events.close()
            if i >= self.cfg.warmup:
                lat.append(ms)
        return {"queries": len(lat), "model": EXTRACTIVE_KEY, "until": "sources event", **latency_summary(lat),
                "latencies_ms": [round(v, 2) for v in lat]}

    # -- e. XQuAD ----------------------------------------------------------------
    def xquad(self) -> dict:
        from evals.baseline import baseline_xquad
        from evals.xquad import xquad_eval

        res = xquad_eval(self.app_factory, self.shared, self.work, limit=self.cfg.xquad_limit)
        base = baseline_xquad(self.shared, limit=self.cfg.xquad_limit, work_dir=self.work)
        res["modes"]["baseline"] = {k: v for k, v in base.items() if k in ("hit@1", "hit@5", "mrr@10") or k.startswith("latency")}
        res["baseline"] = {k: v for k, v in base.items() if k not in res["modes"]["baseline"]}
        hy = res["modes"].get("hybrid", {})
        res["ratio_hybrid_baseline"] = {k: round(hy[k] / base[k], 3) if base.get(k) else None for k in ("hit@1", "hit@5", "mrr@10")}
        return res

    def xquad_distractors(self) -> dict:
        """XQuAD again, in a copy of the municipal index: 240 paragraphs among thousands of
        administrative passages. Copying costs seconds; re-ingesting the corpus would cost the
        whole ingest step again."""
        from evals.xquad import xquad_eval

        self.need("ingest")
        src, home = self.work / "shared_data", self.work / "xquad_distractors_data"
        if home.exists():
            shutil.rmtree(home)
        shutil.copytree(src, home, symlinks=True, ignore=shutil.ignore_patterns("ingest.lock"))
        res = xquad_eval(self.app_factory, self.shared, self.work, limit=self.cfg.xquad_distractor_limit, home=home)
        res["distractors"] = f"{self.report['ingest']['chunks']} Abschnitte aus {self.shared.name}/corpus/docs"
        return res

    # -- f. retrieval eval ---------------------------------------------------------
    def retrieval_shared(self) -> dict:
        self.need("ingest")
        res = retrieval_eval(self.app("shared_data").retriever, load_dataset(SHARED_DATASET), k=10)
        res["dataset"] = str(SHARED_DATASET.relative_to(REPO))
        return res

    # -- g. answers ----------------------------------------------------------------
    def _answers(self, app, dataset: Path, limit: int | None, share: float) -> dict:
        """``share``: the part of the remaining overall time budget this step may use."""
        questions = pick_questions(load_dataset(dataset), limit, self.cfg.seed)
        app.chat_model(LLM_KEY)  # load (and fail) before the clock runs
        # the answer steps come last and give way to the overall budget (30 minutes on 2 cores)
        left = self.cfg.total_budget_s - (time.perf_counter() - self.started)
        budget = max(60.0, min(self.cfg.answer_budget_s, left * share))
        res = answer_eval(app.assistant, questions, model=LLM_KEY, time_budget_s=budget, min_questions=self.cfg.answer_min)
        res["time_budget_s"] = round(budget)
        res["dataset"] = str(dataset.relative_to(REPO))
        if res["n"] and all(r["mode"] == "extractive" for r in res["rows"]):
            raise RuntimeError(f"the model '{LLM_KEY}' never answered (all answers fell back to extractive): "
                               f"{res['rows'][0].get('fallback')}")
        return res

    def answers_shared(self) -> dict:
        self.need("ingest")
        return self._answers(self.app("shared_data"), SHARED_DATASET, self.cfg.answer_limit_shared, 0.5)

    def answers_demo(self) -> dict | None:
        if not DEMO_DATASET.exists() or not DEMO_FILES.is_dir():
            log.warning("demo corpus or dataset missing (%s, %s): demo answer eval skipped", DEMO_FILES, DEMO_DATASET)
            return {"skipped": f"{DEMO_DATASET.name} or {DEMO_FILES.relative_to(REPO)} not present"}
        app = self.app("demo_data")
        summary = app.ingestor.ingest([DEMO_FILES], collection="demo")
        if "shared_data" in self._apps and LLM_KEY in self._apps["shared_data"]._chat_models:
            app._chat_models[LLM_KEY] = self._apps["shared_data"]._chat_models[LLM_KEY]  # one model in memory
        res = self._answers(app, DEMO_DATASET, self.cfg.answer_limit_demo, 1.0)
        res["ingest"] = summary.as_dict()
        res["ingest"].pop("failed", None)
        return res

    # -- h. Stopp (evals.stop_bench) ---------------------------------------------------
    def stop_then_ask(self) -> dict:
        from evals.stop_bench import stop_then_ask

        self.need("ingest")
        app = self.app("shared_data")
        rounds = 2 if self.cfg.quick else 3
        answerable = [q for q in load_dataset(SHARED_DATASET) if q.answerable]
        questions = [q.question for q in pick_questions(answerable, 2 * rounds, self.cfg.seed + 1)]
        app.chat_model(LLM_KEY)  # load before the clock runs
        return stop_then_ask(app.assistant, questions, LLM_KEY, rounds=rounds)

    # -- i. a chat question beside a tool's part (evals.beside_tool_bench) ---------------------
    def answer_beside_tool(self) -> dict:
        from assistant.tools.prompts import simplify_messages
        from assistant.tools.rules import LEVELS
        from evals.beside_tool_bench import answer_beside_tool

        self.need("ingest")
        app = self.app("shared_data")
        text = _tool_text(app, 2400)
        answerable = [q for q in load_dataset(SHARED_DATASET) if q.answerable]
        # two rounds of a 200-token part: about 3 minutes on 2 idle cores; the baseline's wait grows with
        # the part (the tools write up to tools.output_tokens = 700), the answers-first wait does not
        questions = [q.question for q in pick_questions(answerable, 2, self.cfg.seed + 2)]
        model = app.chat_model(LLM_KEY)  # loaded before the clock runs
        return answer_beside_tool(app.assistant, model, simplify_messages(text, LEVELS["einfach"]), questions, LLM_KEY,
                                  part_tokens=200)

    # -- f2. OCR (evals.ocr_bench) -------------------------------------------------
    def ocr(self) -> dict:
        from evals.ocr_bench import ocr_speed, shared_scans

        out = {"speed": ocr_speed(self.settings, pages=4 if self.cfg.quick else 6)}
        if "ingest" in self.report:
            out["shared"] = shared_scans(self.app("shared_data"))
        return out

    # -- f3. cluster mode (evals.cluster_bench) -------------------------------------
    def cluster(self) -> dict:
        from evals.cluster_bench import ClusterBenchConfig, run_cluster_section

        return run_cluster_section(self.settings, self.shared / "corpus" / "docs", self.work / "cluster",
                                   self._latency_queries(), cfg=ClusterBenchConfig.make(self.cfg.quick),
                                   embedder=self._embedder)

    # -- the run -----------------------------------------------------------------
    def targets(self) -> list[dict]:
        r = self.report
        g = lambda sec, key: r.get(sec, {}).get(key)  # noqa: E731
        hy = r.get("xquad", {}).get("modes", {}).get("hybrid", {})
        return [
            _target("XQuAD-de hybrid hit@1", hy.get("hit@1"), "≥", 0.92),
            _target("XQuAD-de hybrid MRR@10", hy.get("mrr@10"), "≥", 0.95),
            _target("Suche p95 (ms)", g("query_latency", "latency_p95_ms"), "≤", 100),
            _target("Suche p95 mit Gruppenfilter ÷ ohne", g("group_filter", "ratio_p95"), "≤", 1.1),
            _target("vor erstem Token p95, extraktiv (ms)", g("first_token_extractive", "latency_p95_ms"), "≤", 150),
            _target("Ingest ÷ rohe Embedding-Rate", g("embedding", "ratio"), "≥", 0.8),
            _target("unveränderter Lauf (s)", g("rerun", "wall_s"), "≤", 5),
            _target("Spitzen-RAM Ingest (MB)", g("ingest", "peak_rss_mb"), "≤", 2560),
            _target("nach Stopp bis zum 1. Token der nächsten Frage, mit ÷ ohne Stoppsignal",
                    g("stop_then_ask", "ratio_median"), "≤", 0.8),
            _target("Wartezeit einer Chatfrage durch einen Werkzeug-Teil, mit ÷ ohne Vortritt",
                    g("answer_beside_tool", "extra_wait_ratio"), "≤", 0.5),
            _target("OCR Zeichengenauigkeit (min)", r.get("ocr", {}).get("speed", {}).get("accuracy_min"), "≥", 0.97),
            _target("Scans aus ../shared durchsuchbar", r.get("ocr", {}).get("shared", {}).get("searchable"), "≥", 2),
            *(cluster_targets(r["cluster"]) if "cluster" in r and "skipped" not in r["cluster"] else []),
        ]

    def run(self) -> dict:
        t0 = self.started = time.perf_counter()
        load_start = os.getloadavg()
        self.step("ingest", self.ingest)
        self.step("embedding", self.embedding)
        if self.cfg.runtimes:
            self.step("embedding_runtimes", self.embedding_runtimes)
        self.step("rerun", self.rerun)
        self.step("query_latency", self.query_latency)
        self.step("group_filter", self.group_filter)
        self.step("first_token_extractive", self.first_token_extractive)
        self.step("xquad", self.xquad)
        self.step("xquad_distractors", self.xquad_distractors)
        self.step("retrieval_shared", self.retrieval_shared)
        self.step("ocr", self.ocr)
        self.step("cluster", self.cluster)
        if self.cfg.llm:
            self.step("answers_shared", self.answers_shared)
            self.step("answers_demo", self.answers_demo)
            self.step("stop_then_ask", self.stop_then_ask)
            self.step("answer_beside_tool", self.answer_beside_tool)
        head = {
            "title": "kiportal Benchmark" + (" (quick)" if self.cfg.quick else ""),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "host": f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()}",
            "quick": self.cfg.quick, "llm": self.cfg.llm, "shared_dir": str(self.shared),
            "embedding_model": self.settings.embedding.mode if self.settings.embedding.mode != "sentence_transformers" else self.settings.embedding.model,
            "embedding_threads": self.settings.embedding.threads or "torch default",
            "total_seconds": round(time.perf_counter() - t0, 1),
            # other processes on the machine distort every timing: say so in the report
            "load_avg_1m_start_end": f"{load_start[0]:.2f} / {os.getloadavg()[0]:.2f}",
        }
        return {**head, "targets": self.targets(), "errors": self.errors, **self.report}


def check_ready(settings) -> None:
    """Fail before any work if the embedding model is not prepared (the message says how)."""
    from assistant.wiring import ModelMissing

    if settings.embedding.mode in ("e5", "e5_onnx", "e5_int8"):
        path = settings.models_dir / "multilingual-e5-small"
        if not (path / "modules.json").exists():
            raise ModelMissing(f"Embedding-Modell fehlt in {path}: zuerst `kiportal --data-dir {settings.home} models prepare`.")
    if settings.embedding.mode in ("e5_onnx", "e5_int8"):
        path = settings.models_dir / "multilingual-e5-small-onnx"
        if not (path / "kiportal-onnx.json").exists():
            raise ModelMissing(f"ONNX-Embedding-Modell fehlt in {path}: zuerst `kiportal --data-dir {settings.home} models prepare`.")


def run_bench(shared_dir: Path, out_dir: Path, *, settings, quick: bool = False, llm: bool = True,
              work_dir: Path | None = None, keep_work: bool = False, runtimes: bool = False) -> dict:
    """Run all steps, write ``bench-<timestamp>.json/.md`` and ``latest.json/.md`` into ``out_dir``."""
    shared_dir = Path(shared_dir).resolve()
    if not (shared_dir / "corpus" / "docs").is_dir():
        raise FileNotFoundError(f"kein shared-Verzeichnis mit corpus/docs: {shared_dir}")
    check_ready(settings)
    cfg = dataclasses.replace(BenchConfig.make(quick=quick, llm=llm), runtimes=runtimes)
    own_tmp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="kiportal-bench-")) if own_tmp else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = _Bench(shared_dir, out_dir, settings, cfg, work).run()
    finally:
        if own_tmp and not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    return publish_report(report, out_dir, "bench", latest="latest")


def run_cluster_bench(shared_dir: Path, out_dir: Path, *, settings, quick: bool = False,
                      work_dir: Path | None = None, keep_work: bool = False) -> dict:
    """Only the cluster section (`kiportal bench --cluster`): ``cluster-<timestamp>.json/.md`` and
    ``cluster-latest.json/.md`` in ``out_dir``; the full run has the same section as step f3."""
    shared_dir = Path(shared_dir).resolve()
    if not (shared_dir / "corpus" / "docs").is_dir():
        raise FileNotFoundError(f"kein shared-Verzeichnis mit corpus/docs: {shared_dir}")
    check_ready(settings)
    own_tmp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="kiportal-bench-")) if own_tmp else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    try:
        bench = _Bench(shared_dir, out_dir, settings, BenchConfig.make(quick=quick, llm=False), work)
        bench.step("cluster", bench.cluster)
    finally:
        if own_tmp and not keep_work:
            shutil.rmtree(work, ignore_errors=True)
    section = bench.report.get("cluster", {})
    report = {
        "title": "kiportal Cluster-Benchmark" + (" (quick)" if quick else ""),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "host": f"{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()}",
        "embedding_model": settings.embedding.mode,
        "total_seconds": round(time.perf_counter() - bench.started, 1),
        "load_avg_1m_start_end": f"{load_start[0]:.2f} / {os.getloadavg()[0]:.2f}",
        "targets": cluster_targets(section) if section and "skipped" not in section else [],
        "errors": bench.errors, "cluster": section,
    }
    return publish_report(report, out_dir, "cluster", latest="cluster-latest")


# ---------------------------------------------------------------- summary for the terminal
def format_summary(report: dict) -> str:
    """The figures a person wants first, as plain-text tables (the Markdown has everything)."""
    lines = [f"{report.get('title', 'Benchmark')} – {report.get('created', '')} – {report.get('total_seconds', 0):.0f} s"
             f" – Last (1 min, Anfang/Ende) {report.get('load_avg_1m_start_end', '?')}", ""]

    def table(headers, rows):
        cells = [[format_cell(c) for c in row] for row in rows]
        widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        out = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths))]
        out.append("  ".join("-" * w for w in widths))
        out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
        return out

    lines += table(("Ziel", "gemessen", "Vorgabe", ""),
                   [(t["name"], t["value"], f"{t['op']} {t['target']}", "✓" if t["ok"] else "✗") for t in report.get("targets", [])])
    ing = report.get("ingest")
    if ing:
        lines += ["", f"Ingest: {ing['documents']} Dokumente {ing['by_status']}, {ing['pages']} Seiten, {ing['chunks']} Abschnitte, "
                  f"{ing['wall_s']} s ({ing['chunks_per_s']} Abschnitte/s), Spitzen-RAM {ing['peak_rss_mb']} MB, "
                  f"Fehler {ing['failures_by_code']}"]
    emb = report.get("embedding")
    if emb:
        lines.append(f"Embedding roh: {emb['raw_chunks_per_s']} Abschnitte/s (Stichprobe {emb['sample']}), Verhältnis {emb['ratio']}; "
                     f"je CPU-Sekunde: roh {emb.get('raw_chunks_per_cpu_s')}, Ingest {emb.get('ingest_chunks_per_cpu_s')}, "
                     f"Verhältnis {emb.get('ratio_per_cpu_s')}")
    gf = report.get("group_filter")
    if gf:
        lines.append(f"Gruppenfilter ({len(gf['readable'])} von {gf['collections']} Sammlungen lesbar, "
                     f"{gf['readable_chunks']} von {gf['chunks']} Abschnitten): Suche p95 {gf['with_filter']['latency_p95_ms']} ms "
                     f"mit, {gf['without_filter']['latency_p95_ms']} ms ohne Filter, Verhältnis {gf['ratio_p95']}; "
                     f"weniger als k Treffer: {gf['filtered_with_fewer_than_k_hits']}, außerhalb: {gf['hits_outside_scope']}")
    er = report.get("embedding_runtimes")
    if er:
        from evals.embedding_bench import format_comparison

        lines += ["", f"Embedding-Laufzeiten ({er['passages']} Abschnitte, dieselben für alle, selber Lauf)"]
        lines += format_comparison(er)
    xq = report.get("xquad")
    if xq:
        lines += ["", f"XQuAD-de ({xq['n_questions']} Fragen, {xq['n_contexts']} Absätze)"]
        lines += table(("Modus", "hit@1", "hit@5", "MRR@10", "p95 ms"),
                       [(k, v.get("hit@1"), v.get("hit@5"), v.get("mrr@10"), v.get("latency_p95_ms")) for k, v in xq["modes"].items()])
        lines.append(f"hybrid ÷ baseline: {xq.get('ratio_hybrid_baseline')}")
    xd = report.get("xquad_distractors")
    if xd:
        lines += ["", f"XQuAD-de mit Ablenkern ({xd['n_questions']} Fragen, {xd['index_chunks']} Abschnitte im Index)"]
        lines += table(("Modus", "hit@1", "hit@5", "MRR@10", "p95 ms"),
                       [(k, v.get("hit@1"), v.get("hit@5"), v.get("mrr@10"), v.get("latency_p95_ms")) for k, v in xd["modes"].items()])
    rs = report.get("retrieval_shared")
    if rs:
        lines += ["", f"shared.jsonl Retrieval ({rs['n']} beantwortbare Fragen)"]
        lines += table(("Modus", "hit@1", "hit@5", "MRR@10", "nDCG@10", "Seite@1", "Seite@5", "p95 ms"),
                       [(k, v["hit@1"], v["hit@5"], v["mrr@10"], v["ndcg@10"], v["page_hit@1"], v["page_hit@5"], v["latency_p95_ms"])
                        for k, v in rs["modes"].items()])
    if report.get("ocr"):
        from evals.ocr_bench import summary_line

        lines += ["", summary_line(report["ocr"])]
    if report.get("cluster"):
        from evals.cluster_bench import summary_line as cluster_line

        lines += ["", cluster_line(report["cluster"])]
    for key in ("answers_shared", "answers_demo"):
        a = report.get(key)
        if a and "metrics" in a:
            mt = a["metrics"]
            lines += ["", f"{key}: {a['n']} Fragen"]
            lines += table(("Schlüsselbegr.", "Zitat-Präz.", "Abl.-F1", "Fehlablehnung", "Prompt-Tok.", "Prompt tok/s",
                            "1. Token p50/p95 ms", "Gen. tok/s"),
                           [(mt["key_terms"], mt["citation_precision"], mt["refusal_f1"], mt["false_refusal_rate"],
                             mt["prompt_tokens_mean"], mt["prompt_tokens_per_s"],
                             f"{format_cell(mt['first_token_p50_ms'])}/{format_cell(mt['first_token_p95_ms'])}", mt["generation_tokens_per_s"])])
        elif a and "skipped" in a:
            lines += ["", f"{key}: übersprungen ({a['skipped']})"]
    st = report.get("stop_then_ask")
    if st:
        lines += ["", f"Stopp, dann sofort die nächste Frage ({st['rounds']} Runden, Modell {st['model']}): bis zu deren "
                  f"1. Token im Median {format_cell(st['with_stop_median_s'])} s mit Stoppsignal, "
                  f"{format_cell(st['without_stop_median_s'])} s ohne, Verhältnis {format_cell(st['ratio_median'])}"]
    if report.get("answer_beside_tool"):
        from evals.beside_tool_bench import summary_line as beside_line

        lines += ["", beside_line(report["answer_beside_tool"])]
    for e in report.get("errors", []):
        lines.append(f"FEHLER in {e['step']}: {e['error']}")
    return "\n".join(lines)


__all__ = ["BenchConfig", "format_cell", "format_summary", "link_models", "pick_questions", "run_bench",
           "run_cluster_bench", "run_ingest_process"]
