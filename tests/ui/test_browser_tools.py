"""The Werkzeuge tab in a real browser (Debian's chromium via Playwright): each tool, export, history,
„Trotzdem senden“.

Same portal as tests/ui/test_tools_api.py (password login, hash embedder, scripted model): the fixture
``tools_portal`` in tests/conftest.py."""
from __future__ import annotations

import json

import pytest
from pages import chosen_model, login, offered_models, open_tab, shot

from portal_world import BESCHEID, PASSWORD, PERSONAL

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TIMEOUT = 30_000
# the windows of a visual review: a laptop's and a phone's
VIEWS = {"laptop": ({"width": 1366, "height": 768}, False), "phone": ({"width": 390, "height": 844}, True)}


def test_each_tool_runs_streams_and_exports(browser, tools_portal):
    page = login(browser, tools_portal.url, "anna", PASSWORD, timeout_ms=TIMEOUT)
    open_tab(page, "Werkzeuge")

    # nothing to export before a result (a UX review found the buttons usable and ending in an error)
    assert page.locator("#kp-einfach-export-docx").is_disabled() and page.locator("#kp-einfach-export-md").is_disabled()
    # a missing input is said in plain words, with no red "Fehler" marks left on the outputs (a browser review)
    page.locator("#kp-einfach-run").click()
    page.locator("#kp-einfach-progress").get_by_text("Bitte einen Text").wait_for()
    assert page.locator("#tools-einfach").get_by_text("Fehler", exact=True).count() == 0
    # writing tools offer no "Nur Textstellen" (it was offered, then refused)
    offered = page.locator("#kp-einfach-model label").all_inner_texts()
    assert offered and not any("Nur Textstellen" in o for o in offered), offered
    assert not page.locator("#kp-einfach-no-model").is_visible()  # a model that writes: no notice
    # Einfache Sprache: pasted text, revised, facts warning, hostile output shown as text
    page.locator("#kp-einfach-text textarea").fill(BESCHEID)
    page.locator("#kp-einfach-run").click()
    details = page.locator("#kp-einfach-details")
    details.get_by_text("Geänderte oder fehlende Angaben").wait_for()
    output = page.locator("#kp-einfach-output")
    assert "Das Amt prüft den Antrag." in output.inner_text()
    assert '<img src=x onerror="window.__xss=1">' in output.inner_text()
    assert page.evaluate("() => window.__xss === undefined") and output.locator("img").count() == 0
    assert "„31.03.2026“ → „30.03.2026“" in details.inner_text()
    assert "Flesch nach Amstad" in details.inner_text()
    assert page.locator("#kp-einfach-export-docx").is_enabled()
    with page.expect_download() as got:  # one click: the download starts (it was a file chip to click)
        page.locator("#kp-einfach-export-docx").click()
    assert got.value.suggested_filename.endswith(".docx") and open(got.value.path(), "rb").read(2) == b"PK"
    page.locator("#kp-einfach-export-file").get_by_text(".docx").wait_for()
    shot(page, "tools-einfach", "TOOLS_SCREENSHOTS")

    # Zusammenfassung of a knowledge-base document
    open_tab(page, "Zusammenfassung")
    page.locator("#kp-summary-run").click()  # no document yet: a hint, gone once one is chosen
    page.locator("#kp-summary-progress").get_by_text("Bitte ein Dokument wählen").wait_for()
    page.locator("#kp-summary-doc input").first.click()
    page.get_by_role("option", name="Friedhofssatzung", exact=False).first.click()
    page.wait_for_function("() => !document.querySelector('#kp-summary-progress').innerText.includes('Bitte ein Dokument')")
    page.locator("#kp-summary-run").click()
    page.locator("#kp-summary-details").get_by_text("Fundstellen geprüft").wait_for()
    assert "(Abschn. 1)" in page.locator("#kp-summary-output").inner_text()
    with page.expect_download() as got:
        page.locator("#kp-summary-export-md").click()
    assert "Ruhezeit der Verstorbenen beträgt 20 Jahre" in open(got.value.path(), encoding="utf-8").read()

    # Entwurf with placeholders instead of an invented name and date
    open_tab(page, "Entwurf")
    page.locator("#kp-draft-text textarea").fill("Einladung ins Rathaus")
    page.locator("#kp-draft-run").click()
    page.locator("#kp-draft-details").get_by_text("Platzhalter").first.wait_for()
    text = page.locator("#kp-draft-output").inner_text()
    assert "[Name]" in text and "[Datum]" in text and "Schmitz" not in text
    shot(page, "tools-entwurf", "TOOLS_SCREENSHOTS")

    # Verlauf: the runs are listed and reopen
    open_tab(page, "Verlauf")
    page.locator("#kp-tools-history-delete").click()  # nothing chosen: a hint, the list stays usable
    page.locator("#kp-history-progress").get_by_text("Bitte zuerst ein Ergebnis").wait_for()
    page.locator("#kp-tools-history-refresh").click()
    page.locator("#kp-tools-history").get_by_text("Entwurf").first.click()
    page.locator("#kp-history-output").get_by_text("[Name]").wait_for()
    page.wait_for_function("() => !document.querySelector('#kp-history-export-md').disabled")


def test_a_long_run_can_be_called_off_and_nothing_is_kept(browser, tools_portal):
    """"Abbrechen" stops a run still streaming (a summary on the local model takes minutes); the
    run is not stored, and the tool works again afterwards."""
    import time

    from assistant.llm.fake import FakeChatModel
    from assistant.tools.history import ToolRunStore

    class Slow(FakeChatModel):
        def _stream(self, *args, **kwargs):
            for chunk in super()._stream(*args, **kwargs):
                time.sleep(0.15)
                yield chunk

    app = tools_portal.ctx.app
    fast = app._chat_models["lokal"]
    app._chat_models["lokal"] = Slow(responses=["Ein langer Entwurf mit vielen Wörtern. " * 30])
    store = ToolRunStore(tools_portal.ctx.db)
    before = len(store.list_runs("anna"))
    try:
        page = login(browser, tools_portal.url, "anna", PASSWORD, timeout_ms=TIMEOUT)
        open_tab(page, "Werkzeuge")
        open_tab(page, "Entwurf")
        page.locator("#kp-draft-text textarea").fill("Einladung zur Sitzung")
        assert page.locator("#kp-draft-cancel").is_disabled()  # nothing to call off yet
        page.locator("#kp-draft-run").click()
        page.locator("#kp-draft-output").get_by_text("Ein langer Entwurf").first.wait_for()
        page.locator("#kp-draft-cancel").click()
        page.wait_for_function("() => document.querySelector('#kp-draft-cancel').disabled")
        page.locator("#kp-draft-progress").get_by_text("Abgebrochen").wait_for()
        page.wait_for_timeout(6000)  # longer than the rest of the slow run would take
        assert "Abgebrochen" in page.locator("#kp-draft-progress").inner_text()  # nothing painted over it
        assert len(store.list_runs("anna")) == before
        assert page.locator("#kp-draft-export-md").is_disabled()
    finally:
        app._chat_models["lokal"] = fast
    page.locator("#kp-draft-run").click()  # the tool runs again, to the end
    page.wait_for_function("() => !document.querySelector('#kp-draft-export-md').disabled")
    page.wait_for_function("() => document.querySelector('#kp-draft-cancel').disabled")  # ended: nothing to stop
    assert len(store.list_runs("anna")) == before + 1
    page.context.close()


def test_trotzdem_senden_in_the_browser_sends_the_warned_text_only(browser, tools_portal):
    """The browser's flow with the bound confirmation: warned, „Trotzdem senden“ runs it; a text
    changed after the warning is not sent."""
    fake = tools_portal.fake
    page = login(browser, tools_portal.url, "anna", PASSWORD, timeout_ms=TIMEOUT)
    # the page load narrows the models to the user's role: choose after it, or it resets the choice
    page.wait_for_function("() => document.querySelector('#kp-user')?.innerText.includes('Angemeldet')")
    open_tab(page, "Werkzeuge")
    page.locator("#kp-einfach-model label", has_text="EU-Modell").click()
    box, warning = page.locator("#kp-einfach-text textarea"), page.locator("#kp-einfach-warning")
    box.fill(PERSONAL)
    before = len(fake.calls)
    page.locator("#kp-einfach-run").click()
    warning.get_by_text("Personendaten erkannt").wait_for()
    assert len(fake.calls) == before
    page.locator("#kp-einfach-confirm").click()
    page.locator("#kp-einfach-output").get_by_text("Das Amt prüft den Antrag.").wait_for()
    assert len(fake.calls) > before and not warning.is_visible()

    page.locator("#kp-einfach-run").click()  # warned again; then the text is changed before confirming
    warning.get_by_text("Personendaten erkannt").wait_for()
    box.fill(PERSONAL.replace("Petra Schulz", "Jürgen Meier"))
    sent = len(fake.calls)
    page.locator("#kp-einfach-confirm").click()
    page.locator("#kp-einfach-progress").get_by_text("Es wurde nichts gesendet").wait_for()
    assert len(fake.calls) == sent and page.locator("#kp-einfach-output").inner_text().strip() == ""
    page.context.close()


def readable(shown: dict, label: str, viewport: dict) -> None:
    """``shown`` (pages.chosen_model) is the whole ``label``, not cut, inside the window's width."""
    assert shown["text"] == label and not shown["cut"], (shown, label)
    assert shown["left"] >= 0 and shown["right"] <= viewport["width"], (shown, viewport)


@pytest.mark.parametrize("view", VIEWS)
def test_each_tools_model_reads_in_full_on_a_laptop_and_a_phone(browser, tools_portal, view):
    """A visual review found the tools' model drop-downs cutting the chosen model's label as the chat's
    did (a laptop: „Grün · Testmodell lokal · Stadtverwaltung (eigener Server), l“, a phone: „Grün ·
    Testmo…“). Each tool now offers its models as options whose labels wrap, as the chat does: the
    chosen one and every other one of the role reads in full within the window (the writing tools
    without „Nur Textstellen“), and another one chosen reads in full and is the one the tool runs with."""
    from assistant.model_choice import model_choices
    from ui.tools_tab import writing_choices

    settings = tools_portal.ctx.app.settings
    models = model_choices(settings, "staff")
    writing, writing_default = writing_choices(tools_portal.ctx, models, settings.llm.default)
    label = {key: text for text, key in models}
    viewport, phone = VIEWS[view]
    page = login(browser, tools_portal.url, "anna", PASSWORD, timeout_ms=TIMEOUT, viewport=viewport, phone=phone)
    # the page load narrows the models to the user's role: measure and choose after it
    page.wait_for_function("() => document.querySelector('#kp-user')?.innerText.includes('Angemeldet')")
    open_tab(page, "Werkzeuge")
    for tab, selector, offered, default in (("Einfache Sprache", "#kp-einfach-model", writing, writing_default),
                                            ("Zusammenfassung", "#kp-summary-model", models, settings.llm.default),
                                            ("Entwurf", "#kp-draft-model", writing, writing_default)):
        open_tab(page, tab)
        page.locator(selector).scroll_into_view_if_needed()
        shot(page, f"tools-model-{view}-{selector[4:]}", "TOOLS_SCREENSHOTS", full_page=False)
        readable(chosen_model(page, selector), label[default], viewport)
        options = offered_models(page, selector)
        assert [o["text"] for o in options] == [text for text, _ in offered], options
        for option in options:
            readable(option, option["text"], viewport)
    # Entwurf (the tab still open) with the red model: chosen, it reads in full, and the run goes to it
    page.locator("#kp-draft-model label", has_text=label["rot"]).click()
    readable(chosen_model(page, "#kp-draft-model"), label["rot"], viewport)
    assert label["rot"].startswith("Rot · ")
    page.locator("#kp-draft-text textarea").fill("Einladung ins Rathaus")
    page.locator("#kp-draft-run").click()
    page.locator("#kp-draft-details").get_by_text("Platzhalter").first.wait_for()
    newest = tools_portal.ctx.audit.entries(action="tool_entwurf", limit=1)[0]
    assert json.loads(newest["detail"])["model"] == "rot", newest
    page.context.close()


@pytest.mark.parametrize("tab, button", [("Einfache Sprache", "#kp-einfach-run"), ("Zusammenfassung", "#kp-summary-run"),
                                         ("Entwurf", "#kp-draft-run")])
def test_each_tools_run_button_is_in_a_laptops_first_screen(browser, tools_portal, tab, button):
    """With the model as options (labels that wrap, taller than the drop-down) „Zusammenfassen“,
    „Übertragen“ and „Entwurf schreiben“ ended just below a 1366 x 768 window (a browser review):
    after opening the tool, its run button is within the window without scrolling (Einfache Sprache
    with each of its inputs: text box, file drop area, document)."""
    viewport = VIEWS["laptop"][0]
    page = login(browser, tools_portal.url, "anna", PASSWORD, timeout_ms=TIMEOUT, viewport=viewport)
    # the page load fills the models (and the notices) of the user's role: measure after it
    page.wait_for_function("() => document.querySelector('#kp-user')?.innerText.includes('Angemeldet')")
    open_tab(page, "Werkzeuge")
    open_tab(page, tab)
    run = page.locator(button)
    run.wait_for()
    sources = ["Text einfügen", "Datei hochladen", "Dokument der Wissensbasis"] if tab == "Einfache Sprache" else [None]
    for source in sources:
        if source:
            page.locator("#kp-einfach-source label", has_text=source).click()
        page.wait_for_timeout(400)
        assert page.evaluate("() => window.scrollY") == 0
        box = run.bounding_box()
        shot(page, f"tools-run-laptop-{button[4:]}-{source or ''}", "TOOLS_SCREENSHOTS", full_page=False)
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (tab, source, box)
    page.context.close()
