"""Scanned pages of PDFs and image files, read by text recognition (:mod:`ingest.loaders.ocr`).

PDF pages are rendered with PDFium (pypdfium2): fast, and it draws what a viewer shows
(image masks, rotation, crop boxes), which extracting the embedded image would have to
reimplement. A page is only read when it has (almost) no text layer **and** an image covers
a good part of it: an empty page or a vector drawing has nothing a scan could add, and a
text page keeps its exact text (mixed files are common: a typed letter with a scanned
signature page).

Images (PNG, JPEG, TIFF including multi-page TIFF) are checked against the pixel limit from
their header before a single pixel is decoded (decompression-bomb guard), per frame.
PDFium and Pillow's frame seeking are not thread-safe, so rendering holds a lock; the
recognition itself runs in parallel.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.errors import IngestError
from ingest.loaders.blocks import BlockBuilder, clean_text, title_from_text
from ingest.loaders.limits import LoadLimits
from ingest.loaders.ocr import OcrPage, ocr_pages
from ingest.loaders.page_text import page_blocks

log = logging.getLogger(__name__)

#: Share of a page an image must cover before the page counts as scanned.
MIN_IMAGE_COVER = 0.25


def _image_cover(page, pdfium_c) -> float:
    """Share of the page area covered by images (their bounding boxes, clipped to the page)."""
    width, height = page.get_size()
    if width <= 0 or height <= 0:
        return 0.0
    covered = 0.0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3):
        left, bottom, right, top = obj.get_bounds()
        w = max(0.0, min(right, width) - max(left, 0.0))
        h = max(0.0, min(top, height) - max(bottom, 0.0))
        covered += w * h
    return min(1.0, covered / (width * height))


def ocr_pdf_pages(path: Path, candidates: list[int], limits: LoadLimits) -> dict[int, OcrPage]:
    """Read the ``candidates`` (1-based page numbers without text layer) that hold a scan."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        log.warning("PDFium kann %s nicht öffnen, keine Texterkennung: %s", path.name, exc)
        return {}
    lock = threading.Lock()
    dpi = limits.ocr.dpi
    try:
        scanned: list[int] = []
        for page_no in candidates:
            try:
                page = pdf[page_no - 1]
                try:
                    if _image_cover(page, pdfium_c) >= MIN_IMAGE_COVER:
                        scanned.append(page_no)
                finally:
                    page.close()
            except pdfium.PdfiumError as exc:
                log.warning("Seite %d von %s nicht lesbar: %s", page_no, path.name, exc)
        if not scanned:
            return {}
        log.info("%s: Texterkennung für %d Seite(n)", path.name, len(scanned))

        def render(page_no: int):
            with lock:
                page = pdf[page_no - 1]
                try:
                    w_pt, h_pt = page.get_size()
                    scale = dpi / 72
                    pixels = w_pt * scale * h_pt * scale
                    if pixels > limits.max_image_pixels:  # a huge page: read it at a lower resolution
                        scale *= (limits.max_image_pixels / pixels) ** 0.5
                    image = page.render(scale=scale, grayscale=True).to_pil()
                finally:
                    page.close()
            image.info["dpi"] = (round(scale * 72), round(scale * 72))
            return image

        return ocr_pages([(n, (lambda n=n: render(n))) for n in scanned], limits.ocr)
    finally:
        pdf.close()


# -- image files ------------------------------------------------------------------------------
def load_image(path: Path, limits: LoadLimits) -> ExtractedDocument:
    """A scan as a PNG, JPEG or (multi-page) TIFF: every frame is a page read by OCR."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        img = Image.open(path)  # reads the header only
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise IngestError("corrupt", f"Bild nicht lesbar: {exc}") from exc
    except Image.DecompressionBombError as exc:  # Pillow's own guard, far above ours: same answer
        raise IngestError("too_large", f"Bild hat mehr Pixel als erlaubt (Grenze {limits.max_image_pixels / 1e6:.0f} Mio.; "
                                       "Dekompressionsbombe?)") from exc
    with img:
        frames = getattr(img, "n_frames", 1) or 1
        if frames > limits.max_pages:
            raise IngestError("too_many_pages", f"{frames} Bilder in der Datei (Grenze {limits.max_pages})")
        lock = threading.Lock()

        def frame(index: int):
            with lock:
                try:
                    img.seek(index)
                    w, h = img.size
                    if w * h > limits.max_image_pixels:
                        raise IngestError("too_large", f"Bild {index + 1}: {w}×{h} Pixel "
                                                       f"(Grenze {limits.max_image_pixels / 1e6:.0f} Mio.)")
                    dpi = img.info.get("dpi")
                    page = ImageOps.exif_transpose(img.copy()) if img.format == "JPEG" else img.copy()
                    page.load()
                except IngestError:
                    raise
                except Image.DecompressionBombError as exc:
                    raise IngestError("too_large", f"Bild zu groß: {exc}") from exc
                except (OSError, ValueError, EOFError, SyntaxError) as exc:
                    raise IngestError("corrupt", f"Bild {index + 1} nicht lesbar: {exc}") from exc
            if dpi:
                try:
                    page.info["dpi"] = (round(float(dpi[0])), round(float(dpi[1])))
                except (TypeError, ValueError, IndexError):
                    page.info.pop("dpi", None)
            return page

        # check every frame's size before reading any: a bomb in frame 40 fails the file at once
        for i in range(frames):
            try:
                img.seek(i)
            except (EOFError, OSError, ValueError) as exc:
                raise IngestError("corrupt", f"Bild {i + 1} nicht lesbar: {exc}") from exc
            w, h = img.size
            if w * h > limits.max_image_pixels:
                raise IngestError("too_large", f"Bild {i + 1}: {w}×{h} Pixel (Grenze {limits.max_image_pixels / 1e6:.0f} Mio.)")
        read = ocr_pages([(i + 1, (lambda i=i: frame(i))) for i in range(frames)], limits.ocr)

    builder = BlockBuilder()
    confidences: list[tuple[int, float]] = []
    for page_no in sorted(read):
        text = clean_text(read[page_no].text)
        if not text:
            continue
        confidences.append((page_no, round(read[page_no].confidence, 1)))
        page_blocks(text, page_no, builder)  # the same paragraph/heading rules as a text layer
    if not builder.blocks:
        raise IngestError("empty", "Texterkennung fand keinen Text im Bild")
    first = next((t for t in (clean_text(read[n].text) for n in sorted(read)) if t), "")
    return ExtractedDocument(format="image", title=title_from_text(first), blocks=tuple(builder.blocks),
                             page_count=frames, page_kind="page", ocr_pages=tuple(confidences))
