"""The portal in Debian's chromium (Playwright): login, streamed answer with sources, the source
opening at the cited place, thumbs-up stored, role-dependent tabs, and hostile text staying text.

Screenshots for a look at layout and language: set CHAT_SCREENSHOTS to a folder.
"""
from __future__ import annotations

import contextlib
import json
import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from pages import shot, start_new_chat

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SHOTS = "CHAT_SCREENSHOTS"  # a folder for the screenshots of a run; none without it
ZONE_Q = "Welche Zonen hat das Ampelsystem?"
HOSTILE_Q = "Welche Eingaben nennt das Zaunkönig-Protokoll?"


@pytest.fixture
def context(browser, live_portal):
    ctx = browser.new_context(locale="de-DE", viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(30_000)
    external: list[str] = []
    ctx.on("request", lambda r: external.append(r.url) if not r.url.startswith((live_portal.url, "data:", "blob:"))
           else None)
    yield ctx
    ctx.close()
    assert external == [], f"the portal fetched something from outside: {external}"


def login(context, live_portal, user: str, password: str):
    page = context.new_page()
    page.goto(live_portal.url)
    page.locator("input[type=text]").first.fill(user)
    page.locator("input[type=password]").first.fill(password)
    page.locator("input[type=password]").first.press("Enter")
    page.wait_for_selector("#kp-question textarea")
    page.wait_for_function("() => document.querySelector('#kp-user')?.innerText.includes('Angemeldet')")
    return page


def ask(page, question: str) -> None:
    box = page.locator("#kp-question textarea")
    box.fill(question)
    box.press("Enter")  # keyboard only: Enter sends


def wait_for_answer(live_portal, user: str, n_chats_before: int) -> dict:
    """The stored chat once the answer is complete (the last event of the stream stores it)."""
    store = live_portal.server.handlers.chats
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        chats = store.list_chats(user)
        if len(chats) > n_chats_before and chats[0]["messages"] >= 2:
            return store.get_chat(user, chats[0]["id"])
        time.sleep(0.1)
    raise AssertionError("answer was not stored")


def wait_for_answer_shown(page) -> None:
    """The browser has the answer's last event too: "Stopp" is hidden again. Only that event carries
    the message ids a rating needs; a click before it (the server has stored the answer, a loaded
    browser is still rendering) rates nothing."""
    page.locator("#kp-stop").wait_for(state="hidden")


def tabs(page) -> list[str]:
    return [t.strip() for t in page.get_by_role("tab").all_inner_texts() if t.strip()]


def test_staff_chat_sources_feedback_and_history(context, live_portal, portal_data):
    page = login(context, live_portal, "anna", portal_data["password"])
    # the role's tabs render a tick after the user line ("Angemeldet"): wait for them first
    page.get_by_role("tab", name="Schulung").wait_for()
    assert tabs(page) == ["Chat", "Schulung", "Werkzeuge", "Mein Konto"]  # no Verwaltung / KI-Kompass for staff
    assert "Antworten können falsch sein – maßgeblich sind die verlinkten Quellen." in page.inner_text("body")
    shot(page, "1-start", SHOTS, full_page=False)

    # record every state the answer bubble goes through (streaming = several growing states)
    page.evaluate("""() => { window.__states = [];
        new MutationObserver(() => { const bots = document.querySelectorAll('#kp-chat .bot');
            if (bots.length) window.__states.push(bots[bots.length - 1].innerText.length); })
        .observe(document.querySelector('#kp-chat'), {subtree: true, childList: true, characterData: true}); }""")
    before = len(live_portal.server.handlers.chats.list_chats("anna"))
    ask(page, ZONE_Q)
    page.wait_for_selector("#kp-chat .kp-src-link")
    chat = wait_for_answer(live_portal, "anna", before)
    # streaming = the bubble went through at least three lengths; the browser may still be
    # rendering the last pieces when the server has stored the answer, so wait, then check
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function("() => new Set(window.__states).size >= 3", timeout=15_000)
    states = page.evaluate("window.__states")
    assert len(set(states)) >= 3, states
    page.wait_for_timeout(300)
    shot(page, "2-answer", SHOTS, full_page=False)

    answer = chat["messages"][1]
    links = page.locator("#kp-chat .kp-src-link")
    # passages of one page are shown as one source (issue 14): one link per cited (document, page)
    pages = {(c["doc_id"], c.get("page")) for c in answer["citations"]}
    assert links.count() == len(pages) >= 1
    assert re.match(r"\[1\][ ,]", links.first.inner_text())  # "[1] Titel" or "[1], [2] Titel" (merged page)
    first = answer["citations"][0]
    with context.expect_page() as new_tab:
        links.first.click()
    doc = new_tab.value
    doc.wait_for_load_state()
    if first["format"] == "pdf":
        assert doc.url.endswith(f"#page={first['page']}")
    else:
        assert doc.url.endswith("#treffer")
        marked = doc.locator("mark#treffer").inner_text()
        assert first["snippet"].split()[0] in marked
        assert doc.evaluate("() => document.querySelector('mark#treffer').getBoundingClientRect().top") < 400
        shot(doc, "3-quelle", SHOTS, full_page=False)
    doc.close()

    # thumbs up on the answer is stored with question, answer and sources
    wait_for_answer_shown(page)
    page.locator('#kp-chat button[aria-label="Gefällt mir"], #kp-chat button[aria-label="Like"]').last.click()
    page.wait_for_function("() => document.querySelector('#kp-status').innerText.includes('Danke')")
    shot(page, "2b-danke", SHOTS, full_page=False)
    store = live_portal.server.handlers.chats
    fb = [f for f in store.list_feedback() if f["message_id"] == answer["id"]]
    assert fb and fb[0]["rating"] == 1 and fb[0]["question"] == ZONE_Q and fb[0]["sources"]

    # a new chat empties the view; the old one reopens from the list
    start_new_chat(page)
    page.locator("#kp-history label", has_text=ZONE_Q).first.click()
    page.wait_for_selector("#kp-chat .kp-src-link")
    assert page.locator("#kp-chat .kp-src-link").count() == len(pages)

    # the reopened chat downloads as a Word document, at one click (it was a file chip to click then)
    with page.expect_download() as got:
        page.locator("#kp-export-docx").click()
    data = open(got.value.path(), "rb").read()
    assert data[:2] == b"PK" and got.value.suggested_filename.endswith("Welche-Zonen-hat-das-Ampelsystem.docx")


def live_portal_config(page) -> dict:
    return page.evaluate("async () => await (await fetch('config')).json()")


def test_staff_cannot_call_admin_endpoints_from_the_browser(context, live_portal, portal_data):
    page = login(context, live_portal, "anna", portal_data["password"])
    info = page.evaluate("async () => (await (await fetch('gradio_api/info')).json()).named_endpoints")
    names = sorted(n for n, e in info.items() if n.startswith(("/admin", "/trainer")) and not e["parameters"])
    if not names:
        pytest.fail("the admin and trainer tabs expose no parameterless endpoint to probe")
    fns = {d["api_name"]: d["id"] for d in live_portal_config(page)["dependencies"] if d.get("api_name")}
    for name in names[:3]:
        # gradio's queue protocol, as the page's own script speaks it: join, then read the tab's stream
        out = page.evaluate("""async ([fn, tab]) => {
            const r = await fetch('gradio_api/queue/join', {method: 'POST', headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({data: [], fn_index: fn, session_hash: tab, event_data: null, trigger_id: null})});
            if (!r.ok) return 'join ' + r.status;
            const s = await fetch('gradio_api/queue/data?session_hash=' + tab);
            const reader = s.body.getReader(); let text = '';
            while (!text.includes('process_completed')) {
                const {done, value} = await reader.read(); if (done) break; text += new TextDecoder().decode(value); }
            reader.cancel(); return text; }""", [fns[name.lstrip("/")], f"probe{name.strip('/')}"])
        assert "process_completed" in out, (name, out)
        if '"success": false' in out or '"success":false' in out:
            assert "Keine Berechtigung" in out, (name, out)
        else:  # page-load helpers answer staff with nothing
            assert "demo" not in out and "Kempenrath" not in out, (name, out)


def test_the_answer_stays_in_view_above_its_sources(context, live_portal, portal_data):
    """gradio's autoscroll followed the end of the bubble, the sources list, and pushed the answer out
    of the chat window (found by a browser review): a new question now scrolls to that question."""
    page = login(context, live_portal, "bernd", portal_data["password"])
    store = live_portal.server.handlers.chats
    before = len(store.list_chats("bernd"))
    for n, question in enumerate([ZONE_Q, "Wer darf das KI-Portal nutzen?"]):
        ask(page, question)
        deadline = time.monotonic() + 30
        while not (len(chats := store.list_chats("bernd")) > before and chats[0]["messages"] >= 2 * (n + 1)):
            assert time.monotonic() < deadline, "answer was not stored"
            time.sleep(0.1)
        page.wait_for_function("(n) => document.querySelectorAll('#kp-chat .message-row.bot-row').length === n", arg=n + 1)
        page.wait_for_timeout(500)  # the last render of the stream
    visible = page.evaluate("""() => {
        const wrap = document.querySelector('#kp-chat .bubble-wrap').getBoundingClientRect();
        const rows = [...document.querySelectorAll('#kp-chat .message-row')];
        const asked = rows.filter((r) => r.classList.contains('user-row')).pop().getBoundingClientRect();
        const answer = rows.filter((r) => r.classList.contains('bot-row')).pop().getBoundingClientRect();
        return {question: asked.top >= wrap.top - 1 && asked.bottom <= wrap.bottom,
                answer_start: answer.top >= wrap.top - 1 && answer.top + 40 <= wrap.bottom,
                scrolled: document.querySelector('#kp-chat .bubble-wrap').scrollTop > 0}; }""")
    assert visible == {"question": True, "answer_start": True, "scrolled": True}


def _contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours (opaque)."""
    def lum(css: str) -> float:
        r, g, b = (int(float(v)) / 255 for v in re.findall(r"[\d.]+", css)[:3])
        f = lambda c: c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4  # noqa: E731
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b)
    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_help_texts_placeholder_and_send_button_are_readable(context, live_portal, portal_data):
    """WCAG AA, 4.5:1 for text of this size: gradio's light grey help texts (the Ampel's zone
    explanation) and placeholder stood at 2.6:1, white on its blue button at 3.7:1."""
    page = login(context, live_portal, "anna", portal_data["password"])
    colours = page.evaluate("""() => {
        const style = (el, pseudo) => getComputedStyle(el, pseudo || null);
        const bgOf = (el) => { for (; el; el = el.parentElement) { const c = style(el).backgroundColor;
            if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
        const info = document.querySelector('#kp-collections [data-testid="block-info"], #kp-collections .info')
                  || [...document.querySelectorAll('#kp-collections *')].find((e) => e.children.length === 0
                       && /Sammlungen/.test(e.textContent) && e.tagName !== 'LABEL');
        const box = document.querySelector('#kp-question textarea');
        const send = document.querySelector('#kp-send');
        return {info: [style(info).color, bgOf(info)], placeholder: [style(box, '::placeholder').color, bgOf(box)],
                send: [style(send).color, bgOf(send)]}; }""")
    for what, (fg, bg) in colours.items():
        assert _contrast(fg, bg) >= 4.5, (what, fg, bg, round(_contrast(fg, bg), 2))


@pytest.mark.parametrize("user", ["anna", "tina"])
def test_logging_in_shows_no_error(context, live_portal, portal_data, user):
    """The page load emptied the admin's collection choice for every user, and the handler behind it
    asked for the admin role: staff and trainers saw "Keine Berechtigung" at every login (found by a
    browser review)."""
    page = login(context, live_portal, user, portal_data["password"])
    page.wait_for_function("() => document.querySelectorAll('#kp-collections input[type=checkbox]').length > 0")
    page.wait_for_timeout(2500)  # the page-load events finish within a second here
    assert page.locator(".toast-body").all_inner_texts() == []


def test_admin_sees_admin_and_trainer_tabs(context, live_portal, portal_data):
    page = login(context, live_portal, "adam", portal_data["password"])
    page.get_by_role("tab", name="Verwaltung").wait_for()
    names = tabs(page)
    assert names[0] == "Chat"
    assert "Verwaltung" in names or "KI-Kompass" in names
    shot(page, "4-admin", SHOTS, full_page=False)


def test_hostile_document_is_shown_as_text_and_runs_nothing(context, live_portal, portal_data):
    page = login(context, live_portal, "anna", portal_data["password"])
    page.locator("label", has_text=re.compile(r"^\s*test\s*$")).first.click()  # collection filter
    before = len(live_portal.server.handlers.chats.list_chats("anna"))
    ask(page, HOSTILE_Q)
    page.wait_for_selector("#kp-chat .kp-src-link")
    wait_for_answer(live_portal, "anna", before)
    # wait for the end of the answer, not its first streamed piece (the tag comes late in it); the rendered
    # text (innerText), since the sources' closed "Längerer Auszug" holds the tag from the start and
    # Playwright's to_contain_text reads hidden text too
    page.wait_for_function("""() => document.querySelector('#kp-chat').innerText.includes('onerror="window.__xss=2"')""")
    text = page.locator("#kp-chat").inner_text()
    assert "<script>window.__xss=1</script>" in text
    assert 'onerror="window.__xss=2"' in text
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#kp-chat script, #kp-chat img[src='x']").count() == 0
    # addresses in a document stay text to copy: marked (GFM) would link a bare URL, "www." and an e-mail
    assert "https://zaunkoenig-login.example/konto" in text and "konto@zaunkoenig-login.example" in text
    assert page.locator("#kp-chat a[href*='zaunkoenig-login']").count() == 0
    shot(page, "5-xss", SHOTS, full_page=False)

    # the copy buttons copy what is shown, not the message's Markdown escapes and sources HTML
    page.locator("#kp-stop").wait_for(state="hidden")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_portal.url.rstrip("/"))
    page.locator("#kp-chat .message-row.bot-row + .message-buttons button[aria-label='Nachricht kopieren']").last.click()
    page.wait_for_selector("#kp-chat button[aria-label='Nachricht kopiert']")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Laut den Dokumenten") and "konto@zaunkoenig-login.example" in copied
    assert "https://zaunkoenig-login.example/konto" in copied and "[1]" in copied
    assert "Quellen" in copied and "Zaunkönig-Protokoll der Stadt Kempenrath" in copied
    assert "\\" not in copied and "kp-sources" not in copied and "&lt;" not in copied
    assert "<script>window.__xss=1</script>" in copied  # the document's text, as text
    assert "Längerer Auszug" not in copied and "Das Zaunkönig-Protokoll regelt" not in copied  # no excerpt
    page.evaluate("navigator.clipboard.writeText('')")
    page.locator("#kp-chat button[aria-label='Nachricht kopiert']").click()  # again, within its two seconds
    page.wait_for_function("async () => (await navigator.clipboard.readText()) !== ''")
    assert page.evaluate("navigator.clipboard.readText()") == copied  # the shown text again, not the source
    page.locator("#kp-chat button[aria-label='Unterhaltung kopieren']").click()
    page.wait_for_function("async () => (await navigator.clipboard.readText()).startsWith('Frage: ')")
    conversation = page.evaluate("navigator.clipboard.readText()")
    assert conversation.startswith(f"Frage: {HOSTILE_Q}\n\nAntwort: Laut den Dokumenten")
    assert "\\" not in conversation and "kp-sources" not in conversation
    # and screen readers read the rendered message, not gradio's English name with its source
    assert page.locator("#kp-chat [aria-label*=\"'s message\"]").count() == 0

    with context.expect_page() as new_tab:
        page.locator("#kp-chat .kp-src-link").first.click()
    doc = new_tab.value
    doc.wait_for_load_state()
    body = doc.inner_text("body")
    assert "<script>window.__xss=1</script>" in body and "<img src=x onerror=" in body
    assert doc.evaluate("typeof window.__xss") == "undefined"
    assert doc.locator("mark#treffer").count() == 1
    shot(doc, "6-xss-textansicht", SHOTS, full_page=False)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert json.dumps(page.evaluate("window.__xss ?? null")) == "null"


def test_gradio_status_texts_appear_in_german(context, live_portal, portal_data):
    """gradio's status tracker writes "queue: 2/3 |" and "processing |" untranslated; the portal's
    script turns them into German whether the text node is inserted or updated in place (as Svelte does)."""
    page = login(context, live_portal, "anna", portal_data["password"])
    assert page.evaluate("() => document.documentElement.lang") == "de"
    page.evaluate("""() => { const d = document.createElement('div'); d.id = 'kp-status-probe';
                              d.appendChild(document.createTextNode('queue: 2/3 |')); document.body.appendChild(d); }""")
    page.wait_for_function("() => document.getElementById('kp-status-probe').textContent === 'Warteschlange: Platz 2 von 3 |'")
    page.evaluate("() => { document.getElementById('kp-status-probe').firstChild.nodeValue = 'processing |'; }")
    page.wait_for_function("() => document.getElementById('kp-status-probe').textContent === 'wird bearbeitet |'")
    page.evaluate("() => { document.getElementById('kp-status-probe').firstChild.nodeValue = 'queue: 1/ |'; }")
    page.wait_for_function("() => document.getElementById('kp-status-probe').textContent === 'Warteschlange: Platz 1 |'")
    # other text is left alone
    page.evaluate("() => { document.getElementById('kp-status-probe').firstChild.nodeValue = 'queue: Sitzung 3 |'; }")
    page.wait_for_timeout(200)
    assert page.evaluate("() => document.getElementById('kp-status-probe').textContent") == "queue: Sitzung 3 |"
    # the icon buttons' English labels (tooltips, screen readers), found by a browser review
    page.evaluate("""() => { const b = document.createElement('button'); b.id = 'kp-label-probe';
                              b.setAttribute('aria-label', 'Copy message'); document.body.appendChild(b); }""")
    page.wait_for_function("() => document.getElementById('kp-label-probe').getAttribute('aria-label') === 'Nachricht kopieren'")
    page.evaluate("() => document.getElementById('kp-label-probe').setAttribute('aria-label', 'Scroll down')")
    page.wait_for_function("() => document.getElementById('kp-label-probe').getAttribute('aria-label') === 'Nach unten'")
    english = page.evaluate("""() => [...document.querySelectorAll('[aria-label], [title]')]
        .map((e) => e.getAttribute('aria-label') || e.getAttribute('title'))
        .filter((v) => ['Copy message', 'Copy conversation', 'Scroll down', 'More tabs', 'Close'].includes(v))""")
    assert english == []


def test_a_pdf_source_opens_the_text_view_with_the_quoted_sentence_marked_in_view(context, live_portal, portal_data):
    """Issue 14: the sentences an answer rests on are marked in the source view. The browser's PDF
    viewer cannot mark them, so a PDF's source offers the portal's text view beside its page."""
    page = login(context, live_portal, "anna", portal_data["password"])
    n = len(live_portal.server.handlers.chats.list_chats("anna"))
    ask(page, "Wie viele Sensoren sind im Reallabor im Nordpark verbaut?")
    wait_for_answer(live_portal, "anna", n)
    wait_for_answer_shown(page)
    link = page.locator("#kp-chat .kp-src-text").first
    assert link.inner_text() == "Stelle im Text markiert"
    with context.expect_page() as new_tab:
        link.click()
    doc = new_tab.value
    doc.wait_for_load_state()
    quoted = doc.locator("mark.zitat")
    assert quoted.count() >= 1 and "304 Sensoren verbaut" in quoted.first.inner_text()
    top = doc.evaluate("() => document.querySelector('mark.zitat').getBoundingClientRect().top")
    assert 0 <= top < doc.viewport_size["height"] - 40, top
    shot(doc, "3b-quelle-markiert", SHOTS, full_page=False)
    doc.close()
    page.close()


def test_a_laptop_window_shows_header_chat_and_input_at_once(browser, live_portal, portal_data):
    """At 1366 x 768 the question box sat below the window: its autofocus scrolled the header away
    and the "Danke!" after a rating fell out of view below the input (found by a UX review). The
    model's detail line is there from the start (it only came after a change), and it says what the chosen
    option does not: it repeated the option's zone, name, operator and location (a browser review)."""
    ctx = browser.new_context(locale="de-DE", viewport={"width": 1366, "height": 768})
    page = login(ctx, live_portal, "anna", portal_data["password"])
    page.wait_for_function("() => document.querySelector('#kp-model-detail')?.innerText.includes('Freigegeben')")
    detail = page.locator("#kp-model-detail").inner_text()
    chosen = page.evaluate("() => document.querySelector('#kp-model input:checked').closest('label').innerText.trim()")
    assert "Dokumente" in detail and "personenbezogene Angaben" in detail, detail
    assert chosen not in detail and "Betrieb" not in detail and "Standort" not in detail, (chosen, detail)
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.scrollY") == 0
    box = page.locator("#kp-question textarea").bounding_box()
    assert box["y"] + box["height"] <= 768, box
    # the chosen model's long label reads in full: an option wraps (the drop-down cut it with "…")
    label = page.evaluate("""() => { const e = document.querySelector('#kp-model input:checked').closest('label');
        return {text: e.innerText.trim(), cut: e.scrollWidth > e.clientWidth + 1}; }""")
    assert label["text"].startswith("Grün · ") and label["text"].endswith(", lokal") and not label["cut"], label
    n = len(live_portal.server.handlers.chats.list_chats("anna"))
    ask(page, ZONE_Q)
    wait_for_answer(live_portal, "anna", n)
    wait_for_answer_shown(page)
    page.locator('#kp-chat button[aria-label="Gefällt mir"], #kp-chat button[aria-label="Like"]').last.click()
    page.wait_for_function("() => document.querySelector('#kp-status').innerText.includes('Danke')")
    status = page.locator("#kp-status").bounding_box()
    assert 0 <= status["y"] and status["y"] + status["height"] <= 768, status
    # the chat box had about 330 px under header, disclaimer and tabs: an answer with its first source
    # did not fit (a browser review); the header's tagline now gives its room at this height
    chat = page.locator("#kp-chat").bounding_box()
    assert chat["height"] >= 375 and chat["y"] + chat["height"] <= 768, chat
    assert not page.locator("#kp-header h2 + p").is_visible()
    ctx.close()


def test_an_example_question_is_one_click_away(browser, live_portal, portal_data):
    """The empty chat offers the configured example questions (portal.example_questions) as buttons:
    a click puts the question into the box, and sending it stays the user's step."""
    ctx = browser.new_context(locale="de-DE", viewport={"width": 1366, "height": 768})
    page = login(ctx, live_portal, "anna", portal_data["password"])
    example = page.locator("#kp-chat").get_by_role("button", name=ZONE_Q)
    example.click()
    page.wait_for_function("(q) => document.querySelector('#kp-question textarea').value === q", arg=ZONE_Q)
    assert page.locator("#kp-chat .message").count() == 0  # nothing sent yet
    ctx.close()


def test_a_phone_shows_the_chat_before_the_chat_list(browser, live_portal, portal_data):
    """On a phone the columns stack: the chat came below the chat list and the settings, a screen
    further down (found by a UX review)."""
    ctx = browser.new_context(locale="de-DE", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = login(ctx, live_portal, "anna", portal_data["password"])
    chat = page.locator("#kp-chat").bounding_box()
    question = page.locator("#kp-question textarea").bounding_box()
    side = page.locator("#kp-chat-side").bounding_box()
    assert chat["y"] < question["y"] < side["y"], (chat, question, side)
    # the question box in the first screen and across it ("Senden" beside it squeezed it to a third)
    assert question["y"] + question["height"] <= 844 and question["width"] >= 300, question
    assert page.locator("#kp-send").bounding_box()["y"] > question["y"] + question["height"]
    # every tab readable in the bar: gradio's "•••" menu hid four of them, "Mein Konto" among them
    tabs = page.get_by_role("tab")
    assert {"Chat", "Schulung", "Werkzeuge", "Mein Konto"} <= {tabs.nth(i).inner_text() for i in range(tabs.count())}
    for i in range(tabs.count()):
        box = tabs.nth(i).bounding_box()
        assert box and 0 <= box["x"] and box["x"] + box["width"] <= 390, (tabs.nth(i).inner_text(), box)
    assert not page.locator(".overflow-menu button").is_visible()
    # opening a chat from the list (below the chat) shows that chat, not the list (a browser review)
    store = live_portal.server.handlers.chats
    cid = store.create_chat("anna", "Handy-Test Termine")
    store.add_message("anna", cid, "user", "Handy-Test: Wie viele Personen dürfen pro Termin teilnehmen?")
    store.add_message("anna", cid, "assistant", "Laut den Dokumenten: „16 Personen je Termin.“ [1]")
    page.reload()
    page.locator("#kp-history label").filter(has_text="Handy-Test").first.wait_for()
    entry = page.locator("#kp-history label").filter(has_text="Handy-Test").first
    entry.scroll_into_view_if_needed()  # the list, below the chat
    assert page.locator("#kp-chat").bounding_box()["y"] < 0
    entry.click()
    page.wait_for_function("() => { const r = document.querySelector('#kp-chat').getBoundingClientRect(); "
                           "return r.top >= -2 && r.top < window.innerHeight / 2; }")
    ctx.close()


def change_start_password(context, live_portal, user: str, new: str):
    """A new staff account ``user`` changes its start password to ``new`` in "Mein Konto"; the page,
    once the change is confirmed (the caller removes ``user``)."""
    users = live_portal.ctx.users
    if users.get(user) is not None:
        users.remove(user)
    users.add(user, "Start-Passwort-1", "staff")
    page = login(context, live_portal, user, "Start-Passwort-1")
    page.get_by_role("tab", name="Mein Konto").click()
    page.locator("#kp-pw-current input").fill("Start-Passwort-1")
    page.locator("#kp-pw-new input").fill(new)
    page.locator("#kp-pw-repeat input").fill(new)
    page.locator("#kp-pw-change").click()
    page.locator("#kp-pw-result").get_by_text("Ihr Passwort wurde geändert").wait_for()
    return page


def test_a_user_changes_the_start_password_and_signs_in_with_the_new_one(context, live_portal, portal_data):
    """The start password an admin hands out is changed by its owner in "Mein Konto"; the page signs
    out (every session of the user ends) and the new password signs in."""
    users = live_portal.ctx.users
    try:
        page = change_start_password(context, live_portal, "greta", "Eigenes-Passwort-22")
        assert page.locator("#kp-pw-new input").input_value() == ""
        # signed out: the page reloads into the login form
        page.locator("#kp-pw-current").wait_for(state="detached")
        page.locator("input[type=password]").first.wait_for()
        page.close()
        assert users.verify("greta", "Eigenes-Passwort-22")
        again = login(context, live_portal, "greta", "Eigenes-Passwort-22")
        assert "greta" in again.locator("#kp-user").inner_text()
    finally:
        users.remove("greta")


def test_signing_in_at_once_in_another_tab_survives_the_old_pages_reload(context, live_portal):
    """The page that changed the password reloads 2.5 s later. It once went to 'logout', which ends
    every session of the user: a session just opened with the new password in another tab of the
    same browser ended with it (seen in CI as a flaky sign-in)."""
    users = live_portal.ctx.users
    try:
        page = change_start_password(context, live_portal, "hanna", "Eigenes-Passwort-33")
        page.evaluate("() => { window.kpBeforeReload = true; }")
        again = login(context, live_portal, "hanna", "Eigenes-Passwort-33")
        page.wait_for_function("() => !window.kpBeforeReload")  # the old page has reloaded
        again.reload()
        again.wait_for_function("() => document.querySelector('#kp-user')?.innerText.includes('Angemeldet')")
        assert "hanna" in again.locator("#kp-user").inner_text()
    finally:
        users.remove("hanna")


def test_the_login_page_keeps_the_name_and_tells_wrong_from_held_back(context, live_portal, portal_data):
    """gradio's login page said "wrong" to every refusal and emptied the name field; the portal's own
    page says "falsch" only for a checked password and how long a held-back person waits."""
    name, store = "greta-login", live_portal.ctx.app.login_failures
    keys = ["a:127.0.0.1", f"n:{name}", f"p:127.0.0.1|{name}"]
    live_portal.ctx.users.add(name, portal_data["password"], "staff")
    page = context.new_page()
    try:
        page.goto(live_portal.url)
        assert page.title() == "Anmelden – KI-Portal"
        page.get_by_label("Benutzername").fill(name)
        message = page.locator("#kp-login-message")
        for _ in range(3):
            page.get_by_label("Passwort").fill("falsch-geraten")
            page.get_by_label("Passwort").press("Enter")
            page.wait_for_function("() => document.querySelector('#kp-login-message').innerText.includes('falsch')")
            assert message.inner_text() == "Benutzername oder Passwort ist falsch."
            assert page.get_by_label("Benutzername").input_value() == name  # kept
            assert page.get_by_label("Passwort").input_value() == ""
            page.evaluate("() => { document.querySelector('#kp-login-message').textContent = ''; }")
        page.get_by_label("Passwort").fill(portal_data["password"])  # the right one, but held back
        page.get_by_role("button", name="Anmelden").click()
        page.wait_for_function("() => document.querySelector('#kp-login-message').innerText.includes('Zu viele')")
        assert re.fullmatch(r"Zu viele fehlgeschlagene Anmeldungen\. Bitte versuchen Sie es in \d Sekunden? erneut\. "
                            r"Ihr Passwort wurde dabei nicht geprüft\.", message.inner_text())
        assert page.get_by_label("Benutzername").input_value() == name
        # the unchecked password stays, and the button waits out the back-off (a try in it would double it)
        assert page.get_by_label("Passwort").input_value() == portal_data["password"]
        button = page.locator("#kp-login button")
        assert button.is_disabled() and re.fullmatch(r"Anmelden \(in \d s\)", button.inner_text())
        store.clear(keys)  # (the other tests' logins from this address stay free)
        page.wait_for_function("() => !document.querySelector('#kp-login button').disabled")
        assert message.inner_text() == "Sie können sich jetzt wieder anmelden."
        page.get_by_label("Passwort").press("Enter")
        page.wait_for_selector("#kp-question textarea")
        assert page.title() == "KI-Portal"
    finally:
        store.clear(keys)
        live_portal.ctx.users.remove(name)
