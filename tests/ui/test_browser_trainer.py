"""The trainer mode in a real browser: Debian's chromium driven by Playwright for Python.

Same portal as tests/ui/test_trainer_api.py (password login, hash embedder, scripted
"lokal" model). Never `playwright install`: the system chromium is used.
"""
from __future__ import annotations

import re

import pytest
from pages import chosen_model, login, offered_models, open_tab, shot

from test_trainer_api import INVENTED, PASSWORD, trainer_portal  # noqa: F401  (module-scoped server fixture)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TIMEOUT = 30_000
# the windows of a visual review: a laptop's and a phone's
VIEWS = {"laptop": ({"width": 1366, "height": 768}, False), "phone": ({"width": 390, "height": 844}, True)}


def test_trainer_opens_the_box_compares_and_runs_a_quiz(browser, trainer_portal):  # noqa: F811
    page = login(browser, trainer_portal.url, "tina", PASSWORD, timeout_ms=TIMEOUT)
    open_tab(page, "KI-Kompass")

    # Blick unter die Haube
    page.locator("#kp-tr-question textarea").fill("Was regelt das Zaunkönig-Protokoll?")
    page.locator("#kp-tr-ask").click()
    inspect = page.locator("#kp-tr-inspect")
    inspect.get_by_text("Prompt (genau so an das Modell gesendet)").wait_for()
    assert inspect.get_by_text("Gefundene Textstellen").is_visible()
    assert "zaunkoenig.txt" in inspect.inner_text()
    # the hostile passage is shown as text, never run
    assert "<script>window.__xss=1</script>" in inspect.inner_text()
    assert page.evaluate("() => window.__xss === undefined")
    assert inspect.locator("script, img").count() == 0
    shot(page, "trainer-inspect", "TRAINER_SCREENSHOTS")

    # with vs. without documents
    open_tab(page, "Vergleich")
    page.locator("#kp-tr-c-question textarea").fill("Wie heißt der städtische Server für die grüne Zone?")
    page.locator("#kp-tr-compare").click()
    result = page.locator("#kp-tr-compare-result")
    result.get_by_text(INVENTED).wait_for()
    assert "KRN-KI-01 [1]" in result.inner_text()
    assert "Ohne Dokumente" in result.inner_text()
    shot(page, "trainer-compare", "TRAINER_SCREENSHOTS")

    # starter plan, session, open the first quiz question
    open_tab(page, "Schulungsplan & Sitzung")
    page.locator("#kp-tr-plans").click()
    page.get_by_text("Planübersicht").click()
    page.locator("#kp-tr-plan-html").get_by_text("Was der Assistent kann – und was nicht").first.wait_for()
    # the plan and the quiz question by the words a trainer reads, not by their ids
    assert page.locator("#kp-tr-plan input").input_value() == "KI-Kompass: sicher arbeiten mit dem KI-Portal"
    assert page.locator("#kp-tr-quiz input").input_value() == \
        "Was tut der Assistent, wenn die Antwort nicht in den Dokumenten steht?"
    page.locator("#kp-tr-start").click()
    info = page.locator("#kp-tr-session-info")
    info.get_by_text("Teilnahmecode").wait_for()
    code = re.search(r"Teilnahmecode: ([A-Z0-9]{6})", info.inner_text()).group(1)
    page.locator("#kp-tr-quiz-open").click()
    page.locator("#kp-tr-quiz-result").get_by_text("Freigegeben").wait_for()

    # a participant answers, without the trainer ever seeing who
    staff = login(browser, trainer_portal.url, "anna", PASSWORD, timeout_ms=TIMEOUT)
    open_tab(staff, "Schulung")
    staff.locator("#kp-join-code input").fill(code)
    staff.locator("#kp-join").click()
    staff.locator("#kp-quiz-question").get_by_text("Was tut der Assistent").wait_for()
    staff.get_by_label("Er sagt, dass er es nicht weiß, und zeigt die nächstliegenden Textstellen.").check()
    staff.locator("#kp-quiz-send").click()
    staff.locator("#kp-quiz-status").get_by_text("Ihre Antwort ist gespeichert").wait_for()
    shot(staff, "participant-quiz", "TRAINER_SCREENSHOTS")

    page.locator("#kp-tr-quiz-results").click()
    results = page.locator("#kp-tr-quiz-result")
    results.get_by_text("Anteil richtig").wait_for()
    text = results.inner_text()
    assert "Teilnehmende mit mindestens einer Antwort: 1" in text and "100 %" in text
    assert "1 Antwort · Anteil richtig" in text and "Antworten" not in text  # not "1 Antworten"
    assert "anna" not in text
    shot(page, "trainer-results", "TRAINER_SCREENSHOTS")

    # the projector view shows the result in large type
    open_tab(page, "Projektoransicht")
    page.locator("#kp-tr-proj-refresh").click()
    slide = page.locator("#kp-tr-projector .kp-slide")
    slide.get_by_text("Was tut der Assistent").wait_for()
    assert "1 Antwort · richtig: 100 %" in slide.inner_text()
    assert float(slide.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")) >= 24
    shot(page, "trainer-projector", "TRAINER_SCREENSHOTS")
    page.context.close()
    staff.context.close()


def test_staff_does_not_see_the_trainer_tab(browser, trainer_portal):  # noqa: F811
    page = login(browser, trainer_portal.url, "anna", PASSWORD, timeout_ms=TIMEOUT)
    page.get_by_role("tab", name="Schulung").wait_for()  # visible once the session has loaded
    trainer_tab = page.get_by_role("tab", name="KI-Kompass")
    assert trainer_tab.count() == 0 or not trainer_tab.is_visible()
    assert page.locator("#kp-tr-ask").count() == 0 or not page.locator("#kp-tr-ask").is_visible()
    page.context.close()


def readable(shown: dict, label: str, viewport: dict) -> None:
    """``shown`` (pages.chosen_model) is the whole ``label``, not cut, inside the window's width."""
    assert shown["text"] == label and not shown["cut"], (shown, label)
    assert shown["left"] >= 0 and shown["right"] <= viewport["width"], (shown, viewport)


@pytest.mark.parametrize("view", VIEWS)
def test_the_trainers_model_choices_read_in_full_on_a_laptop_and_a_phone(browser, trainer_portal, view):  # noqa: F811
    """A visual review found the trainer's model drop-downs cutting the chosen model's label as the
    chat's did (a phone: „Grün · Testmo…“, the comparison's two side by side „Grün · Nur Text“). They
    are now options whose labels wrap, as in the chat: the model of the tab and the comparison's two
    read in full within the window, every model a trainer may choose too; the comparison's two stand
    side by side on a laptop and one under the other on a phone; and the models chosen are compared."""
    from assistant.model_choice import default_model, model_choices

    settings = trainer_portal.ctx.app.settings
    models = model_choices(settings, "trainer")
    label = {key: text for text, key in models}
    viewport, phone = VIEWS[view]
    page = login(browser, trainer_portal.url, "tina", PASSWORD, timeout_ms=TIMEOUT, viewport=viewport, phone=phone)
    open_tab(page, "KI-Kompass")
    page.locator("#kp-tr-model").scroll_into_view_if_needed()
    shot(page, f"trainer-model-{view}", "TRAINER_SCREENSHOTS", full_page=False)
    readable(chosen_model(page, "#kp-tr-model"), label[default_model(settings, "trainer")], viewport)
    options = offered_models(page, "#kp-tr-model")
    assert [o["text"] for o in options] == [text for text, _ in models], options
    for option in options:
        readable(option, option["text"], viewport)

    open_tab(page, "Vergleich")
    page.locator("#kp-tr-c-kind label", has_text="Zwei Modelle").click()
    left, right = page.locator("#kp-tr-c-left-model"), page.locator("#kp-tr-c-right-model")
    right.wait_for()
    right.locator("label", has_text=label["gelb"]).click()
    right.scroll_into_view_if_needed()
    shot(page, f"trainer-compare-{view}", "TRAINER_SCREENSHOTS", full_page=False)
    chosen = {side: chosen_model(page, f"#kp-tr-c-{side}-model") for side in ("left", "right")}
    readable(chosen["left"], label[default_model(settings, "trainer")], viewport)
    readable(chosen["right"], label["gelb"], viewport)
    for side in ("left", "right"):
        for option in offered_models(page, f"#kp-tr-c-{side}-model"):
            readable(option, option["text"], viewport)
    a, b = left.bounding_box(), right.bounding_box()
    if phone:  # one under the other, each the screen's width (beside each other: a few words a line)
        assert b["y"] >= a["y"] + a["height"] and b["width"] >= 0.8 * viewport["width"], (a, b)
    else:  # side by side
        assert b["x"] >= a["x"] + a["width"] and abs(a["y"] - b["y"]) < 2, (a, b)
    # the question and the kind of comparison too (beside each other on a phone the kinds broke after every word)
    q, k = page.locator("#kp-tr-c-question").bounding_box(), page.locator("#kp-tr-c-kind").bounding_box()
    if phone:
        assert k["y"] >= q["y"] + q["height"] - 1 and k["width"] >= 0.8 * viewport["width"], (q, k)
    else:
        assert abs(q["y"] - k["y"]) < 2, (q, k)
    page.locator("#kp-tr-c-question textarea").fill("Wie heißt der städtische Server für die grüne Zone?")
    page.locator("#kp-tr-compare").click()
    result = page.locator("#kp-tr-compare-result")
    result.get_by_text("Modell EU-Testmodell").first.wait_for()
    assert "Modell Testmodell lokal" in result.inner_text()
    page.context.close()
