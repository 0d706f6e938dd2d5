"""Chat handlers as plain functions (hash embedder, extractive model): storage, ownership,
feedback, export, escaping, roles, the yellow-zone confirmation and the document links."""
from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import gradio as gr
import pytest

from assistant.links import LinkSigner
from docx_files import docx_text
from pdf_files import build_pdf, sized_lines
from corpus.models import page_label
from ui.docview import CSP_TEXT, render_text_page
from ui.handlers import ChatView, UserError
from ui.security import PermissionDenied

ZONE_Q = "Welche Zonen hat das Ampelsystem?"
HOSTILE_Q = "Welche Eingaben nennt das Zaunkönig-Protokoll?"


def req(name: str | None) -> gr.Request:
    return gr.Request(username=name)


def ask_all(handlers, user, question, **kw) -> list[ChatView]:
    kw.setdefault("model", "extraktiv")
    return list(handlers.ask(req(user), question, **kw))


def final(views: list[ChatView]) -> ChatView:
    assert views[-1].done
    return views[-1]


def content(view: ChatView, i: int = -1) -> str:
    return view.messages[i]["content"]


# -- asking --------------------------------------------------------------------------
def test_ask_streams_then_stores_question_answer_and_metrics(handlers, portal_ctx):
    views = ask_all(handlers, "anna", ZONE_Q)
    assert len(views) >= 3 and not views[0].done  # pending, sources, tokens …, final
    assert any("kp-sources" in content(v) for v in views[:-1])  # sources shown while streaming
    v = final(views)
    assert v.chat_id and v.answer_id and v.message_ids[-1] == v.answer_id
    assert "Laut den Dokumenten" in content(v) and 'class="kp-src-link"' in content(v)

    chat = handlers.chats.get_chat("anna", v.chat_id)
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant"]
    assert chat["title"] == ZONE_Q
    answer = chat["messages"][1]
    meta = answer["meta"]
    assert meta["model"] == "extraktiv" and meta["zone"] == "green" and meta["refused"] is False
    assert meta["latency_ms"] > 0 and meta["first_token_ms"] <= meta["latency_ms"]
    assert meta["doc_ids"] and set(meta["doc_ids"]) <= set(meta["source_doc_ids"])
    assert answer["citations"] and {"doc_id", "title", "page", "snippet", "score", "page_kind"} <= set(answer["citations"][0])

    (entry,) = portal_ctx.audit.entries(action="question")
    assert entry["actor"] != "anna"  # pseudonymised by default
    assert '"refused": false' in entry["detail"] and '"model": "extraktiv"' in entry["detail"]
    assert handlers.list_chats(req("anna"))[0][1] == v.chat_id


def test_follow_up_passes_the_chat_history(handlers, portal_ctx, monkeypatch):
    first = final(ask_all(handlers, "anna", ZONE_Q))
    seen = {}
    original = portal_ctx.app.assistant.stream

    def spy(question, history=(), **kw):
        seen["history"] = list(history)
        yield from original(question, history, **kw)

    monkeypatch.setattr(portal_ctx.app.assistant, "stream", spy)
    second = final(ask_all(handlers, "anna", "Und was gilt in der gelben Zone?", chat_id=first.chat_id))
    assert second.chat_id == first.chat_id
    stored_answer = handlers.chats.get_chat("anna", first.chat_id)["messages"][1]["content"]
    assert seen["history"] == [(ZONE_Q, stored_answer)]
    assert len(second.messages) == 4 and len(second.message_ids) == 4


def test_while_the_model_reads_the_passages_the_answer_says_so_until_its_first_word(handlers, portal_ctx):
    """The local model reads the found passages for seconds before its first word (7 to 19 s on two
    cores): the bubble said "Antwort wird geschrieben …" all that time (a browser review). It says what
    happens, and gives way to the answer with the first word (a first piece of blanks is no word)."""
    from assistant.llm.fake import FakeChatModel
    from assistant.settings import ModelProfile

    portal_ctx.app.settings.llm.models["schreibt"] = ModelProfile(mode="fake", label="Testmodell")
    portal_ctx.app._chat_models["schreibt"] = FakeChatModel(responses=[" " * 8 + "Laut den Dokumenten gibt es Zonen [1]."])
    views = ask_all(handlers, "anna", ZONE_Q, model="schreibt")
    shown = [content(v) for v in views]
    assert "Suche in den Dokumenten" in shown[0] and "kp-sources" not in shown[0]
    first_word = next(i for i, c in enumerate(shown) if "Laut den" in c)
    reading = [c for c in shown[:first_word] if "kp-sources" in c]
    assert len(reading) >= 2, shown  # the sources, then the blanks: still reading
    assert all(c.startswith("*Das Modell liest die gefundenen Textstellen …*") for c in reading), reading
    assert not any("wird geschrieben" in c for c in shown)
    assert not any("Das Modell liest" in c for c in shown[first_word:])
    assert final(views).answer_id

    # without a model ("Nur Textstellen") nothing reads: the passages are quoted
    shown = [content(v) for v in ask_all(handlers, "anna", ZONE_Q)]
    assert not any("Das Modell liest" in c or "wird geschrieben" in c for c in shown)
    assert any(c.startswith("*Die Antwort wird aus den gefundenen Textstellen zusammengestellt …*") for c in shown)


@pytest.mark.parametrize("seconds, note", [
    (None, "Das Modell liest die gefundenen Textstellen …"),  # the model has not answered yet
    (3.9, "Das Modell liest die gefundenen Textstellen …"),   # the first word comes before the note is read
    (6.4, "Das Modell liest die gefundenen Textstellen (etwa 5 s) …"),
    (22.1, "Das Modell liest die gefundenen Textstellen (etwa 20 s) …"),
    (27.6, "Das Modell liest die gefundenen Textstellen (etwa 30 s) …"),
    (89.0, "Das Modell liest die gefundenen Textstellen (etwa 90 s) …"),
    (150.0, "Das Modell liest die gefundenen Textstellen (etwa 2 min) …"),
])
def test_the_reading_note_names_the_wait(seconds, note):
    from ui.handlers import reading_note

    assert reading_note(seconds) == note


def test_the_reading_note_names_the_wait_the_models_last_answers_foretell(handlers, portal_ctx):
    """On two AVX2 cores the local model reads for 20 s and more before its first word (docs/results.md,
    session 52): the bubble says how long, from the model's last answers (assistant.reading_time)."""
    from assistant.llm.fake import FakeChatModel
    from assistant.settings import ModelProfile

    portal_ctx.app.settings.llm.models["liest"] = ModelProfile(mode="fake", label="Testmodell")
    portal_ctx.app._chat_models["liest"] = FakeChatModel(responses=["Laut den Dokumenten gibt es Zonen [1]."] * 2)
    shown = [content(v) for v in ask_all(handlers, "anna", ZONE_Q, model="liest")]
    assert not any("(etwa" in c for c in shown)  # its first answer: nothing known yet
    portal_ctx.app.assistant.reading.record("liest", 100, 10.0)  # 10 tokens a second, as a very slow machine
    portal_ctx.app.assistant.reading.record("liest", 100, 10.0)
    shown = [content(v) for v in ask_all(handlers, "anna", ZONE_Q, model="liest")]
    notes = [re.match(r"\*Das Modell liest die gefundenen Textstellen \(etwa (\d+) (s|min)\) …\*", c) for c in shown]
    waits = [m.groups() for m in notes if m]
    assert waits and all(unit == "min" or int(n) >= 30 for n, unit in waits), shown  # hundreds of tokens at 10/s


def test_empty_and_overlong_questions_are_refused(handlers):
    with pytest.raises(UserError):
        ask_all(handlers, "anna", "   ")
    with pytest.raises(UserError):
        ask_all(handlers, "anna", "x" * 5000)


def test_collection_filter(handlers):
    v = final(ask_all(handlers, "anna", HOSTILE_Q, collections=["test"]))
    cits = handlers.chats.get_chat("anna", v.chat_id)["messages"][1]["citations"]
    assert cits and {c["source"].rsplit("/", 1)[-1] for c in cits} == {"zaunkoenig-protokoll.txt"}
    with pytest.raises(UserError):
        ask_all(handlers, "anna", HOSTILE_Q, collections=["gibt-es-nicht"])
    assert handlers.collection_choices() == ["demo", "test"]


# -- ownership ---------------------------------------------------------------------------
def test_other_users_cannot_open_delete_export_or_continue_a_chat(handlers):
    v = final(ask_all(handlers, "anna", ZONE_Q))
    for call in (lambda: handlers.open_chat(req("bernd"), v.chat_id),
                 lambda: handlers.delete_chat(req("bernd"), v.chat_id),
                 lambda: handlers.export_chat(req("bernd"), v.chat_id),
                 lambda: ask_all(handlers, "bernd", "Und weiter?", chat_id=v.chat_id),
                 lambda: handlers.rate(req("bernd"), v.answer_id, 1)):
        with pytest.raises((UserError, KeyError, PermissionDenied)):
            call()
    assert handlers.list_chats(req("bernd")) == []
    # anna's chat is untouched and reopens with the same messages
    reopened = handlers.open_chat(req("anna"), v.chat_id)
    assert reopened.message_ids == v.message_ids and reopened.messages[-1]["role"] == "assistant"


def test_delete_and_export(handlers):
    v = final(ask_all(handlers, "anna", ZONE_Q))
    name, text = handlers.export_chat(req("anna"), v.chat_id)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-Welche-Zonen-hat-das-Ampelsystem\.md", name)
    assert text.startswith(f"# {ZONE_Q}") and "## Antwort" in text and "**Quellen**" in text
    assert "KI-Kompass der Stadt Kempenrath" in text
    handlers.delete_chat(req("anna"), v.chat_id)
    assert handlers.list_chats(req("anna")) == []
    with pytest.raises(UserError):
        handlers.open_chat(req("anna"), v.chat_id)


# -- feedback --------------------------------------------------------------------------------
def test_feedback_is_stored_with_question_answer_and_sources(handlers):
    v = final(ask_all(handlers, "anna", ZONE_Q))
    with pytest.raises(UserError):
        handlers.comment(req("anna"), v.answer_id, "ohne Bewertung geht es nicht")
    handlers.rate(req("anna"), v.answer_id, 1)
    handlers.comment(req("anna"), v.answer_id, "Genau die richtige Stelle")
    (fb,) = handlers.chats.list_feedback()
    assert fb["rating"] == 1 and fb["comment"] == "Genau die richtige Stelle" and fb["user_name"] == "anna"
    assert fb["question"] == ZONE_Q and fb["answer"].startswith("Laut den Dokumenten")
    assert fb["sources"] and fb["sources"][0]["doc_id"]
    handlers.rate(req("anna"), v.answer_id, -1)
    assert handlers.chats.list_feedback()[0]["rating"] == -1
    # the audit log names a rating's giver as it names the asker: by pseudonym (privacy.log_questions);
    # under the real name, the second of the rating linked the review's question to a person
    audit = handlers.ctx.audit
    entries = audit.entries(action="feedback") + audit.entries(action="feedback_comment")
    assert [e["action"] for e in entries].count("feedback_comment") == 1 and len(entries) == 3
    assert {e["actor"] for e in entries} == {audit.pseudonym("anna")}


# -- roles ------------------------------------------------------------------------------------
def test_role_checks(handlers):
    with pytest.raises(PermissionDenied):
        ask_all(handlers, "anna", ZONE_Q, model="chef")  # a model only admins may choose
    assert final(ask_all(handlers, "adam", ZONE_Q, model="chef")).done
    with pytest.raises(PermissionDenied):
        ask_all(handlers, None, ZONE_Q)  # not logged in
    with pytest.raises(PermissionDenied):
        ask_all(handlers, "mallory", ZONE_Q)  # unknown user
    with pytest.raises(PermissionDenied):
        handlers.session(req(None))


def test_a_model_open_to_staff_is_open_to_trainers_and_admins(handlers):
    """Roles are ordered everywhere: the chat decides model access by the same rule as the trainer tab."""
    from assistant.settings import ModelProfile

    handlers.settings.llm.models["nur_staff"] = ModelProfile(mode="extractive", label="Für alle", roles=["staff"])
    for name in ("anna", "tina", "adam"):
        assert "nur_staff" in [k for _, k in handlers.session(req(name)).models], name
    assert final(ask_all(handlers, "adam", ZONE_Q, model="nur_staff")).done


def test_session_lists_models_by_role_with_zone_and_tabs(handlers):
    staff = handlers.session(req("anna"))
    assert not staff.show_admin and not staff.show_trainer
    assert [k for _, k in staff.models] == ["extraktiv", "gelb"] and staff.default_model == "extraktiv"
    labels = dict((k, label) for label, k in staff.models)
    assert labels["gelb"] == "Gelb · EU-Testmodell · Testanbieter GmbH, Frankfurt (EU)"
    assert labels["extraktiv"].startswith("Grün · ")
    assert "anna" in staff.user_label and "Mitarbeitende" in staff.user_label
    trainer = handlers.session(req("tina"))
    assert trainer.show_trainer and not trainer.show_admin
    admin = handlers.session(req("adam"))
    assert admin.show_admin and admin.show_trainer and "chef" in [k for _, k in admin.models]


# -- Ampel: yellow model and personal data --------------------------------------------------------
def test_yellow_warning_needs_confirmation_and_stores_nothing_before(handlers, portal_ctx):
    q = "Welche Zone gilt für die Beschwerde von Frau Müller, geb. 03.04.1980?"
    views = ask_all(handlers, "anna", q, model="gelb")
    v = views[-1]
    assert v.warning and v.pending == q and v.chat_id is None
    assert "Bitte prüfen" in v.warning
    assert handlers.list_chats(req("anna")) == []
    assert portal_ctx.audit.entries(action="question") == []
    assert "Müller" not in str(portal_ctx.audit.entries(action="policy_warn"))
    confirmed = final(ask_all(handlers, "anna", q, model="gelb", confirmed=True))
    assert confirmed.warning is None and confirmed.chat_id
    meta = handlers.chats.get_chat("anna", confirmed.chat_id)["messages"][1]["meta"]
    assert meta["confirmed"] is True and meta["zone"] == "yellow"


def test_the_unmentioned_term_warning_is_marked_apart_from_plain_notices(handlers):
    from assistant.grounding import warning
    from ui.security import LOCAL_USER

    out = handlers.render_answer(LOCAL_USER, "Die Ruhezeit beträgt 20 Jahre [1].", [],
                                 [warning(["Göppingen"]), "Die Quellenangabe wurde berichtigt."])
    assert '<p class="kp-notice kp-warning"><span class="kp-mark kp-mark-warn" aria-hidden="true">!</span>„Göppingen“ kommt' in out
    assert '<p class="kp-notice"><span class="kp-mark" aria-hidden="true">i</span>Die Quellenangabe wurde berichtigt.</p>' in out
    assert not any(0x1F000 <= ord(ch) or 0x2600 <= ord(ch) <= 0x27BF or ch == "\ufe0f" for ch in out)  # no emoji


# -- escaping ------------------------------------------------------------------------------------------
def test_hostile_document_and_question_are_escaped_in_the_chat(handlers):
    q = 'Welche Eingaben nennt das Zaunkönig-Protokoll? <img src=x onerror="alert(1)"> [klick](javascript:alert(2))'
    views = ask_all(handlers, "anna", q)
    for v in views:
        for m in v.messages:
            text = m["content"]
            assert "<script" not in text and "<img" not in text and "](javascript" not in text
    v = final(views)
    assert "&lt;script&gt;window.\\_\\_xss=1&lt;/script&gt;" in content(v) or "&lt;script&gt;" in content(v)
    assert "&lt;img src=x onerror" in content(v, -2)
    reopened = handlers.open_chat(req("anna"), v.chat_id)
    assert "<script" not in str(reopened.messages) and "<img" not in str(reopened.messages)


# -- document links and the text view -------------------------------------------------------------------
def test_source_links_are_signed_per_user_and_point_to_the_place(handlers, portal_ctx):
    v = final(ask_all(handlers, "anna", ZONE_Q))
    hrefs = re.findall(r'href="([^"]+)"', content(v))
    assert hrefs and all(h.startswith("doc/") for h in hrefs)
    assert 'target="_blank"' in content(v) and 'rel="noopener noreferrer"' in content(v)
    for href in hrefs:
        url = urlsplit(href.replace("&amp;", "&"))
        doc_id = url.path.split("/")[1]
        token = parse_qs(url.query)["t"][0]
        assert handlers.signer.verify(token, doc_id, "anna")
        assert not handlers.signer.verify(token, doc_id, "bernd")
        rec = portal_ctx.app.catalog.get(doc_id)
        if rec.format == "pdf":
            assert url.path == f"doc/{doc_id}" and re.fullmatch(r"page=\d+", url.fragment)
        else:
            assert url.path == f"doc/{doc_id}/text" and url.fragment == "treffer" and "chunk" in parse_qs(url.query)


def test_pdf_and_slide_sources_name_page_and_slide(handlers, portal_ctx):
    cat = portal_ctx.app.catalog
    pdf = next(r for r in cat.documents() if r.format == "pdf" and r.pages)
    pptx = next(r for r in cat.documents() if r.format == "pptx")
    cits = [{"n": 1, "doc_id": pdf.doc_id, "title": pdf.title, "page": 2, "snippet": "x", "score": 0.5},
            {"n": 2, "doc_id": pptx.doc_id, "title": pptx.title, "page": 3, "snippet": "y", "score": 0.25,
             "chunk": 1}]
    html = handlers.render_sources(handlers.user(req("anna")), cits)
    assert "– Seite 2</a>" in html and "– Folie 3</a>" in html and "#page=2" in html
    assert "Relevanz" not in html and "0,5" not in html  # scores belong to the trainer's view, not to staff


def _ingest_kormoran_pdf(portal_ctx, folder, cover: list[tuple[int, str]]):
    """A PDF whose first line is the label "Herausgeber:", its cover ``cover`` (size, text), in ``test``."""
    body = "Die Kormoranzählung am Stadtweiher findet jeden Oktober statt und dauert zwei Tage.\n" * 12
    folder.mkdir()
    (folder / "kormoran.pdf").write_bytes(build_pdf([sized_lines([(10, "Herausgeber:"), *cover]), body]))
    portal_ctx.app.ingestor.ingest([folder], collection="test")
    return next(r for r in portal_ctx.app.catalog.documents() if r.source.endswith("kormoran.pdf"))


def test_a_pdf_source_is_named_by_its_cover_headline_not_the_label_above_it(handlers, portal_ctx, tmp_path):
    """The passages are indexed with the first line ("Herausgeber:"); staff read the headline, in the
    streamed answer, in the stored chat and in the text view's heading."""
    rec = _ingest_kormoran_pdf(portal_ctx, tmp_path / "richtlinien",
                               [(26, "Richtlinie Kormoranzählung"), (16, "Zählung am Stadtweiher")])
    shown = "Richtlinie Kormoranzählung – Zählung am Stadtweiher"

    v = final(ask_all(handlers, "anna", "Wann findet die Kormoranzählung statt?"))
    labels = re.findall(r'class="kp-src-link">([^<]+)</a>', content(v))
    assert any(re.fullmatch(rf"\[\d\] {shown} – Seite \d", label) for label in labels), labels
    assert not any("Herausgeber" in label for label in labels), labels
    stored = handlers.chats.get_chat("anna", v.chat_id)["messages"][-1]
    assert {c["title"] for c in stored["citations"] if c["doc_id"] == rec.doc_id} == {shown}
    assert f"<h1>{shown}</h1>" in render_text_page(rec, portal_ctx.app.catalog.iter_chunks(rec.doc_id))

    # a chat stored before the readable title existed shows today's title when it is opened again
    old = [dict(c, title="Herausgeber:") for c in stored["citations"]]
    labels = re.findall(r'class="kp-src-link">([^<]+)</a>', handlers.render_sources(handlers.user(req("anna")), old))
    assert labels and not any("Herausgeber" in label for label in labels), labels
    # … and exports it under today's title too
    chat = handlers.chats.create_chat("anna", "Kormoran")
    handlers.chats.add_message("anna", chat, "user", "Wann findet die Kormoranzählung statt?")
    handlers.chats.add_message("anna", chat, "assistant", stored["content"], citations=old)
    for fmt in ("md", "docx"):
        _, exported = handlers.export_chat(req("anna"), chat, fmt)
        text = exported if fmt == "md" else docx_text(exported)
        assert shown in text and "Herausgeber" not in text, text


def test_a_hostile_cover_headline_stays_text(handlers, portal_ctx, tmp_path):
    rec = _ingest_kormoran_pdf(portal_ctx, tmp_path / "boese", [(26, "<img src=x onerror=alert(1)> Kormoran"), (11, "x")])
    assert rec.display_title.startswith("<img")
    html = content(final(ask_all(handlers, "anna", "Wann findet die Kormoranzählung statt?")))
    assert "&lt;img src=x onerror=alert(1)&gt; Kormoran" in html and "<img" not in html
    assert "<img" not in render_text_page(rec, portal_ctx.app.catalog.iter_chunks(rec.doc_id))


def test_words_a_fonts_ligatures_broke_apart_are_read_joined_in_answer_sources_and_text_view(handlers, portal_ctx,
                                                                                             tmp_path):
    """pypdf reads "Betroff ene" where a font sets "ff" as one glyph. The index keeps that text
    (joining it there cost retrieval, session 41); what people read is joined."""
    broken = ("Die Betroff enen des Kormoranplans treff en sich jeden Oktober am Stadtweiher, um Konfl ikte "
              "zu defi nieren und Lösungen zu fi nden.")
    folder = tmp_path / "handbuch"
    folder.mkdir()
    (folder / "kormoranplan.pdf").write_bytes(build_pdf(["Kormoranplan\n" + "\n".join([broken] * 6)] * 3))
    portal_ctx.app.ingestor.ingest([folder], collection="test")
    rec = next(r for r in portal_ctx.app.catalog.documents() if r.source.endswith("kormoranplan.pdf"))
    assert "Betroff enen" in next(iter(portal_ctx.app.catalog.iter_chunks(rec.doc_id))).text  # indexed as read

    v = final(ask_all(handlers, "anna", "Wann treffen sich die Betroffenen des Kormoranplans?"))
    html = content(v)
    assert "Betroffenen des Kormoranplans treffen sich jeden Oktober" in html, html
    assert "Betroff enen" not in html and "treff en" not in html and "fi nden" not in html, html
    stored = handlers.chats.get_chat("anna", v.chat_id)["messages"][-1]
    assert "Betroff enen" not in stored["content"] and "Konflikte" in stored["citations"][0]["snippet"]
    page = render_text_page(rec, portal_ctx.app.catalog.iter_chunks(rec.doc_id), mark=0)
    assert "Betroff enen" not in page and '<mark id="treffer">Kormoranplan Die Betroffenen des' in page


def test_passages_of_one_page_are_one_source_with_the_quote_and_the_excerpt_on_demand(handlers, portal_ctx):
    pdf = next(r for r in portal_ctx.app.catalog.documents() if r.format == "pdf" and r.pages)
    cits = [{"n": 1, "doc_id": pdf.doc_id, "title": pdf.title, "page": 2, "snippet": "Erster Absatz. Zweiter Satz.", "score": 0.5,
             "quote": "Zweiter Satz."},
            {"n": 2, "doc_id": pdf.doc_id, "title": pdf.title, "page": 2, "snippet": "Dritter Absatz <b>fett</b>.", "score": 0.4}]
    html = handlers.render_sources(handlers.user(req("anna")), cits)
    assert html.count("<li>") == 1 and "[1], [2]" in html
    assert '<blockquote class="kp-quote">„Zweiter Satz.“</blockquote>' in html
    assert "<details><summary>" in html and "Dritter Absatz &lt;b&gt;fett&lt;/b&gt;." in html
    assert page_label(2, "sheet") == "Blatt 2" and page_label(None, "page") == ""


def test_an_answer_that_shows_its_quote_does_not_repeat_it_under_the_sources(handlers, portal_ctx):
    pdf = next(r for r in portal_ctx.app.catalog.documents() if r.format == "pdf" and r.pages)
    cits = [{"n": 1, "doc_id": pdf.doc_id, "title": pdf.title, "page": 2,
             "snippet": "Erster Absatz über die Anmeldung zum Kurs und ihre Fristen. Zweiter Satz.", "quote": "Zweiter Satz."}]
    html = handlers.render_answer(handlers.user(req("anna")), "Laut den Dokumenten: „Zweiter Satz.“ [1]", cits)
    assert html.count("Zweiter Satz.") == 2, html  # once in the answer, once in the longer excerpt on demand
    assert "kp-quote" not in html and "<details><summary>" in html


def test_marks_name_the_cited_passage_and_lapse_when_the_document_is_indexed_again(handlers, portal_ctx):
    """The chain names the cited passage (guessed from the snippet, an overlapping neighbour won and
    nothing was marked); a stored chat's marks count pieces of the text of their time, so a
    re-indexed document opens at its page without them."""
    v = final(ask_all(handlers, "anna", ZONE_Q))
    stored = handlers.chats.get_chat("anna", v.chat_id)["messages"][-1]["citations"]
    quoted = [c for c in stored if c.get("quote")]
    assert quoted and all(c.get("marks") and c.get("chunk_id") and c.get("version") for c in quoted), stored
    cat = portal_ctx.app.catalog
    for c in stored:
        chunk = cat.chunks_by_ids([c["chunk_id"]])[c["chunk_id"]]
        assert chunk.ordinal == c["chunk"] and chunk.doc_id == c["doc_id"]
    user = handlers.user(req("anna"))
    fresh = handlers.render_sources(user, quoted)
    assert "&amp;s=" in fresh
    stale = handlers.render_sources(user, [dict(c, version="0" * 16) for c in quoted])
    assert "&amp;s=" not in stale and "chunk=" not in stale and "kp-src-text" not in stale


def test_link_signer_rejects_forgery_and_expiry():
    s = LinkSigner(b"x" * 32, ttl_s=60)
    tok = s.sign("doc1", "anna", now=1000)
    assert s.verify(tok, "doc1", "anna", now=1030)
    assert not s.verify(tok, "doc1", "anna", now=1100)  # expired
    assert not s.verify(tok, "doc2", "anna", now=1030)
    exp, sig = tok.split(".")
    assert not s.verify(f"{int(exp) + 999}.{sig}", "doc1", "anna", now=1030)  # extended expiry
    assert not s.verify("", "doc1", "anna") and not s.verify("abc", "doc1", "anna")
    assert not LinkSigner(b"y" * 32).verify(s.sign("doc1", "anna"), "doc1", "anna")
    # crafted tokens are refused, never raise (each was a 500 with a traceback): a non-ASCII signature,
    # an expiry of thousands of digits, another type
    for crafted in (f"{exp}.ä", "9999999999.ä", "9" * 5000 + ".x", "١٢٣.x", None, 7):
        assert not s.verify(crafted, "doc1", "anna", now=1030), crafted


def test_text_view_escapes_and_marks(portal_ctx, portal_data):
    cat = portal_ctx.app.catalog
    rec = next(r for r in cat.documents() if r.source.endswith(portal_data["hostile_name"]))
    chunks = list(cat.iter_chunks(rec.doc_id))
    mark = next(c.ordinal for c in chunks if "Als Beispiel nennt das Zaunkönig-Protokoll die Eingabe" in c.text)
    page = render_text_page(rec, chunks, mark=mark)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    assert "onerror=&quot;window.__xss=2&quot;" in page
    assert '<mark id="treffer">' in page
    assert "script-src 'none'" in CSP_TEXT and "default-src 'none'" in CSP_TEXT


def test_secret_is_generated_once_and_private(portal_ctx):
    from assistant.links import SECRET_FILE, load_secret

    settings = portal_ctx.app.settings
    first = load_secret(settings)
    assert load_secret(settings) == first and len(first) >= 32
    assert (settings.home / SECRET_FILE).stat().st_mode & 0o077 == 0


def test_views_are_quick(handlers):
    t0 = time.perf_counter()
    final(ask_all(handlers, "anna", ZONE_Q))
    assert time.perf_counter() - t0 < 5


# -- the assembled app in the other auth modes (no server thread: Starlette's TestClient) -------------
def _app_client(portal_ctx, mode: str, **auth):
    from fastapi.testclient import TestClient

    from ui.context import PortalContext
    from ui.portal import create_app

    portal_ctx.app.settings.auth.mode = mode
    for key, value in auth.items():
        setattr(portal_ctx.app.settings.auth, key, value)
    server = create_app(PortalContext(portal_ctx.app), "127.0.0.1", 7999)
    return server, TestClient(server.app, follow_redirects=False)


def test_header_mode_doc_route_trusts_only_the_proxy(portal_ctx, portal_data):
    server, client = _app_client(portal_ctx, "header", trusted_proxies=["testclient"])
    doc = next(r.doc_id for r in portal_ctx.app.catalog.documents() if r.source.endswith(portal_data["hostile_name"]))
    token = server.handlers.signer.sign(doc, "anna")
    with client:
        ok = client.get(f"/doc/{doc}/text", params={"t": token}, headers={"X-Remote-User": "anna"})
        assert ok.status_code == 200 and "&lt;script&gt;" in ok.text
        assert client.get(f"/doc/{doc}/text", params={"t": token}).status_code == 401
        assert client.get(f"/doc/{doc}/text", params={"t": token},
                          headers={"X-Remote-User": "bernd"}).status_code == 403
    server, client = _app_client(portal_ctx, "header", trusted_proxies=["10.0.0.1"])
    with client:  # the same header from an untrusted address is no login
        assert client.get(f"/doc/{doc}/text", params={"t": token},
                          headers={"X-Remote-User": "anna"}).status_code == 401


def test_no_auth_mode_is_loopback_only(portal_ctx):
    from ui.portal import check_auth_mode

    portal_ctx.app.settings.auth.mode = "none"
    check_auth_mode(portal_ctx.app.settings, "127.0.0.1")
    check_auth_mode(portal_ctx.app.settings, "localhost")
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        with pytest.raises(RuntimeError, match="127.0.0.1"):
            check_auth_mode(portal_ctx.app.settings, host)
    portal_ctx.app.settings.auth.mode = "password"
    check_auth_mode(portal_ctx.app.settings, "0.0.0.0")


def test_login_throttle_and_audit(portal_ctx, portal_data):
    import asyncio

    from fastapi import HTTPException

    from ui.portal import LoginThrottle, make_auth

    auth = make_auth(portal_ctx, LoginThrottle(max_failures=2, window_s=60))
    assert asyncio.run(auth("anna", portal_data["password"]))
    assert not asyncio.run(auth("anna", "falsch"))
    assert not asyncio.run(auth("anna", "falsch"))
    with pytest.raises(HTTPException) as held:  # held back for a while: 429, the password not checked
        asyncio.run(auth("anna", portal_data["password"]))
    assert held.value.status_code == 429
    actions = [e["action"] for e in portal_ctx.audit.entries(actor="anna")]
    assert actions.count("login") == 1 and actions.count("login_failed") == 2 and "login_blocked" in actions


def test_collection_choices_and_reopened_chats_follow_the_readers(handlers, portal_ctx):
    """A collection closed to anna disappears from her filter, a crafted name gets the message of an
    unknown one, and her old answer keeps its text but loses the citations into that collection."""
    portal_ctx.users.set_groups("anna", [])
    v = final(ask_all(handlers, "anna", HOSTILE_Q, collections=["test"]))
    stored = handlers.chats.get_chat("anna", v.chat_id)["messages"][1]
    assert stored["citations"] and stored["citations"][0]["collection"] == "test"
    portal_ctx.app.catalog.set_collection_readers("test", ["bauamt"])
    try:
        assert handlers.collection_choices(portal_ctx.users.get("anna")) == ["demo"]
        with pytest.raises(UserError) as closed:
            ask_all(handlers, "anna", HOSTILE_Q, collections=["test"])
        with pytest.raises(UserError) as unknown:
            ask_all(handlers, "anna", HOSTILE_Q, collections=["gibt-es-nicht"])
        assert str(closed.value).replace("test", "X") == str(unknown.value).replace("gibt-es-nicht", "X")
        reopened = handlers.open_chat(req("anna"), v.chat_id)
        text = reopened.messages[-1]["content"]
        assert "Zaunk" in text and "kp-src-link" not in text and "zaunkoenig-protokoll.txt" not in text
        _, exported = handlers.export_chat(req("anna"), v.chat_id)
        assert "zaunkoenig-protokoll.txt" not in exported and "Quellen" not in exported.split("verlinkten Quellen")[1]
    finally:
        portal_ctx.app.catalog.set_collection_readers("test", ["alle"])
    assert "kp-src-link" in handlers.open_chat(req("anna"), v.chat_id).messages[-1]["content"]
