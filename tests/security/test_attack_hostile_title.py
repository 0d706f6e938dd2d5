"""Attack: a PDF whose cover headline is HTML. The headline becomes the document's readable title
(``ingest.loaders.pdf_title``), shown in the sources under an answer, the text view and the
Verwaltung. Replayed as an attacker who gets a PDF into the portal does it: uploaded by an admin
over HTTP, then read by staff and the admin over HTTP; the title must arrive as text everywhere.
"""
from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import pytest
from pdf_files import build_pdf, sized_lines

from sec_client import admin_session, call, file_value, login

pytestmark = pytest.mark.integration

HEADLINE = '<img src=x onerror="window.__xss=3"> Kormoranzählung'
QUESTION = "Wann findet die Kormoranzählung am Stadtweiher statt?"


@pytest.fixture
def hostile_pdf(pw_portal):
    """The PDF, uploaded and indexed through the admin's upload; removed again afterwards."""
    body = "Die Kormoranzählung am Stadtweiher findet jeden Oktober statt und dauert zwei Tage.\n" * 12
    pdf = build_pdf([sized_lines([(10, "Herausgeber:"), (26, HEADLINE), (11, "x")]), body])
    with login(pw_portal, "adam") as c:
        r = c.post("gradio_api/upload", files=[("files", ("kormoran-boese.pdf", pdf, "application/pdf"))])
        assert r.status_code == 200, r.text
        result = call(c, pw_portal, "admin_upload", [[file_value(r.json()[0])], "test"],
                      session=admin_session(c, pw_portal))
    mine = [r for r in pw_portal.ctx.app.catalog.documents() if Path(r.source).name == "kormoran-boese.pdf"]
    try:  # the portal is shared by the whole session: the document goes again, whatever fails
        assert result["success"] and len(mine) == 1, result
        assert mine[0].display_title.startswith("<img"), mine[0].display_title  # the attack reached the catalog
        yield mine[0]
    finally:
        for rec in mine:
            pw_portal.ctx.app.admin.delete_document(rec.doc_id, "adam")


def test_a_hostile_cover_headline_arrives_as_text_in_answer_text_view_and_verwaltung(pw_portal, hostile_pdf):
    escaped = html.escape(HEADLINE, quote=False)
    with login(pw_portal, "anna") as anna:
        answer = call(anna, pw_portal, "ask", [QUESTION, None, "extraktiv", []], session=f"anna{time.monotonic_ns()}")
        for chat in pw_portal.server.handlers.chats.list_chats("anna"):  # shared portal: leave no chat behind
            if chat["title"] == QUESTION:
                pw_portal.server.handlers.chats.delete_chat("anna", chat["id"])
        assert answer["success"], answer
        shown = json.dumps(answer["output"], ensure_ascii=False)
        assert "<img src=x" not in shown and html.escape(HEADLINE).replace('"', '\\"')[:20] in shown, shown[:2000]
        token = re.search(r'href=\\"doc/' + hostile_pdf.doc_id + r'\?t=([^"#\\]+)', shown)
        assert token, shown[:2000]  # a PDF's source link opens the file at the page; its text view:
        view = anna.get(f"doc/{hostile_pdf.doc_id}/text", params={"t": token.group(1), "page": 1})
    assert view.status_code == 200 and "script-src 'none'" in view.headers["content-security-policy"]
    assert "<img" not in view.text and f"<h1>{escaped}</h1>" in view.text.replace("&quot;", '"'), view.text[:800]

    with login(pw_portal, "adam") as adam:
        details = call(adam, pw_portal, "admin_document_details", [hostile_pdf.doc_id],
                       session=admin_session(adam, pw_portal))
    assert details["success"], details
    out = json.dumps(details["output"], ensure_ascii=False)
    assert "Kormoranzählung" in out and "<img src=x" not in out, out[:1000]
