"""Scanned documents in the portal and the CLI: the OCR note on sources, the image view of a
scanned page (re-encoded, signed, sandboxed), and the pages to check in Verwaltung and `docs show`."""
from __future__ import annotations

import io
import json
import re

import gradio as gr
import pytest
from click.testing import CliRunner
from portal_world import add_users, portal_settings

from evals.ocr_samples import Scan, render_scan, write_mixed_pdf

LETTER = ("Stellungnahme des Umweltamts\n"
          "Gegen die Fällung der Rotbuche auf dem Flurstück 751/1 bestehen keine Bedenken.")


@pytest.fixture(scope="module")
def scan_ctx(tmp_path_factory):
    """A portal context (hash embedder) with a mixed PDF and a scanned PNG, both read by OCR."""
    from assistant.wiring import App
    from ui.context import PortalContext

    root = tmp_path_factory.mktemp("scans")
    docs = root / "docs"
    docs.mkdir()
    img = render_scan(LETTER, Scan(dpi=200, tilt_deg=0.5), seed=2)
    write_mixed_pdf(docs / "bauakte.pdf", "Deckblatt der Bauakte Mühlenweg 12, vollständig geprüft.", img)
    img.save(docs / "stellungnahme.png", dpi=(200, 200))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # no kiportal.toml of the repo
        app = App(portal_settings(root / "data"))
    summary = app.ingestor.ingest([docs], collection="bauamt")
    assert summary.failed == [] and summary.added == 2
    ctx = PortalContext(app)
    add_users(ctx)
    return ctx


def _rec(ctx, name: str):
    return next(r for r in ctx.app.catalog.documents() if r.source.endswith(name))


def req(name: str) -> gr.Request:
    return gr.Request(username=name)


@pytest.fixture(autouse=True)
def _password_mode(scan_ctx):
    scan_ctx.app.settings.auth.mode = "password"  # a test that switches the mode does not leak it


def test_sources_say_a_page_was_read_by_ocr_with_its_confidence(scan_ctx):
    from ui.handlers import ChatHandlers

    h = ChatHandlers(scan_ctx)
    pdf = _rec(scan_ctx, "bauakte.pdf")
    cits = [{"n": 1, "doc_id": pdf.doc_id, "title": pdf.title, "page": 2, "snippet": "Rotbuche", "score": 0.5},
            {"n": 2, "doc_id": pdf.doc_id, "title": pdf.title, "page": 1, "snippet": "Deckblatt", "score": 0.4}]
    html = h.render_sources(h.user(req("anna")), cits)
    conf = round(pdf.ocr_pages[2])
    first, second = html.split("<li>")[1:3]
    assert f"Seite 2 (per Texterkennung gelesen, Sicherheit {conf} %)" in first
    assert "Texterkennung" not in second  # the typed page keeps its text layer and says nothing
    from ui.docview import render_text_page

    page = render_text_page(pdf, scan_ctx.app.catalog.iter_chunks(pdf.doc_id))
    assert page.count("Per Texterkennung gelesen") == 1 and page.index("Seite 2</h2>") < page.index("Per Texterkennung")


def test_an_image_source_opens_its_page_as_a_safe_png(scan_ctx):
    from fastapi.testclient import TestClient
    from PIL import Image

    from ui.context import PortalContext
    from ui.docview import doc_link
    from ui.portal import create_app

    settings = scan_ctx.app.settings
    settings.auth.mode, settings.auth.trusted_proxies = "header", ["testclient"]
    server = create_app(PortalContext(scan_ctx.app), "127.0.0.1", 7998)
    client = TestClient(server.app, follow_redirects=False)
    rec = _rec(scan_ctx, "stellungnahme.png")
    link = doc_link(server.handlers.signer, rec, "anna", page=1)
    assert re.fullmatch(rf"doc/{rec.doc_id}/image\?page=1&t=[\w.-]+", link)
    anna = {"X-Remote-User": "anna"}
    with client:
        res = client.get("/" + link, headers=anna)
        assert res.status_code == 200 and res.headers["content-type"] == "image/png"
        assert "sandbox" in res.headers["content-security-policy"] and res.headers["x-content-type-options"] == "nosniff"
        shown = Image.open(io.BytesIO(res.content))
        assert shown.format == "PNG" and max(shown.size) <= 2400
        token = link.split("t=")[1]
        assert client.get(f"/doc/{rec.doc_id}/image", params={"page": 7, "t": token}, headers=anna).status_code == 404
        assert client.get(f"/doc/{rec.doc_id}/image", params={"page": 1, "t": token},
                          headers={"X-Remote-User": "bernd"}).status_code == 403  # the link is anna's
        assert client.get(f"/doc/{rec.doc_id}/image", params={"page": 1, "t": token}).status_code == 401
        moved = client.get(f"/doc/{rec.doc_id}", params={"page": 1, "t": token}, headers=anna)
        assert moved.status_code == 303 and moved.headers["location"].startswith(f"{rec.doc_id}/image?")


def test_pages_to_check_are_listed_for_the_admin_and_in_docs_show(scan_ctx, monkeypatch):
    from ui.admin_tab import AdminUI
    from ui.cli import cli

    settings = scan_ctx.app.settings
    pdf = _rec(scan_ctx, "bauakte.pdf")
    settings.ocr.min_confidence = 99.9  # every OCR'd page counts as uncertain
    rows = {r["file"]: r for r in scan_ctx.app.admin.ocr_review()}
    assert set(rows) == {"bauakte.pdf", "stellungnahme.png"}
    assert [p for p, _ in rows["bauakte.pdf"]["pages"]] == [2]
    ui = AdminUI(scan_ctx)
    df = ui.ocr_review(req("adam"))
    cell = df[df["Datei"] == "bauakte.pdf"]["Zu prüfende Seiten (Sicherheit)"].iloc[0]
    assert re.search(rf"\[S\. 2 \(\d+ %\)\]\(doc/{pdf.doc_id}\?t=[\w.-]+#page=2\)", cell)
    assert "Per Texterkennung gelesen: 1 Seite(n)" in ui._doc_details(pdf.doc_id, "adam")
    settings.ocr.min_confidence = 10.0
    assert scan_ctx.app.admin.ocr_review() == []

    monkeypatch.setenv("KIPORTAL_OCR__MIN_CONFIDENCE", "99.9")
    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    home = str(settings.home)
    out = CliRunner().invoke(cli, ["--data-dir", home, "docs", "show", pdf.doc_id])
    assert out.exit_code == 0, out.output
    assert "Texterkennung: 1 Seite(n) per OCR gelesen" in out.output and "Bitte prüfen" in out.output
    assert re.search(r"S\. 2 \(\d+ %\)", out.output)
    out = CliRunner().invoke(cli, ["--data-dir", home, "docs", "list", "--json"])
    docs = [json.loads(line) for line in out.output.splitlines()]
    by_name = {d["source"].rsplit("/", 1)[1]: d for d in docs}
    assert by_name["bauakte.pdf"]["ocr_check_pages"] == [2] and list(by_name["bauakte.pdf"]["ocr_pages"]) == ["2"]
