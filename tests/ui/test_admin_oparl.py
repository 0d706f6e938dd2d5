"""Verwaltung › Ratsinformation: every OParl handler checks the admin role on the server."""
from __future__ import annotations

import gradio as gr
import pytest

from ui.security import PermissionDenied


@pytest.fixture
def ctx(tmp_path):
    from settings_factory import make_settings

    from assistant.wiring import App
    from ui.context import PortalContext

    app = App(make_settings(tmp_path / "data", auth={"mode": "password"}))
    c = PortalContext(app)
    c.users.add("erika", "geheim-123", "staff")
    c.users.add("adam", "geheim-123", "admin")
    yield c
    app.stop_jobs()


def test_oparl_handlers_refuse_non_admins_and_work_for_admins(ctx):
    from ui.admin_oparl import OParlUI

    h = OParlUI(ctx)
    for who in (None, "erika", "unbekannt"):
        req = gr.Request(username=who)
        assert h.sources_table(req).empty  # runs on tab select: quiet
        for call in (lambda r: h.add_source("https://ris.example.org/oparl", "rat", 24, r),
                     lambda r: h.sync_now("x", r), lambda r: h.remove_source("x", True, r)):
            with pytest.raises(PermissionDenied):
                call(req)
    assert ctx.audit.entries(action="oparl.source.add") == []

    adam = gr.Request(username="adam")
    msg, table = h.add_source("https://ris.example.org/oparl", "rat", 24, adam)
    assert "eingetragen" in msg and list(table["Adresse"]) == ["https://ris.example.org/oparl"]
    assert list(table["Intervall"]) == ["alle 24 h"]
    msg, _ = h.add_source("javascript:alert(1)", "rat", 0, adam)
    assert "nur http(s)" in msg
    source_id = table["ID"][0]
    msg, _ = h.remove_source(source_id, False, adam)
    assert "bestätigen" in msg
    msg, table = h.remove_source(source_id, True, adam)
    assert "entfernt" in msg and table.empty
    assert [e["actor"] for e in ctx.audit.entries(action="oparl.source.*")] == ["adam", "adam"]


def test_the_admin_area_has_the_ratsinformation_tab(ctx):
    from ui import admin_tab

    with gr.Blocks() as blocks:
        admin_tab.build(ctx)
    names = {dep.api_name for dep in blocks.fns.values()}
    assert {"admin_oparl_add", "admin_oparl_sync", "admin_oparl_remove"} <= names
