"""Browser helpers shared by the Playwright tests (plain functions; the fixtures live in conftest.py)."""
from __future__ import annotations

import os


def login(browser, url: str, user: str, password: str, *, timeout_ms: int = 30_000, height: int = 1100,
          viewport: dict | None = None, phone: bool = False):
    """A fresh German browser context, logged in through the portal's login form; waits for the chat tab.
    ``viewport`` (width, height) instead of 1400 x ``height``; ``phone``: a touch screen's mobile browser."""
    context = browser.new_context(locale="de-DE", viewport=viewport or {"width": 1400, "height": height},
                                  is_mobile=phone, has_touch=phone)
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    page.locator("input[type=text], input[name=username]").first.fill(user)
    page.locator("input[type=password]").first.fill(password)
    page.keyboard.press("Enter")
    page.get_by_role("tab", name="Chat").wait_for()
    return page


def shot(target, name: str, folder_env: str, *, full_page: bool = True) -> None:
    """A screenshot for a human look, only when the environment variable names a folder (a test run
    leaves nothing in /tmp). ``target``: a page (``full_page``) or a locator (``full_page=False``)."""
    folder = os.environ.get(folder_env)
    if folder:
        path = os.path.join(folder, f"{name}.png")
        target.screenshot(path=path, full_page=True) if full_page else target.screenshot(path=path)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def start_new_chat(page, timeout_ms: int = 10_000) -> None:
    """Click "Neuer Chat" and wait until the chat view is empty.

    gradio's chatbot front end now and then keeps showing the previous answer although the server
    sent the empty chat (seen about once in five runs right after a streamed answer; gradio 6.x,
    the same symptom as gradio-app/fastrtc#302). A user clicks again; so does this helper, once,
    and the caller's checks then show whether the new chat really starts empty."""
    import re

    button = page.get_by_role("button", name=re.compile("Neuer Chat"))
    empty = "() => !document.querySelector('#kp-chat .message')"
    button.click()
    try:
        page.wait_for_function(empty, timeout=timeout_ms)
    except Exception:  # playwright's TimeoutError: the front end kept the old answer on screen
        button.click()
        page.wait_for_function(empty, timeout=timeout_ms)


# What shows a model choice, measured in the page: gr.Radio (the checked option's label, which wraps) or
# gr.Dropdown (its one-line input, whose text may be cut or run under the arrow). ``cut``: some of the
# text is not readable (wider or taller than its box, or under the drop-down's arrow).
_MEASURE_JS = """
const measure = (m, e, radio) => {
    const r = e.getBoundingClientRect();
    let cut = e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1;
    if (!radio) {
        const s = getComputedStyle(e), c = document.createElement('canvas').getContext('2d');
        c.font = s.font;
        const end = r.left + parseFloat(s.paddingLeft) + c.measureText(e.value).width;
        const arrow = m.querySelector('.icon-wrap');
        cut = cut || end > Math.min(r.right - parseFloat(s.paddingRight), arrow ? arrow.getBoundingClientRect().left : Infinity);
    }
    return {text: (radio ? e.innerText : e.value).trim().replace(/\\s+/g, ' '), cut, radio,
            left: r.left, right: r.right, top: r.top, bottom: r.bottom};
};"""


def chosen_model(page, selector: str) -> dict:
    """How the component at ``selector`` shows the chosen model: text, cut, radio (an option, not a
    drop-down's input) and its box (left, right, top, bottom)."""
    return page.evaluate("(sel) => {" + _MEASURE_JS + """
        const m = document.querySelector(sel), radio = m.querySelector('input[type=radio]:checked');
        return measure(m, radio ? radio.closest('label') : m.querySelector('input'), !!radio); }""", selector)


def offered_models(page, selector: str) -> list[dict]:
    """Every option of the component at ``selector`` as :func:`chosen_model` measures it (a drop-down
    shows none until it is opened)."""
    return page.evaluate("(sel) => {" + _MEASURE_JS + """
        const m = document.querySelector(sel);
        return [...m.querySelectorAll('label:has(input[type=radio])')].map((e) => measure(m, e, true)); }""", selector)
