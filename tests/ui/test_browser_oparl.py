"""Verwaltung › Ratsinformation in a real browser: an admin adds the test council system,
starts a sync, and the chat then cites the Drucksache by number with a link to the file's
``accessUrl`` at the page. Real portal, real e5 model and Chroma, extractive answers,
Debian's chromium; the OParl server is the one of tests/ingest/oparl on 127.0.0.1."""
from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path

import pytest
from pages import login, open_tab, shot

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TIMEOUT = 60_000
JOB_TIMEOUT_S = 300
PASSWORD = "Admin-Test-2025!"
REPO = Path(__file__).resolve().parents[2]


def _oparl_world():
    """tests/ingest/oparl/oparl_world.py by path (it lives with the importer's tests)."""
    path = REPO / "tests" / "ingest" / "oparl" / "oparl_world.py"
    spec = importlib.util.spec_from_file_location("kiportal_tests_oparl_world", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def oparl_portal(e5_settings, real_embedder):
    from assistant.wiring import App
    from ui.context import PortalContext
    from ui.portal import background_portal

    server = _oparl_world().OParlServer()
    _root, settings = e5_settings(
        "oparl-portal", auth={"mode": "password", "secret": "o" * 40},
        llm={"default": "extraktiv", "models": {"extraktiv": {"mode": "extractive", "label": "Nur Textstellen"}}},
        oparl={"timeout_s": 0.5, "retries": 1, "backoff_s": 0.01, "max_file_bytes": 1024 * 1024},
        limits={"load_timeout_s": 0})
    app = App(settings)
    app.kb._embedder = real_embedder
    ctx = PortalContext(app)
    ctx.users.add("adam", PASSWORD, "admin")
    try:
        with background_portal(ctx) as (url, portal):
            yield url, ctx, portal, server
    finally:
        app.stop_jobs(wait=False)
        server.close()


def test_admin_adds_a_council_system_syncs_and_the_chat_cites_the_drucksache(browser, oparl_portal):
    url, ctx, portal, server = oparl_portal
    page = login(browser, url, "adam", PASSWORD, timeout_ms=TIMEOUT)
    open_tab(page, "Verwaltung")
    open_tab(page, "Ratsinformation")
    page.locator("#admin-oparl-url textarea, #admin-oparl-url input").first.fill(server.system_url)
    page.locator("#admin-oparl-collection textarea, #admin-oparl-collection input").first.fill("rat")
    page.locator("#admin-oparl-interval input").first.fill("0")
    page.locator("#admin-oparl-add").click()
    msg = page.locator("#admin-oparl-msg textarea").first
    page.wait_for_function("el => el.value.includes('eingetragen')", arg=msg.element_handle())

    page.locator("#admin-oparl-table").get_by_text(server.system_url, exact=True).filter(visible=True).first.click()
    id_box = page.locator("#admin-oparl-id textarea, #admin-oparl-id input").first
    page.wait_for_function("el => el.value.length > 8", arg=id_box.element_handle())
    page.locator("#admin-oparl-sync").click()
    page.wait_for_function("el => el.value.includes('Abgleich gestartet')", arg=msg.element_handle())

    jobs = ctx.app.start_jobs().jobs
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = next((j for j in jobs.list(limit=5) if j["kind"] == "oparl"), None)
        if job and job["status"] in ("done", "failed"):
            break
        time.sleep(0.3)
    assert job and job["status"] == "done" and job["result"]["imported"] == 6, job
    shot(page, "oparl-sources", "ADMIN_SCREENSHOTS")

    open_tab(page, "Chat")
    page.locator("#kp-question textarea").fill("Wie oft wird die Biotonne geleert und was kostet sie im Jahr?")
    page.locator("#kp-send").click()
    link = page.locator("#kp-chat .bot .kp-src-link").first
    link.wait_for()
    assert re.match(r"\[1\] Drucksache 2025/117 \(Beschlussvorlage\): Einführung der Biotonne", link.inner_text())
    assert link.get_attribute("href") == server.base + "/files/117a/vorlage-2025-117.pdf#page=2"
    shot(page, "oparl-chat-cited", "ADMIN_SCREENSHOTS")
    assert {e["action"] for e in ctx.audit.entries(actor="adam")} >= {"oparl.source.add", "oparl.sync"}
