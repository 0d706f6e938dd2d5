"""Comparisons side by side with the scripted FakeChatModel, and the Ampel preview."""
from __future__ import annotations


import pytest

from assistant.llm.fake import FakeChatModel
from assistant.training.compare import run_comparison, variants
from assistant.model_choice import default_model, model_choices
from assistant.training.preview import policy_preview
from assistant.settings import ModelProfile

DOCS = {
    "faq.md": "# FAQ KI-Portal\n\n## Speicherung\n\nChatverläufe werden nach 90 Tagen automatisch gelöscht.\n\n"
              "## Server\n\nDer städtische Server für die grüne Zone heißt KRN-KI-01.\n",
    "konferenz.md": "# Regionalkonferenz\n\nDie Regionalkonferenz findet am 25. März 2025 in Mönchengladbach statt. "
                    "Der Workshop B zu KI-Anwendungen ist im Raum Hardt.\n",
    "kosten.md": "# Beschlussvorlage\n\nDas KI-Portal kostet ab 2026 jährlich 63.000 Euro.\n",
}


def _respond(prompt: str) -> str:
    if "Quellen:" in prompt:
        return "Der Server heißt KRN-KI-01 [1]."
    return "Der Server heißt Rathaus-Rechner 3000."  # invented: no sources


@pytest.fixture
def app(hash_app, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    summary = hash_app.ingestor.ingest([folder])
    assert not summary.failed
    hash_app._chat_models["lokal"] = FakeChatModel(respond=_respond)
    return hash_app


def test_with_and_without_documents(app):
    fake = app._chat_models["lokal"]
    cmp = run_comparison(app.assistant, "Wie heißt der städtische Server für die grüne Zone?",
                         variants("documents", app.settings, model="lokal"), app.settings, kind="documents")
    with_docs, without = cmp.sides
    assert "KRN-KI-01 [1]" in with_docs.result.answer and with_docs.result.citations
    assert with_docs.view.passages and any(p.in_prompt for p in with_docs.view.passages)
    assert "Rathaus-Rechner 3000" in without.result.answer
    assert without.result.citations == [] and without.view.passages == [] and not without.view.use_documents
    # the model saw the sources only on the left
    assert "KRN-KI-01" in fake.calls[0] and "Quellen:" in fake.calls[0]
    assert "Quellen:" not in fake.calls[1] and "KRN-KI-01" not in fake.calls[1]
    rows = dict((r[0], r[1:]) for r in cmp.summary_rows())
    assert rows["Einstellung"] == ("Mit Dokumenten", "Ohne Dokumente")


def test_two_models_show_their_zones(app):
    cmp = run_comparison(app.assistant, "Wie heißt der städtische Server für die grüne Zone?",
                         variants("models", app.settings, left="lokal", right="extraktiv"), app.settings)
    left, right = cmp.sides
    assert left.result.mode == "local" and right.result.mode == "extractive"
    assert right.view.prompt and not right.view.prompt_sent  # extractive: prompt built, nothing sent
    assert "KRN-KI-01" in right.result.answer
    with pytest.raises(ValueError, match="Unbekanntes Modell"):
        variants("models", app.settings, left="lokal", right="gibt-es-nicht")


def test_k_and_budget_change_what_goes_into_the_prompt(app):
    q = "Wann und wo ist die Regionalkonferenz, was kostet das KI-Portal und wie heißt der Server?"
    cmp = run_comparison(app.assistant, q, variants("k", app.settings, left=1, right=4), app.settings, kind="k")
    small, large = cmp.sides
    assert sum(p.in_prompt for p in small.view.passages) == 1
    assert sum(p.in_prompt for p in large.view.passages) > 1
    assert any("höchstens 1 Textstellen" in p.status for p in small.view.passages if not p.in_prompt)

    cmp = run_comparison(app.assistant, q, variants("budget", app.settings, left=50, right=2000), app.settings)
    tight, roomy = cmp.sides
    assert tight.result.prompt_tokens < roomy.result.prompt_tokens
    with pytest.raises(ValueError):
        variants("budget", app.settings, left=10, right=2000)
    with pytest.raises(ValueError, match="Vergleichsart"):
        variants("chunks", app.settings)


def test_a_failing_side_does_not_hide_the_other(app):
    app._chat_models["lokal"] = FakeChatModel(fail_with=RuntimeError("kaputt"))
    cmp = run_comparison(app.assistant, "Wie heißt der Server?", variants("documents", app.settings, model="lokal"),
                         app.settings)
    with_docs, without = cmp.sides
    assert with_docs.error is None and with_docs.result.mode == "extractive"  # the chain fell back
    # without documents the chain handles a failing model like with them (issue 12 item 4): the side
    # says the model is unreachable instead of crashing, and the other side still shows its answer
    assert without.error is None and without.result.refused
    assert "nicht erreichbar" in without.view.why


def test_policy_preview_calls_no_model(app):
    fake = app._chat_models["lokal"]
    app.settings.llm.models["rot"] = ModelProfile(mode="openai", label="Großes Modell", zone="red",
                                                  operator="Anbieter X", location="USA")
    pre = policy_preview(app, "Fasse den Bescheid an Frau Petra Schulz, Lindenstraße 12, 47906 Kempenrath, zusammen.",
                         model="rot")
    assert pre["action"] == "block" and pre["zone"] == "red" and pre["operator"] == "Anbieter X"
    kinds = {d["kind"] for d in pre["pii"]}
    assert {"person_name", "address"} <= kinds
    text = repr(pre)
    assert "Petra" not in text and "Schulz" not in text and "Lindenstraße" not in text  # masked only
    assert pre["masked_question"].startswith("Fasse den Bescheid an Frau P*** S***, L*** ***")
    assert pre["passages"] and all(not p["allowed"] for p in pre["passages"])  # 'intern' is not for red
    assert pre["removed_by_class"] == {"intern": len(pre["passages"])}
    assert fake.calls == [] and pre["model_called"] is False

    ok = policy_preview(app, "Wie lange werden Chats gespeichert?", model="lokal")
    assert ok["action"] == "allow" and ok["pii"] == [] and all(p["allowed"] for p in ok["passages"])
    warn = policy_preview(app, "Gliedere den Widerspruch von Herrn Klaus Meier, geboren am 03.04.1961.", zone="yellow")
    assert warn["question_action"] == "warn"
    with pytest.raises(ValueError, match="Unbekanntes Modell"):
        policy_preview(app, "x y z", model="nein")


@pytest.mark.parametrize("choice, late", [({"model": "lokal"}, True), ({"model": "extraktiv"}, False),
                                          ({"zone": "yellow"}, False)])
def test_policy_preview_searches_as_the_chain_would_for_that_model(app, monkeypatch, choice, late):
    """Late interaction re-orders the candidates before a model reads them; the preview must judge those."""
    asked = []
    search = app.retriever.search
    monkeypatch.setattr(app.retriever, "search", lambda *a, **kw: asked.append(kw.get("late", False)) or search(*a, **kw))
    policy_preview(app, "Wie lange werden Chats gespeichert?", **choice)
    assert asked == [late]


def test_model_choices_follow_roles_and_put_green_first(hash_app):
    s = hash_app.settings
    s.llm.models["eu"] = ModelProfile(mode="openai", label="EU-Assistent", zone="yellow", operator="EU-Anbieter",
                                      location="Frankfurt am Main", roles=["trainer"])
    staff = model_choices(s, "staff")
    trainer = model_choices(s, "trainer")
    assert [k for _, k in staff] == ["lokal", "extraktiv"]
    assert [k for _, k in trainer] == ["lokal", "extraktiv", "eu"]
    label = dict((k, lbl) for lbl, k in trainer)["eu"]
    assert "Gelb" in label and "EU-Anbieter" in label and "Frankfurt am Main" in label
    assert default_model(s, "staff") == "lokal"
    s.llm.default = "eu"
    assert default_model(s, "trainer") == "lokal"  # the default must be green


def test_an_answer_repeating_the_questions_personal_data_is_masked_for_the_room_and_nothing_else():
    from assistant.training.preview import mask_question

    question = "Darf der Bescheid an Frau Petra Schulz ins rote Modell?"
    answer = "Nein, der Bescheid an Frau Petra Schulz enthält Personendaten; zuständig ist Jan Petersen."
    masked = mask_question(answer, of=question)
    assert "Petra Schulz" not in masked and "Jan Petersen" in masked  # the document's own names: by the room's rights
    assert mask_question(answer, of="Was kostet ein Parkausweis?") == answer
