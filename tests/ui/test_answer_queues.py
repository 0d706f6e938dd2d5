"""A long tool run does not hold the chat: tools and chat queue apart, over HTTP.

Before, both events shared gradio's "answer" queue (one at a time), so a staff member's
Einfache Sprache of a long text held every colleague's chat answer until it ended. The tool's
model here blocks until the chat has answered (or 30 s): the chat must answer meanwhile.
"""
from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.integration

PASSWORD = "Warteschlange-Test-2025!"


@pytest.fixture(scope="module")
def queue_portal(tmp_path_factory):
    import ui.portal as portal
    from assistant.llm.fake import FakeChatModel
    from assistant.settings import load_settings
    from assistant.wiring import App
    from ui.context import PortalContext

    root = tmp_path_factory.mktemp("queue-portal")
    docs = root / "docs"
    docs.mkdir()
    (docs / "kurs.md").write_text("# KI-Kompass\n\nDer Kurs ist auf 16 Personen je Termin begrenzt.\n", encoding="utf-8")
    settings = load_settings(root / "data", embedding={"mode": "hash"}, vector={"mode": "memory"},
                             auth={"mode": "password", "secret": "q" * 40},
                             llm={"default": "extraktiv", "models": {
                                 "lokal": {"mode": "fake", "label": "Testmodell"},
                                 "extraktiv": {"mode": "extractive", "label": "Nur Textstellen"}}})
    app = App(settings)
    assert not app.ingestor.ingest([docs], collection="kurse").failed
    chat_done, tool_started = threading.Event(), threading.Event()

    def respond(prompt: str) -> str:
        tool_started.set()
        chat_done.wait(30)  # a long generation: until the chat has answered
        return "Der Antrag wird geprüft."

    app._chat_models["lokal"] = FakeChatModel(respond=respond)
    ctx = PortalContext(app)
    ctx.users.add("anna", PASSWORD, "staff")
    ctx.users.add("bernd", PASSWORD, "staff")
    with portal.background_portal(ctx) as (url, _server):
        yield url, chat_done, tool_started


def test_a_chat_answers_while_a_long_tool_run_goes_on(queue_portal):
    from gradio_client import Client

    url, chat_done, tool_started = queue_portal
    anna = Client(url, auth=("anna", PASSWORD), verbose=False, download_files=False)
    bernd = Client(url, auth=("bernd", PASSWORD), verbose=False, download_files=False)
    tool = anna.submit("Text einfügen", "Der Antrag wird vom Amt geprüft. " * 20, None, None, "", False, "lokal",
                       api_name="/tool_einfach")
    assert tool_started.wait(30), "the tool run never reached the model"
    started = time.monotonic()
    answer = bernd.submit("Wie viele Personen dürfen pro Termin teilnehmen?", "extraktiv", [], api_name="/ask")
    chatbot = answer.result(timeout=60)[0]
    waited = time.monotonic() - started
    tool_running = not tool.done()
    chat_done.set()
    tool.result(timeout=60)
    assert "16 Personen" in str(chatbot[-1]), chatbot
    assert tool_running and waited < 25, f"the chat waited {waited:.1f} s for the tool run"
