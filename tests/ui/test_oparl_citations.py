"""Sources of imported council documents link to the file's public address (OParl ``accessUrl``)."""
from __future__ import annotations

import re
from dataclasses import replace

import gradio as gr


def test_an_imported_pdf_cites_its_access_url_at_the_page_and_only_http_counts(handlers, portal_ctx):
    cat = portal_ctx.app.catalog
    pdf = next(r for r in cat.documents() if r.format == "pdf" and r.pages)
    anna = handlers.user(gr.Request(username="anna"))
    cits = [{"n": 1, "doc_id": pdf.doc_id, "title": "Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne",
             "page": 2, "snippet": "Die Gebühr beträgt 48 Euro.", "score": 0.5}]
    # the importer's title is the document's title in the catalog, and sources name the catalog's
    cat.commit_document(replace(pdf, title=cits[0]["title"]), list(cat.iter_chunks(pdf.doc_id)))

    cat.set_document_meta(pdf.doc_id, {"source": "oparl", "access_url": "https://ris.example.org/files/57737.pdf"})
    html = handlers.render_sources(anna, cits)
    assert re.findall(r'href="([^"]+)"', html) == ["https://ris.example.org/files/57737.pdf#page=2"]
    assert "[1] Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne – Seite 2</a>" in html

    for hostile in ("javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "file:///etc/passwd"):
        cat.set_document_meta(pdf.doc_id, {"source": "oparl", "access_url": hostile})
        html = handlers.render_sources(anna, cits)
        assert re.findall(r'href="([^"]+)"', html)[0].startswith(f"doc/{pdf.doc_id}?t=")  # the portal's own view
        assert "javascript:" not in html and "data:text" not in html


def test_an_access_url_cannot_break_out_of_a_markdown_link_or_an_attribute(portal_ctx):
    from ui.docview import public_url

    rec = next(r for r in portal_ctx.app.catalog.documents() if r.format == "pdf")
    rec.meta = {"access_url": 'https://ris.example.org/f/1.pdf?a=1&b=2) [x](javascript:alert(1)) "<b>'}
    url = public_url(rec, 3)
    assert url.startswith("https://ris.example.org/f/1.pdf?a=1&b=2") and url.endswith("#page=3")
    assert not any(ch in url for ch in ' ()[]"<>')
    rec.meta = {"access_url": "https://ris.example.org/files/57737.pdf"}
    assert public_url(rec) == "https://ris.example.org/files/57737.pdf"
