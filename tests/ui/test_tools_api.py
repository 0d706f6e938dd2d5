"""The Werkzeuge tab over HTTP, as gradio_client (and so any script) sees it.

A real portal (``ui.portal.create_app``, password login, hash embedder) with a scripted
FakeChatModel as "lokal" (and as the red-zone "rot"), so the tools run in seconds. The model
output carries HTML that must arrive escaped; runs belong to their owner.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.integration

PASSWORD = "Werkzeug-Test-2025!"
USERS = {"anna": "staff", "bernd": "staff"}
SATZUNG = ("# Friedhofssatzung\n\n## § 8 Ruhezeit\n\nDie Ruhezeit der Verstorbenen beträgt 20 Jahre. Die Ruhezeit von "
           "Aschen beträgt 15 Jahre.\n")
BESCHEID = "Die Gebühr von 25 Euro ist bis zum 31.03.2026 zu zahlen. Der Antrag wird vom Amt geprüft."
HOSTILE = '<img src=x onerror="window.__xss=1">'


def respond(prompt: str) -> str:
    if "Sätze:" in prompt:
        return "1. Das Amt prüft den Antrag."
    if "Ausschnitt:" in prompt:
        return "- Die Ruhezeit der Verstorbenen beträgt 20 Jahre (Abschn. 1)"
    if "Anweisung:" in prompt:
        return "Betreff: Termin\n\nSehr geehrte Frau Schmitz,\nbitte kommen Sie am 12.05.2026 ins Rathaus."
    return f"Zahlen Sie 25 Euro bis zum 30.03.2026.\nDer Antrag wird vom Amt geprüft.\n{HOSTILE}"


@dataclass
class ToolsPortal:
    url: str
    ctx: object
    fake: object
    doc_id: str


@pytest.fixture(scope="module")
def tools_portal(tmp_path_factory):
    import ui.portal as portal
    from assistant.llm.fake import FakeChatModel
    from assistant.settings import load_settings
    from assistant.wiring import App
    from ui.context import PortalContext

    root = tmp_path_factory.mktemp("tools-portal")
    docs = root / "docs"
    docs.mkdir()
    (docs / "friedhof.md").write_text(SATZUNG, encoding="utf-8")
    settings = load_settings(root / "data", embedding={"mode": "hash"}, vector={"mode": "memory"},
                             auth={"mode": "password", "secret": "y" * 40}, tools={"file_read_seconds": 3.0},
                             limits={"load_timeout_s": 300.0},
                             llm={"default": "lokal", "models": {
                                 "lokal": {"mode": "fake", "label": "Testmodell lokal"},
                                 "rot": {"mode": "fake", "label": "Großes Modell", "zone": "red"},
                                 "extraktiv": {"mode": "extractive", "label": "Nur Textstellen (ohne KI-Modell)"}}})
    app = App(settings)
    assert not app.ingestor.ingest([docs], collection="satzungen").failed
    fake = FakeChatModel(respond=respond)
    app._chat_models["lokal"] = app._chat_models["rot"] = fake
    ctx = PortalContext(app)
    for name, role in USERS.items():
        ctx.users.add(name, PASSWORD, role)
    (rec,) = app.catalog.documents()
    with portal.background_portal(ctx) as (url, _server):
        yield ToolsPortal(url, ctx, fake, rec.doc_id)


def client(portal: ToolsPortal, user: str):
    from gradio_client import Client

    return Client(portal.url, auth=(user, PASSWORD), verbose=False, download_files=False)


def test_einfach_over_http_escapes_output_and_lists_the_changed_deadline(tools_portal):
    anna = client(tools_portal, "anna")
    out = anna.predict("Text einfügen", BESCHEID, None, None, "", False, "lokal", api_name="/tool_einfach")
    output_html, details_html = out[0], out[1]
    assert "Das Amt prüft den Antrag." in output_html  # the revision pass replaced the passive sentence
    assert "<img" not in output_html and "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in output_html
    assert "Geänderte oder fehlende Angaben" in details_html and "„31.03.2026“ → „30.03.2026“" in details_html
    assert "Flesch nach Amstad" in details_html and "Wiener Sachtextformel" in details_html


def test_summary_and_draft_over_http(tools_portal):
    anna = client(tools_portal, "anna")
    out = anna.predict(tools_portal.doc_id, "kurz", False, "lokal", api_name="/tool_zusammenfassung")
    assert "(Abschn. 1)" in out[0] and "Fundstellen geprüft: 1 von 1" in out[1] and 'href="doc/' in out[1]
    out = anna.predict("buergerbrief", "Einladung ins Rathaus", False, [], "lokal", api_name="/tool_entwurf")
    assert "Schmitz" not in out[0] and "[Name]" in out[0] and "[Datum]" in out[0]


def test_red_model_never_gets_pasted_personal_data(tools_portal):
    before = len(tools_portal.fake.calls)
    anna = client(tools_portal, "anna")
    out = anna.predict("Text einfügen", "Bescheid an Frau Petra Schulz, Lindenstraße 12, 47906 Kempenrath.", None,
                       None, "", False, "rot", api_name="/tool_einfach")
    assert len(tools_portal.fake.calls) == before
    assert "Petra" not in out[0] and out[0] == ""


def test_runs_are_private_to_their_owner(tools_portal):
    import gradio as gr

    from ui.tools_tab import ToolHandlers

    anna = client(tools_portal, "anna")
    anna.predict("Text einfügen", BESCHEID, None, None, "", False, "lokal", api_name="/tool_einfach")
    h = ToolHandlers(tools_portal.ctx)
    run_id = h.store.list_runs("anna", "einfach")[0]["id"]
    assert "Das Amt prüft den Antrag." in h.open_run(gr.Request(username="anna"), run_id).output_html
    assert h.export(gr.Request(username="anna"), run_id, "docx").endswith(".docx")
    for call in (lambda r: h.open_run(r, run_id), lambda r: h.export(r, run_id, "md"), lambda r: h.delete_run(r, run_id)):
        with pytest.raises(gr.Error):
            call(gr.Request(username="bernd"))
        with pytest.raises(gr.Error):  # nobody signed in
            call(gr.Request(username=None))
    assert h.store.get("anna", run_id)["tool"] == "einfach"


def test_no_tool_without_login(tools_portal):
    from gradio_client import Client

    with pytest.raises(Exception):
        Client(tools_portal.url, verbose=False).predict("Text einfügen", BESCHEID, None, None, "", False, "lokal",
                                                        api_name="/tool_einfach")


def test_a_server_path_as_file_value_is_refused(tools_portal):
    import gradio as gr

    from ui.tools_tab import ToolHandlers

    h = ToolHandlers(tools_portal.ctx)
    before = len(tools_portal.fake.calls)
    for value in ("/etc/passwd", {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}):
        (view,) = h.simplify(gr.Request(username="anna"), "Datei hochladen", "", value, None, "", False, "lokal")
        assert view.progress.startswith("**Hinweis:**") and "root:" not in view.progress + view.output_html
    assert len(tools_portal.fake.calls) == before
    assert tools_portal.ctx.audit.entries(action="file_value_refused")


def test_an_uploaded_long_scan_ends_after_the_tools_read_time_and_leaves_the_queue(tools_portal, tmp_path):
    """An attacker's probe (session 49): a small PDF of 2,000 scanned pages, uploaded to Einfache
    Sprache, was read by text recognition under the ingest's allowance (up to three hours) while the
    tool held the answer queue that every other user's answers wait in."""
    from gradio_client import handle_file

    from evals.ocr_samples import Scan, render_scan
    from pdf_files import scan_pdf

    page = render_scan("Die Gebühr für den Bewohnerparkausweis beträgt 30 Euro im Jahr.", Scan(dpi=150), seed=1)
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(scan_pdf(page, 60))
    before = len(tools_portal.fake.calls)
    out = client(tools_portal, "anna").predict("Datei hochladen", "", handle_file(str(scan)), None, "", False, "lokal",
                                               api_name="/tool_einfach")
    shown = " ".join(str(part) for part in out)
    assert "dauerte zu lange" in shown and "Wissensbasis" in shown, shown[:500]
    assert len(tools_portal.fake.calls) == before
    out = client(tools_portal, "bernd").predict("Text einfügen", BESCHEID, None, None, "", False, "lokal",
                                                api_name="/tool_einfach")
    assert "Das Amt prüft den Antrag." in out[0]  # the queue goes on


def test_the_document_picker_names_pages_and_tells_twins_apart():
    """From a browser review: "(– S.)" for every document without pages, and a talk as PDF and as PPTX
    listed twice under one title."""
    from types import SimpleNamespace as Rec

    from ui.tools_tab import document_labels

    records = [Rec(doc_id="a", shown_title="Podiumsdiskussion", pages=7, source="/docs/podium.pdf"),
               Rec(doc_id="b", shown_title="Podiumsdiskussion", pages=7, source="/docs/podium.pptx"),
               Rec(doc_id="c", shown_title="Friedhofssatzung", pages=None, source="/docs/friedhof.md"),
               Rec(doc_id="d", shown_title="Haushalt", pages=12, source="/docs/haushalt.pdf")]
    assert document_labels(records) == [("Podiumsdiskussion (7 S., podium.pdf)", "a"),
                                        ("Podiumsdiskussion (7 S., podium.pptx)", "b"),
                                        ("Friedhofssatzung", "c"), ("Haushalt (12 S.)", "d")]


def test_without_a_writing_model_the_writing_tools_say_why_and_do_not_run(tmp_path):
    """A deployment with "Nur Textstellen" only: Einfache Sprache and Entwurf get an empty model list
    with the reason and a disabled button (before, an empty list without a word); the summary, which
    works without a model, stays as it was; a run sent anyway is refused by gradio's check of the list
    (the service refuses a text-only model too: tests/assistant/tools/test_tool_service.py)."""
    import ui.portal as portal
    from assistant.settings import load_settings
    from assistant.wiring import App
    from portal_http import call, login
    from ui.context import PortalContext
    from ui.tools_tab import NO_WRITING_MODEL

    settings = load_settings(tmp_path / "data", embedding={"mode": "hash"}, vector={"mode": "memory"},
                             auth={"mode": "password", "secret": "y" * 40}, tools={"file_read_seconds": 3.0},
                             limits={"load_timeout_s": 300.0},
                             llm={"default": "extraktiv", "models": {
                                 "extraktiv": {"mode": "extractive", "label": "Nur Textstellen (ohne KI-Modell)"}}})
    ctx = PortalContext(App(settings))
    ctx.users.add("anna", PASSWORD, "staff")
    with portal.background_portal(ctx) as (url, server):
        where = type("P", (), {"url": url, "fn_index": lambda self, name: next(
            i for i, fn in server.demo.fns.items() if fn.api_name == name)})()
        with login(where, "anna", PASSWORD) as c:
            out = call(c, where, "tools_choices", [])
            e_model, s_model, d_model, *_, e_btn, d_btn, e_note, d_note = out["output"]
            for model in (e_model, d_model):
                assert model["choices"] == [] and model["info"] == NO_WRITING_MODEL
            assert e_btn["interactive"] is False and d_btn["interactive"] is False
            # and said at the top of the tab, where it is seen (the list's note stood below the fold)
            assert e_note["visible"] is True and d_note["visible"] is True
            assert [key for _, key in s_model["choices"]] == ["extraktiv"] and "info" not in s_model
            sent = call(c, where, "tool_einfach", ["Text einfügen", BESCHEID, None, None, "", False, "extraktiv"])
            # gradio's own check of the (empty) list refuses it before the handler, which refuses it too
            assert sent["success"] is False and "not in the list of choices" in sent["error"], sent


def test_a_title_with_a_direction_override_is_shown_in_its_own_order():
    """An attacker's probe: a file named "Rechnung\u202efdp.exe" was listed as "Rechnungexe.pdf" in the
    document picker (gradio shows choice labels without our escaping): the shown title drops it."""
    from types import SimpleNamespace

    from corpus.catalog import DocumentRecord
    from ui.tools_tab import document_labels

    stored = SimpleNamespace(display_title="", title="", original_name="Rechnung\u202efdp.exe", source="/x/r.exe")
    title = DocumentRecord.shown_title.fget(stored)
    assert title == "Rechnungfdp.exe"
    shown = SimpleNamespace(shown_title=title, pages=2, source=stored.source, doc_id="d1")
    assert document_labels([shown]) == [("Rechnungfdp.exe (2 S.)", "d1")]
