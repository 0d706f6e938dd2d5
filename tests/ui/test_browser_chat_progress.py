"""The chat's answer on its way and its refusals in Debian's chromium (Playwright): what the bubble says
while the search runs and while the model reads the passages, when the thumbs appear, and refused
actions told without red "Fehler" marks on the fields (found by a browser review).

A light portal of its own (hash embedder, the demo corpus, a scripted model that waits before its
first word as the local model does while it reads the prompt): the test holds search and reading
with gates and lets them go."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from pages import login
from portal_world import PASSWORD, USERS
from settings_factory import make_settings

from assistant.chats import ChatStore
from assistant.llm.fake import FakeChatModel

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
QUESTION = "Welche Zonen hat das Ampelsystem?"
ANSWER = "Laut den Dokumenten hat das Ampelsystem drei Zonen [1]."
THUMBS = '#kp-chat button[aria-label="Gefällt mir"], #kp-chat button[aria-label="Like"]'
GATE_S = 30  # a gate left shut opens by itself after this long (a failed test must not hang the portal)


class Gate:
    """Held shut by the test, opened with :meth:`open`."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()

    def shut(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def wait(self) -> None:
        self._open.wait(GATE_S)


class ReadingModel(FakeChatModel):
    """Waits at ``reading`` before its first word, as the local model reads its prompt for seconds."""

    def _stream(self, *args, **kwargs):
        READING.wait()
        yield from super()._stream(*args, **kwargs)


SEARCH, READING = Gate(), Gate()


@dataclass
class ProgressPortal:
    url: str
    ctx: object


@pytest.fixture(scope="module")
def progress_portal(tmp_path_factory):
    from assistant.wiring import App
    from ui.context import PortalContext
    from ui.portal import background_portal

    home = tmp_path_factory.mktemp("progress-portal") / "data"
    settings = make_settings(home, auth={"mode": "password"}, llm={"default": "lokal", "models": {
        "lokal": {"mode": "fake", "label": "Lokales Testmodell"},
        "extraktiv": {"mode": "extractive", "label": "Nur Textstellen (ohne KI-Modell)"}}})
    app = App(settings)
    app.ingestor.ingest([REPO / "corpus" / "demo" / "files"], collection="demo")
    app._chat_models["lokal"] = ReadingModel(responses=[ANSWER])
    retriever = app.assistant.retriever
    search = retriever.search

    def held_search(*args, **kwargs):
        SEARCH.wait()
        return search(*args, **kwargs)

    retriever.search = held_search
    ctx = PortalContext(app)
    for name, role in USERS.items():
        ctx.users.add(name, PASSWORD, role)
    try:
        with background_portal(ctx) as (url, _server):
            yield ProgressPortal(url, ctx)
    finally:
        SEARCH.open()
        READING.open()


def signed_in(browser, portal, user: str = "anna"):
    page = login(browser, portal.url, user, PASSWORD)
    page.wait_for_function("() => document.querySelector('#kp-user')?.innerText.includes('Angemeldet')")
    return page


def send(page, question: str) -> None:
    box = page.locator("#kp-question textarea")
    box.fill(question)
    box.press("Enter")


def bubble_says(page, text: str) -> None:
    page.wait_for_function("(t) => [...document.querySelectorAll('#kp-chat .bot')].pop()?.innerText.includes(t)",
                           arg=text)


def error_marks(page, where: str) -> list[str]:
    """The ids of the components in ``where`` that show gradio's red "Fehler" mark of a failed event (its
    status tracker stays in the page when hidden, at opacity 0)."""
    return page.evaluate("""(where) => [...document.querySelectorAll(`${where} [data-testid=status-tracker]`)]
        .filter((s) => s.innerText.includes('Fehler') && getComputedStyle(s).opacity !== '0')
        .map((s) => s.closest('[id]')?.id || '?')""", where)


def last_bubble(page) -> str:
    return page.locator("#kp-chat .bot").last.inner_text()


def test_the_answer_says_what_happens_and_offers_thumbs_once_it_is_complete(browser, progress_portal):
    page = signed_in(browser, progress_portal)
    SEARCH.shut()
    READING.shut()
    try:
        send(page, QUESTION)
        bubble_says(page, "Suche in den Dokumenten")
        page.wait_for_timeout(500)  # gradio renders the message buttons with the message
        assert page.locator(THUMBS).count() == 0  # nothing to rate yet
        SEARCH.open()
        # the sources are found; the model reads them for seconds before its first word
        page.locator("#kp-chat .kp-src-link").first.wait_for()
        bubble_says(page, "Das Modell liest die gefundenen Textstellen")
        page.wait_for_timeout(1000)
        assert "wird geschrieben" not in last_bubble(page)
        assert page.locator(THUMBS).count() == 0
        READING.open()
        # the first words take the note's place (the answer checks may then replace the scripted answer
        # by a refusal with quotes: the handler tests follow the words one by one)
        page.wait_for_function("() => ![...document.querySelectorAll('#kp-chat .bot')].pop()?.innerText"
                               ".includes('Das Modell liest')")
        page.locator("#kp-stop").wait_for(state="hidden")  # the complete answer
        page.locator(THUMBS).first.wait_for()
        assert "Das Modell liest" not in last_bubble(page) and "Quellen" in last_bubble(page)
        page.locator(THUMBS).last.click()
        page.wait_for_function("() => document.querySelector('#kp-status').innerText.includes('Danke')")
        (rating,) = ChatStore(progress_portal.ctx.db).list_feedback()
        assert rating["rating"] == 1 and rating["question"] == QUESTION, rating
    finally:
        SEARCH.open()
        READING.open()
    page.context.close()


def test_the_reading_note_says_how_long_the_model_will_read(browser, progress_portal):
    """On a slow machine the local model reads for 20 s and more (docs/results.md, session 52): the
    bubble names the wait its last answers foretell (here told that it reads 10 tokens a second)."""
    for _ in range(3):
        progress_portal.ctx.app.assistant.reading.record("lokal", 100, 10.0)
    page = signed_in(browser, progress_portal)
    READING.shut()
    try:
        send(page, QUESTION)
        bubble_says(page, "Das Modell liest die gefundenen Textstellen (etwa ")
        assert re.search(r"\(etwa (\d+ s|\d+ min)\)", last_bubble(page)), last_bubble(page)
        READING.open()
        page.locator("#kp-stop").wait_for(state="hidden")
        assert "Das Modell liest" not in last_bubble(page)
    finally:
        READING.open()
    page.context.close()


def test_a_comment_before_a_rating_is_a_notice_and_stays_in_its_box(browser, progress_portal):
    page = signed_in(browser, progress_portal, "bernd")
    page.locator("#kp-feedback").get_by_text("Rückmeldung zur letzten Antwort").click()
    comment = page.locator("#kp-feedback textarea")
    comment.fill("Die Frist fehlt.")
    save = page.get_by_role("button", name="Kommentar speichern")
    for _ in range(2):  # a second click piled up a second error box
        save.click()
        page.wait_for_function("() => document.querySelector('#kp-status').innerText.includes('Bitte bewerten Sie')")
    page.wait_for_timeout(500)
    assert page.locator("#kp-status").inner_text() == ("Hinweis: Bitte bewerten Sie zuerst eine Antwort "
                                                       "(Daumen hoch oder runter).")
    assert comment.input_value() == "Die Frist fehlt."  # kept, to be sent after a rating
    assert error_marks(page, "#kp-feedback") == []
    assert page.locator(".toast-body").count() == 0
    assert comment.is_editable()
    page.context.close()


def test_deleting_without_a_chat_says_why_once_and_marks_no_field(browser, progress_portal):
    page = signed_in(browser, progress_portal, "bernd")
    page.get_by_role("button", name="Chat löschen").click()
    page.get_by_role("button", name="Ja, löschen").click()
    error = page.locator(".toast-body.error")
    error.first.wait_for()
    assert "Es ist noch kein Chat geöffnet." in error.first.inner_text()
    page.wait_for_timeout(500)
    for where in ("#kp-chat-side", "#kp-chat"):  # the chat list and the chat stay unmarked
        assert error_marks(page, where) == [], where
    # the question is closed with the refusal: no "Ja, löschen" left to pile up more boxes
    page.get_by_role("button", name="Ja, löschen").wait_for(state="hidden")
    assert error.count() == 1
    page.context.close()

