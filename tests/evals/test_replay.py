"""`kiportal eval --replay`: the chain's steps after the model, on a saved run's model answers.

A run is recorded with a scripted model, then replayed without any model call: the same figures
and rows; an edited raw answer changes exactly its row; a changed prompt and missing questions
are said, not hidden."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.chain import Assistant
from assistant.llm.fake import FakeChatModel
from evals.datasets import load_dataset
from evals.replay import ReplayError
from evals.runner import answer_eval, replay_eval

DOCS = {
    "friedhofssatzung.md": "# Friedhofssatzung\n\n## § 12 Ruhezeit\n\nDie Ruhezeit für Urnengräber beträgt 20 Jahre. "
                           "Für Erdgräber gilt eine Ruhezeit von 25 Jahren.\n",
    "hundesteuer.txt": "Hundesteuersatzung\n\nDie Hundesteuer beträgt für den ersten Hund 120 Euro im Jahr. "
                       "Für jeden weiteren Hund werden 180 Euro erhoben.\n",
}
QUESTIONS = [
    {"id": "q1", "question": "Wie lange ist die Ruhezeit für Urnengräber?", "expected_source": "friedhofssatzung.md",
     "expected_page": None, "key_terms": ["20 Jahre"], "answerable": True, "kind": "statute"},
    {"id": "q2", "question": "Wie hoch ist die Hundesteuer für den ersten Hund?", "expected_source": "hundesteuer.txt",
     "expected_page": None, "key_terms": ["120 Euro"], "answerable": True, "kind": "statute"},
    {"id": "q3", "question": "Wann hat das Hallenbad sonntags geöffnet?", "expected_source": None,
     "expected_page": None, "key_terms": [], "answerable": False, "kind": "web"},
]
ANSWERS = {"Ruhezeit": "Die Ruhezeit für Urnengräber beträgt 20 Jahre [1].",
           "Hundesteuer": "Für den ersten Hund beträgt die Hundesteuer 120 Euro im Jahr [1]."}
MODELS = {"lokal": {"mode": "fake", "label": "Testmodell"}, "extraktiv": {"mode": "extractive", "label": "Textstellen"}}


def _respond(prompt: str) -> str:
    question = prompt.rsplit("Frage:", 1)[-1]
    return next((a for key, a in ANSWERS.items() if key in question), "Dazu finde ich in den Dokumenten keine Informationen.")


@pytest.fixture
def world(tmp_path, app_factory, monkeypatch):
    """An install with a fake model profile, its documents, the dataset and a recorded answer run."""
    from assistant.wiring import App

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    counting = FakeChatModel(respond=lambda p: pytest.fail("a replay must not call the model"))
    monkeypatch.setattr(App, "chat_model", lambda self, key: None if key == "extraktiv" else counting)
    app = app_factory(tmp_path / "data", llm={"models": MODELS, "default": "lokal"}, vector={"mode": "chroma"})
    assert app.ingestor.ingest([docs]).added == len(DOCS)
    dataset = tmp_path / "tiny.jsonl"
    dataset.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in QUESTIONS), encoding="utf-8")
    recorder = Assistant(app.retriever, app.settings, lambda key: FakeChatModel(respond=_respond, refusal_probability=0.05),
                         policy=app.policy)
    recorded = answer_eval(recorder, load_dataset(dataset), model="lokal")
    recording = tmp_path / "run.json"
    recording.write_text(json.dumps({"answers": recorded}, ensure_ascii=False), encoding="utf-8")
    return app, dataset, recording, recorded


def _without_times(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.endswith(("_ms", "_per_s", "per_s_incl_prompt"))}


def test_a_replay_gives_the_recorded_figures_without_calling_the_model(world):
    app, dataset, recording, recorded = world
    replayed = replay_eval(app, load_dataset(dataset), recording)
    assert _without_times(replayed["metrics"]) == _without_times(recorded["metrics"])
    assert [r["answer"] for r in replayed["rows"]] == [r["answer"] for r in recorded["rows"]]
    assert replayed["changed"] == [] and replayed["prompt_changed"] == 0
    assert replayed["rows"][0]["refusal_probability"] == 0.05  # the recorded doubt reaches the checks
    assert replayed["metrics"]["first_token_p95_ms"] is None  # no model ran: no times


def test_an_edited_raw_answer_changes_exactly_its_row(world):
    app, dataset, recording, recorded = world
    saved = json.loads(recording.read_text(encoding="utf-8"))
    q2 = next(r for r in saved["answers"]["rows"] if r["id"] == "q2")
    q2["raw_answer"] = "Für den ersten Hund beträgt die Hundesteuer 150 Euro im Jahr [1]."  # a figure no source has
    recording.write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
    replayed = replay_eval(app, load_dataset(dataset), recording)
    assert [c["id"] for c in replayed["changed"]] == ["q2"]
    row = next(r for r in replayed["rows"] if r["id"] == "q2")
    assert "150" not in row["answer"] and any("nicht stehen (150)" in n for n in row["notices"])


def test_a_changed_prompt_is_flagged(world):
    app, dataset, recording, _ = world
    saved = json.loads(recording.read_text(encoding="utf-8"))
    saved["answers"]["rows"][0]["prompt_sha"] = "0" * 16  # recorded from another prompt (another retrieval, budget …)
    recording.write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
    replayed = replay_eval(app, load_dataset(dataset), recording)
    assert replayed["prompt_changed"] == 1 and replayed["rows"][0]["prompt_changed"]
    assert not any(r["prompt_changed"] for r in replayed["rows"][1:])


@pytest.mark.parametrize("content, message", [
    ("kein JSON", "nicht lesbar"),
    (json.dumps({"retrieval": {}}), "keine Antworten"),
])
def test_an_unusable_recording_is_a_clear_error(world, tmp_path, content, message):
    app, dataset, _, _ = world
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(ReplayError, match=message):
        replay_eval(app, load_dataset(dataset), bad)


def test_questions_missing_from_the_recording_are_named(world, tmp_path):
    app, dataset, recording, _ = world
    saved = json.loads(recording.read_text(encoding="utf-8"))
    saved["answers"]["rows"] = [r for r in saved["answers"]["rows"] if r["id"] != "q3"]
    recording.write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ReplayError, match="q3"):
        replay_eval(app, load_dataset(dataset), recording)


def test_cli_eval_replay(world, monkeypatch):
    from ui.cli import cli

    app, dataset, recording, _ = world
    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    monkeypatch.setenv("KIPORTAL_VECTOR__MODE", "chroma")  # the index the recording was made on
    monkeypatch.setenv("KIPORTAL_LLM__MODELS", json.dumps(MODELS))
    home = str(Path(app.settings.home))
    result = CliRunner().invoke(cli, ["--data-dir", home, "eval", str(dataset), "--replay", str(recording)], obj={})
    assert result.exit_code == 0, result.output
    assert "Wiederholt aus" in result.output and "0 Antworten anders, 0 Prompts geändert" in result.output
    broken = CliRunner().invoke(cli, ["--data-dir", home, "eval", str(dataset), "--replay", str(dataset)], obj={})
    assert broken.exit_code != 0 and "nicht lesbar" in broken.output


def test_what_a_replay_cannot_know_is_said(world):
    """A question the model was not asked then, a raw answer an older run cut at 300 characters,
    and a recording without prompt hashes: each is reported, not taken for a measurement."""
    app, dataset, recording, _ = world
    saved = json.loads(recording.read_text(encoding="utf-8"))
    rows = {r["id"]: r for r in saved["answers"]["rows"]}
    rows["q1"]["raw_answer"] = ""  # e.g. refused before the model then
    rows["q2"]["raw_answer"] = ("Für den ersten Hund beträgt die Hundesteuer 120 Euro im Jahr [1]. " * 10)[:300]
    for r in rows.values():
        r.pop("prompt_sha", None)
    recording.write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
    replayed = replay_eval(app, load_dataset(dataset), recording)
    assert replayed["unrecorded"] == ["q1"] and replayed["raw_truncated"] == ["q2"]
    assert replayed["prompt_changed"] is None


def test_a_run_keeps_the_whole_raw_answer(world):
    """Cut at the preview length, a replay would check a different answer (a list's later items)."""
    app, dataset, _, _ = world
    long = "Die Ruhezeit für Urnengräber beträgt 20 Jahre [1]. " + "Für Erdgräber gilt eine Ruhezeit von 25 Jahren [1]. " * 8
    fake = FakeChatModel(respond=lambda p: long)
    res = answer_eval(Assistant(app.retriever, app.settings, lambda key: fake, policy=app.policy),
                      load_dataset(dataset)[:1], model="lokal")
    assert res["rows"][0]["raw_answer"] == long.strip() and len(long) > 300
