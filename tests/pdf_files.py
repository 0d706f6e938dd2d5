"""PDF files written by hand to the spec, for tests in any folder (a plain module: see
tests/portal_world.py on why not a conftest). No binary fixtures are committed."""
from __future__ import annotations


def _pdf_string(line: str) -> bytes:
    """A PDF literal string in WinAnsi (cp1252) with the syntax characters escaped."""
    raw = line.encode("cp1252")
    out = bytearray(b"(")
    for b in raw:
        if b in b"()\\":
            out += b"\\" + bytes([b])
        elif b < 32 or b > 126:
            out += b"\\%03o" % b
        else:
            out.append(b)
    return bytes(out + b")")


def _content_stream(text: str | bytes | None) -> bytes:
    """Text lines top-down in Helvetica 11 pt; ``None`` makes a page with drawings only; ``bytes``
    are taken as the page's raw content stream (for pathological pages)."""
    if isinstance(text, bytes):
        return text
    if text is None:
        return b"0.5 g 72 500 300 200 re f 0 G 2 w 72 300 m 400 450 l S"
    ops = [b"BT", b"/F1 11 Tf", b"14 TL", b"72 770 Td"]
    for line in text.split("\n"):
        if line:
            ops.append(_pdf_string(line) + b" Tj")
        ops.append(b"T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def build_pdf(pages: list[str | bytes | None], title: str | None = None) -> bytes:
    """A minimal, valid PDF (correct xref table) with one page per entry of ``pages``."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # placeholder, filled once the page tree number is known
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for text in pages:
        stream = _content_stream(text)
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
                b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (pages_obj, font, content)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    info = None
    if title is not None:
        info = add(b"<< /Title " + _pdf_string(title) + b" /Producer (kiportal tests) >>")

    return _serialise(objects, catalog, info)


def _serialise(objects: list[bytes], catalog: int, info: int | None = None) -> bytes:
    """Numbered objects (1-based) with a correct xref table and trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def sized_lines(lines: list[tuple[int, str]]) -> bytes:
    """A raw content stream of (font size, text) lines top-down in Helvetica: a cover page whose
    headline is set larger than the rest."""
    ops = [b"BT", b"72 770 Td"]
    for size, text in lines:
        ops += [b"/F1 %d Tf" % size, _pdf_string(text) + b" Tj", b"0 -%d Td" % (size + 6)]
    return b"\n".join(ops + [b"ET"])


def scan_pdf(image, pages: int) -> bytes:
    """A "scan" of ``pages`` A4 pages that all draw the same greyscale image (PIL, mode "L") over
    the whole page: one shared image object, so a file of hundreds of pages that text
    recognition must read one by one stays a few kilobytes (an attacker's upload)."""
    import zlib

    image = image.convert("L")
    raw = zlib.compress(image.tobytes(), 9)
    objects: list[bytes] = [b"", b""]  # catalog and page tree, filled below
    objects.append(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                   b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n" % (*image.size, len(raw))
                   + raw + b"\nendstream")
    draw = b"q 595 0 0 842 0 0 cm /Im0 Do Q"
    objects.append(b"<< /Length %d >>\nstream\n" % len(draw) + draw + b"\nendstream")
    kids = []
    for _ in range(pages):
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                       b"/Resources << /XObject << /Im0 3 0 R >> >> /Contents 4 0 R >>")
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), pages)
    return _serialise(objects, 1)
