"""The Werkzeuge's file input (ui.tool_input): the operator's OCR settings hold, and the whole
read, text recognition included, ends after ``tools.file_read_seconds`` (real worker, real Tesseract)."""
from __future__ import annotations

import pytest

from assistant.tools.result import ToolError
from pdf_files import scan_pdf
from settings_factory import make_settings
from ui.tool_input import read_file_text

pytestmark = pytest.mark.integration

LETTER = ("Sehr geehrte Damen und Herren, die Gebühr für den Bewohnerparkausweis beträgt 30 Euro im Jahr. "
          "Bitte überweisen Sie den Betrag bis zum 31. März auf das Konto der Stadtkasse.")


@pytest.fixture(scope="module")
def page_image():
    from evals.ocr_samples import Scan, render_scan

    return render_scan(LETTER, Scan(dpi=150, tilt_deg=0.0), seed=1)


def _file(tmp_path, image, pages: int):
    path = tmp_path / f"scan{pages}.pdf"
    path.write_bytes(scan_pdf(image, pages))
    return path


def _settings(tmp_path, **over):
    return make_settings(tmp_path / "data", limits={"load_timeout_s": 300.0}, **over)


def test_a_scanned_page_is_read_for_the_tool(tmp_path, page_image):
    _title, text = read_file_text(_settings(tmp_path), _file(tmp_path, page_image, 1))
    assert "Bewohnerparkausweis" in text and "30 Euro" in text


def test_switched_off_text_recognition_stays_off_for_the_tools(tmp_path, page_image):
    """An operator's ocr.enabled = false held for the ingest only: staff uploads were still read."""
    with pytest.raises(ToolError) as err:
        read_file_text(_settings(tmp_path, ocr={"enabled": False}), _file(tmp_path, page_image, 1))
    assert "Bewohnerparkausweis" not in str(err.value)


def test_a_long_scan_ends_after_the_tools_read_time_instead_of_hours(tmp_path, page_image):
    """An attacker's probe: a 440 KB scan of 2,000 pages got the ingest's allowance (20 s a page, up to
    three hours) while the tool held the answer queue. Under the ingest's limits these 60 pages would
    get 300 s + 60 × 20 s; the tool's read gives up after its own 3 s."""
    with pytest.raises(ToolError) as err:
        read_file_text(_settings(tmp_path, tools={"file_read_seconds": 3.0}), _file(tmp_path, page_image, 60))
    message = str(err.value)
    assert "zu lange" in message and "Wissensbasis" in message
