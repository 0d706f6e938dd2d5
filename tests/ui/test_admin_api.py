"""Role checks of the admin area: every handler refuses non-admins on the server.

Gradio exposes each event as an HTTP endpoint, so these tests call the handlers the
way the server does — with a ``gr.Request`` — and, once, over HTTP with gradio_client.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from ui.security import PermissionDenied

PASSWORD = "geheim-123"


@pytest.fixture
def ctx(tmp_path):
    from conftest import make_settings

    from assistant.wiring import App
    from ui.context import PortalContext

    app = App(make_settings(tmp_path / "data", auth={"mode": "password"}))
    c = PortalContext(app)
    c.users.add("erika", PASSWORD, "staff")
    c.users.add("tina", PASSWORD, "trainer")
    c.users.add("adam", PASSWORD, "admin")
    yield c
    app.stop_jobs()


@pytest.fixture
def demo(ctx):
    from ui import admin_tab

    with gr.Blocks() as blocks:
        with gr.Tab("Verwaltung"):
            admin_tab.build(ctx)
    return blocks


def _req(name: str | None) -> gr.Request:
    return gr.Request(username=name)


def _admin_handlers(demo):
    """(api_name, bound method) of every event whose handler is an AdminUI method."""
    from ui.admin_tab import AdminUI

    out = []
    for dep in demo.fns.values():
        fn = dep.fn
        if getattr(fn, "__self__", None) is not None and isinstance(fn.__self__, AdminUI):
            out.append((dep.api_name, fn))
    return out


def _call(fn, request):
    """Call a handler with harmless arguments, as the server would."""
    kwargs = {}
    for name, p in inspect.signature(fn).parameters.items():
        if name == "request":
            kwargs[name] = request
        elif name == "evt":
            kwargs[name] = gr.SelectData(None, {"index": [0, 0], "value": "x", "row_value": ["x"] * 11})
        elif name == "progress":
            kwargs[name] = lambda *a, **k: None
        elif p.default is not inspect.Parameter.empty:
            kwargs[name] = p.default
        else:
            kwargs[name] = None
    return fn(**kwargs)


QUIET = {"documents_on_load", "collection_dropdowns", "jobs_table", "ocr_review_on_load",
         "show_readers"}  # with no collection chosen (the page load empties the choice for everyone)


def test_every_admin_handler_refuses_non_admins(demo):
    handlers = _admin_handlers(demo)
    names = {fn.__name__ for _, fn in handlers}
    # the whole admin surface is wired (a new handler without a test shows up here)
    assert {"documents", "select_document", "document_details", "delete_document", "reindex_document",
            "move_document", "upload", "replace_document", "reindex", "sync", "jobs_table", "create_collection",
            "rename_collection", "delete_collection", "classify_collection", "health", "repair", "audit_table",
            "audit_export", "dashboard", "documents_on_load", "collection_dropdowns", "collections_table"} <= names
    for who in (None, "erika", "tina", "unbekannt"):
        for api_name, fn in handlers:
            if fn.__name__ in QUIET:
                out = _call(fn, _req(who))
                frames = [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, pd.DataFrame)]
                assert all(f.empty for f in frames), (who, api_name)
                continue
            with pytest.raises(PermissionDenied):
                _call(fn, _req(who))
        show_readers = next(fn for _, fn in handlers if fn.__name__ == "show_readers")
        with pytest.raises(PermissionDenied):  # a chosen collection's readers: admins only
            show_readers("allgemein", request=_req(who))


def test_admin_gets_data_and_actions_are_audited(ctx, demo, tmp_path):
    from ui.admin_tab import AdminUI

    h = AdminUI(ctx)
    adam = _req("adam")
    msg, table = h.create_collection("Bauamt", "intern", adam)
    assert "angelegt" in msg and list(table["Sammlung"]) == ["Bauamt"]
    from ui.file_values import RECEIVED, ensure_private_gradio_folder

    f = ensure_private_gradio_folder() / "test-admin-api" / "hund.txt"  # where gradio keeps an upload, recorded as adam's
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("Die Hundesteuer beträgt 120 Euro.\n", encoding="utf-8")
    RECEIVED.add_upload(f, "adam")
    stray = tmp_path / "hund.txt"  # any other server path is refused (tests/security replays it over HTTP)
    stray.write_text("x", encoding="utf-8")
    with pytest.raises(gr.Error, match="nicht über das Portal hochgeladen"):
        h.upload([str(stray)], "Bauamt", adam, progress=lambda *a, **k: None)
    msg, docs, cleared = h.upload([str(f)], "Bauamt", adam, progress=lambda *a, **k: None)
    assert "1 Datei übernommen" in msg and list(docs["Datei"]) == ["hund.txt"] and cleared is None
    doc_id = docs["ID"][0]
    assert re.fullmatch(rf"\[öffnen\]\(doc/{doc_id}/text\?t=\d+\.[\w-]+\)", docs["Öffnen"][0]), docs["Öffnen"][0]
    assert "Dokument öffnen" in h.document_details(doc_id, adam)
    assert not h.documents_on_load(adam).empty and h.documents_on_load(_req("erika")).empty
    report, colls, disk = h.health(adam)
    assert "stimmen überein" in report and "Uploads" in list(disk["Bereich"])
    table, note, _ = h.audit_table(None, "adam", None, None, "", adam)
    assert {"collection.create", "upload"} <= set(table["Aktion"])
    path = h.audit_export(None, "", None, None, "", adam)
    assert Path(path).read_text(encoding="utf-8").startswith("zeit;akteur")
    figs = h.dashboard(30, adam)
    assert len(figs) == 6
    msg, docs, _ = h.delete_document(doc_id, True, adam)
    assert "Gelöscht" in msg and docs.empty
    assert {e["actor"] for e in ctx.audit.entries(action="delete")} == {"adam"}



def test_admin_cannot_sync_gradios_upload_folder(ctx):
    """„Ordner abgleichen“ with gradio's upload folder, where other users' uploads and exports wait:
    refused for the folder, a folder in it and one holding it, and no job is started."""
    from ui.admin_tab import AdminUI
    from ui.file_values import ensure_private_gradio_folder

    folder = ensure_private_gradio_folder()
    upload = folder / "test-admin-sync" / "antrag.txt"  # where gradio keeps someone's upload
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_text("Antrag von Frau Beispiel auf Wohngeld.\n", encoding="utf-8")
    h, adam = AdminUI(ctx), _req("adam")
    for target in (folder, upload.parent, folder.parent):
        msg = h.sync(str(target), None, adam)
        assert msg.startswith("Dieser Ordner kann nicht abgeglichen werden"), (target, msg)
    assert "Upload-Ordner des Portals" in h.sync(str(upload.parent), None, adam)
    assert h.jobs_table(adam).empty and ctx.app.catalog.documents() == []


@pytest.mark.parametrize("env", ["private", "unset"])
def test_the_admin_protects_the_folder_gradio_uploads_to(monkeypatch, tmp_path, env):
    """assistant.wiring reads gradio's folder from the environment (it does not import gradio):
    the same folder gradio itself uses, whether the portal chose one or not."""
    from assistant.wiring import gradio_upload_folder
    from ui.file_values import gradio_folder

    if env == "private":
        monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "kiportal-gradio-x"))
    else:
        monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    assert gradio_upload_folder().resolve() == gradio_folder()


def test_staff_api_calls_over_http_are_refused(ctx, demo):
    """What an attacker with a staff login would do: call the endpoints directly."""
    from gradio_client import Client

    from ui.portal import free_port

    def auth(username, password):
        return ctx.users.verify(username, password) is not None

    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, auth=auth, prevent_thread_lock=True,
                        quiet=True, show_error=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        staff = Client(url, auth=("erika", PASSWORD), verbose=False)
        for api_name, args in (("/admin_documents", ("", "(alle)", "(alle)")),
                               ("/admin_create_collection", ("Hacker", "intern")),
                               ("/admin_health", ()), ("/admin_repair", ()),
                               ("/admin_audit_export", (None, "", None, None, "")),
                               # an OParl source is a URL the server fetches: a staff call must not add one
                               ("/admin_oparl_add", ("http://127.0.0.1:9/oparl", "rat", 1)),
                               ("/admin_oparl_sync", ("x",)), ("/admin_oparl_remove", ("x", True))):
            with pytest.raises(Exception, match="Keine Berechtigung"):
                staff.predict(*args, api_name=api_name)
        assert [c["name"] for c in ctx.app.catalog.collections()] == []
        assert ctx.audit.entries(action="oparl.*") == [] and ctx.app.start_jobs().oparl.sources() == []
        admin = Client(url, auth=("adam", PASSWORD), verbose=False)
        msg, _table = admin.predict("Bauamt", "intern", api_name="/admin_create_collection")
        assert "angelegt" in msg
    finally:
        demo.close()


def test_admin_sets_readers_and_groups_in_the_tab(tmp_path):
    """The Verwaltung tab's department handlers: readers per collection, groups per user, audited."""
    import json

    from conftest import make_settings

    from assistant.wiring import App
    from ui.admin_tab import AdminUI
    from ui.context import PortalContext

    app = App(make_settings(tmp_path / "data", auth={"mode": "password"},
                            access={"groups": ["bauamt", "personalamt"]}))
    ctx = PortalContext(app)
    ctx.users.add("adam", PASSWORD, "admin")
    ctx.users.add("bob", PASSWORD, "staff")
    h, adam = AdminUI(ctx), _req("adam")
    msg, table = h.create_collection("bauakten", "intern", adam, ["bauamt"])
    assert "angelegt" in msg and list(table["Lesen dürfen"]) == ["bauamt"]
    msg, table = h.create_collection("offen", "intern", adam)  # default readers: alle
    assert dict(zip(table["Sammlung"], table["Lesen dürfen"]))["offen"] == "alle"
    msg, table = h.set_readers("bauakten", ["bauamt", "personalamt"], adam)
    assert "bauamt, personalamt" in msg
    info, boxes = h.show_readers("bauakten", adam)
    assert "adam (admin)" in info and "bob" not in info and boxes["value"] == ["bauamt", "personalamt"]
    msg, _ = h.set_readers("bauakten", ["alle", "bauamt"], adam)
    assert "nicht mit Gruppen mischen" in msg
    assert h.user_choices(adam)["choices"] == ["adam", "bob"]
    assert "bauamt" in h.set_user_groups("bob", ["bauamt"], adam)
    assert h.user_groups("bob", adam)["value"] == ["bauamt"]
    assert "Unbekannte Gruppe" in h.set_user_groups("bob", ["kaemmerei"], adam)
    info, _ = h.show_readers("bauakten", adam)
    assert "bob (staff)" in info
    (entry,) = ctx.audit.entries(action="user_groups")
    assert entry["actor"] == "adam" and json.loads(entry["detail"]) == {"before": [], "after": ["bauamt"]}
    assert json.loads(ctx.audit.entries(action="collection.readers")[0]["detail"]) == {
        "before": ["bauamt"], "after": ["bauamt", "personalamt"]}
    for fn, args in ((h.set_readers, ("bauakten", ["alle"])), (h.set_user_groups, ("bob", []))):
        with pytest.raises(PermissionDenied):
            fn(*args, _req("bob"))
