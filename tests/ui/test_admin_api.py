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
    from settings_factory import make_settings

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


QUIET = {"documents_on_load", "collection_dropdowns", "jobs_table", "ocr_review_on_load", "users_on_load",
         "groups_on_load", "groups_table_on_load",
         "show_readers"}  # with no collection chosen (the page load empties the choice for everyone)


def test_every_admin_handler_refuses_non_admins(demo):
    handlers = _admin_handlers(demo)
    names = {fn.__name__ for _, fn in handlers}
    # the whole admin surface is wired (a new handler without a test shows up here)
    assert {"documents", "select_document", "document_details", "delete_document", "reindex_document",
            "move_document", "upload", "replace_document", "reindex", "sync", "jobs_table", "create_collection",
            "rename_collection", "delete_collection", "classify_collection", "health", "repair", "audit_table",
            "audit_export", "dashboard", "documents_on_load", "collection_dropdowns", "collections_table",
            "users_on_load", "users_table", "select_user", "user_role", "add_user", "set_user_role",
            "reset_user_password", "remove_user", "groups_table", "groups_on_load", "create_group",
            "remove_group"} <= names
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
    assert {"Sammlung angelegt (collection.create)", "Dokument hochgeladen (upload)"} <= set(table["Aktion"])
    path = h.audit_export(None, "", None, None, "", adam)
    assert Path(path).read_text(encoding="utf-8").startswith("zeit;akteur")
    out = h.dashboard(30, adam)
    assert len(out) == 7 and list(out[-1].columns) == ["Zeit", "Bewertung", "Frage", "Antwort", "Kommentar", "Quellen"]
    msg, docs, _ = h.delete_document(doc_id, True, adam)
    assert "Gelöscht" in msg and docs.empty
    assert {e["actor"] for e in ctx.audit.entries(action="delete")} == {"adam"}


def test_the_audit_log_names_actions_in_german_and_shows_details_as_plain_text(ctx):
    """Verwaltung › Protokoll showed raw keys and JSON (a browser review). Known actions get a German name
    with the key beside it, unknown keys stay as they are, details read "Schlüssel: Wert", as text
    (hidden characters written out as the log keeps them), and the filter still takes the keys."""
    from ui.admin_tab import ALL_LABEL, AdminUI

    h, adam = AdminUI(ctx), _req("adam")
    hostile = '<img src=x onerror="alert(1)">**fett**'
    ctx.audit.record("user_add", "adam", "kim", {"role": "staff", "groups": ["bauamt", "personalamt"]})
    ctx.audit.record("collection.create", "adam", "Bauamt", {})
    ctx.audit.record("login_failed", "mallory", "", {"name": hostile + "\u202egnp.exe", "tries": 3, "held": False,
                                                     "before": None, "filter": {"action": "x", "n": 2}})
    ctx.audit.record("tool_einfach", "u-123", "run1", {"status": "ok"})
    ctx.audit.record("ganz.neu", "cli", "", {})
    table, note, action = h.audit_table(None, "", None, None, "", adam)
    shown = {row["Aktion"]: row["Details"] for row in table.to_dict("records")}
    assert shown == {
        "Benutzer angelegt (user_add)": "role: staff · groups: bauamt, personalamt",
        "Sammlung angelegt (collection.create)": "",
        "Anmeldung fehlgeschlagen (login_failed)": (f"name: {hostile}\\u202egnp.exe · tries: 3 · held: nein · "
                                                    "before: – · filter: (action: x, n: 2)"),
        "Werkzeug Einfache Sprache (tool_einfach)": "status: ok",
        "ganz.neu": "",
    }
    assert note == "5 Einträge"
    choices = action.constructor_args["choices"]
    assert choices[0] == (ALL_LABEL, ALL_LABEL) and ("Benutzer angelegt (user_add)", "user_add") in choices
    assert ("ganz.neu", "ganz.neu") in choices

    table, note, _ = h.audit_table("user_add", "", None, None, "", adam)  # the filter takes the key
    assert list(table["Aktion"]) == ["Benutzer angelegt (user_add)"] and note == "1 Eintrag"
    table, _, _ = h.audit_table("collection.*", "", None, None, "", adam)
    assert list(table["Aktion"]) == ["Sammlung angelegt (collection.create)"]


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


def test_admin_cannot_sync_another_portal_process_upload_folder(ctx, tmp_path, monkeypatch):
    """A second portal process (a replica) on the same machine keeps its users' uploads in a folder of
    the same making: refused as well, and gradio's default folder of other gradio apps too."""
    import tempfile

    from ui.admin_tab import AdminUI

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    other = tmp_path / "kiportal-gradio-x7f3k2"
    (other / "upload-abc").mkdir(parents=True)
    (other / "upload-abc" / "antrag.txt").write_text("Antrag von Frau Beispiel.\n", encoding="utf-8")
    (tmp_path / "gradio").mkdir()
    h, adam = AdminUI(ctx), _req("adam")
    for target in (other, other / "upload-abc", tmp_path / "gradio"):
        msg = h.sync(str(target), None, adam)
        assert "anderen Portal-Prozesses" in msg, (target, msg)
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

    from settings_factory import make_settings

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


def test_admin_manages_users_in_the_tab(tmp_path, caplog):
    """Verwaltung > Benutzer: table, create with a one-time password, role, new password, remove behind a
    confirmation; the safety rules and the audit; the password in no log line and no audit entry."""
    import json
    import logging

    from settings_factory import make_settings

    from assistant.wiring import App
    from ui.admin_tab import USER_HEADERS, AdminUI
    from ui.context import PortalContext

    caplog.set_level(logging.DEBUG)
    app = App(make_settings(tmp_path / "data", auth={"mode": "password"}, access={"groups": ["bauamt"]}))
    ctx = PortalContext(app)
    ctx.users.add("adam", PASSWORD, "admin")
    ctx.users.add("bob", PASSWORD, "staff")
    ctx.users.verify("adam", PASSWORD)  # a last login
    h, adam = AdminUI(ctx), _req("adam")

    table = h.users_table(adam)
    assert list(table.columns) == USER_HEADERS
    rows = {r[0]: r[1:] for r in table.values.tolist()}
    assert rows["bob"] == ["Mitarbeitende", "–", "nie"] and rows["adam"][0] == "Administration"
    assert re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", rows["adam"][2])
    assert h.users_on_load(_req("bob")).empty and not h.users_on_load(adam).empty

    msg, table, choices, cleared = h.add_user("clara", "trainer", ["bauamt"], adam)
    password = re.search(r"Startpasswort: (\S+)", msg).group(1)
    assert "angelegt" in msg and "Trainer/in" in msg and cleared == ""
    assert ctx.users.verify("clara", password) is not None and "clara" in choices["choices"]
    assert ["clara", "Trainer/in", "bauamt", "nie"] in table.values.tolist()
    for name, role, groups, refusal in (("clara", "staff", [], "gibt es schon"), ("a/b", "staff", [], "Ungültiger"),
                                        ("dora", "staff", ["kaemmerei"], "Unbekannte Gruppe")):
        msg, *rest = h.add_user(name, role, groups, adam)
        assert msg.startswith("Nicht angelegt") and refusal in msg, msg
    assert ctx.users.get("dora") is None

    assert h.user_role("clara", adam)["value"] == "trainer"
    click = gr.SelectData(None, {"index": [2, 0], "value": "clara", "row_value": ["clara", "Trainer/in", "bauamt", "nie"]})
    assert h.select_user(click, adam)["value"] == "clara"
    msg, table = h.set_user_role("clara", "staff", adam)
    assert "Mitarbeitende" in msg and ctx.users.get("clara").role == "staff"
    msg = h.reset_user_password("clara", adam)
    new = re.search(r"Neues Passwort für „clara“: (\S+)", msg).group(1)
    assert ctx.users.verify("clara", password) is None and ctx.users.verify("clara", new) is not None

    # the safety rules, and removal only with the confirmation ticked
    assert "selbst" in h.set_user_role("adam", "staff", adam)[0] and ctx.users.get("adam").role == "admin"
    assert "eigene Konto" in h.remove_user("adam", True, adam)[0] and ctx.users.get("adam") is not None
    msg, *_ = h.remove_user("clara", False, adam)
    assert "bestätigen" in msg and ctx.users.get("clara") is not None
    msg, table, choices, confirm = h.remove_user("clara", True, adam)
    assert "gelöscht" in msg and ctx.users.get("clara") is None and confirm is False
    assert "clara" not in list(table["Benutzer"]) and "clara" not in choices["choices"]

    trail = {e["action"]: (e["actor"], e["target"], json.loads(e["detail"]))
             for e in ctx.audit.entries(action="user_*")}
    assert trail == {"user_add": ("adam", "clara", {"role": "trainer", "groups": ["bauamt"]}),
                     "user_role": ("adam", "clara", {"before": "trainer", "after": "staff"}),
                     "user_passwd": ("adam", "clara", {"generated": True}),
                     "user_remove": ("adam", "clara", {"role": "staff", "groups": ["bauamt"], "chats": 0,
                                                       "tool_runs": 0, "training_sessions": 0})}
    everything = caplog.text + json.dumps(ctx.audit.entries(limit=1000))
    assert password not in everything and new not in everything


def test_with_sso_login_the_tab_makes_no_passwords(tmp_path):
    from settings_factory import make_settings

    from assistant.wiring import App
    from ui import admin_tab
    from ui.admin_tab import AdminUI
    from ui.context import PortalContext

    app = App(make_settings(tmp_path / "data", auth={"mode": "header", "trusted_proxies": ["127.0.0.2"]}))
    ctx = PortalContext(app)
    ctx.users.add("bob", PASSWORD, "staff")
    h = AdminUI(ctx)
    with gr.Blocks() as blocks:
        admin_tab.build(ctx)
    info = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "admin-users-info")
    assert "SSO-Proxy" in info.value and "nicht verwaltet" in info.value
    add = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "admin-add-user")
    assert add.interactive is False
    from types import SimpleNamespace

    ctx.users.add("adam", PASSWORD, "admin")  # an admin by the stored role, named by the proxy's header
    adam = SimpleNamespace(client=SimpleNamespace(host="127.0.0.2"), headers={"X-Remote-User": "adam"})
    assert h.users_table(adam)["Benutzer"].tolist() == ["adam", "bob"]
    msg, *_ = h.add_user("clara", "staff", [], adam)
    assert "SSO-Proxy" in msg and ctx.users.get("clara") is None
    assert "SSO-Proxy" in h.reset_user_password("bob", adam)
    assert ctx.users.verify("bob", PASSWORD) is not None
    msg, _ = h.set_user_role("bob", "trainer", adam)
    assert ctx.users.get("bob").role == "trainer"
    app.stop_jobs()


def test_the_review_table_shows_people_s_words_as_they_were_stored():
    """Direction controls go (a comment "Links\u202egnp.exe" showed as "Linksexe.png", an attacker's
    probe); no person; a question the privacy setting hides says so."""
    from assistant.dashboard import FeedbackItem
    from ui.admin_tab import FEEDBACK_HEADERS, feedback_table

    table = feedback_table([FeedbackItem(0.0, -1, "Frage\u202eiz", "Antwort", "Links\u202egnp.exe\u202c", ["Satzung, S. 2"]),
                            FeedbackItem(0.0, 1, None, "", "", [])])
    assert list(table.columns) == FEEDBACK_HEADERS
    assert table.iloc[0].tolist()[1:] == ["nicht hilfreich", "Frageiz", "Antwort", "Linksgnp.exe", "Satzung, S. 2"]
    assert table.iloc[1].tolist()[1:3] == ["hilfreich", "(ausgeblendet: Datenschutzeinstellung)"]


def _choices(update) -> list:
    return [c[1] if isinstance(c, (tuple, list)) else c for c in update["choices"]]


def test_admin_creates_and_removes_groups_in_the_tab(tmp_path):
    """Verwaltung › Benutzer › Gruppen (Ämter): a new group is offered at once for users and collection
    readers; configured groups stay; a group in use is kept, naming who uses it; every change audited."""
    from settings_factory import make_settings

    from assistant.wiring import App
    from ui.admin_tab import GROUP_HEADERS, AdminUI
    from ui.context import PortalContext

    app = App(make_settings(tmp_path / "data", auth={"mode": "password"}, access={"groups": ["bauamt"]}))
    ctx = PortalContext(app)
    ctx.users.add("adam", PASSWORD, "admin")
    ctx.users.add("bob", PASSWORD, "staff")
    h, adam = AdminUI(ctx), _req("adam")
    table, removable, new_user_groups, user_groups, new_readers, readers = h.groups_on_load(adam)
    assert table.values.tolist() == [["bauamt", "fest eingestellt (Konfiguration)", "–", "–"]]
    assert removable["choices"] == [] and _choices(user_groups) == ["bauamt"]

    msg, table, removable, new_user_groups, user_groups, new_readers, readers, cleared = h.create_group("ordnungsamt", adam)
    assert "„ordnungsamt“ angelegt" in msg and cleared == ""
    assert list(table.columns) == GROUP_HEADERS and list(table["Gruppe"]) == ["bauamt", "ordnungsamt"]
    assert _choices(removable) == ["ordnungsamt"]
    assert _choices(new_user_groups) == _choices(user_groups) == ["bauamt", "ordnungsamt"]
    assert _choices(new_readers) == _choices(readers) == ["alle", "bauamt", "ordnungsamt"]
    for name, refusal in (("ordnungsamt", "gibt es schon"), ("bauamt", "gibt es schon"), ("alle", "alle Benutzer"),
                          ("Ordnungs Amt", "Ungültiger Gruppenname"), ("", "Bitte einen Gruppennamen")):
        msg, *rest = h.create_group(name, adam)
        assert msg.startswith("Nicht angelegt") and refusal in msg, msg

    # the new group is assignable at once: a user, a collection's readers
    assert "ordnungsamt" in h.set_user_groups("bob", ["ordnungsamt"], adam)
    h.create_collection("ordnung", "intern", adam)
    msg, _ = h.set_readers("ordnung", ["ordnungsamt"], adam)
    assert "ordnungsamt" in msg
    row = h.groups_table(adam).set_index("Gruppe").loc["ordnungsamt"]
    assert row["Benutzer"] == "bob" and row["Sammlungen (Leserecht)"] == "ordnung"
    msg, *rest = h.remove_group("ordnungsamt", adam)
    assert msg.startswith("Nicht entfernt") and "Benutzer: bob" in msg and "ordnung" in msg
    assert "ordnungsamt" in ctx.app.departments.known_groups
    msg, *_ = h.remove_group("bauamt", adam)
    assert "nur dort entfernen" in msg
    h.set_user_groups("bob", [], adam)
    h.set_readers("ordnung", [], adam)
    msg, table, removable, new_user_groups, *_ = h.remove_group("ordnungsamt", adam)
    assert msg == "Gruppe „ordnungsamt“ entfernt." and list(table["Gruppe"]) == ["bauamt"]
    assert removable["choices"] == [] and _choices(new_user_groups) == ["bauamt"]
    trail = [(e["action"], e["actor"], e["target"]) for e in ctx.audit.entries(action="group.*")]
    assert sorted(trail) == [("group.create", "adam", "ordnungsamt"), ("group.remove", "adam", "ordnungsamt")]
    table, *_ = h.audit_table("group.*", "", None, None, "", adam)
    assert set(table["Aktion"]) == {"Gruppe angelegt (group.create)", "Gruppe entfernt (group.remove)"}
    # staff and trainers: refused in the handler, and quietly nothing on page load
    ctx.users.add("tina", PASSWORD, "trainer")
    for who in ("bob", "tina"):
        for fn, args in ((h.create_group, ("x",)), (h.remove_group, ("x",)), (h.groups_table, ())):
            with pytest.raises(PermissionDenied):
                fn(*args, _req(who))
        table, *rest = h.groups_on_load(_req(who))
        assert table.empty
    app.stop_jobs()


def test_groups_over_http_admin_only(ctx, demo):
    """The group door over HTTP, as the browser and an attacker call it: staff and trainers are refused
    (nothing created, nothing removed, nothing audited); the admin creates, lists and removes."""
    from gradio_client import Client

    from ui.portal import free_port

    def auth(username, password):
        return ctx.users.verify(username, password) is not None

    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, auth=auth, prevent_thread_lock=True,
                        quiet=True, show_error=True)
    dep = ctx.app.departments
    try:
        url = f"http://127.0.0.1:{port}/"
        admin = Client(url, auth=("adam", PASSWORD), verbose=False)
        msg, *_ = admin.predict("ordnungsamt", api_name="/admin_create_group")
        assert "angelegt" in msg and dep.known_groups == ["ordnungsamt"]
        for who in ("erika", "tina"):
            c = Client(url, auth=(who, PASSWORD), verbose=False)
            for api_name, args in (("/admin_create_group", ("hacker",)), ("/admin_remove_group", ("ordnungsamt",)),
                                   ("/admin_groups", ())):
                with pytest.raises(Exception, match="Keine Berechtigung"):
                    c.predict(*args, api_name=api_name)
            loaded = c.predict(api_name="/admin_group_choices")  # the page load: nothing for them
            assert loaded[0]["data"] == [] and "ordnungsamt" not in str(loaded)
        assert dep.known_groups == ["ordnungsamt"]
        assert [e["actor"] for e in ctx.audit.entries(action="group.*")] == ["adam"]
        listed = admin.predict(api_name="/admin_groups")
        assert [row[:2] for row in listed["data"]] == [["ordnungsamt", "im Portal angelegt"]]
        msg, *_ = admin.predict("ordnungsamt", api_name="/admin_remove_group")
        assert msg == "Gruppe „ordnungsamt“ entfernt." and dep.known_groups == []
    finally:
        demo.close()
