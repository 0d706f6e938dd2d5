"""Chat history and feedback store: ownership, ordering, export, feedback copies."""
from __future__ import annotations

import json

import pytest
from docx_files import docx_text

from assistant.appdb import AppDB
from assistant.chain import Citation
from assistant.chats import ChatNotFound, ChatStore


@pytest.fixture
def store(tmp_path):
    return ChatStore(AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}"))


def _cite(n=1, page=3, kind="page"):
    d = Citation(n=n, doc_id="d1", source="/srv/docs/satzung.pdf", title="Friedhofssatzung", page=page,
                 snippet="Die Ruhezeit beträgt 20 Jahre.", score=0.03, section="§ 12")
    return {**d.__dict__, "page_kind": kind}


def _chat_with_answer(store, user="anna"):
    cid = store.create_chat(user)
    store.add_message(user, cid, "user", "Wie lange ist die Ruhezeit?")
    mid = store.add_message(user, cid, "assistant", "Die Ruhezeit beträgt 20 Jahre [1].", [_cite()],
                            {"latency_ms": 12.5, "refused": False, "model": "extraktiv", "zone": "green",
                             "doc_ids": ["d1"]})
    return cid, mid


def test_messages_keep_order_title_and_meta(store):
    cid, mid = _chat_with_answer(store)
    chat = store.get_chat("anna", cid)
    assert chat["title"] == "Wie lange ist die Ruhezeit?"
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant"]
    answer = chat["messages"][1]
    assert answer["id"] == mid and answer["citations"][0]["page"] == 3
    assert answer["meta"] == {"latency_ms": 12.5, "refused": False, "model": "extraktiv", "zone": "green",
                              "doc_ids": ["d1"]}
    # the admin dashboard reads the raw JSON column
    raw = store.db.one("SELECT meta_json FROM messages WHERE id=:i", {"i": mid})
    assert json.loads(raw["meta_json"])["latency_ms"] == 12.5
    assert store.history("anna", cid) == [("Wie lange ist die Ruhezeit?", "Die Ruhezeit beträgt 20 Jahre [1].")]


def test_list_is_per_user_and_newest_first(store):
    a1 = store.create_chat("anna", "Erster Chat")
    a2 = store.create_chat("anna", "Zweiter Chat")
    store.create_chat("bernd", "Bernds Chat")
    store.add_message("anna", a1, "user", "neu benutzt")
    listed = store.list_chats("anna")
    assert [c["id"] for c in listed] == [a1, a2]
    assert listed[0]["messages"] == 1
    assert [c["title"] for c in store.list_chats("bernd")] == ["Bernds Chat"]


def test_long_question_makes_a_short_title(store):
    cid = store.create_chat("anna")
    store.add_message("anna", cid, "user", "Wort " * 60)
    assert len(store.get_chat("anna", cid)["title"]) <= 80


def test_other_users_cannot_read_change_or_export(store):
    cid, mid = _chat_with_answer(store, "anna")
    for call in (lambda: store.get_chat("bernd", cid), lambda: store.delete_chat("bernd", cid),
                 lambda: store.export_markdown("bernd", cid), lambda: store.export_docx("bernd", cid),
                 lambda: store.history("bernd", cid),
                 lambda: store.add_message("bernd", cid, "user", "hallo"),
                 lambda: store.add_feedback("bernd", mid, 1)):
        with pytest.raises(KeyError):
            call()
    # unknown and foreign chats look the same
    with pytest.raises(ChatNotFound):
        store.get_chat("anna", "does-not-exist")
    assert len(store.get_chat("anna", cid)["messages"]) == 2


def test_delete_removes_messages_but_keeps_feedback(store):
    cid, mid = _chat_with_answer(store)
    store.add_feedback("anna", mid, -1, "falsche Zahl")
    store.delete_chat("anna", cid)
    assert store.list_chats("anna") == []
    assert store.db.query("SELECT id FROM messages WHERE chat_id=:c", {"c": cid}) == []
    fb = store.list_feedback()
    assert len(fb) == 1 and fb[0]["answer"].startswith("Die Ruhezeit")


def test_feedback_copies_question_answer_sources_and_replaces_rating(store):
    cid, mid = _chat_with_answer(store)
    fid = store.add_feedback("anna", mid, 1)
    assert store.add_feedback("anna", mid, -1, "Seite stimmt nicht") == fid
    assert store.add_feedback("anna", mid, -1) == fid  # an empty comment keeps the old one
    (row,) = store.list_feedback()
    assert row["rating"] == -1 and row["comment"] == "Seite stimmt nicht"
    assert row["question"] == "Wie lange ist die Ruhezeit?"
    assert row["answer"] == "Die Ruhezeit beträgt 20 Jahre [1]."
    assert row["sources"][0]["title"] == "Friedhofssatzung" and row["user_name"] == "anna"
    with pytest.raises(ValueError):
        store.add_feedback("anna", mid, 5)
    user_msg = store.get_chat("anna", cid)["messages"][0]["id"]
    with pytest.raises(ChatNotFound):
        store.add_feedback("anna", user_msg, 1)  # questions are not rated


def test_markdown_export(store):
    cid, _ = _chat_with_answer(store)
    text = store.export_markdown("anna", cid)
    assert text.startswith("# Wie lange ist die Ruhezeit?")
    assert "## Frage\n\nWie lange ist die Ruhezeit?" in text
    assert "## Antwort" in text and "Die Ruhezeit beträgt 20 Jahre [1]." in text
    assert "1. Friedhofssatzung, Seite 3 (satzung.pdf)" in text
    assert "maßgeblich sind die verlinkten Quellen" in text
    assert "*Modell: extraktiv*" in text


def test_word_export_holds_what_the_markdown_export_holds(store):
    cid, _ = _chat_with_answer(store)
    text = docx_text(store.export_docx("anna", cid))
    assert text.startswith("Wie lange ist die Ruhezeit?\nExportiert am ")
    assert "Frage\nWie lange ist die Ruhezeit?\nAntwort\nModell: extraktiv\nDie Ruhezeit beträgt 20 Jahre [1]." in text
    assert "[1] Friedhofssatzung, Seite 3 (satzung.pdf)" in text
    assert "maßgeblich sind die verlinkten Quellen" in text


def test_word_export_keeps_hostile_text_as_text(store):
    """Markup stays literal; control characters, which XML cannot hold, are dropped instead of failing."""
    cid = store.create_chat("anna")
    store.add_message("anna", cid, "user", "Was steht in <w:p>\x00\x07 <script>alert(1)</script>?")
    store.add_message("anna", cid, "assistant", "Siehe ]]> & <b>fett</b> [1]", [_cite(page=4, kind="slide")])
    text = docx_text(store.export_docx("anna", cid))
    assert "Was steht in <w:p> <script>alert(1)</script>?" in text
    assert "Siehe ]]> & <b>fett</b> [1]" in text and "Folie 4" in text


def test_markdown_export_escapes_html_and_names_slides(store):
    cid = store.create_chat("anna")
    store.add_message("anna", cid, "user", "Was steht in <script>alert(1)</script>?")
    store.add_message("anna", cid, "assistant", 'Siehe <img src=x onerror="alert(2)"> [1]', [_cite(page=4, kind="slide")])
    text = store.export_markdown("anna", cid)
    assert "<script>" not in text and "<img" not in text
    assert "&lt;script&gt;" in text and "&lt;img src=x" in text
    assert "Folie 4" in text


def test_schema_is_idempotent(tmp_path):
    db = AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    ChatStore(db)
    ChatStore(db)  # a second portal process must not re-run migrations
    assert db.one("SELECT COUNT(*) AS n FROM schema_migrations WHERE component='chats'")["n"] == 1


def test_markdown_export_keeps_user_markdown_as_text(store):
    """Rendered as a Markdown viewer would (markdown-it, raw HTML on): nothing from the chat becomes markup."""
    from markdown_it import MarkdownIt

    cid = store.create_chat("anna")
    store.add_message("anna", cid, "user", "[klick](javascript:alert(1)) ![](https://tracker.example/p.png)\n"
                                           "[1]: https://evil.example\n# Titel\n<img src=x onerror=alert(1)>")
    store.add_message("anna", cid, "assistant", "Siehe [1] und **nichts** `sonst`.", [_cite()])
    html = MarkdownIt("commonmark", {"html": True}).render(store.export_markdown("anna", cid))
    body = html.split("<h2>Frage</h2>", 1)[1].split("<p><strong>Quellen</strong>", 1)[0]  # the export's own markup
    for tag in ("<a ", "<img", "<strong", "<code", "<h1"):
        assert tag not in body, (tag, body)
    assert "[1]" in body and "javascript:alert(1)" in body  # shown, as text


def test_markdown_export_names_the_model_as_staff_saw_it(store):
    cid = store.create_chat("anna")
    store.add_message("anna", cid, "user", "Wie lange ist die Ruhezeit?")
    store.add_message("anna", cid, "assistant", "20 Jahre [1].", meta={"model": "lokal", "model_label": "Lokales Modell"})
    text = store.export_markdown("anna", cid)
    assert "*Modell: Lokales Modell*" in text and "Modell: lokal*" not in text  # not the settings key
