"""Errors of reading a file, as staff read them."""
from __future__ import annotations

import errno
import os

import pytest


@pytest.mark.parametrize("code, german", [
    (errno.ENOENT, "Datei nicht gefunden"),
    (errno.EACCES, "keine Leseberechtigung"),
    (errno.EISDIR, "ist ein Ordner, keine Datei"),
])
def test_why_a_file_could_not_be_read_is_said_in_german(code, german):
    from ingest.errors import os_error_de

    assert os_error_de(OSError(code, os.strerror(code), "x.pdf")) == german


def test_an_unknown_system_error_keeps_its_text():
    from ingest.errors import os_error_de

    assert os_error_de(OSError(errno.EXDEV, "Invalid cross-device link")) == "Systemfehler (Invalid cross-device link)"
    assert os_error_de(OSError("kaputt")) == "Systemfehler (kaputt)"
