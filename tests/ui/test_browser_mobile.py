"""A phone's first screen and gradio's own controls in a browser set to English (Debian's chromium via
Playwright, started with ``--lang=en-US``; the portal is the real one, ui.portal.create_app, with
password login on the hash embedder).

A browser review found (1) on a 390 x 844 phone the header, the user line, "Abmelden" and the
disclaimer stacked with gradio's gaps, pushing the chat down, and (2) gradio's own controls in
English ("Copy", "Fullscreen", "Clear" …) where the browser's language is English: gradio takes its
language from the browser. The page now pins gradio's language to German (ui.portal.LOCALE_SCRIPT)
and fills the gaps of gradio's German (ui.portal.GRADIO_DE).

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
