"""Find a file's real format from its content, not its name.

Users rename files, mail gateways append ".pdf", exports are saved as ".doc"
although they are RTF. Trusting the extension would send bytes to the wrong
parser and turn a readable file into a "corrupt" one. The extension is only
used to tell text-ish formats apart (Markdown vs. plain text vs. HTML), where
the content alone is ambiguous.
"""
from __future__ import annotations

import logging
import mmap
import re
import zipfile
from pathlib import Path

from ingest.errors import IngestError
from ingest.loaders.blocks import junk_ratio

log = logging.getLogger(__name__)

HEAD_BYTES = 8192

#: Format an extension claims; used for disambiguation and mismatch warnings.
EXTENSION_FORMATS = {
    ".pdf": "pdf",
    ".docx": "docx", ".docm": "docx", ".dotx": "docx", ".dotm": "docx",
    ".pptx": "pptx", ".pptm": "pptx", ".ppsx": "pptx", ".potx": "pptx",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".xltx": "xlsx",
    ".odt": "odt", ".ott": "odt",
    ".html": "html", ".htm": "html", ".xhtml": "html", ".shtml": "html",
    ".md": "md", ".markdown": "md", ".mdown": "md", ".mkd": "md",
    ".txt": "txt", ".text": "txt", ".csv": "txt", ".tsv": "txt", ".log": "txt",
    ".rtf": "rtf",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".jpe": "image", ".tif": "image", ".tiff": "image",
}
BINARY_FORMATS = frozenset({"pdf", "docx", "pptx", "xlsx", "odt", "image"})
#: Scans as images: read by text recognition (ingest.loaders.image). Other image types stay unsupported.
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")
# Legacy binaries that share a name with a supported format; "unsupported", not "corrupt".
LEGACY_EXTENSIONS = frozenset({".doc", ".xls", ".ppt", ".pps", ".dot", ".xlt", ".pot", ".msg"})

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")

# Well-known binary signatures. Those with a byte no text file starts with
# (see ``_decisive``) decide on their own: a PNG renamed to .docx whose few
# pixel bytes happen to decode as Latin-1 is still an image, not text. The
# printable ones ("MZ", "RIFF", "ID3" ...) can begin a German sentence too and
# only name the format once the content has failed the text test.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG-Bild"),
    (b"\xff\xd8\xff", "JPEG-Bild"),
    (b"GIF87a", "GIF-Bild"),
    (b"GIF89a", "GIF-Bild"),
    (b"II*\x00", "TIFF-Bild"),
    (b"MM\x00*", "TIFF-Bild"),
    (b"\x7fELF", "ausführbares Programm im ELF-Format"),
    (b"MZ", "ausführbares Windows-Programm"),
    (b"\x1f\x8b", "gzip-Archiv"),
    (b"7z\xbc\xaf\x27\x1c", "7z-Archiv"),
    (b"Rar!\x1a\x07", "RAR-Archiv"),
    (b"OggS", "Ogg-Audio"),
    (b"ID3", "MP3-Audio"),
    (b"fLaC", "FLAC-Audio"),
    (b"RIFF", "RIFF-Datei (Audio/Video/Bild)"),
    (b"\x1aE\xdf\xa3", "Matroska/WebM-Video"),
)

_OOXML_MAIN_TYPES = (
    ("wordprocessingml.document.main", "docx"),
    ("ms-word.document.macroenabled.main", "docx"),
    ("wordprocessingml.template.main", "docx"),
    ("ms-word.template.macroenabledtemplate.main", "docx"),
    ("presentationml.presentation.main", "pptx"),
    ("presentationml.slideshow.main", "pptx"),
    ("presentationml.template.main", "pptx"),
    ("ms-powerpoint.presentation.macroenabled.main", "pptx"),
    ("spreadsheetml.sheet.main", "xlsx"),
    ("spreadsheetml.template.main", "xlsx"),
    ("ms-excel.sheet.macroenabled.main", "xlsx"),
)
_ODF_TYPES = {
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.text-template": "odt",
}

_HTML_STRONG_RE = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>])",
    re.IGNORECASE | re.DOTALL,
)
_HTML_WEAK_RE = re.compile(rb"<(?:html|head|body|title|meta|div|p|h[1-6])[\s>/]", re.IGNORECASE)
_MD_HINT_RE = re.compile(r"^(?:---\s*\n|#{1,6} \S)", re.MULTILINE)


def extension_format(path: Path) -> str | None:
    """The format the file name claims, or None."""
    return EXTENSION_FORMATS.get(path.suffix.lower())


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(HEAD_BYTES)


def _zip_format(path: Path) -> str:
    """Tell OOXML and ODF apart from other zips by their members, not their name."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "mimetype" in names:
                info = zf.getinfo("mimetype")
                if info.file_size <= 200:
                    mime = zf.read(info).decode("ascii", "replace").strip()
                    if mime in _ODF_TYPES:
                        return _ODF_TYPES[mime]
                    raise IngestError("unsupported", f"Archivtyp {mime!r}")
            if "word/document.xml" in names:
                return "docx"
            if "ppt/presentation.xml" in names:
                return "pptx"
            if "xl/workbook.xml" in names:
                return "xlsx"
            if "[Content_Types].xml" in names:
                info = zf.getinfo("[Content_Types].xml")
                if info.file_size <= 1024 * 1024:
                    ct = zf.read(info).decode("utf-8", "replace").lower()
                    for marker, fmt in _OOXML_MAIN_TYPES:
                        if marker in ct:
                            return fmt
            if "content.xml" in names and "META-INF/manifest.xml" in names:
                # ODF without the (optional) mimetype member: the manifest's root entry says it.
                manifest = zf.read("META-INF/manifest.xml")[:65536].decode("utf-8", "replace")
                root = re.search(r'<manifest:file-entry[^>]*full-path="/"[^>]*>', manifest)
                mime = re.search(r'media-type="([^"]+)"', root.group(0)) if root else None
                if mime and mime.group(1) in _ODF_TYPES:
                    return _ODF_TYPES[mime.group(1)]
    except IngestError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        log.info("ZIP-Archiv nicht lesbar: %s: %s: %s", path.name, type(exc).__name__, exc)
        raise IngestError("corrupt", "ZIP-Archiv unvollständig oder beschädigt") from exc
    raise IngestError("unsupported", "ZIP-Archiv ohne erkennbares Office-Dokument")


def _ole_is_encrypted_ooxml(path: Path) -> bool:
    """An encrypted .docx/.xlsx/.pptx is an OLE container holding an 'EncryptedPackage' stream.

    A legacy .doc/.xls never has a stream of that name, so finding the UTF-16
    name anywhere in the file tells the two apart without an OLE parser.
    """
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return mm.find(_ENCRYPTED_PACKAGE) != -1
    except (OSError, ValueError):
        return False


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 with BOM: NULs are expected
    if head.count(b"\x00") > max(2, len(head) // 100):
        return False  # binaries are full of NULs; a stray NUL in a text export is not one
    # A multi-byte UTF-8 sequence may be cut at the end of the head: ignore the tail.
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:
            text = head[: exc.start].decode("utf-8", "replace")
        else:
            text = head.decode("cp1252", "replace")
    return junk_ratio(text) <= 0.05


def _decisive(magic: bytes) -> bool:
    """A signature with a control or non-ASCII byte cannot be the start of a text file."""
    return any(b < 0x20 or b >= 0x7F for b in magic)


def _binary_name(head: bytes, decisive_only: bool = False) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic) and (_decisive(magic) or not decisive_only):
            return name
    return None


def detect_format(path: Path, head: bytes | None = None) -> str:
    """Return one of ``corpus.models.FORMATS`` for ``path``, judged by content.

    ``head`` may be passed when the caller already read the file's first bytes.
    Raises ``IngestError('unsupported')`` for binaries we cannot index,
    ``IngestError('encrypted')`` for password-protected Office files and
    ``IngestError('corrupt')`` for broken archives / binary garbage that
    claims to be a document.
    """
    path = Path(path)
    if head is None:
        head = _read_head(path)
    if not head:
        raise IngestError("empty")
    ext = path.suffix.lower()
    claimed = EXTENSION_FORMATS.get(ext)

    # PDF: readers accept junk before the header within the first KB; trust that
    # only when the name says PDF too, so a text file quoting "%PDF-" stays text.
    if head.startswith(b"%PDF-") or (claimed == "pdf" and b"%PDF-" in head[:1024]):
        return "pdf"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip_format(path)
    if head.startswith(_OLE_MAGIC):
        if _ole_is_encrypted_ooxml(path):
            raise IngestError("encrypted", "verschlüsseltes Office-Dokument")
        raise IngestError("unsupported", "altes Office-Binärformat (.doc/.xls/.ppt), bitte als .docx/.xlsx/.pptx speichern")
    if head.startswith(_IMAGE_MAGIC):
        return "image"
    if stripped.startswith(b"%!PS"):
        raise IngestError("unsupported", "PostScript")
    name = _binary_name(head, decisive_only=True)
    if name:
        raise IngestError("unsupported", name)

    if not _looks_like_text(head):
        name = _binary_name(head)
        if name:
            raise IngestError("unsupported", name)
        if claimed in BINARY_FORMATS:
            raise IngestError("corrupt", f"Inhalt ist kein gültiges {claimed.upper()}")
        if ext in LEGACY_EXTENSIONS:
            raise IngestError("unsupported", f"Binärformat {ext}")
        raise IngestError("unsupported", "unbekanntes Binärformat")

    # Text-ish: content decides HTML when it is unambiguous, the extension the rest.
    if _HTML_STRONG_RE.match(stripped[:2048]):
        return "html"
    if claimed == "html":
        return "html" if stripped.startswith(b"<") or _HTML_WEAK_RE.search(head) else "txt"
    if claimed in ("md", "txt"):
        return claimed
    if claimed is None or claimed in BINARY_FORMATS or claimed == "rtf":
        # Unknown or wrong extension: guess Markdown from its typical first lines.
        sample = head.decode("utf-8", "ignore")
        if _MD_HINT_RE.search(sample[:2048]):
            return "md"
        if _HTML_WEAK_RE.search(head[:2048]) and stripped.startswith(b"<"):
            return "html"
    return "txt"
