"""The notices under an answer (a fallback, a warning) go into the chat's Markdown and Word exports.

Without them a fallback answer ("Das Modell fand keine Antwort; hier die passendste Textstelle.")
read like a confident one in the exported file (found by a browser review)."""
from __future__ import annotations

import zipfile
from io import BytesIO

import pytest
from docx import Document
from markdown_it import MarkdownIt

from assistant.answer_checks import NOTICE_NO_ANSWER
from assistant.appdb import AppDB
from assistant.chain import Citation
from assistant.chats import NOTICE_STYLE, ChatStore
from assistant.grounding import warning

WARNED = warning(["Einführung", "Technik"])  # „Einführung“, „Technik“ kommen im zitierten Dokument nicht vor: …
ANSWER = "Die Ruhezeit beträgt 20 Jahre [1]."
SOURCE = "1. Friedhofssatzung, Seite 3 (satzung.pdf)"
HOSTILE = ("<img src=x onerror=alert(1)> **fett** [klick](javascript:alert(1)) ![](https://tracker.example/p.png) "
           "www.evil.example `code` _x_ $a$ *\n# Titel\n[1]: https://evil.example")


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'app.sqlite3'}"


@pytest.fixture
def store(url):
    return ChatStore(AppDB(url))


def _cite():
    c = Citation(n=1, doc_id="d1", source="/srv/docs/satzung.pdf", title="Friedhofssatzung", page=3,
                 snippet="Die Ruhezeit beträgt 20 Jahre.", score=0.03, section="§ 12")
    return {**c.__dict__, "page_kind": "page"}


def _chat(store, notices=None, answer=ANSWER):
    cid = store.create_chat("anna")
    store.add_message("anna", cid, "user", "Wie lange ist die Ruhezeit?")
    meta = {"model": "extraktiv", "refused": False}
    if notices is not None:
        meta["notices"] = notices
    store.add_message("anna", cid, "assistant", answer, [_cite()], meta)
    return cid


def _answer_section(markdown: str) -> str:
    return markdown.split("## Antwort\n\n", 1)[1]


def _paragraphs(data: bytes):
    return Document(BytesIO(data)).paragraphs


# -- Markdown ------------------------------------------------------------------------------------
def test_markdown_export_marks_each_notice_under_its_answer_in_the_chats_order(store, url):
    cid = _chat(store, [NOTICE_NO_ANSWER, WARNED, NOTICE_NO_ANSWER])  # the chat shows a repeated one once
    text = ChatStore(AppDB(url)).export_markdown("anna", cid)  # read back from the store, as after a reload
    assert _answer_section(text) == (
        "*Modell: extraktiv*\n\n"
        f"{ANSWER}\n\n"
        "*Hinweis: Das Modell fand keine Antwort; hier die passendste Textstelle.*\n\n"
        "*Hinweis: „Einführung“, „Technik“ kommen im zitierten Dokument nicht vor: bitte prüfen, "
        "ob die Antwort wirklich zur Frage passt.*\n\n"
        "**Quellen**\n\n"
        f"{SOURCE}\n")
    html = MarkdownIt("commonmark", {"html": True}).render(text)
    assert ("<p><em>Hinweis: Das Modell fand keine Antwort; hier die passendste Textstelle.</em></p>\n"
            "<p><em>Hinweis: „Einführung“, „Technik“ kommen im zitierten Dokument nicht vor: bitte prüfen, "
            "ob die Antwort wirklich zur Frage passt.</em></p>") in html


def test_each_answer_keeps_its_own_notices(store):
    cid = _chat(store, [NOTICE_NO_ANSWER])
    store.add_message("anna", cid, "user", "Und für Urnen?")
    store.add_message("anna", cid, "assistant", "15 Jahre [1].", [_cite()], {"notices": [WARNED]})
    store.add_message("anna", cid, "user", "Danke.")
    store.add_message("anna", cid, "assistant", "Gern.", [], {})
    first, second, third = store.export_markdown("anna", cid).split("## Antwort")[1:]
    assert "Hinweis: Das Modell fand keine Antwort" in first and "Einführung" not in first
    assert "Hinweis: „Einführung“" in second and "Das Modell fand" not in second
    assert "Hinweis" not in third


def test_a_hostile_notice_stays_text_in_markdown(store):
    cid = _chat(store, [HOSTILE, NOTICE_NO_ANSWER])
    text = store.export_markdown("anna", cid)
    assert "<img" not in text and r"&lt;img src=x onerror=alert\(1\)&gt;" in text
    assert "\n# Titel" not in text and "\n[1]: https" not in text  # its line breaks start no heading, no link reference
    html = MarkdownIt("commonmark", {"html": True}).render(text)
    notice = html.split(f"<p>{ANSWER}</p>\n", 1)[1].split("<p><strong>Quellen</strong></p>", 1)[0]
    # one paragraph per notice, each one emphasis (the export's own mark) that the notice cannot close early
    (hostile, plain) = notice.strip().split("\n")
    assert hostile.startswith("<p><em>Hinweis: &lt;img src=x onerror=alert(1)&gt; **fett** [klick](javascript:alert(1))")
    assert hostile.endswith("</em></p>") and hostile.count("<em>") == 1 and hostile.count("</em>") == 1
    for tag in ("<a ", "<img", "<strong", "<code", "<h1"):
        assert tag not in notice, (tag, notice)
    assert plain == "<p><em>Hinweis: Das Modell fand keine Antwort; hier die passendste Textstelle.</em></p>"


def test_a_source_number_in_a_notice_reads_as_in_the_answer(store):
    moved = "Die Quellenangabe wurde auf Quelle [1] berichtigt: dort steht die Aussage des Modells."
    text = store.export_markdown("anna", _chat(store, [moved]))
    assert f"*Hinweis: {moved}*" in text  # "[1]" as in the answer, not "\\[1\\]"
    assert "<a " not in MarkdownIt("commonmark", {"html": True}).render(text)


def test_an_answer_without_notices_exports_as_before(store):
    before = ("*Modell: extraktiv*\n\n"
              f"{ANSWER}\n\n"
              "**Quellen**\n\n"
              f"{SOURCE}\n")
    for notices in (None, [], ["", "  "]):  # chats stored before notices were kept have no key at all
        text = store.export_markdown("anna", _chat(store, notices))
        assert _answer_section(text) == before, notices
        assert "Hinweis" not in text


# -- Word ----------------------------------------------------------------------------------------
def test_word_export_sets_the_notices_apart_in_their_own_style(store):
    cid = _chat(store, [NOTICE_NO_ANSWER, WARNED, NOTICE_NO_ANSWER])
    paras = _paragraphs(store.export_docx("anna", cid))
    texts = [p.text for p in paras]
    start = texts.index("Antwort")
    assert texts[start:start + 6] == [
        "Antwort", "Modell: extraktiv", ANSWER,
        "Hinweis: Das Modell fand keine Antwort; hier die passendste Textstelle.",
        f"Hinweis: {WARNED}",
        "Quellen"]
    notices = [p for p in paras if p.style.name == NOTICE_STYLE]
    assert [p.text for p in notices] == texts[start + 3:start + 5]  # only the notices carry the style
    assert notices[0].style.font.italic is True
    for p in notices:
        label, body = p.runs
        assert label.text == "Hinweis: " and label.bold and not body.bold


def test_a_hostile_notice_stays_text_in_word(store):
    """Markup stays literal; characters XML cannot hold and direction overrides are dropped, not failed on."""
    cid = _chat(store, ["<w:p>\x00\x07 ]]> & <b>fett</b> Rechnung\u202efdp.exe " + HOSTILE])
    data = store.export_docx("anna", cid)
    (notice,) = [p for p in _paragraphs(data) if p.style.name == NOTICE_STYLE]
    assert notice.text == "Hinweis: <w:p> ]]> & <b>fett</b> Rechnungfdp.exe " + HOSTILE
    body = zipfile.ZipFile(BytesIO(data)).read("word/document.xml").decode("utf-8")
    assert "&lt;b&gt;fett&lt;/b&gt;" in body and "<b>" not in body and "<w:p> ]]>" not in body


def test_word_export_without_notices_is_unchanged(store):
    for notices in (None, []):
        data = store.export_docx("anna", _chat(store, notices))
        texts = [p.text for p in _paragraphs(data)]
        start = texts.index("Antwort")
        assert texts[start:] == ["Antwort", "Modell: extraktiv", ANSWER, "Quellen",
                                 "[1] Friedhofssatzung, Seite 3 (satzung.pdf)"]
        assert NOTICE_STYLE not in [s.name for s in Document(BytesIO(data)).styles]  # no style is added unused
