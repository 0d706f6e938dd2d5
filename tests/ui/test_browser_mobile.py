"""A phone's first screen and gradio's own controls in a browser set to English (Debian's chromium via
Playwright, started with ``--lang=en-US``; the portal is the real one, ui.portal.create_app, with
password login on the hash embedder).

A browser review found (1) on a 390 x 844 phone the header, the user line, "Abmelden" and the
disclaimer stacked with gradio's gaps, pushing the chat down, and (2) gradio's own controls in
English ("Copy", "Fullscreen", "Clear" …) where the browser's language is English: gradio takes its
language from the browser. The page now pins gradio's language to German (ui.portal.LOCALE_SCRIPT)
and fills the gaps of gradio's German (ui.portal.GRADIO_DE).

A later visual review on the phone found (3) the table of „Gruppen (Ämter)“ squeezed to unreadable
columns and (4) the model's drop-down cutting the chosen model's name; see the tests' docstrings.

Screenshots for a look at the layout: set MOBILE_SCREENSHOTS to a folder.
"""
from __future__ import annotations

import os

import pytest
from pages import shot
from portal_world import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SHOTS = "MOBILE_SCREENSHOTS"
CHROMIUM = "/usr/bin/chromium"
# tests/ui/conftest.py's arguments, plus an English browser
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--lang=en-US"]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
# gradio's English labels of its icon buttons, as a browser set to English showed them
ENGLISH = ["Copy", "Copied", "Copy message", "Copy conversation", "Fullscreen", "Exit fullscreen mode", "Clear",
           "Download", "Share", "Like", "Dislike", "Scroll down", "Copy table data", "chatbot conversation"]


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    from portal_world import light_portal

    with light_portal(tmp_path_factory.mktemp("mobile-portal") / "data") as p:
        p.ctx.users.add("anna", PASSWORD, "staff")
        p.ctx.users.add("adam", PASSWORD, "admin")
        yield p


@pytest.fixture(scope="module")
def english_browser():
    """Chromium in English (its own Playwright: the module does not use conftest's ``browser``)."""
    assert os.path.exists(CHROMIUM), "chromium missing: apt-get install -y chromium chromium-driver (make test does this)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def open_portal(browser, url: str, user: str, viewport: dict, *, phone: bool = False):
    """An English browser context (Accept-Language and navigator.language en-US), signed in."""
    context = browser.new_context(locale="en-US", viewport=viewport, is_mobile=phone, has_touch=phone)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.locator("input[type=text]").first.fill(user)
    page.locator("input[type=password]").first.fill(PASSWORD)
    page.locator("input[type=password]").first.press("Enter")
    page.wait_for_selector("#kp-question textarea")
    page.wait_for_function("() => document.querySelector('#kp-user')?.innerText.includes('Angemeldet')")
    page.wait_for_timeout(500)  # the layout after the user line and the tabs came
    return context, page


def in_first_screen(page, selector: str, height: int) -> dict:
    box = page.locator(selector).bounding_box()
    assert box and 0 <= box["y"] and box["y"] + box["height"] <= height, (selector, box)
    return box


def test_a_phone_shows_a_compact_header_and_the_question_box_in_the_first_screen(english_browser, portal):
    context, page = open_portal(english_browser, portal.url, "anna", PHONE, phone=True)
    shot(page, "phone-390x844", SHOTS, full_page=False)
    assert page.evaluate("() => window.scrollY") == 0
    height = PHONE["height"]
    header = in_first_screen(page, "#kp-header", height)
    assert header["height"] <= 0.25 * height, header
    # everything above the tabs, the disclaimer included, within a quarter of the screen too
    tabs_top = page.locator("[role=tablist], .tab-container").first.bounding_box()["y"]
    assert tabs_top <= 0.25 * height, tabs_top
    # nothing a user needs is hidden: title, who is signed in with the role, "Abmelden", the disclaimer
    for selector in ("#kp-header h2", "#kp-user", "#kp-logout", "#kp-disclaimer"):
        assert page.locator(selector).is_visible(), selector
        box = in_first_screen(page, selector, height)
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (selector, box)
    assert "anna" in page.locator("#kp-user").inner_text() and "Mitarbeitende" in page.locator("#kp-user").inner_text()
    # "Abmelden" beside the user line, not a line of its own
    user, logout = page.locator("#kp-user").bounding_box(), page.locator("#kp-logout").bounding_box()
    assert logout["x"] >= user["x"] + user["width"] - 1 and logout["y"] < user["y"] + user["height"], (user, logout)
    # the chat, the question box and "Senden" in the first screen, without scrolling
    chat = in_first_screen(page, "#kp-chat", height)
    assert chat["height"] >= 300, chat
    in_first_screen(page, "#kp-question textarea", height)
    in_first_screen(page, "#kp-send", height)
    context.close()


def test_a_laptop_keeps_the_header_in_one_row(english_browser, portal):
    context, page = open_portal(english_browser, portal.url, "anna", LAPTOP)
    shot(page, "laptop-1280x800", SHOTS, full_page=False)
    title, user = page.locator("#kp-header h2").bounding_box(), page.locator("#kp-user").bounding_box()
    assert user["x"] > title["x"] + title["width"] and user["y"] < title["y"] + title["height"], (title, user)
    assert page.locator("#kp-header").bounding_box()["height"] <= 0.12 * LAPTOP["height"]
    in_first_screen(page, "#kp-question textarea", LAPTOP["height"])
    context.close()


def labels(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('[aria-label], [title]')]
        .flatMap((e) => [e.getAttribute('aria-label'), e.getAttribute('title')]).filter(Boolean)""")


def test_gradios_controls_speak_german_in_an_english_browser(english_browser, portal):
    context, page = open_portal(english_browser, portal.url, "anna", LAPTOP)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    box = page.locator("#kp-question textarea")
    box.fill("Wer darf das Portal nutzen?")
    box.press("Enter")
    page.wait_for_selector("#kp-chat .message-row.bot-row")
    page.locator("#kp-stop").wait_for(state="hidden")
    copy = page.locator("#kp-chat .message-row.bot-row + .message-buttons button").first
    assert copy.get_attribute("aria-label") == "Nachricht kopieren" and copy.get_attribute("title") == "Nachricht kopieren"
    # gradio's German: "Chat leeren" and "Gefällt mir" come from gradio's translation only (an English
    # gradio says "Clear" and "Like")
    chat = page.locator("#kp-chat")
    for name in ("Chat leeren", "Unterhaltung kopieren", "Gefällt mir", "Gefällt mir nicht"):
        assert chat.locator(f'button[aria-label="{name}"]').count() >= 1, (name, labels(page))
    assert not set(labels(page)) & set(ENGLISH), labels(page)
    shot(page, "english-browser-chat", SHOTS, full_page=False)
    # how: the browser's language, pinned for gradio before its scripts run, under the portal's CSP
    assert page.evaluate("() => navigator.language") == "de-DE"
    assert page.evaluate("() => document.documentElement.lang") == "de"
    html = page.evaluate("async () => { const r = await fetch('./'); return [await r.text(), r.headers.get('content-security-policy')]; }")
    assert html[0].index("pin('language', 'de-DE')") < html[0].index("window.gradio_config"), html[0][:400]
    assert "script-src 'self' 'unsafe-inline'" in html[1]
    context.close()

    # a fullscreen button (the admin's document table)
    context, page = open_portal(english_browser, portal.url, "adam", LAPTOP)
    page.get_by_role("tab", name="Verwaltung", exact=True).click()
    full = page.locator('button[aria-label="Vollbild"]').filter(visible=True).first
    full.wait_for()
    assert full.get_attribute("title") == "Vollbild"
    assert not set(labels(page)) & set(ENGLISH), labels(page)
    context.close()
    assert refused == []


def cells(page, selector: str) -> list[dict]:
    """Each header and body cell of a gradio table: its text, whether it is cut (wider than its
    box), how many lines it takes and its font."""
    return page.evaluate("""(sel) => [...document.querySelectorAll(`${sel} th .header, ${sel} [role=gridcell] span`)]
        .map((e) => { const s = getComputedStyle(e); const lineHeight = parseFloat(s.lineHeight) || 20;
            return {text: e.innerText.trim(), header: !!e.closest('th'), font: s.fontFamily,
                    lines: Math.round(e.getBoundingClientRect().height / lineHeight),
                    cut: e.scrollWidth > e.clientWidth + 1}; })""", selector)


def test_the_groups_table_is_readable_on_a_phone(english_browser, portal):
    """A visual review on a 390 x 844 phone: in Verwaltung › Benutzer the table of „Gruppen (Ämter)“
    squeezed its last column to a few letters a line (gradio broke "Sammlungen (Leserecht)" anywhere to
    fit four columns into 300 px) and set the rows in monospace while it sized the columns for the
    text font. Now no cell is cut or broken mid-word, the table scrolls in its own box (not the page),
    and rows and headers share the text font."""
    ctx = portal.ctx
    ctx.users.add("m.mustermann", PASSWORD, "staff")
    for name in ("bauamt", "ordnungsamt"):
        ctx.app.departments.create_group(name, "test")
    ctx.users.set_groups("m.mustermann", ["bauamt", "ordnungsamt"])
    context, page = open_portal(english_browser, portal.url, "adam", PHONE, phone=True)
    try:
        page.get_by_role("tab", name="Verwaltung", exact=True).click()
        page.get_by_role("tab", name="Benutzer", exact=True).click()
        table = page.locator("#admin-groups-table")
        table.get_by_text("m.mustermann").filter(visible=True).first.wait_for()
        page.wait_for_timeout(500)  # gradio sizes the columns after the rows came
        table.scroll_into_view_if_needed()
        shot(page.locator("#admin-groups-box"), "phone-groups-table", SHOTS, full_page=False)
        found = cells(page, "#admin-groups-table")
        texts = [c["text"] for c in found]
        assert texts[:4] == ["Gruppe", "Herkunft", "Benutzer", "Sammlungen (Leserecht)"], texts
        assert {"bauamt", "ordnungsamt", "im Portal angelegt", "m.mustermann"} <= set(texts), texts
        for c in found:
            assert not c["cut"] and c["lines"] <= len(c["text"].split()), c
        assert len({c["font"] for c in found}) == 1, {c["font"] for c in found}
        # wider than the phone: the table's own box scrolls, the page stays 390 px wide
        box = table.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        assert page.evaluate("() => document.scrollingElement.scrollWidth") <= PHONE["width"]
        viewport = page.evaluate("""() => { const v = document.querySelector('#admin-groups-table .virtual-table-viewport');
            return {scroll: v.scrollWidth, client: v.clientWidth, overflow: getComputedStyle(v).overflowX}; }""")
        assert viewport["scroll"] <= viewport["client"] or viewport["overflow"] in ("auto", "scroll"), viewport
    finally:
        context.close()
        ctx.users.remove("m.mustermann")
        for name in ("bauamt", "ordnungsamt"):
            ctx.app.departments.remove_group(name, "test")


def test_the_chosen_models_whole_name_is_readable_on_a_phone(english_browser, portal):
    """A visual review on a 390 x 844 phone: the model's drop-down cut the chosen model to
    „Grün · Nur Textstellen (ohne…“ (an input holds one line). The models are now a list of options
    whose labels wrap: the chosen one, and every other one the role may choose, reads in full (zone
    word first) within the screen, and choosing another one names it in the detail line."""
    from assistant.model_choice import default_model, model_choices

    settings = portal.ctx.app.settings
    choices = model_choices(settings, "staff")
    labels_by_key = {key: label for label, key in choices}
    context, page = open_portal(english_browser, portal.url, "anna", PHONE, phone=True)
    try:
        model = page.locator("#kp-model")
        model.scroll_into_view_if_needed()
        shot(model.locator("xpath=.."), "phone-model-choice", SHOTS, full_page=False)

        def shown() -> dict:
            """What shows the chosen model: a checked option's label, else the drop-down's input."""
            return page.evaluate("""() => { const m = document.querySelector('#kp-model');
                const radio = m.querySelector('input[type=radio]:checked');
                const e = radio ? radio.closest('label') : m.querySelector('input');
                const r = e.getBoundingClientRect();
                return {text: (radio ? e.innerText : e.value).trim(), cut: e.scrollWidth > e.clientWidth + 1,
                        left: r.left, right: r.right}; }""")

        chosen = shown()
        assert chosen["text"] == labels_by_key[default_model(settings, "staff")], chosen
        assert not chosen["cut"] and chosen["left"] >= 0 and chosen["right"] <= PHONE["width"], chosen
        # every model of the role is offered in full, green first; another role's model is not
        offered = [t.strip() for t in model.locator("label").all_inner_texts()]
        assert offered == [label for label, _ in choices], offered
        other = next(key for _, key in choices if settings.llm.models[key].zone != "green")
        model.locator("label", has_text=labels_by_key[other]).click()
        # the detail line follows the choice: a yellow or red model reads only some documents
        page.wait_for_function("() => document.querySelector('#kp-model-detail')?.innerText"
                               ".includes('nur Dokumente der Einstufung')")
        chosen = shown()
        assert chosen["text"] == labels_by_key[other] and not chosen["cut"], chosen
        assert chosen["text"].startswith("Gelb · "), chosen
    finally:
        context.close()
