"""Verwaltung › Protokoll in a real browser (Debian's chromium via Playwright).

A browser review found the audit log speaking in keys and JSON: actions as „user_add“ or
„upload.rejected“, details as ``{"role": "staff", …}``, and the date fields asking for
„YYYY-MM-DD“. The log now names each known action in German with its key beside it (the filter
still works on the keys), shows details as „Schlüssel: Wert“, as text (a detail holds what
someone typed), and the date fields ask for „JJJJ-MM-TT“. The portal is the real one
(ui.portal.create_app) with password login, on the hash embedder.
"""
from __future__ import annotations

import pytest
from pages import login, open_tab, shot
from portal_world import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TIMEOUT = 30_000
HOSTILE = '<img src=x onerror="window.__xss=1">**fett**'


@pytest.fixture(scope="module")
def audit_portal(tmp_path_factory):
    from portal_world import light_portal

    with light_portal(tmp_path_factory.mktemp("audit-portal") / "data") as portal:
        portal.ctx.users.add("adam", PASSWORD, "admin")
        audit = portal.ctx.audit
        audit.record("user_add", "adam", "kim", {"role": "staff", "groups": ["bauamt", "personalamt"]})
        audit.record("upload.rejected", "adam", HOSTILE, {"code": "type", "collection": "Bauamt"})
        audit.record("login_failed", HOSTILE, "", {"address": "127.0.0.1", "name": HOSTILE})
        audit.record("ein.neuer_schluessel", "cli", "x", {"ok": True})
        yield portal


def rows(page) -> list[list[str]]:
    """The table's rows as shown (gradio draws them as a virtual list of grid rows)."""
    return page.evaluate("""() => [...document.querySelectorAll('#admin-audit-table [role=row].virtual-row')]
        .map((row) => [...row.querySelectorAll('[role=gridcell]')].map((cell) => cell.innerText.trim()))""")


def test_the_audit_log_speaks_german_and_shows_details_as_text(browser, audit_portal):
    page = login(browser, audit_portal.url, "adam", PASSWORD, timeout_ms=TIMEOUT)
    open_tab(page, "Verwaltung")
    open_tab(page, "Protokoll")
    for field in ("#admin-audit-since input", "#admin-audit-until input"):
        page.wait_for_function("(sel) => document.querySelector(sel)?.placeholder === 'JJJJ-MM-TT'", arg=field)
    page.get_by_role("button", name="Anzeigen").click()
    table = page.locator("#admin-audit-table")
    table.get_by_text("Benutzer angelegt (user_add)").filter(visible=True).first.wait_for()
    by_action = {r[2]: r for r in rows(page) if len(r) >= 5}
    assert {"Benutzer angelegt (user_add)", "Hochladen abgelehnt (upload.rejected)", "Anmeldung (login)",
            "Anmeldung fehlgeschlagen (login_failed)", "ein.neuer_schluessel"} <= set(by_action), by_action
    assert by_action["Benutzer angelegt (user_add)"][4] == "role: staff · groups: bauamt, personalamt"
    assert by_action["ein.neuer_schluessel"][4] == "ok: ja"  # an unknown key as it is, its details readable
    # what a user typed stays text: no element made of it, nothing run, no Markdown emphasis
    failed = by_action["Anmeldung fehlgeschlagen (login_failed)"]
    assert failed[1] == HOSTILE and failed[4] == f"address: 127.0.0.1 · name: {HOSTILE}", failed
    assert by_action["Hochladen abgelehnt (upload.rejected)"][3] == HOSTILE
    assert table.locator("img, strong, b").count() == 0
    assert page.evaluate("() => window.__xss === undefined")
    assert "{" not in " ".join(r[4] for r in by_action.values())  # no JSON left
    shot(page, "admin-audit-german", "ADMIN_SCREENSHOTS")

    # the filter by action offers the German names and filters by the key
    page.locator("#admin-audit-action input").click()
    page.get_by_role("option", name="Benutzer angelegt (user_add)", exact=True).click()
    page.get_by_role("button", name="Anzeigen").click()
    page.locator("#admin-audit-note").get_by_text("1 Eintrag", exact=True).wait_for()
    assert [r[2] for r in rows(page)] == ["Benutzer angelegt (user_add)"]
    page.context.close()
