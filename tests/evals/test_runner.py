"""The eval harness on a tiny generated corpus: hash embedder, in-memory vectors, scripted model.

What is checked is the harness (dedupe to documents, page matching, alternative
sources, refusal bookkeeping, pooled token rates, report files), not retrieval quality.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from assistant.chain import Assistant
from assistant.llm.fake import FakeChatModel
from assistant.retrieval import SearchResult
from corpus.models import Chunk, Hit
from evals.datasets import EvalQuestion, is_pii_dataset, load_dataset
from evals.report import write_report
from evals.runner import answer_eval, answer_metrics, retrieval_eval, run_eval

REPO = Path(__file__).resolve().parents[2]

DOCS = {
    "friedhofssatzung.md": "# Friedhofssatzung\n\n## § 12 Ruhezeit\n\nDie Ruhezeit für Urnengräber beträgt 20 Jahre. "
                           "Für Erdgräber gilt eine Ruhezeit von 25 Jahren.\n\n## § 13 Grabpflege\n\n"
                           "Gräber sind innerhalb von sechs Monaten nach der Beisetzung herzurichten.\n",
    "hundesteuer.txt": "Hundesteuersatzung\n\nDie Hundesteuer beträgt für den ersten Hund 120 Euro im Jahr. "
                       "Für jeden weiteren Hund werden 180 Euro erhoben.\n",
    "konferenz.md": "# Regionalkonferenz\n\nDie Regionalkonferenz Smart Cities findet am 14. Mai 2025 in "
                    "Mönchengladbach statt. Die Exkursion führt zum Sensorlabor im Nordpark.\n",
}

QUESTIONS = [
    {"id": "q1", "question": "Wie lange ist die Ruhezeit für Urnengräber?", "expected_source": "friedhofssatzung.md",
     "expected_page": None, "key_terms": ["20 Jahre"], "answerable": True, "kind": "statute"},
    {"id": "q2", "question": "Wie hoch ist die Hundesteuer für den ersten Hund?", "expected_source": "sub/hundesteuer.txt",
     "expected_page": None, "key_terms": ["120 Euro"], "answerable": True, "kind": "statute"},
    {"id": "q3", "question": "Wohin führt die Exkursion der Regionalkonferenz?", "expected_source": "other.pdf",
     "expected_page": 2, "key_terms": ["Sensorlabor"], "answerable": True, "kind": "report", "alt_sources": ["konferenz.md"]},
    {"id": "q4", "question": "Wann hat das Hallenbad sonntags geöffnet?", "expected_source": None,
     "expected_page": None, "key_terms": [], "answerable": False, "kind": "web"},
]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _write_dataset(path: Path, records=QUESTIONS) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def docs(tmp_path) -> Path:
    d = tmp_path / "docs"
    for name, text in DOCS.items():
        write(d / name, text)
    return d


@pytest.fixture
def app(hash_app, docs):
    summary = hash_app.ingestor.ingest([docs])
    assert summary.added == len(DOCS) and not summary.failed
    return hash_app


@pytest.fixture
def dataset(tmp_path) -> Path:
    return _write_dataset(tmp_path / "tiny.jsonl")


def _in_unit(value) -> bool:
    return value is None or 0.0 <= value <= 1.0


# ---------------------------------------------------------------- datasets
def test_load_dataset_normalises_sources_to_basenames(dataset):
    qs = load_dataset(dataset)
    assert [q.id for q in qs] == ["q1", "q2", "q3", "q4"]
    assert qs[1].expected_source == "hundesteuer.txt"
    assert qs[2].relevant_sources == {"other.pdf", "konferenz.md"}
    assert qs[3].answerable is False and qs[3].relevant_sources == frozenset()
    assert qs[0].key_terms == ("20 Jahre",) and qs[0].kind == "statute"


def test_load_dataset_reports_the_bad_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "x"}\n{not json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        load_dataset(bad)


def test_pii_dataset_is_detected_by_content(dataset):
    assert is_pii_dataset(REPO / "evals" / "datasets" / "pii_examples.jsonl")
    assert not is_pii_dataset(dataset)


# ---------------------------------------------------------------- retrieval
def test_retrieval_eval_on_tiny_corpus(app, dataset):
    res = retrieval_eval(app.retriever, load_dataset(dataset), k=10)
    assert res["n"] == 3 and res["skipped_unanswerable"] == 1
    assert set(res["modes"]) == {"bm25", "dense", "hybrid"}
    for mode, metrics in res["modes"].items():
        for key in ("hit@1", "hit@5", "mrr@10", "ndcg@10", "page_hit@1", "page_hit@5"):
            assert _in_unit(metrics[key]), (mode, key, metrics[key])
        assert metrics["latency_p50_ms"] > 0 and metrics["latency_p95_ms"] >= metrics["latency_p50_ms"]
    q1 = next(r for r in res["rows"] if r["id"] == "q1")
    for mode in ("bm25", "hybrid"):
        assert q1[mode]["hit@1"] == 1.0 and q1[mode]["rank"] == 1
        assert q1[mode]["page_hit@1"] == 1.0  # pageless expectation: the source suffices
    # the alternative source counts as the right document
    q3 = next(r for r in res["rows"] if r["id"] == "q3")
    assert q3["bm25"]["rank"] == 1


class _ScriptedRetriever:
    """Returns fixed passages so the document/page bookkeeping can be checked exactly."""

    def __init__(self, passages):
        self.passages = passages

    def search(self, query, *, k=None, collections=None, mode="hybrid"):
        hits = []
        for i, (src, page) in enumerate(self.passages[:k]):
            chunk = Chunk(chunk_id=f"c{i}", doc_id=src, ordinal=i, text="t", source=f"/x/{src}", title="",
                          page=page, section=None, collection="c")
            hits.append(Hit(chunk=chunk, score=1.0 / (i + 1)))
        return SearchResult(query, hits, 1.0 + i)


def test_documents_are_deduplicated_and_pages_matched_exactly():
    retriever = _ScriptedRetriever([("a.pdf", 2), ("a.pdf", 3), ("b.pdf", 1), ("c.docx", None)])
    q = EvalQuestion("x", "?", "b.pdf", 1, ("t",), True, "report")
    row = retrieval_eval(retriever, [q], modes=("hybrid",))["rows"][0]["hybrid"]
    # documents: a, b, c → b is second although it is the third passage
    assert row["rank"] == 2 and row["hit@1"] == 0.0 and row["hit@5"] == 1.0 and row["mrr@10"] == 0.5
    assert row["page_hit@1"] == 0.0 and row["page_hit@5"] == 1.0
    wrong_page = EvalQuestion("y", "?", "a.pdf", 7, ("t",), True, "report")
    row = retrieval_eval(retriever, [wrong_page], modes=("hybrid",))["rows"][0]["hybrid"]
    assert row["hit@1"] == 1.0 and row["page_hit@5"] == 0.0
    twin = EvalQuestion("z", "?", "z.pdf", 4, ("t",), True, "report", alt_sources=("c.docx",))
    row = retrieval_eval(retriever, [twin], modes=("hybrid",))["rows"][0]["hybrid"]
    assert row["rank"] == 3 and row["page_hit@5"] == 1.0  # any page of the twin counts


def test_gold_page_counts_only_the_questions_that_have_a_page():
    """page_hit@5 counts a question without a page as hit when its document is found; the gold-page
    figure of issue 14 leaves those out."""
    retriever = _ScriptedRetriever([("a.pdf", 2), ("b.pdf", 1)])
    questions = [EvalQuestion("p", "?", "a.pdf", 7, ("t",), True, "slide"),  # wrong page
                 EvalQuestion("n", "?", "b.pdf", None, ("t",), True, "table")]  # no page: document found
    res = retrieval_eval(retriever, questions, modes=("hybrid",))
    assert res["n"] == 2 and res["n_with_page"] == 1
    assert res["modes"]["hybrid"]["page_hit@5"] == 0.5
    assert res["modes"]["hybrid"]["gold_page@5"] == 0.0


# ---------------------------------------------------------------- answers
def _assistant(app, fake=None) -> Assistant:
    """The bare chain (no Ampel step): these tests are about the harness, not the policy."""
    models = {"lokal": fake, "extraktiv": None}
    return Assistant(app.retriever, app.settings, lambda key: models[key], policy=None)


def test_answer_eval_extractive(app, dataset):
    res = answer_eval(_assistant(app), load_dataset(dataset), model="extraktiv")
    assert res["n"] == 4 and not res["stopped_early"]
    rows = {r["id"]: r for r in res["rows"]}
    assert not rows["q1"]["refused"] and rows["q1"]["key_terms"] == 1.0
    assert rows["q1"]["citation_precision"] == 1.0
    assert rows["q1"]["cited"] and rows["q1"]["cited"][0]["source"] == "friedhofssatzung.md"
    assert len(rows["q1"]["answer"]) <= 300
    assert rows["q4"]["key_terms"] is None and rows["q4"]["citation_precision"] is None
    mt = res["metrics"]
    for key in ("key_terms", "citation_precision", "false_refusal_rate"):
        assert _in_unit(mt[key]), key
    assert mt["total_p95_ms"] >= mt["total_p50_ms"] > 0
    assert mt["prompt_tokens_per_s"] is None  # no model ran: no rate invented


def test_answer_eval_with_scripted_model(app, dataset):
    answers = {
        "Ruhezeit": "Die Ruhezeit für Urnengräber beträgt 20 Jahre [1].",
        "Hundesteuer": "Für den ersten Hund beträgt die Hundesteuer 120 Euro im Jahr [1].",
        "Exkursion": "Die Exkursion führt zum Sensorlabor im Nordpark [1].",
    }

    def respond(prompt: str) -> str:
        question = prompt.rsplit("Frage:", 1)[-1]
        return next((a for key, a in answers.items() if key in question),
                    "Dazu finde ich in den Dokumenten keine Informationen.")

    fake = FakeChatModel(respond=respond)
    res = answer_eval(_assistant(app, fake), load_dataset(dataset), model="lokal")
    rows = {r["id"]: r for r in res["rows"]}
    assert rows["q1"]["key_terms"] == 1.0 and rows["q1"]["citation_precision"] == 1.0
    assert rows["q3"]["citation_precision"] == 1.0  # cited the alternative source
    assert rows["q4"]["refused"]
    mt = res["metrics"]
    assert mt["refusal_recall"] == 1.0 and mt["false_refusal_rate"] == 0.0 and mt["refusal_precision"] == 1.0
    assert mt["prompt_tokens_mean"] > 0 and mt["prompt_tokens_per_s"] > 0
    assert mt["generation_tokens_per_s"] > 0 and mt["first_token_p50_ms"] > 0
    assert len(fake.calls) >= 3


def test_answer_eval_time_budget_stops_after_first(app, dataset):
    res = answer_eval(_assistant(app), load_dataset(dataset), model="extraktiv", time_budget_s=0.0)
    assert res["n"] == 1 and res["planned"] == 4 and res["stopped_early"]
    res = answer_eval(_assistant(app), load_dataset(dataset), model="extraktiv", time_budget_s=0.0, min_questions=3)
    assert res["n"] == 3 and res["stopped_early"]


def test_answer_metrics_pool_token_rates():
    base = {"answerable": True, "refused": False, "cited": [{"source": "a", "page": 1}], "key_terms": 1.0,
            "citation_precision": 1.0, "total_ms": 100.0, "first_token_ms": 50.0}
    rows = [
        {**base, "prompt_tokens": 100, "prompt_eval_ms": 1000.0, "completion_tokens": 10, "generate_ms": 2000.0},
        {**base, "prompt_tokens": 300, "prompt_eval_ms": 1000.0, "completion_tokens": 1, "generate_ms": 1010.0},
        {**base, "answerable": False, "refused": True, "key_terms": None, "citation_precision": None, "cited": [],
         "prompt_tokens": None, "prompt_eval_ms": None, "completion_tokens": None, "generate_ms": None},
    ]
    mt = answer_metrics(rows)
    assert mt["prompt_tokens_per_s"] == pytest.approx(200.0)      # 400 tokens / 2 s
    # decoding only: 11 tokens / ((2000 - 1000) + (1010 - 1000)) ms
    assert mt["generation_tokens_per_s"] == pytest.approx(11 / 1.010, abs=0.01)
    assert mt["completion_tokens_per_s_incl_prompt"] == pytest.approx(11 / 3.010, abs=0.01)
    assert mt["refusal_precision"] == 1.0 and mt["refusal_recall"] == 1.0 and mt["false_refusal_rate"] == 0.0


def test_answer_metrics_count_the_unmentioned_term_warning_on_answered_questions_only():
    row = {"answerable": True, "refused": False, "cited": [], "key_terms": 1.0, "citation_precision": None,
           "total_ms": 1.0, "first_token_ms": None}
    rows = [
        {**row, "unmentioned_terms": ["Göppingen"]}, {**row, "unmentioned_terms": []}, {**row}, {**row},
        {**row, "answerable": False, "key_terms": None, "unmentioned_terms": ["Reisepass"]},
        {**row, "answerable": False, "key_terms": None, "refused": True, "unmentioned_terms": []},
    ]
    mt = answer_metrics(rows)
    assert mt["warned_answers"] == 0.25 and mt["warned_near_misses"] == 1.0  # the refused one does not count
    assert answer_metrics(rows[:4])["warned_near_misses"] is None             # no answered near miss: no figure


# ---------------------------------------------------------------- run_eval and reports
def test_run_eval_ingests_corpus_first(hash_app, docs, dataset):
    report = run_eval(hash_app, dataset, answers=False, corpus=docs)
    assert report["kind"] == "questions" and report["ingest"]["added"] == 3
    assert report["retrieval"]["n"] == 3 and "answers" not in report
    again = run_eval(hash_app, dataset, answers=False, corpus=docs)
    assert again["ingest"]["unchanged"] == 3 and again["ingest"]["added"] == 0


def test_run_eval_reports_the_chain_s_late_order_beside_the_plain_hybrid_search(hash_app, docs, dataset):
    from assistant.late_interaction import LateInteraction

    hash_app.retriever.late = LateInteraction(CountingEncoder(), candidates=5)
    report = run_eval(hash_app, dataset, answers=False, corpus=docs)
    assert list(report["retrieval"]["modes"]) == ["bm25", "dense", "hybrid", "late"]
    assert all("late" in row and row["late"]["top"] for row in report["retrieval"]["rows"])


class CountingEncoder:
    """Token vectors of one row per text; counts the passages it encodes."""

    def __init__(self):
        self.passages = 0

    def token_vectors(self, texts, *, query=False):
        self.passages += 0 if query else len(texts)
        return [np.ones((1, 4), dtype=np.float32) / 2 for _ in texts]


def test_every_answer_is_timed_as_a_new_question_without_kept_token_vectors(app, dataset):
    """Kept from the retrieval phase or an earlier question, the candidates' token vectors would make
    first tokens look early; each question encodes its own candidates again."""
    from assistant.late_interaction import LateInteraction

    encoder = CountingEncoder()
    app.retriever.late = LateInteraction(encoder, candidates=5)
    fake = FakeChatModel(respond=lambda prompt: "Dazu finde ich in den Dokumenten keine Informationen.")
    questions = load_dataset(dataset)
    answer_eval(_assistant(app, fake), questions[:1], model="lokal")
    once = encoder.passages
    assert once >= 2  # the first question's candidates
    answer_eval(_assistant(app, fake), questions[:1] * 3, model="lokal")
    assert encoder.passages == 4 * once  # encoded again for every question, not taken from the cache


def test_run_eval_routes_pii_datasets(hash_app):
    report = run_eval(hash_app, REPO / "evals" / "datasets" / "pii_examples.jsonl", answers=False)
    assert report["kind"] == "pii" and report["pii"]["examples"] > 0


def test_write_report_makes_json_markdown_and_charts(app, dataset, tmp_path):
    report = {"title": "Test", "dataset": str(dataset), "nan_value": math.nan,
              "retrieval": retrieval_eval(app.retriever, load_dataset(dataset)),
              "answers": answer_eval(_assistant(app), load_dataset(dataset), model="extraktiv"),
              "targets": [{"name": "x", "value": 1.0, "op": "≥", "target": 0.5, "ok": True}]}
    json_path, md_path = write_report(report, tmp_path / "out", "eval-test")
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["nan_value"] is None and data["retrieval"]["n"] == 3
    md = md_path.read_text(encoding="utf-8")
    assert "| Modus | hit@1 |" in md and "## answers" in md and "✓" in md
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert "eval-test-retrieval.png" in pngs and "eval-test-retrieval-latency.png" in pngs
    for name in pngs:
        assert f"]({name})" in md
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_eval_json(monkeypatch, tmp_path, docs, dataset):
    from click.testing import CliRunner

    from ui.cli import cli

    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    monkeypatch.setenv("KIPORTAL_VECTOR__MODE", "memory")
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "eval", str(dataset), "--corpus", str(docs),
                                      "--no-answers", "--json", "--out", str(out)], obj={})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["retrieval"]["modes"]["hybrid"]["hit@1"] is not None
    assert len(list(out.glob("eval-tiny-*.md"))) == 1
    # a fresh data dir: in-memory vectors do not outlive the first invocation, the catalog would
    human = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data2"), "eval", str(dataset), "--corpus", str(docs),
                                     "--no-answers"], obj={})
    assert human.exit_code == 0, human.output
    assert "hybrid" in human.output and "Retrieval (3 beantwortbare von 4 Fragen" in human.output


def test_prompt_sources_read_only_the_question_message():
    """Evidence recall looks at the sources of the question, never at the system prompt's worked examples."""
    from evals.runner import prompt_sources

    prompt = ("[system]\nBeispiel:\n[1] Gebührenordnung\n<<<\n30,00 € / Jahr\n>>>\n\n"
              "[human]\nFrage: X?\n\nQuellen:\n[1] Satzung, Seite 3\n<<<\nDie Ruhezeit beträgt 20 Jahre.\n>>>\n\n"
              "[2] Programm\n<<<\nAm 6. Mai.\nZweite Zeile.\n>>>\n\nFrage: X?")
    assert prompt_sources(prompt) == {1: "Die Ruhezeit beträgt 20 Jahre.", 2: "Am 6. Mai.\nZweite Zeile."}
    assert prompt_sources("") == {}


def test_split_is_seeded_stratified_and_complete():
    from evals.split import split_records

    records = [{"id": str(i), "answerable": i % 5 != 0, "kind": "slide" if i % 2 else "statute"} for i in range(40)]
    dev, test = split_records(records)
    assert sorted(r["id"] for r in dev + test) == sorted(r["id"] for r in records)  # nothing lost, nothing twice
    assert (dev, test) == split_records(records)                                   # same seed, same split
    for part in (dev, test):
        assert any(not r["answerable"] for r in part) and {r["kind"] for r in part} == {"slide", "statute"}
