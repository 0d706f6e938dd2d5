"""Pieces of `kiportal bench` that can be checked without ../shared or a real model:
the XQuAD loader and scorer on a generated 3-paragraph set, model linking, question
picking, the ingest subprocess with its rusage, targets and the terminal summary."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evals.bench import (BenchConfig, _target, bench_settings, format_summary, link_models, pick_questions,
                         run_ingest_process)
from evals.datasets import EvalQuestion
from evals.xquad import load_xquad, write_context_docs, xquad_eval

CONTEXTS = [
    {"id": "Rhein__p00", "title": "Rhein",
     "text": "Der Rhein ist ein Strom in Mitteleuropa. Er entspringt in den Alpen in der Schweiz und mündet "
             "in den Niederlanden in die Nordsee. Seine Länge beträgt etwa 1230 Kilometer."},
    {"id": "Rhein__p01", "title": "Rhein",
     "text": "Am Rhein liegen die Städte Basel, Straßburg, Köln und Düsseldorf. Die Rheinschifffahrt transportiert "
             "Kohle, Erz und Container."},
    {"id": "Warschau__p00", "title": "Warsaw",
     "text": "Warschau ist die Hauptstadt Polens und liegt an der Weichsel. Der Kulturpalast ist das höchste "
             "Gebäude der Stadt und wurde in den 1950er Jahren errichtet."},
]
QUESTIONS = [
    {"id": "a1", "question": "Wie lang ist der Rhein in Kilometern?", "answers": ["1230"], "context_id": "Rhein__p00"},
    {"id": "a2", "question": "Welche Städte liegen am Rhein?", "answers": ["Basel"], "context_id": "Rhein__p01"},
    {"id": "a3", "question": "An welchem Fluss liegt Warschau?", "answers": ["Weichsel"], "context_id": "Warschau__p00"},
    {"id": "a4", "question": "Wann wurde der Kulturpalast in Warschau errichtet?", "answers": ["1950er"], "context_id": "Warschau__p00"},
    {"id": "a5", "question": "Was transportiert die Rheinschifffahrt?", "answers": ["Kohle"], "context_id": "Rhein__p01"},
]


def _jsonl(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


@pytest.fixture
def fake_shared(tmp_path) -> Path:
    shared = tmp_path / "shared"
    base = shared / "benchmarks" / "xquad_de"
    _jsonl(base / "xquad_de_contexts.jsonl", CONTEXTS)
    _jsonl(base / "xquad_de_all_questions.jsonl", QUESTIONS)
    return shared


# ---------------------------------------------------------------- XQuAD
def test_load_xquad_and_seeded_subset(fake_shared):
    contexts, questions = load_xquad(fake_shared)
    assert [c["id"] for c in contexts] == ["Rhein__p00", "Rhein__p01", "Warschau__p00"]
    assert len(questions) == 5
    _, sub1 = load_xquad(fake_shared, limit=3)
    _, sub2 = load_xquad(fake_shared, limit=3)
    assert [q["id"] for q in sub1] == [q["id"] for q in sub2] and len(sub1) == 3
    assert [q["id"] for q in sub1] == sorted((q["id"] for q in sub1), key=lambda i: int(i[1:]))  # original order kept


def test_load_xquad_rejects_unknown_context(fake_shared):
    _jsonl(fake_shared / "benchmarks" / "xquad_de" / "xquad_de_all_questions.jsonl",
           QUESTIONS + [{"id": "x", "question": "?", "answers": [], "context_id": "Nope__p00"}])
    with pytest.raises(ValueError, match="unknown contexts"):
        load_xquad(fake_shared)


def test_context_docs_hold_only_the_text(tmp_path):
    paths = write_context_docs(CONTEXTS, tmp_path / "docs")
    assert [p.name for p in paths] == ["Rhein__p00.txt", "Rhein__p01.txt", "Warschau__p00.txt"]
    assert paths[2].read_text(encoding="utf-8") == CONTEXTS[2]["text"]
    assert "Warsaw" not in paths[2].read_text(encoding="utf-8")


def _hash_app_factory(home: Path):
    from assistant.settings import load_settings
    from assistant.wiring import App

    return App(load_settings(home, embedding={"mode": "hash"}, vector={"mode": "memory"}))


def test_xquad_eval_scores_every_mode(fake_shared, tmp_path):
    res = xquad_eval(_hash_app_factory, fake_shared, tmp_path / "work")
    assert res["n_contexts"] == 3 and res["n_questions"] == 5 and res["chunks"] >= 3
    assert set(res["modes"]) == {"bm25", "dense", "hybrid"}
    for mode, mt in res["modes"].items():
        for key in ("hit@1", "hit@5", "mrr@10"):
            assert 0.0 <= mt[key] <= 1.0, (mode, key)
        assert mt["hit@5"] == 1.0  # only three documents exist
    assert res["modes"]["bm25"]["hit@1"] >= 0.8
    # fresh every time: a second run does not find the old index
    again = xquad_eval(_hash_app_factory, fake_shared, tmp_path / "work", limit=2)
    assert again["n_questions"] == 2 and again["chunks"] == res["chunks"]


def test_xquad_eval_into_an_existing_index_keeps_its_documents(fake_shared, tmp_path):
    home = tmp_path / "with-distractors"
    app = _hash_app_factory(home)
    distractor = tmp_path / "municipal" / "hundesteuer.txt"
    distractor.parent.mkdir()
    distractor.write_text("Die Hundesteuer beträgt 120 Euro. Der Rhein ist hier nicht gemeint.", encoding="utf-8")
    app.ingestor.ingest([distractor.parent])
    res = xquad_eval(lambda h: app if h == home else _hash_app_factory(h), fake_shared, tmp_path / "work", home=home)
    assert res["index_documents"] == 4 and res["chunks"] >= 3
    assert all(mt["hit@5"] == 1.0 for mt in res["modes"].values())  # 4 documents, so every paragraph is in the top 5


@pytest.mark.integration
def test_baseline_on_fake_xquad(fake_shared, tmp_path):
    from evals.baseline import baseline_xquad

    res = baseline_xquad(fake_shared, work_dir=tmp_path)
    assert res["n_questions"] == 5 and res["chunks"] == 3
    assert 0.0 <= res["hit@1"] <= 1.0 and res["hit@5"] == 1.0
    assert res["latency_p50_ms"] > 0


# ---------------------------------------------------------------- helpers
def test_link_models_is_idempotent_and_fixes_wrong_links(tmp_path):
    models = tmp_path / "models-main"
    (models / "multilingual-e5-small").mkdir(parents=True)
    home = tmp_path / "bench-home"
    link = link_models(home, models)
    assert link.is_symlink() and (link / "multilingual-e5-small").is_dir()
    assert link_models(home, models) == link
    other = tmp_path / "other"
    other.mkdir()
    link.unlink()
    link.symlink_to(other)
    link_models(home, models)
    assert link.resolve() == models.resolve()
    real = tmp_path / "home2" / "models"
    real.mkdir(parents=True)
    link_models(tmp_path / "home2", models)
    assert real.is_dir() and not real.is_symlink()  # a real folder is never replaced


def test_bench_settings_change_only_the_data_dir(tmp_path):
    from assistant.settings import load_settings

    base = load_settings(tmp_path / "main", embedding={"mode": "hash", "batch_size": 7}, vector={"mode": "chroma_http"},
                         app_db_url="postgresql+psycopg://kiportal@db.intern/kiportal")
    s = bench_settings(base, tmp_path / "x")
    assert s.home == tmp_path / "x" and s.embedding.batch_size == 7 and s.embedding.mode == "hash"
    assert s.vector.mode == "chroma" and base.vector.mode == "chroma_http"
    # on a cluster node the bench's catalogs stay in its own data dirs, never in the installation's database
    assert not s.cluster and base.cluster


def _q(i: int, kind: str | None, answerable: bool = True) -> EvalQuestion:
    return EvalQuestion(f"q{i:02d}", f"Frage {i}", "a.pdf" if answerable else None, None, (), answerable, kind)


def test_pick_questions_is_stratified_and_stable():
    qs = [_q(i, "statute") for i in range(10)] + [_q(10 + i, "slide") for i in range(5)] + \
         [_q(20 + i, None, answerable=False) for i in range(4)]
    picked = pick_questions(qs, 6, seed=1)
    assert len(picked) == 6 and picked == pick_questions(qs, 6, seed=1)
    assert {q.kind for q in picked if q.answerable} == {"statute", "slide"}
    assert sum(not q.answerable for q in picked) == 2
    assert {picked[0].kind, picked[1].kind, picked[2].kind} == {"statute", "slide", None}  # round-robin
    everything = pick_questions(qs, None, seed=1)
    assert sorted(q.id for q in everything) == [q.id for q in qs] and pick_questions(qs, 99, seed=1) == everything


def test_targets_and_quick_config():
    assert _target("a", 0.95, "≥", 0.92)["ok"] and not _target("a", 0.9, "≥", 0.92)["ok"]
    assert _target("b", 80, "≤", 100)["ok"] and not _target("b", None, "≤", 100)["ok"]
    quick = BenchConfig.make(quick=True, llm=False)
    assert quick.xquad_limit == 200 and quick.answer_limit_shared == 5 and not quick.llm
    assert BenchConfig.make(quick=False, llm=True).xquad_limit is None


@pytest.mark.slow
def test_ingest_subprocess_reports_summary_and_peak_memory(tmp_path, monkeypatch):
    from assistant.settings import load_settings

    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    monkeypatch.setenv("KIPORTAL_VECTOR__MODE", "chroma")
    docs = tmp_path / "docs"
    write_context_docs(CONTEXTS, docs)
    settings = load_settings(tmp_path / "main")
    run = run_ingest_process(tmp_path / "data", docs, tmp_path, settings, "ingest")
    assert run["summary"]["added"] == 3 and run["summary"]["chunks"] >= 3
    assert run["peak_rss_mb"] > 20 and run["wall_s"] > 0
    again = run_ingest_process(tmp_path / "data", docs, tmp_path, settings, "rerun")
    assert again["summary"]["unchanged"] == 3 and again["summary"]["added"] == 0
    bad = tmp_path / "missing"
    with pytest.raises(RuntimeError, match="exited with"):
        run_ingest_process(tmp_path / "data", bad, tmp_path, settings, "bad")
    assert os.path.exists(tmp_path / "bad.stderr")


def test_format_summary_marks_targets():
    report = {
        "title": "kiportal Benchmark", "created": "now", "total_seconds": 12.0,
        "targets": [_target("Suche p95 (ms)", 80.0, "≤", 100), _target("XQuAD-de hybrid hit@1", 0.5, "≥", 0.92)],
        "errors": [{"step": "answers_demo", "error": "boom"}],
        "xquad": {"n_questions": 5, "n_contexts": 3, "modes": {"hybrid": {"hit@1": 0.5, "hit@5": 1.0, "mrr@10": 0.7},
                                                              "baseline": {"hit@1": 0.4, "hit@5": 0.9, "mrr@10": 0.6}},
                  "ratio_hybrid_baseline": {"hit@1": 1.25}},
        "answers_demo": {"skipped": "demo.jsonl not present"},
    }
    text = format_summary(report)
    assert "✓" in text and "✗" in text and "baseline" in text and "FEHLER in answers_demo: boom" in text
    assert "übersprungen" in text


def test_group_filter_latency_splits_filters_and_reports_a_ratio(chroma_hash_app, tmp_path):
    from evals.bench import group_filter_latency

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"d{i}.txt").write_text(f"Dokument {i} über Antrag, Frist und Gebühr Nummer {i}. " * 20, encoding="utf-8")
    assert not chroma_hash_app.ingestor.ingest([docs]).failed
    res = group_filter_latency(chroma_hash_app, ["Antrag Frist", "Gebühr Nummer 3", "Dokument 7"] * 4, warmup=2)
    assert res["queries"] == 10 and res["ratio_p95"] > 0
    assert len([c for c in res["readable"] if c.startswith("teil")]) == 2
    assert 0 < res["readable_chunks"] < res["chunks"]
    assert res["hits_outside_scope"] == 0 and res["filtered_with_fewer_than_k_hits"] == 0
    text = format_summary({"group_filter": res, "targets": [_target("x", res["ratio_p95"], "≤", 1.1)]})
    assert "Gruppenfilter" in text and "Verhältnis" in text
