"""Errors raised while reading a file. Each carries a stable code and a bilingual message.

The code is what the catalog stores in ``status``/``error`` and what the UI maps to
help texts; the message is what a person reads.
"""
from __future__ import annotations

import errno


class IngestError(Exception):
    """A file could not be indexed. ``code`` is one of the values in CODES."""

    CODES = {
        "corrupt": ("Datei ist beschädigt oder unlesbar", "file is corrupt or unreadable"),
        "encrypted": ("Datei ist passwortgeschützt", "file is password-protected"),
        "empty": ("Datei ist leer oder enthält keinen Text", "file is empty or has no text"),
        "too_large": ("Datei überschreitet die Größenbegrenzung", "file exceeds the size limit"),
        "too_many_pages": ("Datei hat zu viele Seiten", "file has too many pages"),
        "needs_ocr": ("PDF ohne Textebene (Scan) – OCR nötig", "PDF without text layer (scan) - needs OCR"),
        "unsupported": ("Dateiformat wird nicht unterstützt", "unsupported file format"),
        "zip_bomb": ("Archiv entpackt sich verdächtig groß (Zip-Bombe)", "archive expands suspiciously (zip bomb)"),
        "mislabelled": ("Dateiendung passt nicht zum Inhalt", "file extension does not match content"),
        "bad_name": ("Unzulässiger Dateiname", "invalid file name"),
        "timeout": ("Lesen der Datei dauerte zu lange (Zeitlimit)", "reading the file took too long (time limit)"),
    }

    def __init__(self, code: str, detail: str = "") -> None:
        if code not in self.CODES:
            raise ValueError(f"unknown IngestError code {code!r}")
        self.code = code
        self.detail = detail
        de, en = self.CODES[code]
        msg = f"{de} / {en}"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)

    @property
    def status(self) -> str:
        """Catalog status for this error: scans are a state of their own."""
        return "needs_ocr" if self.code == "needs_ocr" else "failed"


_OS_ERRORS_DE = {
    errno.ENOENT: "Datei nicht gefunden",
    errno.EACCES: "keine Leseberechtigung",
    errno.EPERM: "keine Berechtigung",
    errno.EISDIR: "ist ein Ordner, keine Datei",
    errno.ENOTDIR: "ein Teil des Pfads ist kein Ordner",
    errno.ELOOP: "zu viele symbolische Verknüpfungen",
    errno.ENAMETOOLONG: "Dateiname zu lang",
    errno.EIO: "Lesefehler des Datenträgers",
    errno.ENOSPC: "kein Speicherplatz mehr frei",
    errno.EMFILE: "zu viele offene Dateien",
    errno.ESTALE: "Netzlaufwerk nicht mehr verbunden",
}


def os_error_de(exc: OSError) -> str:
    """Why the system could not read a file, in German: ``strerror`` is English ("No such file or
    directory" reached staff in the upload messages). An unknown error keeps its English text."""
    known = _OS_ERRORS_DE.get(exc.errno) if exc.errno is not None else None
    return known or f"Systemfehler ({exc.strerror or exc})"
