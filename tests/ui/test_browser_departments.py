"""Departments in Debian's chromium: the collection filter offers only readable collections, and a
question answered only in another department's collection gets "keine Informationen"."""
from __future__ import annotations

import pytest
from departments import DEPT_PASSWORD, DEPT_QUESTIONS
from pages import login

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _filter_labels(page) -> list[str]:
    labels = page.locator("#kp-collections label:has(input[type=checkbox])")
    return sorted(x.strip() for x in labels.all_inner_texts())


def test_filter_shows_only_readable_collections_and_other_answers_stay_closed(browser, dept_portal):
    page = login(browser, dept_portal.url, "nora", DEPT_PASSWORD)
    try:
        page.wait_for_function("() => document.querySelectorAll('#kp-collections input[type=checkbox]').length > 0")
        assert _filter_labels(page) == ["allgemein"]
        question = DEPT_QUESTIONS["bauakten"]
        box = page.locator("#kp-question textarea")
        box.fill(question)
        box.press("Enter")
        page.wait_for_function("() => { const b = document.querySelectorAll('#kp-chat .bot');"
                               " return b.length && b[b.length - 1].innerText.includes('keine Informationen'); }",
                               timeout=60_000)
        shown = page.inner_text("body")
        assert dept_portal.leaks("bauakten", shown, typed=question) == []
        assert dept_portal.leaks("bauakten", page.content(), typed=question) == []
    finally:
        page.context.close()
    # the member sees the department's collection in the same filter
    page = login(browser, dept_portal.url, "bob", DEPT_PASSWORD)
    try:
        page.wait_for_function("() => document.querySelectorAll('#kp-collections input[type=checkbox]').length > 1")
        assert _filter_labels(page) == ["allgemein", "bauakten"]
    finally:
        page.context.close()


def test_ticking_a_department_unticks_everyone_in_the_readers_form(browser, dept_portal):
    """The form for a new collection started with "alle" ticked; ticking a department beside it ended in
    an error at "Anlegen" (found by a browser review). "alle" and departments now exclude each other."""
    page = login(browser, dept_portal.url, "adam", DEPT_PASSWORD)
    try:
        page.get_by_role("tab", name="Verwaltung").click()
        page.get_by_role("tab", name="Sammlungen").click()
        form = page.locator("#admin-new-readers")

        def ticked() -> list[str]:
            return sorted(x.strip() for x in form.locator("label:has(input:checked)").all_inner_texts())

        if ticked() != ["alle"]:  # this portal starts new collections without readers
            form.locator("label", has_text="alle").click()
            page.wait_for_function("() => [...document.querySelectorAll('#admin-new-readers input:checked')].length === 1")
        form.locator("label", has_text="bauamt").click()
        page.wait_for_function("() => !document.querySelector('#admin-new-readers label:has(input:checked)')"
                               "?.innerText.includes('alle')")
        assert ticked() == ["bauamt"]
        form.locator("label", has_text="personalamt").click()
        page.wait_for_timeout(500)
        assert ticked() == ["bauamt", "personalamt"]
        form.locator("label", has_text="alle").click()
        page.wait_for_function("() => document.querySelectorAll('#admin-new-readers input:checked').length === 1")
        assert ticked() == ["alle"]
    finally:
        page.context.close()
