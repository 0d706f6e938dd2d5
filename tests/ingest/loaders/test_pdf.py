"""A PDF pypdf cannot open: staff read a German reason, pypdf's English text goes to the log only."""
from __future__ import annotations

import logging

import pytest

from assistant.uploads import explain
from ingest.errors import IngestError
from ingest.loaders.limits import LoadLimits
from ingest.loaders.pdf import PDF_STRUCTURE_DE, load_pdf, pdf_problem_de

TRUNCATED = "PDF-Datei ist unvollständig oder am Ende beschädigt"


@pytest.mark.parametrize("message, reason", [
    ("startxref not found", TRUNCATED),
    ("EOF marker not found", TRUNCATED),
    ("Stream has ended unexpectedly", TRUNCATED),
    ("Cannot read an empty file", "PDF-Datei ist leer"),
    ("Invalid Elementary Object starting with b'x' @0", PDF_STRUCTURE_DE),
    ("", PDF_STRUCTURE_DE),
])
def test_pdf_problem_de(message, reason):
    assert pdf_problem_de(ValueError(message)) == reason


@pytest.mark.parametrize("data, detail, english", [
    (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n", TRUNCATED, "startxref"),
    (b"%PDF-1.4\nstartxref\n99999\n%%EOF\n", "Seitenverzeichnis der PDF-Datei ist beschädigt", "Root"),
])
def test_a_broken_pdf_is_explained_in_german(tmp_path, caplog, data, detail, english):
    path = tmp_path / "kaputt.pdf"
    path.write_bytes(data)
    with caplog.at_level(logging.INFO, logger="ingest.loaders.pdf"), pytest.raises(IngestError) as err:
        load_pdf(path, LoadLimits())
    assert err.value.code == "corrupt" and err.value.detail == detail
    shown = explain(err.value, "kaputt.pdf")
    assert shown == f"„kaputt.pdf“ wurde nicht übernommen: Datei ist beschädigt oder unlesbar ({detail})."
    assert english not in shown
    assert any(english in r.getMessage() and "kaputt.pdf" in r.getMessage() for r in caplog.records)  # for the admin
