"""Cited documents, served by the portal itself so a source opens at the cited place.

Why this shape:

* Only documents in the catalog are served, looked up by ``doc_id``; a path never
  comes from the request, so nothing outside the indexed corpus can be read.
* The reader must be allowed to read the document's collection *now*
  (:mod:`assistant.access`), so a link from before a revoke opens nothing.
* The same login as the portal protects the routes (gradio's session cookie in
  password mode, the trusted header in header mode, loopback only without auth).
  On top, every link carries an HMAC token bound to document, user and expiry: a
  forwarded or guessed link does not open for anyone else, and old links expire.
* PDFs open in the browser's viewer at ``#page=N`` (a scanned page too: the original is
  the evidence, whatever text recognition made of it). A scanned image (PNG, JPEG, TIFF)
  opens as the image of the cited page: decoded with the pixel limit, re-encoded as PNG
  by Pillow (so no bytes of the upload reach the browser as they came: no polyglot, no
  script) and scaled to screen size. Every other format is shown as
  an HTML page of its extracted text (the catalog's chunks, grouped by page or
  slide) with the cited passage marked and scrolled to, and the sentences the answer quotes marked
  strongly; a PDF's, a scan's or a public original's source offers this view beside the original
  ("Stelle im Text markiert"), since the original cannot mark them. All document text is
  HTML-escaped and the page carries a strict Content-Security-Policy without any
  script source, so a hostile document shows as text and runs nothing.
"""
from __future__ import annotations

import base64
import hashlib
import html
import logging
import os
import re
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from assistant.escaping import esc
from assistant.links import LinkSigner
from corpus.catalog import DocumentRecord
from corpus.ligatures import readable_chunks
from corpus.models import Chunk, ocr_label, page_label
from corpus.text import split_sentences
from ingest.safe_files import open_listed

log = logging.getLogger(__name__)

_DOC_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


# -- labels and links -----------------------------------------------------------------
def _norm(text: str) -> str:
    return " ".join(text.split())


#: at most this many quoted pieces are marked in one passage (a link's ``s`` parameter)
MAX_MARKS = 20
_MARKS = re.compile(r"[0-9]{1,4}(?:,[0-9]{1,4}){0,%d}" % (MAX_MARKS - 1))


def text_units(text: str) -> list[tuple[int, int]]:
    """The pieces a quote is made of, as ``(start, end)`` offsets in ``text``: each line's sentences
    (:func:`corpus.text.split_sentences`), so a table row, a bullet and a sentence are each a piece.

    One definition for both ends: the link names the pieces of the passage that the answer quotes
    (:func:`quoted_units`), the text view marks the same pieces (:func:`render_text_page`)."""
    units: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        at = 0
        for sentence in split_sentences(line):  # stripped slices of the line, in order
            start = line.find(sentence, at)
            at = start + len(sentence)
            units.append((pos + start, pos + at))
        pos += len(line) + 1
    return units


def quoted_units(text: str, quote: str) -> list[int]:
    """Which of ``text``'s pieces (:func:`text_units`) the quote is made of.

    A quote is one or more verbatim pieces of its passage, joined by spaces, line breaks (a table
    row under its header line) or "…", and possibly cut short with "…" (the condensed evidence, the
    sources' shortened quote). A piece counts when it stands in the quote as a whole, word for word
    ("2 Jahre" is not in "12 Jahre"), or when a long part of the quote stands in it (the piece the
    quote was cut short in). Pieces of fewer than two words are not marked on their own: a lone
    "Euro" or "1." stands in many quotes."""
    q = f" {_norm(quote)} "
    parts = [p for p in (_norm(x) for x in re.split(r"…", quote)) if len(p) >= 20]
    out = []
    for i, (start, end) in enumerate(text_units(text)):
        piece = _norm(text[start:end])
        if len(re.findall(r"\w+", piece)) < 2:
            continue
        if f" {piece} " in q or any(part in piece for part in parts):
            out.append(i)
        if len(out) == MAX_MARKS:
            break
    return out


def parse_marks(value: str | None) -> list[int]:
    """A link's ``s`` parameter as piece numbers; anything else is no marks (never an error page)."""
    if not value or not _MARKS.fullmatch(value):
        return []
    return sorted({int(x) for x in value.split(",")})


def public_url(rec: DocumentRecord, page: int | None = None) -> str:
    """The public address of an imported document (``meta.access_url``), '' when it has none."""
    url = (rec.meta or {}).get("access_url") if isinstance(getattr(rec, "meta", None), dict) else None
    if not isinstance(url, str) or not url.lower().startswith(("https://", "http://")) or len(url) > 2000:
        return ""
    # the address comes from a remote server: percent-encode whatever could end a Markdown link or an
    # HTML attribute (brackets, quotes, angle brackets, spaces), so it stays one link wherever it is shown
    url = quote(url, safe=":/?#@!$&*+,;=%~-._")
    if page and rec.format == "pdf" and "#" not in url:
        url += f"#page={int(page)}"
    return url


def doc_link(signer: LinkSigner, rec: DocumentRecord, user: str, page: int | None = None,
             chunk: int | None = None, marks: Sequence[int] = ()) -> str:
    """A link relative to the portal root (works behind a reverse proxy under a sub-path).

    A document imported from a public source (OParl: the file's ``accessUrl``) links to that
    source, the authoritative original; only http(s) URLs count, never ``javascript:``. A PDF
    opens in the browser's viewer at its page, a scan as the page's image, every other format as
    :func:`text_link`."""
    public = public_url(rec, page)
    if public:
        return public
    if rec.format == "pdf":
        token = signer.sign(rec.doc_id, user)
        return f"doc/{quote(rec.doc_id)}?{urlencode({'t': token})}" + (f"#page={int(page)}" if page else "")
    if rec.format == "image":
        token = signer.sign(rec.doc_id, user)
        return f"doc/{quote(rec.doc_id)}/image?{urlencode({'page': int(page or 1), 't': token})}"
    return text_link(signer, rec, user, page, chunk, marks)


def text_link(signer: LinkSigner, rec: DocumentRecord, user: str, page: int | None = None,
              chunk: int | None = None, marks: Sequence[int] = ()) -> str:
    """The portal's text view of ``rec``, scrolled to the cited passage, the quoted pieces marked.

    The marks travel as piece numbers (:func:`quoted_units`), not as the quote: document text in
    a URL would end up in a proxy's access log."""
    params: dict[str, str | int] = {}
    if page:
        params["page"] = int(page)
    if chunk is not None:
        params["chunk"] = int(chunk)
        if marks:
            params["s"] = ",".join(str(int(m)) for m in list(marks)[:MAX_MARKS])
    params["t"] = signer.sign(rec.doc_id, user)
    anchor = "#treffer" if chunk is not None else (f"#seite-{int(page)}" if page else "")
    return f"doc/{quote(rec.doc_id)}/text?{urlencode(params)}{anchor}"


def opens_as_text(rec: DocumentRecord) -> bool:
    """Whether :func:`doc_link` already is the text view (else the view is offered beside it)."""
    return not public_url(rec) and rec.format not in ("pdf", "image")


# -- the text view -------------------------------------------------------------------
_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:0;color:#1a1a1a;"
    "background:#fff;line-height:1.55}"
    "header{background:#0b3d5c;color:#fff;padding:1rem 1.5rem}header h1{margin:.2rem 0;font-size:1.35rem}"
    "header a{color:#fff}.meta{margin:0;font-size:.9rem;opacity:.9}"
    "main{max-width:52rem;margin:0 auto;padding:1rem 1.5rem 4rem}"
    "section{border-bottom:1px solid #ccc;padding-bottom:1rem}h2{font-size:1.1rem;color:#0b3d5c}"
    "h3{font-size:1rem;margin:1rem 0 .3rem}.chunk{margin:.5rem 0;white-space:pre-wrap;overflow-wrap:anywhere}"
    "mark{background:#fff0b3;color:#000}"
    "#treffer{display:block;border-left:5px solid #9a6700;padding:.3rem .6rem;scroll-margin-top:3rem}"
    "mark.zitat{background:#ffd21f;outline:1px solid #9a6700;font-weight:600}"
    ".hint{font-size:.9rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")
CSP_TEXT = (f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'none'; script-src 'none'; "
            "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}


def _dedupe_overlap(prev: str | None, text: str) -> int:
    """Consecutive chunks repeat a few sentences: where ``text`` starts to be shown (after a first
    line that ends the previous chunk, else 0)."""
    if not prev:
        return 0
    first, _, rest = text.partition("\n")
    if rest and _norm(first) and _norm(prev).endswith(_norm(first)):
        return len(first) + 1
    return 0


def _marked_body(text: str, start: int, marks: Sequence[int]) -> tuple[str, int]:
    """``text`` from ``start`` escaped, its pieces numbered ``marks`` (:func:`text_units`) in
    ``<mark>``, and how many were drawn. A marked piece in the first line, which the view leaves out
    as a repeat of the passage before, brings that line back: the quote stands in it."""
    units = text_units(text)
    spans = [units[i] for i in marks if i < len(units)]
    if any(a < start for a, _ in spans):
        start = 0
    out, pos = [], start
    for a, b in spans:
        out.append(esc(text[pos:a]))
        out.append(f"<mark class=\"zitat\">{esc(text[a:b])}</mark>")
        pos = b
    out.append(esc(text[pos:]))
    return "".join(out), len(spans)


def render_text_page(rec: DocumentRecord, chunks: Iterable[Chunk], *, mark: int | None = None,
                     original_url: str | None = None, marks: Sequence[int] = ()) -> str:
    """The document's extracted text as one escaped HTML page; chunk ``mark`` highlighted, its quoted
    pieces ``marks`` (:func:`quoted_units`) marked strongly. Where the document's font splits
    ligatures, its words are shown joined, as in the quotes (corpus.ligatures)."""
    e = esc
    chunks = readable_chunks(rec.format, chunks)
    name = Path(rec.source).name
    parts = [
        "<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<meta name=\"referrer\" content=\"no-referrer\">",
        f"<title>{e(rec.shown_title)} – Textansicht</title><style>{_STYLE}</style></head><body>",
        "<header>",
        f"<h1>{e(rec.shown_title)}</h1>",
        f"<p class=\"meta\">{e(name)} · {e(rec.format.upper())} · Textansicht des Portals",
    ]
    if original_url:
        parts.append(f" · <a href=\"{e(original_url)}\">Originaldatei herunterladen</a>")
    parts.append("</p></header><main>")
    hint_at = len(parts)
    parts.append("")  # the hint, once it is known whether sentences were marked
    drawn = 0
    current_page: object = object()
    current_section: str | None = None
    prev_text: str | None = None
    open_section = False
    for c in chunks:
        if c.page != current_page:
            if open_section:
                parts.append("</section>")
            current_page = c.page
            current_section = None
            prev_text = None
            anchor = f" id=\"seite-{int(c.page)}\"" if c.page else ""
            parts.append(f"<section{anchor}>")
            if c.page:
                parts.append(f"<h2>{e(page_label(c.page, rec.page_kind))}</h2>")
                note = ocr_label(rec.ocr_confidence(c.page))
                if note:
                    parts.append(f"<p class=\"hint\">{e(note[0].upper() + note[1:])} – Lesefehler sind möglich.</p>")
            open_section = True
        if c.section and c.section != current_section:
            current_section = c.section
            last = _norm(c.section.split(" › ")[-1])
            if last not in _norm("\n".join(c.text.splitlines()[:3])):  # chunks usually start with their heading
                parts.append(f"<h3>{e(c.section)}</h3>")
        start = _dedupe_overlap(prev_text, c.text)
        prev_text = c.text
        if mark is not None and c.ordinal == mark:
            body, drawn = _marked_body(c.text, start, marks)
            body = f"<mark id=\"treffer\">{body}</mark>"
        else:
            body = e(c.text[start:])
        parts.append(f"<div class=\"chunk\" id=\"abschnitt-{int(c.ordinal)}\">{body}</div>")
    if open_section:
        parts.append("</section>")
    parts.append("</main></body></html>")
    marked = (" die zitierte Textstelle ist gelb hinterlegt, die Sätze, auf die sich die Antwort stützt, sind "
              "kräftig markiert." if drawn else " die zitierte Textstelle ist gelb markiert.")
    parts[hint_at] = (f"<p class=\"hint\">Dies ist der im Portal gespeicherte Text des Dokuments;{marked} "
                      "Maßgeblich ist die Originaldatei.</p>")
    return "".join(parts)


#: Longest side of a page image as the portal shows it (a 300-dpi A4 scan is 3508 px high).
VIEW_MAX_SIDE = 2400


def render_image_page(path: Path | BinaryIO, page: int, max_pixels: int) -> bytes:
    """Page ``page`` (1-based frame) of an image file as PNG bytes, for the browser.

    Raises ``ValueError`` for a page that does not exist or an image over ``max_pixels``.
    """
    import io

    from PIL import Image, ImageOps

    with Image.open(path) as img:
        frames = getattr(img, "n_frames", 1) or 1
        if not 1 <= page <= frames:
            raise ValueError(f"Seite {page} gibt es nicht (1–{frames})")
        img.seek(page - 1)
        if img.size[0] * img.size[1] > max_pixels:
            raise ValueError("Bild zu groß")
        frame = ImageOps.exif_transpose(img.copy()) if img.format == "JPEG" else img.copy()
    if frame.mode not in ("L", "RGB"):
        frame = frame.convert("RGBA" if "A" in frame.getbands() else "RGB")
    frame.thumbnail((VIEW_MAX_SIDE, VIEW_MAX_SIDE))
    out = io.BytesIO()
    frame.save(out, format="PNG", optimize=False)
    return out.getvalue()


def message_page(title: str, text: str, link: str | None = None) -> str:
    """A small German error page (same CSP as the text view)."""
    e = html.escape
    extra = f"<p><a href=\"{e(link)}\">Zum Portal</a></p>" if link else ""
    return (f"<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{_STYLE}</style></head><body><header><h1>{e(title)}</h1></header>"
            f"<main><p>{e(text)}</p>{extra}</main></body></html>")


# -- routes ---------------------------------------------------------------------------
class _Refused(Exception):
    """A document request that ends in a German message page (401/403/404)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def register_routes(app, ctx, signer: LinkSigner, current_user: Callable) -> None:
    """Add ``/doc/{doc_id}``, ``/doc/{doc_id}/text`` and ``/doc/{doc_id}/original`` to ``app``.

    ``current_user(request)`` returns the portal user of a Starlette request or None.
    """
    from ui.login import HeldBackAudit

    catalog = ctx.app.catalog
    # one audit row per user, reason and minute, its attempts counted: a signed-in user requesting bad
    # links in a loop wrote a row each (an attacker's probe: 195 rows a second, plain GETs outside the queue)
    refusals = HeldBackAudit(ctx.audit)

    def refused_row(user: str, reason: str, doc_id: str) -> None:
        """Audited, and logged once a minute (the log would flood just as well)."""
        if refusals.record(f"doc:{reason}:{user}", "doc_refused", user, {"reason": reason}, time.time(),
                           collect=("docs", doc_id)):
            log.warning("document link refused for %s: %s (%s; more of this minute counted in the audit)",
                        user, "invalid or expired token" if reason == "link" else "collection not readable",
                        doc_id[:16])

    def html_response(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS | {"Content-Security-Policy": CSP_TEXT})

    @app.exception_handler(_Refused)
    async def refused(_request: Request, exc: _Refused) -> Response:
        return exc.response

    def check(request: Request, doc_id: str) -> tuple[object, DocumentRecord]:
        """Login, the signed link, existence and the department, in this order, for every document
        route (a FastAPI dependency).

        The link is checked before the catalog is asked: document ids are a hash of a path, so a
        guessed id answered "not found" or "refused" would tell anyone signed in whether a file
        of that name is in another department's collection (found by an attacker's probe)."""
        user = current_user(request)
        if user is None:
            raise _Refused(html_response(message_page("Anmeldung erforderlich",
                                                      "Bitte melden Sie sich zuerst im Portal an und öffnen Sie die "
                                                      "Quelle dann erneut aus dem Chat.", _portal_root(request)), 401))
        if not _DOC_ID.match(doc_id) or not signer.verify(request.query_params.get("t"), doc_id, user.name):
            refused_row(user.name, "link", doc_id if _DOC_ID.match(doc_id) else "")
            raise _Refused(html_response(message_page("Link ungültig oder abgelaufen",
                                                      "Bitte öffnen Sie die Quelle erneut über den Chat."), 403))
        rec = catalog.get(doc_id)
        if rec is None or rec.status != "indexed":  # signed for this user: it was theirs to read
            raise _Refused(html_response(message_page("Dokument nicht gefunden",
                                                      "Dieses Dokument ist nicht (mehr) im Portal vorhanden."), 404))
        if not ctx.scope(user).allows(rec.collection):
            # a link signed before a revoke (or a move into another department's collection)
            refused_row(user.name, "collection", rec.doc_id)
            raise _Refused(html_response(message_page("Kein Zugriff",
                                                      "Sie dürfen dieses Dokument nicht (mehr) lesen."), 403))
        return user, rec

    @app.get("/doc/{doc_id}/text", include_in_schema=False)
    def doc_text(request: Request, doc_id: str, chunk: int | None = None, s: str | None = None,
                 access=Depends(check)):
        user, rec = access
        chunks = catalog.iter_chunks(rec.doc_id)
        original = None
        fh = indexed_original(rec, ctx.app.settings.uploads_dir) if rec.path else None
        if fh is not None:  # offered only where the download would serve it
            fh.close()
            original = f"original?{urlencode({'t': request.query_params.get('t', '')})}"
        ctx.audit.record("doc_view", user.name, rec.doc_id, {"view": "text", "chunk": chunk})
        return html_response(render_text_page(rec, chunks, mark=chunk, original_url=original, marks=parse_marks(s)))

    @app.get("/doc/{doc_id}/original", include_in_schema=False)
    def doc_original(request: Request, doc_id: str, access=Depends(check)):
        user, rec = access
        fh = indexed_original(rec, ctx.app.settings.uploads_dir)
        if fh is None:
            return html_response(message_page("Datei nicht vorhanden", "Die Originaldatei ist nicht mehr vorhanden "
                                              "oder wurde seit dem Einlesen geändert."), 404)
        ctx.audit.record("doc_view", user.name, rec.doc_id, {"view": "download"})
        # attachment + sandbox: an HTML or SVG original must never render in the portal's origin
        return _file_response(fh, rec, "application/octet-stream", "attachment",
                              SECURITY_HEADERS | {"Content-Security-Policy": "sandbox; default-src 'none'"},
                              request.headers.get("range"))

    @app.get("/doc/{doc_id}/image", include_in_schema=False)
    def doc_image(request: Request, doc_id: str, page: int = 1, access=Depends(check)):
        user, rec = access
        fh = indexed_original(rec, ctx.app.settings.uploads_dir) if rec.format == "image" else None
        if fh is None:
            query = urlencode({k: v for k, v in request.query_params.items() if k in ("t", "page")})
            return RedirectResponse(f"text?{query}", status_code=303)
        try:
            with fh:
                data = render_image_page(fh, int(page), ctx.app.settings.limits.max_image_pixels)
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types (bomb, truncated, unknown)
            log.info("image view of %s refused: %s", rec.doc_id, exc)
            return html_response(message_page("Seite nicht verfügbar", "Diese Seite des Bildes kann nicht angezeigt "
                                              "werden."), 404)
        ctx.audit.record("doc_view", user.name, rec.doc_id, {"view": "image", "page": int(page)})
        return Response(data, media_type="image/png",
                        headers=SECURITY_HEADERS | {"Content-Security-Policy": "default-src 'none'; sandbox"})

    @app.get("/doc/{doc_id}", include_in_schema=False)
    def doc_file(request: Request, doc_id: str, access=Depends(check)):
        user, rec = access
        if rec.format == "image":
            query = urlencode({k: v for k, v in request.query_params.items() if k in ("t", "page")})
            return RedirectResponse(f"{quote(rec.doc_id)}/image?{query}", status_code=303)
        fh = indexed_original(rec, ctx.app.settings.uploads_dir) if rec.format == "pdf" else None
        if fh is None or fh.read(5) != b"%PDF-":
            if fh is not None:
                fh.close()
            # other formats (or a vanished or changed PDF) open as the text view
            query = urlencode({k: v for k, v in request.query_params.items() if k in ("t", "page")})
            return RedirectResponse(f"{quote(rec.doc_id)}/text?{query}", status_code=303)
        fh.seek(0)
        ctx.audit.record("doc_view", user.name, rec.doc_id, {"view": "pdf"})
        return _file_response(fh, rec, "application/pdf", "inline", SECURITY_HEADERS, request.headers.get("range"))


def _portal_root(request) -> str:
    """Relative link back to the portal from any /doc/... route (keeps a proxy's sub-path)."""
    return "../" * max(1, request.url.path.rstrip("/").count("/") - 1)


#: files already checked: (device, inode, size, mtime, ctime) -> the SHA-256 they had. A change of
#: the bytes changes mtime and ctime (ctime cannot be set back), so the file is hashed again.
_CHECKED: dict[tuple[int, int, int, int, int], str] = {}


def indexed_original(rec: DocumentRecord, storage: Path | None) -> BinaryIO | None:
    """The document's original file, opened, only if it holds the bytes that were indexed; else None.

    Why: the catalog names the file by its path, and a share's writers can replace an indexed file
    by a symlink to another department's file, or the link secret, after it was read (found by an
    attacker's probe). The file is opened without following a symlink at its name, must be a
    regular file, and its SHA-256 must be the indexed one, so a view never serves other bytes than
    those its text came from; a file changed since (not yet re-read) is not served either. The
    hash of an opened file is remembered by its identity and times (a PDF viewer asks again and
    again, in ranges)."""
    try:
        fh = open_listed(rec.file(storage))
    except OSError:
        return None
    try:
        st = os.fstat(fh.fileno())
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        sha = _CHECKED.get(key)
        if sha is None:
            sha = hashlib.file_digest(fh, "sha256").hexdigest()
            if len(_CHECKED) >= 4096:
                _CHECKED.clear()
            _CHECKED[key] = sha
        if not rec.sha256 or sha != rec.sha256:
            fh.close()
            return None
        fh.seek(0)
        return fh
    except OSError:
        fh.close()
        return None


# at most 18 digits a side: int() of thousands of digits raised (a 500 with a traceback in the log)
_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """The one range a ``Range`` header asks for, as (first, last) byte; None for the whole file
    (no header, or one this does not serve: several ranges); False when it cannot be satisfied."""
    m = _RANGE.match((header or "").strip())
    if m is None or not (m.group(1) or m.group(2)):
        return None
    if m.group(1):
        first = int(m.group(1))
        last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:  # the last N bytes
        first, last = max(0, size - int(m.group(2))), size - 1
    return (first, last) if first <= last and first < size else False


def _file_response(fh: BinaryIO, rec: DocumentRecord, media_type: str, disposition: str,
                   headers: dict[str, str], range_header: str | None = None) -> Response:
    """The opened original streamed (and closed at the end), named as the file was named; one byte
    range when the browser asks for it (PDF viewers load large files in parts)."""
    name = Path(rec.source).name
    size = os.fstat(fh.fileno()).st_size
    headers = headers | {"Accept-Ranges": "bytes",
                         "Content-Disposition": f"{disposition}; filename*=utf-8''{quote(name)}"}
    wanted = byte_range(range_header, size)
    if wanted is False:
        fh.close()
        return Response(status_code=416, headers=headers | {"Content-Range": f"bytes */{size}"})
    first, last = wanted if wanted else (0, size - 1)
    fh.seek(first)

    def chunks() -> Iterator[bytes]:
        left = last - first + 1
        with fh:
            while left > 0 and (block := fh.read(min(1 << 16, left))):
                left -= len(block)
                yield block

    if wanted:
        headers |= {"Content-Range": f"bytes {first}-{last}/{size}"}
    return StreamingResponse(chunks(), status_code=206 if wanted else 200, media_type=media_type,
                             headers=headers | {"Content-Length": str(max(0, last - first + 1))})
