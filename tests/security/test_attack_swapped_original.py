"""Attack: a writer of a synced share swaps an indexed file for a symlink to another file of the
machine (another department's stored original, the link secret) and then opens the original
through the portal. Found by an attacker's probe (the same swap before the reading is
tests/ingest/test_safe_files.py). The original, the PDF view and the page image serve a file only
while it holds the bytes that were indexed."""
from __future__ import annotations

from pathlib import Path

import pytest
from pdf_files import build_pdf

from sec_client import login

pytestmark = pytest.mark.integration


@pytest.fixture
def shared_pdf(pw_portal, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    f = share / "dienstplan-bauhof.pdf"
    f.write_bytes(build_pdf(["Dienstplan des Bauhofs: Winterdienst ab 4 Uhr morgens.\n" * 8]))
    app = pw_portal.ctx.app
    assert app.ingestor.ingest([share], collection="test").added == 1
    (rec,) = [r for r in app.catalog.documents() if Path(r.source).name == f.name]
    try:
        yield f, rec
    finally:
        app.admin.delete_document(rec.doc_id, "adam")


def test_a_file_swapped_for_a_link_after_indexing_is_not_served(pw_portal, shared_pdf, tmp_path):
    f, rec = shared_pdf
    sign = pw_portal.server.handlers.signer.sign
    token = sign(rec.doc_id, "anna")
    with login(pw_portal, "anna") as anna:
        assert anna.get(f"doc/{rec.doc_id}", params={"t": token}).content.startswith(b"%PDF-")  # the positive twin
        original = anna.get(f"doc/{rec.doc_id}/original", params={"t": token})
        assert original.status_code == 200 and original.content == f.read_bytes()
        assert "attachment" in original.headers["content-disposition"] and original.headers["accept-ranges"] == "bytes"
        data = f.read_bytes()
        for asked, status, body in (("bytes=0-9", 206, data[:10]), ("bytes=-5", 206, data[-5:]),
                                    (f"bytes={len(data) - 3}-", 206, data[-3:]), (f"bytes={len(data)}-", 416, b"")):
            r = anna.get(f"doc/{rec.doc_id}", params={"t": token}, headers={"Range": asked})  # the PDF viewer's parts
            assert (r.status_code, r.content) == (status, body), asked
        assert "original?" in anna.get(f"doc/{rec.doc_id}/text", params={"t": token}).text  # the download is offered

        other = tmp_path / "personalakte.pdf"  # another department's file, or the portal's secret
        other.write_bytes(build_pdf(["Personalakte Erika Mustermann: vertraulich.\n" * 4]))
        f.unlink()
        f.symlink_to(other)
        for path in (f"doc/{rec.doc_id}/original", f"doc/{rec.doc_id}"):
            r = anna.get(path, params={"t": token}, follow_redirects=True)
            assert b"Personalakte" not in r.content and other.read_bytes() not in r.content, path
        assert anna.get(f"doc/{rec.doc_id}/original", params={"t": token}).status_code == 404
        assert "original?" not in anna.get(f"doc/{rec.doc_id}/text", params={"t": token}).text  # … and not offered
        f.unlink()
        f.write_bytes(other.read_bytes())  # a real file, but not the bytes that were indexed
        assert anna.get(f"doc/{rec.doc_id}/original", params={"t": token}).status_code == 404

