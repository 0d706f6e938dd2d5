"""Crash safety: `kiportal ingest`, `kiportal reindex` and an upload are SIGKILLed at several
moments; the store must stay usable (search works, earlier documents still found, every
document in exactly one version), the next run must complete, and `kiportal doctor
--no-repair` must then exit 0 (no duplicates, no orphan chunks, BM25 current).

Kill moments are both fixed delays (start-up, early, mid-run) and progress-based (after
the catalog shows the first / half / most of the new documents), because with a fast
embedder fixed delays alone would mostly hit the interpreter start-up.
"""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MARK = re.compile(r"\[(\w+)-R(\d+)\]")
BASE_DOCS = 10


def _kiportal() -> list[str]:
    exe = Path(sys.executable).parent / "kiportal"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from ui.cli import main; main()"]


def _env(home: Path, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIPORTAL_")}
    env.update(KIPORTAL_HOME=str(home), KIPORTAL_EMBEDDING__MODE=mode, HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False", PYTHONPATH=str(REPO))
    return env


def _doc(name: str, rnd: int, topic: str) -> str:
    paras = [f"[{name}-R{rnd}] Abschnitt {j} der Regelung über {topic}: "
             + " ".join(f"{topic}wort{j}n{k}" for k in range(35)) for j in range(4)]
    return f"# {topic} {name}\n\n" + "\n\n".join(paras) + "\n"


def _write_round(folder: Path, prefix: str, n: int, rnd: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        topic = ["Hundesteuer", "Parkgebühren", "Müllabfuhr", "Baumschutz"][i % 4]
        (folder / f"{prefix}{i:03d}.md").write_text(_doc(f"{prefix}{i:03d}", rnd, topic), encoding="utf-8")


def _catalog_progress(home: Path) -> int:
    """The catalog generation, read without taking a write lock (0 while it does not exist)."""
    path = home / "catalog.sqlite3"
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _run_and_kill(cmd: list[str], env: dict, *, after_s: float | None = None, after_commits: int | None = None,
                  timeout: float = 120) -> str:
    """Start ``cmd``; SIGKILL it after ``after_s`` seconds or once the catalog generation grew
    by ``after_commits``. Returns "killed" or "finished" (too fast to kill)."""
    home = Path(env["KIPORTAL_HOME"])
    start_gen = _catalog_progress(home)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=home.parent)
    t0 = time.monotonic()
    try:
        while proc.poll() is None:
            if after_s is not None and time.monotonic() - t0 >= after_s:
                break
            if after_commits is not None and _catalog_progress(home) - start_gen >= after_commits:
                break
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"{cmd} did not reach the kill point")
            time.sleep(0.005)
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")
            assert proc.returncode == 0, err
            return "finished"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return "killed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stderr.close()


def _cli(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([*_kiportal(), *args], env=env, capture_output=True, text=True, timeout=600,
                         cwd=Path(env["KIPORTAL_HOME"]).parent)
    if check:
        assert res.returncode == 0, (args, res.stdout[-2000:], res.stderr[-4000:])
    return res


def _assert_usable(home: Path, mode: str, base_names: list[str]) -> dict:
    """Open the store as the portal would after a crash: search works, the earlier documents
    are still there and found, and no document shows two versions."""
    from assistant.settings import load_settings
    from assistant.wiring import App

    overrides = {"embedding": {"mode": mode}}
    app = App(load_settings(home, **overrides))
    try:
        recs = app.catalog.documents()
        by_name = {Path(r.path).stem: r for r in recs}
        for name in base_names:
            assert name in by_name and by_name[name].status == "indexed", name
        for r in recs:
            rounds = {rnd for c in app.catalog.iter_chunks(r.doc_id) for _, rnd in MARK.findall(c.text)}
            assert len(rounds) <= 1, (r.path, rounds)
        hits = app.retriever.search("Hundesteuer Regelung Abschnitt", k=20, wait_for_index=False).hits
        assert hits, "search returned nothing after the crash"
        dense = app.retriever.search(f"[{base_names[0]}-R0] Abschnitt 0", k=30, mode="dense").hits
        bm25 = app.retriever.search(f"{base_names[0]}", k=30, mode="bm25").hits
        assert dense and bm25
        assert by_name[base_names[0]].doc_id in {h.chunk.doc_id for h in bm25}
        return {"documents": len(recs), "chunks": len(app.catalog.chunk_ids())}
    finally:
        app.catalog.close()


def _assert_consistent(env: dict, folder_files: int) -> None:
    res = _cli(env, "doctor", "--no-repair", "--json", check=False)
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert res.returncode == 0, report
    assert report["orphans_in_vectors"] == 0 and report["missing_in_vectors"] == 0 and not report["keyword_stale"]
    assert report["catalog_chunks"] == report["vector_chunks"] == report["keyword_chunks"]  # no duplicates
    assert report["documents"] == folder_files


def _scenario(tmp_path: Path, mode: str, kills: list[dict], new_docs: int) -> list[str]:
    home = tmp_path / "data"
    env = _env(home, mode)
    base, new = tmp_path / "bestand", tmp_path / "neu"
    _write_round(base, "b", BASE_DOCS, 0)
    _cli(env, "ingest", str(base), "--collection", "bestand")
    base_names = [f"b{i:03d}" for i in range(BASE_DOCS)]
    outcomes = []
    for rnd, kill in enumerate(kills, start=1):
        _write_round(new, "n", new_docs, rnd)  # every round changes every new document
        outcomes.append(_run_and_kill([*_kiportal(), "ingest", str(new), "--collection", "neu"], env, **kill))
        _assert_usable(home, mode, base_names)
    _cli(env, "ingest", str(new), "--collection", "neu")  # the next run completes the work
    _assert_usable(home, mode, base_names)
    _assert_consistent(env, BASE_DOCS + new_docs)

    # a full re-index killed half-way, then repeated
    for kill in ({"after_commits": max(2, new_docs // 2)}, {"after_s": 2.5}):
        outcomes.append(_run_and_kill([*_kiportal(), "reindex", "--all"], env, **kill))
        _assert_usable(home, mode, base_names)
    _cli(env, "reindex", "--changed")
    _assert_consistent(env, BASE_DOCS + new_docs)
    return outcomes


def test_killed_ingest_and_reindex_leave_a_usable_store(tmp_path):
    kills = [{"after_s": 0.5}, {"after_s": 1.5}, {"after_s": 2.5}, {"after_commits": 1}, {"after_commits": 30},
             {"after_commits": 55}]
    outcomes = _scenario(tmp_path, "hash", kills, new_docs=60)
    # at least the progress-based kills must have hit a running ingest
    assert outcomes.count("killed") >= 5, outcomes


UPLOAD_SCRIPT = r"""
import sys
from pathlib import Path
from assistant.settings import load_settings
from assistant.wiring import App
from assistant.appdb import AppDB
from assistant.audit import AuditLog
from assistant.admin import Admin

app = App(load_settings())
admin = Admin(app, AuditLog(AppDB(app.settings.app_db)))
files = sorted(Path(sys.argv[1]).iterdir())
res = admin.upload([(f, f.name) for f in files], "upload", "crash-test")
print(res.message())
"""


def test_killed_upload_is_recovered_at_start(tmp_path):
    from assistant.settings import load_settings
    from assistant.wiring import App

    home = tmp_path / "data"
    env = _env(home, "hash")
    base = tmp_path / "bestand"
    _write_round(base, "b", BASE_DOCS, 0)
    _cli(env, "ingest", str(base), "--collection", "bestand")
    _cli(env, "collections", "create", "upload")
    incoming = tmp_path / "eingang"
    outcomes = []
    for rnd, kill in enumerate(({"after_commits": 1}, {"after_commits": 20}, {"after_s": 2.0}), start=1):
        _write_round(incoming, f"u{rnd}-", 40, rnd)
        outcomes.append(_run_and_kill([sys.executable, "-c", UPLOAD_SCRIPT, str(incoming)], env, **kill))
        for f in incoming.iterdir():
            f.unlink()
        # portal start: recovery removes placed files that never became documents
        app = App(load_settings(home, embedding={"mode": "hash"}))
        admin = app.start_jobs()
        try:
            uploads = app.settings.uploads_dir
            files = {str(p.resolve()) for p in uploads.rglob("*") if p.is_file()}
            docs = {r.path for r in app.catalog.documents() if r.path.startswith(str(uploads.resolve()))}
            assert files == docs, (files ^ docs)
            assert not (uploads / ".staging").exists()
        finally:
            admin.jobs.shutdown()
            app.catalog.close()
        _assert_usable(home, "hash", [f"b{i:03d}" for i in range(BASE_DOCS)])
    assert outcomes.count("killed") >= 2, outcomes
    _cli(env, "reindex", "--changed")
    res = _cli(env, "doctor", "--no-repair", check=False)
    assert res.returncode == 0, res.stdout


@pytest.mark.slow
def test_killed_ingest_with_the_real_model(tmp_path, e5_dir, e5_onnx_dir):
    """The product's default embedder (e5 int8 on ONNX Runtime): its session threads must not
    leave a half-written store behind either."""
    home = tmp_path / "data"
    (home / "models").mkdir(mode=0o700, parents=True)  # private, as kiportal makes its data directory
    home.chmod(0o700)
    (home / "models" / "multilingual-e5-small").symlink_to(e5_dir)
    (home / "models" / "multilingual-e5-small-onnx").symlink_to(e5_onnx_dir)
    outcomes = _scenario(tmp_path, "e5_int8", [{"after_s": 4.0}, {"after_commits": 2}, {"after_commits": 8}],
                         new_docs=12)
    assert outcomes.count("killed") >= 2, outcomes
