"""The Werkzeuge tab over HTTP, as gradio_client (and so any script) sees it.

A real portal (``ui.portal.create_app``, password login, hash embedder) with a scripted
FakeChatModel as "lokal" (and as the yellow-zone "gelb" and the red-zone "rot"), so the tools run in
seconds: the fixture ``tools_portal`` (tests/conftest.py, built by tests/portal_world.py), shared with
the browser tests in tests/ui/test_browser_tools.py. The model output carries HTML that must arrive
escaped; runs belong to their owner.
"""
from __future__ import annotations

import pytest
from portal_world import BESCHEID, PASSWORD, PERSONAL, FakeModelPortal

pytestmark = pytest.mark.integration


def client(portal: FakeModelPortal, user: str):
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


# -- „Trotzdem senden“ bound to the warned input (an attacker's probe) ----------------------------
# The confirmed events took the text from the request: a crafted client called them directly and
# skipped the Ampel's warning for any text. Now the warning leaves a fingerprint of the warned input
# in the tab's server-side state, and only that input, once, goes out as confirmed.
EINFACH_INPUTS = ["Text einfügen", PERSONAL, None, None, "", False, "gelb"]
DRAFT_INPUTS = ["email", PERSONAL, False, [], "gelb"]
STATE = None  # the value a client sends for the warned-input state: gradio ignores it


def _shown(out: dict) -> str:
    return " ".join(str(part) for part in out["output"] or [])


def _tool_audit(portal: FakeModelPortal, tool: str) -> list[dict]:
    import json

    return [json.loads(e["detail"] or "{}") for e in portal.ctx.audit.entries(action=f"tool_{tool}")]


def _tab(c, portal: FakeModelPortal, api_name: str, data: list, session: str) -> dict:
    from portal_http import call

    out = call(c, portal, api_name, data, session=session)
    assert out["success"], out
    return out


def test_a_confirmed_run_without_a_warning_sends_nothing_and_is_audited(tools_portal):
    import time

    from portal_http import login
    from ui.tool_input import input_fingerprint

    fake, before = tools_portal.fake, len(tools_portal.fake.calls)
    forged = input_fingerprint("einfach", "anna", "gelb", source="Text einfügen", text=PERSONAL, doc=None,
                               pages=None, leicht=False)
    with login(tools_portal, "anna", PASSWORD) as c:
        for api_name, data in (("tool_einfach_confirmed", EINFACH_INPUTS), ("tool_entwurf_confirmed", DRAFT_INPUTS)):
            # a fresh tab, and one whose client sends the right fingerprint as the state's value
            for state in (STATE, forged, {"fingerprint": forged}):
                out = _tab(c, tools_portal, api_name, [*data, state], f"t{time.monotonic_ns()}")
                assert "Es wurde nichts gesendet" in out["output"][2] and "keine Warnung" in out["output"][2], out
                assert "Petra" not in _shown(out)
    assert len(fake.calls) == before
    for tool in ("einfach", "entwurf"):
        refused = [d for d in _tool_audit(tools_portal, tool) if d.get("status") == "confirm_refused"]
        assert len(refused) >= 3 and refused[0]["reason"] == "not_warned" and refused[0]["model"] == "gelb"
        assert refused[0]["confirmed"] is True


def test_the_warned_input_confirmed_in_its_tab_goes_out_once_and_is_audited_as_confirmed(tools_portal):
    import time

    from portal_http import login

    fake = tools_portal.fake
    with login(tools_portal, "anna", PASSWORD) as c:
        for warn_api, api_name, data, tool in (("tool_einfach", "tool_einfach_confirmed", EINFACH_INPUTS, "einfach"),
                                               ("tool_entwurf", "tool_entwurf_confirmed", DRAFT_INPUTS, "entwurf")):
            tab = f"t{time.monotonic_ns()}"
            before = len(fake.calls)
            out = _tab(c, tools_portal, warn_api, data, tab)
            assert "Personendaten erkannt" in out["output"][4] and out["output"][0] == ""
            assert len(fake.calls) == before  # the warning sent nothing
            warned = _tool_audit(tools_portal, tool)[0]
            assert warned["status"] == "warn" and warned["confirmed"] is False
            out = _tab(c, tools_portal, api_name, [*data, STATE], tab)
            assert out["output"][0] and "Es wurde nichts gesendet" not in _shown(out), out
            assert len(fake.calls) > before and PERSONAL.split(",")[0] in "\n".join(fake.calls[before:])
            done = _tool_audit(tools_portal, tool)[0]
            assert done["status"] == "ok" and done["confirmed"] is True and done["zone"] == "yellow"
            # one confirmation, one run: sent again, the same confirmation is refused
            sent = len(fake.calls)
            out = _tab(c, tools_portal, api_name, [*data, STATE], tab)
            assert "keine Warnung" in out["output"][2] and len(fake.calls) == sent
            assert _tool_audit(tools_portal, tool)[0]["reason"] == "not_warned"


def test_an_input_changed_after_the_warning_is_not_confirmed(tools_portal):
    import time

    from portal_http import call, login

    fake = tools_portal.fake
    other = PERSONAL.replace("Petra Schulz", "Jürgen Meier")
    changes = {  # each a change after the warning: text, model (also to the red zone), options
        "einfach": (EINFACH_INPUTS, "tool_einfach", "tool_einfach_confirmed",
                    [[*EINFACH_INPUTS[:1], other, *EINFACH_INPUTS[2:]], [*EINFACH_INPUTS[:6], "rot"],
                     [*EINFACH_INPUTS[:6], "lokal"], [*EINFACH_INPUTS[:5], True, "gelb"]]),
        "entwurf": (DRAFT_INPUTS, "tool_entwurf", "tool_entwurf_confirmed",
                    [["email", other, False, [], "gelb"], ["email", PERSONAL, False, [], "rot"],
                     ["vermerk", PERSONAL, False, [], "gelb"], ["email", PERSONAL, True, [], "gelb"]]),
    }
    with login(tools_portal, "anna", PASSWORD) as c:
        for tool, (data, warn_api, api_name, changed) in changes.items():
            for inputs in changed:
                tab = f"t{time.monotonic_ns()}"
                assert "Personendaten erkannt" in _tab(c, tools_portal, warn_api, data, tab)["output"][4]
                before = len(fake.calls)
                out = _tab(c, tools_portal, api_name, [*inputs, STATE], tab)
                assert "Es wurde nichts gesendet" in out["output"][2] and "nicht mehr die" in out["output"][2], inputs
                assert len(fake.calls) == before and out["output"][0] == ""
                zone = {"gelb": "yellow", "rot": "red", "lokal": "green"}[inputs[-1]]
                assert _tool_audit(tools_portal, tool)[0] == {"tool": tool, "model": inputs[-1], "zone": zone,
                                                             "status": "confirm_refused", "reason": "changed",
                                                             "confirmed": True}
                # the warning was used up by the refused call: the warned input itself is refused now too
                out = _tab(c, tools_portal, api_name, [*data, STATE], tab)
                assert "keine Warnung" in out["output"][2] and len(fake.calls) == before
        # another user cannot confirm in anna's tab (the tab is hers: ui.http_guard)
        tab = f"t{time.monotonic_ns()}"
        _tab(c, tools_portal, "tool_einfach", EINFACH_INPUTS, tab)
    with login(tools_portal, "bernd", PASSWORD) as c:
        before = len(fake.calls)
        out = call(c, tools_portal, "tool_einfach_confirmed", [*EINFACH_INPUTS, STATE], session=tab)
        assert out["join"] == 403 and len(fake.calls) == before


def test_an_uploaded_file_is_confirmed_by_its_text(tools_portal):
    """A file's text is what goes out, so the warning holds for that text: the same upload (or the same
    text uploaded again) is confirmed, a file with other text is not."""
    import time

    from portal_http import file_value, login, upload

    fake = tools_portal.fake
    with login(tools_portal, "anna", PASSWORD) as c:
        def uploaded(name: str, text: str) -> dict:
            r = upload(c, name, text.encode("utf-8"))
            assert r.status_code == 200, r.text
            return file_value(r.json()[0])

        first = uploaded("bescheid.txt", PERSONAL)
        inputs = ["Datei hochladen", "", first, None, "", False, "gelb"]
        tab = f"t{time.monotonic_ns()}"
        assert "Personendaten erkannt" in _tab(c, tools_portal, "tool_einfach", inputs, tab)["output"][4]
        before = len(fake.calls)
        other = uploaded("bescheid2.txt", PERSONAL.replace("Petra Schulz", "Jürgen Meier"))
        out = _tab(c, tools_portal, "tool_einfach_confirmed", [*inputs[:2], other, *inputs[3:], STATE], tab)
        assert "nicht mehr die" in out["output"][2] and len(fake.calls) == before
        assert "Personendaten erkannt" in _tab(c, tools_portal, "tool_einfach", inputs, tab)["output"][4]
        again = uploaded("bescheid-kopie.txt", PERSONAL)  # the same text in another upload
        out = _tab(c, tools_portal, "tool_einfach_confirmed", [*inputs[:2], again, *inputs[3:], STATE], tab)
        assert out["output"][0] and len(fake.calls) > before
        assert _tool_audit(tools_portal, "einfach")[0]["confirmed"] is True
