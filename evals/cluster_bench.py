"""`kiportal bench`'s cluster section (issue 16): what cluster mode costs against the embedded default.

Measured in one run, on the same passages and the same loaded embedding model, against a
throwaway PostgreSQL and ``chroma run`` (evals/servers.py; Debian's ``postgresql`` package):

* **search p95**: hybrid search in cluster mode (catalog in PostgreSQL, vectors on the Chroma
  server) ÷ embedded (SQLite catalog, embedded Chroma); the same queries, interleaved in ABBA
  order so drift and caches hit both alike. Goal ≤ 1.5.
* **ingest rate**: chunks per second of the same files ingested into each (in two halves, in
  ABBA order). Goal ≥ 0.8.
* **propagation**: from a document's version committing on replica A (seen in the shared catalog
  by a thread of A polling every 10 ms) to the document being found by hybrid search on replica
  B, a second *process* with its own data directory that polls search (``python -m
  evals.cluster_bench poll``). Goal ≤ 2 s.

The pure parts (file choice, ratios, the section's figures and targets) are tested without
servers in tests/evals/test_cluster_bench.py.
"""
from __future__ import annotations

import json
import logging
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from evals.report import format_cell

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
# light formats only: the section measures the stores, not PDF parsing or OCR
TEXT_SUFFIXES = (".md", ".txt", ".html", ".htm")
GOALS = {  # key: (op, target)
    "search_p95_ratio": ("≤", 1.5),
    "ingest_rate_ratio": ("≥", 0.8),
    "propagation_max_s": ("≤", 2.0),
}
READY = "ready"
PROPAGATION_COLLECTION = "bench_propagation"


@dataclass(frozen=True)
class ClusterBenchConfig:
    """Sizes of the section; the ingests run once per side with the real model (2 cores: keep them small)."""

    corpus_bytes: int = 150_000  # text files drawn until this size: about 100–150 passages
    queries: int = 200
    warmup: int = 5
    propagation_rounds: int = 5
    propagation_timeout_s: float = 30.0
    seed: int = 7

    @classmethod
    def make(cls, quick: bool) -> "ClusterBenchConfig":
        return cls(corpus_bytes=60_000, queries=60, propagation_rounds=3) if quick else cls()


# ---------------------------------------------------------------- pure parts
def pick_files(docs_dir: Path, max_bytes: int, seed: int) -> list[Path]:
    """Text files of the corpus in a seeded order, taken while they fit into ``max_bytes`` together
    (the same files in every run with the same corpus); sorted by name."""
    files = sorted(p for p in Path(docs_dir).iterdir() if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    random.Random(seed).shuffle(files)
    picked, total = [], 0
    for f in files:
        size = f.stat().st_size
        if total + size <= max_bytes:
            picked.append(f)
            total += size
    return sorted(picked)


def ratio(numerator: float | None, denominator: float | None, nd: int = 3) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, nd)


def abba(queries: Sequence[str]) -> list[tuple[str, int]]:
    """(query, which) in ABBA order: which=0 embedded first, then cluster; the next query the other way round."""
    out: list[tuple[str, int]] = []
    for i, q in enumerate(queries):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        out += [(q, w) for w in order]
    return out


def propagation_summary(seconds: Sequence[float | None]) -> dict[str, Any]:
    """Rounds of A-ingests/B-finds: median and max of those found; a round never found counts as missed."""
    found = [s for s in seconds if s is not None]
    return {"rounds": len(seconds), "found": len(found), "missed": len(seconds) - len(found),
            "median_s": round(statistics.median(found), 3) if found else None,
            "max_s": round(max(found), 3) if found and len(found) == len(seconds) else None,
            "seconds": [None if s is None else round(s, 3) for s in seconds]}


def section_figures(embedded: dict, cluster: dict, propagation: dict) -> dict[str, Any]:
    """The section's figures, flat (one line each in the report), from its two measured sides
    ({"ingest": …, "search": …}) and the propagation rounds."""
    out: dict[str, Any] = {
        "search_p95_ratio": ratio(cluster["search"]["latency_p95_ms"], embedded["search"]["latency_p95_ms"]),
        "ingest_rate_ratio": ratio(cluster["ingest"]["chunks_per_s"], embedded["ingest"]["chunks_per_s"]),
        "propagation_max_s": propagation["max_s"],
        "propagation_median_s": propagation["median_s"],
    }
    for name, side in (("embedded", embedded), ("cluster", cluster)):
        out[f"{name}_search_p50_ms"] = side["search"].get("latency_p50_ms")
        out[f"{name}_search_p95_ms"] = side["search"]["latency_p95_ms"]
        out[f"{name}_chunks_per_s"] = side["ingest"]["chunks_per_s"]
        out[f"{name}_ingest_s"] = side["ingest"].get("seconds")
    out["chunks"] = cluster["ingest"].get("chunks")
    out["propagation_rounds"] = propagation["rounds"]
    out["propagation_missed"] = propagation["missed"]
    out["propagation_s"] = propagation["seconds"]
    return out


def targets(section: dict) -> list[dict]:
    """Pass/fail of the section's goals (the bench's target list; a missed goal never fails the run)."""
    names = {"search_p95_ratio": "Cluster: Suche p95 ÷ eingebettet",
             "ingest_rate_ratio": "Cluster: Ingest-Rate ÷ eingebettet",
             "propagation_max_s": "Cluster: Ingest auf A → auf B suchbar (s, max)"}
    out = []
    for key, (op, target) in GOALS.items():
        value = section.get(key)
        ok = value is not None and (value <= target if op == "≤" else value >= target)
        out.append({"name": names[key], "value": value, "op": op, "target": target, "unit": "", "ok": bool(ok)})
    return out


def summary_line(section: dict) -> str:
    if "skipped" in section:
        return f"Cluster: übersprungen ({section['skipped']})"
    f, s = format_cell, section
    return (f"Cluster ({s['files']} Dateien, {s['chunks']} Abschnitte, {s['queries']} Suchen): "
            f"Suche p95 {f(s['cluster_search_p95_ms'])} ms Cluster / {f(s['embedded_search_p95_ms'])} ms eingebettet "
            f"= {f(s['search_p95_ratio'])}; Ingest {f(s['cluster_chunks_per_s'])} / {f(s['embedded_chunks_per_s'])} "
            f"Abschnitte/s = {f(s['ingest_rate_ratio'])}; auf Replikat B suchbar nach {f(s['propagation_median_s'])} s "
            f"(Median), {f(s['propagation_max_s'])} s (max), verpasst {s['propagation_missed']} von {s['propagation_rounds']}")


# ---------------------------------------------------------------- settings of the two sides
def embedded_settings(settings, home: Path):
    """SQLite catalog and app DB in the data dir, embedded Chroma: the default installation."""
    return settings.model_copy(update={"home": Path(home), "app_db_url": "",
                                       "vector": settings.vector.model_copy(update={"mode": "chroma"})})


def cluster_settings(settings, home: Path, db_url: str, chroma_host: str, chroma_port: int, collection: str,
                     secret: str):
    """The same settings on PostgreSQL and the Chroma server (one replica's view)."""
    from pydantic import SecretStr

    vector = settings.vector.model_copy(update={"mode": "chroma_http", "host": chroma_host, "port": chroma_port,
                                                "collection": collection})
    auth = settings.auth.model_copy(update={"secret": SecretStr(secret)})
    return settings.model_copy(update={"home": Path(home), "app_db_url": db_url, "vector": vector, "auth": auth})


def settings_env(settings) -> dict[str, str]:
    """KIPORTAL_* variables that give a child process (replica B) these settings' stores and model."""
    v = settings.vector
    env = {
        "KIPORTAL_APP_DB_URL": settings.app_db_url,
        "KIPORTAL_VECTOR__MODE": v.mode, "KIPORTAL_VECTOR__HOST": v.host, "KIPORTAL_VECTOR__PORT": str(v.port),
        "KIPORTAL_VECTOR__COLLECTION": v.collection,
        "KIPORTAL_EMBEDDING__MODE": settings.embedding.mode,
        "KIPORTAL_AUTH__SECRET": settings.auth.secret.get_secret_value(),
    }
    if settings.embedding.model:
        env["KIPORTAL_EMBEDDING__MODEL"] = settings.embedding.model
    if settings.embedding.threads:
        env["KIPORTAL_EMBEDDING__THREADS"] = str(settings.embedding.threads)
    return env


# ---------------------------------------------------------------- measuring
def _ingest(app, files: Sequence[Path], collection: str) -> dict[str, Any]:
    summary = app.ingestor.ingest(list(files), collection=collection)
    s = summary.as_dict()
    if s["failed"]:
        log.warning("cluster bench: %d files failed: %s", len(s["failed"]), [f["source"] for f in s["failed"]][:5])
    return {"documents": s["added"], "chunks": s["chunks"], "seconds": s["seconds"], "chunks_per_s": s["chunks_per_s"],
            "failed": len(s["failed"])}


def _ingest_abba(apps: Sequence[Any], files: Sequence[Path]) -> list[dict[str, Any]]:
    """The same files into both sides in two halves, embedded first for one half and cluster first
    for the other, so whatever warms up during the first ingest (page cache, threads) favours neither."""
    halves = [list(files[0::2]), list(files[1::2])]
    parts: list[list[dict]] = [[], []]
    for half, order in zip(halves, ((0, 1), (1, 0))):
        if half:
            for which in order:
                parts[which].append(_ingest(apps[which], half, "bench"))
    out = []
    for runs in parts:
        chunks, seconds = sum(r["chunks"] for r in runs), sum(r["seconds"] for r in runs)
        out.append({"documents": sum(r["documents"] for r in runs), "chunks": chunks, "seconds": round(seconds, 2),
                    "chunks_per_s": round(chunks / seconds, 2) if seconds else None,
                    "failed": sum(r["failed"] for r in runs)})
    return out


def _search_latency(apps: Sequence[Any], queries: Sequence[str], warmup: int) -> list[dict[str, Any]]:
    from evals.runner import latency_summary

    for q in queries[:warmup]:
        for app in apps:
            app.retriever.search(q)
    lat: list[list[float]] = [[] for _ in apps]
    for q, which in abba(queries[warmup:]):
        t0 = time.perf_counter()
        apps[which].retriever.search(q)
        lat[which].append((time.perf_counter() - t0) * 1000)
    return [{"queries": len(v), **latency_summary(v), "latencies_ms": [round(x, 2) for x in v]} for v in lat]


class Poller:
    """Replica B: a second process on its own data directory that polls search for tokens."""

    def __init__(self, settings, home: Path, log_path: Path) -> None:
        env = dict(os.environ)  # the caller's config (kiportal.toml in the cwd, KIPORTAL_*), B's own data dir
        env.pop("KIPORTAL_HOME", None)
        env.update(settings_env(settings))
        env.update({"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"})
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "evals.cluster_bench", "poll", str(home)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
                                     bufsize=1, cwd=os.getcwd())
        line = self.proc.stdout.readline().strip()
        if line != READY:
            self.stop()
            raise RuntimeError(f"replica B did not start: {line!r}, see {log_path}")

    def find(self, token: str, timeout_s: float) -> float | None:
        """Tell B to look for ``token``; returns the wall-clock time (time.time) it was found, or None."""
        self.proc.stdin.write(json.dumps({"token": token, "timeout_s": timeout_s}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["found_at"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self._log.close()


def poll_main(home: Path) -> None:
    """``python -m evals.cluster_bench poll HOME``: replica B. Settings from KIPORTAL_*; warm up,
    say ``ready``, then per request line search until the token's document is found."""
    from assistant.settings import load_settings
    from assistant.wiring import App

    app = App(load_settings(home))
    app.retriever.search("Öffnungszeiten Bürgerbüro")  # model loaded, connections open
    _say(READY)
    for line in sys.stdin:
        req = json.loads(line)
        token, deadline = req["token"], time.monotonic() + float(req["timeout_s"])
        found_at = None
        while time.monotonic() < deadline:
            res = app.retriever.search(token)
            if any(token in h.chunk.text for h in res.hits):
                found_at = time.time()
                break
            time.sleep(0.02)
        _say(json.dumps({"token": token, "found_at": found_at}))


def _say(line: str) -> None:
    """One line to replica A (stdout is the channel between the two processes; logs go to stderr)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _wait_committed(catalog, collection: str, name: str, timeout_s: float) -> float | None:
    """When the document ``name`` became visible as indexed in the shared catalog (time.time), polled
    every 10 ms on A's side: the moment its version was committed, give or take one poll."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(Path(r.source).name == name and r.status == "indexed" for r in catalog.documents(collection=collection)):
            return time.time()
        time.sleep(0.01)
    return None


def _propagation(app_a, settings, work: Path, cfg: ClusterBenchConfig) -> dict[str, Any]:
    home_b = work / "cluster_b"
    home_b.mkdir(parents=True, exist_ok=True)
    models = settings.models_dir
    if models.exists() and not (home_b / "models").exists():
        (home_b / "models").symlink_to(models.resolve(), target_is_directory=True)
    poller = Poller(settings, home_b, work / "cluster_b.log")
    docs = work / "propagation_docs"
    docs.mkdir(exist_ok=True)
    seconds: list[float | None] = []
    try:
        for i in range(cfg.propagation_rounds):
            token = f"Prüfvermerk{uuid.uuid4().hex[:10]}"
            path = docs / f"vermerk-{i}.txt"
            path.write_text(f"Vermerk {i}\n\nDer {token} betrifft die Abnahme der Sporthalle, Bauabschnitt {i + 2}.\n",
                            encoding="utf-8")
            result: dict[str, Any] = {}
            waiter = threading.Thread(target=lambda t=token: result.update(
                found_at=poller.find(t, cfg.propagation_timeout_s)))
            watcher = threading.Thread(target=lambda n=path.name: result.update(
                committed_at=_wait_committed(app_a.catalog, PROPAGATION_COLLECTION, n, cfg.propagation_timeout_s)))
            waiter.start()  # B polls from before A's ingest starts
            watcher.start()
            app_a.ingestor.ingest([path], collection=PROPAGATION_COLLECTION)
            watcher.join()
            waiter.join()
            found, committed = result.get("found_at"), result.get("committed_at")
            # B can find it a few ms before A's own 10 ms poll sees the commit: that is 0, not less
            seconds.append(None if found is None or committed is None else max(0.0, found - committed))
    finally:
        poller.stop()
    return propagation_summary(seconds)


def run_cluster_section(settings, docs_dir: Path, work: Path, queries: Sequence[str], *,
                        cfg: ClusterBenchConfig | None = None, embedder=None) -> dict[str, Any]:
    """Start PostgreSQL and Chroma, measure both sides and the propagation; servers stopped at the end."""
    from assistant.wiring import App
    from evals.workdirs import link_models
    from evals.servers import postgres_available, start_chroma, start_postgres

    cfg = cfg or ClusterBenchConfig()
    if not postgres_available():
        return {"skipped": "PostgreSQL nicht installiert (make cluster-deps)"}
    files = pick_files(docs_dir, cfg.corpus_bytes, cfg.seed)
    if len(files) < 2:
        raise RuntimeError(f"fewer than two text files of at most {cfg.corpus_bytes} bytes in {docs_dir}")
    work.mkdir(parents=True, exist_ok=True)
    pg = start_postgres()
    chroma = None
    try:
        chroma = start_chroma()
        c_settings = cluster_settings(settings, work / "cluster_a", pg.new_database("bench"), chroma.host, chroma.port,
                                      f"bench_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex + uuid.uuid4().hex)
        apps = []
        for s in (embedded_settings(settings, work / "embedded"), c_settings):
            link_models(s.home, settings.models_dir)
            app = App(s)
            if embedder is not None:
                app.kb._embedder = embedder
            embedder = app.kb.embedder
            apps.append(app)
        # one small file into each first: connections, schema and caches are not ingest rate
        for app in apps:
            _ingest(app, files[:1], "bench_warmup")
        ingests = _ingest_abba(apps, files[1:])
        searches = _search_latency(apps, list(queries[: cfg.queries + cfg.warmup]), cfg.warmup)
        propagation = _propagation(apps[1], c_settings, work, cfg)
        section = {"files": len(files) - 1, "queries": searches[0]["queries"],
                   **section_figures({"ingest": ingests[0], "search": searches[0]},
                                     {"ingest": ingests[1], "search": searches[1]}, propagation),
                   "servers": f"PostgreSQL ({Path(pg.root).name}, Port {pg.port}), chroma run (Port {chroma.port})"}
        section["latencies_ms"] = searches[1]["latencies_ms"]
        return section
    finally:
        if chroma is not None:
            chroma.stop()
        pg.stop()


if __name__ == "__main__":  # replica B of the propagation measurement
    if len(sys.argv) == 3 and sys.argv[1] == "poll":
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        poll_main(Path(sys.argv[2]))
    else:
        sys.exit("usage: python -m evals.cluster_bench poll HOME")
