"""Departments in Debian's chromium: the collection filter offers only readable collections, a
question answered only in another department's collection gets "keine Informationen", and an admin
creates a department in the portal and gives it to a user."""
from __future__ import annotations

import time

import pytest
from departments import DEPT_PASSWORD, DEPT_QUESTIONS
from pages import login, open_tab

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


def _wait_value(locator, text: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    value = ""
    while time.monotonic() < deadline:
        value = locator.input_value()
        if text in value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {value!r}")


def test_admin_creates_a_department_and_gives_it_to_a_user(browser, dept_portal):
    """A browser review found no way to create a department in the portal: Verwaltung › Benutzer ›
    Gruppen (Ämter) now creates one, every group form offers it at once (no restart), it is ticked for
    a user, and a group in use is not removed; the portal's data is as before afterwards."""
    ctx = dept_portal.ctx
    dep = ctx.app.departments
    page = login(browser, dept_portal.url, "adam", DEPT_PASSWORD)
    try:
        open_tab(page, "Verwaltung")
        open_tab(page, "Benutzer")
        page.locator("#admin-groups-table").get_by_text("fest eingestellt (Konfiguration)").filter(visible=True).first.wait_for()
        page.locator("#admin-new-group input, #admin-new-group textarea").first.fill("ordnungsamt")
        page.locator("#admin-add-group").click()
        msg = _wait_value(page.locator("#admin-groups-msg textarea").first, "angelegt")
        assert "„ordnungsamt“ angelegt" in msg
        page.locator("#admin-groups-table").get_by_text("im Portal angelegt").filter(visible=True).first.wait_for()
        # offered at once for a new user, a user and (Sammlungen) a collection's readers
        for form in ("#admin-new-user-groups", "#admin-group-set"):
            page.locator(form).locator("label", has_text="ordnungsamt").wait_for()
        page.locator("#admin-user-table").get_by_text("nora", exact=True).filter(visible=True).first.click()
        page.wait_for_function("() => document.querySelector('#admin-group-user input')?.value === 'nora'")
        page.locator("#admin-group-set").locator("label", has_text="ordnungsamt").click()
        page.locator("#admin-set-groups").click()
        _wait_value(page.locator("#admin-group-msg textarea").first, "ordnungsamt")
        assert ctx.users.get("nora").groups == ("ordnungsamt",)
        page.locator("#admin-groups-table").get_by_text("nora", exact=True).filter(visible=True).first.wait_for()
        # in use: kept, and the message names the user
        page.locator("#admin-remove-group-name input").first.click()
        page.get_by_role("option", name="ordnungsamt", exact=True).click()
        page.locator("#admin-remove-group").click()
        msg = _wait_value(page.locator("#admin-groups-msg textarea").first, "Nicht entfernt")
        assert "noch verwendet" in msg and "nora" in msg and "ordnungsamt" in dep.known_groups
        open_tab(page, "Sammlungen")
        page.locator("#admin-readers").locator("label", has_text="ordnungsamt").wait_for()
        page.locator("#admin-new-readers").locator("label", has_text="ordnungsamt").wait_for()
    finally:
        page.context.close()
        ctx.users.set_groups("nora", [])
        if "ordnungsamt" in dep.group_store.names():
            dep.remove_group("ordnungsamt", actor="test")
    assert [e["actor"] for e in ctx.audit.entries(action="group.create")][-1:] == ["adam"]
