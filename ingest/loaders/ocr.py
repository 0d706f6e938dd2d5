"""Text recognition (OCR) for scanned pages: Tesseract with the German model, through pytesseract.

Why this shape (measured, see docs/results.md "Texterkennung"):

* pytesseract calls Debian's ``tesseract`` binary per page and returns every word with its
  confidence (``image_to_data``); from those the page's text and its mean word confidence are
  built in one pass. ocrmypdf reached the same accuracy (it runs the same Tesseract) but
  writes a new PDF through Ghostscript, costs more time per page and gives no confidence.
* Each page runs in its own ``tesseract`` process with ``OMP_THREAD_LIMIT=1``, and up to
  ``workers`` pages run at once: on 2 cores two single-threaded processes read more pages per
  minute than one process with two OpenMP threads.
* Rotation: Tesseract's orientation detection (OSD, ``tesseract-ocr-osd``) turns a page by
  90/180/270° before reading it when it is confident; small skew (a page fed in slightly
  crooked) is handled by Tesseract's own line finding, which the quality test checks.
* The page's mean word confidence travels with its text, so a source can say how well it was
  read and the admin can see the pages that should be checked.

All of this runs inside the loader worker (``ingest.loaders.isolated``): its memory limit holds
for the tesseract processes too (they inherit it), and its time limit stops a file that would
keep the OCR busy for too long; each page is bounded by ``page_timeout_s`` on its own.
"""
from __future__ import annotations

import contextvars
import logging
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from ingest.errors import IngestError

log = logging.getLogger(__name__)

#: ``(done, total)`` pages of the current file; set by the loader worker to report progress.
PageProgress = Callable[[int, int], None]
PROGRESS: contextvars.ContextVar[PageProgress | None] = contextvars.ContextVar("ocr_progress", default=None)

#: A page whose words Tesseract reads with less mean confidence than this holds no text (a photo, a
#: drawing): real scans, even poor ones, read above 50; pure noise reads at 0-25.
NOISE_CONFIDENCE = 30.0
#: OSD must be at least this sure before a page is turned (Tesseract's scale, ~2 is a fair guess).
OSD_MIN_CONFIDENCE = 2.0
#: An upright reading below this mean confidence makes OSD check whether the page is turned.
OSD_BELOW_CONFIDENCE = 70.0
#: A page with fewer pixels darker than BLANK_DARK_LEVEL than this share is blank (a short line of
#: 11-pt text covers about 0.2 % of an A4 page; this is a few letters).
BLANK_DARK_LEVEL = 128
BLANK_MAX_DARK_SHARE = 0.0005
#: Below this many pixels on the short side OSD has too little to judge.
OSD_MIN_SIDE = 300


@dataclass(frozen=True)
class OcrOptions:
    """How scans are read. Built from ``settings.ocr``; picklable for the loader worker."""

    enabled: bool = True
    languages: str = "deu"
    dpi: int = 300
    workers: int = 2
    page_timeout_s: float = 120.0
    seconds_per_page: float = 20.0  # added to the loader's per-file time limit for every page sent to OCR
    max_file_seconds: float = 10800.0  # most seconds all pages of one file add, however many there are
    osd: bool = True


@dataclass(frozen=True)
class OcrPage:
    """What Tesseract read on one page."""

    text: str
    confidence: float  # mean word confidence 0-100 (Tesseract's scale); 0 when no word was read
    words: int
    rotated: int = 0  # degrees the page was turned before reading


def allowance(pages: int, opts: OcrOptions) -> float:
    """Seconds that ``pages`` pages sent to text recognition add to a file's time limit: each page's
    share, but never more than ``max_file_seconds``, so that a hostile file of 2,000 near-blank
    pages (the page limit) cannot hold the one reading worker for 11 hours."""
    return min(max(0, pages) * opts.seconds_per_page, opts.max_file_seconds)


def available() -> bool:
    """Tesseract installed (``make`` installs Debian's ``tesseract-ocr`` and ``tesseract-ocr-deu``)."""
    return shutil.which("tesseract") is not None


def _require(opts: OcrOptions) -> None:
    if not opts.enabled:
        raise IngestError("needs_ocr", "Texterkennung ist ausgeschaltet (ocr.enabled)")
    if not available():
        raise IngestError("needs_ocr", "Tesseract ist nicht installiert (make installiert tesseract-ocr)")


def _prepare(image):
    """Greyscale at 8 bit: Tesseract binarises itself; colour and alpha only cost time."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        bg = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(bg, image)
    if image.mode != "L":
        image = image.convert("L")
    return image


def _orientation(image, opts: OcrOptions) -> int:
    """Degrees (clockwise) Tesseract's OSD says the page must be turned; 0 when unsure.

    Run at full resolution: on a downscaled noisy scan OSD guessed 180° for an upright page.
    """
    import pytesseract

    if min(image.size) < OSD_MIN_SIDE:
        return 0
    try:
        osd = pytesseract.image_to_osd(image, config=f"--psm 0 --dpi {_dpi(image, opts)}",
                                       output_type=pytesseract.Output.DICT, timeout=opts.page_timeout_s)
    except pytesseract.TesseractError as exc:  # too few characters to judge: read as it is
        log.debug("OSD ohne Ergebnis: %s", str(exc)[:200])
        return 0
    except RuntimeError as exc:  # pytesseract's timeout (TesseractError is a RuntimeError too: caught above)
        raise IngestError("timeout", f"Lageerkennung einer Seite dauerte über {opts.page_timeout_s:g} s") from exc
    rotate = int(osd.get("rotate", 0) or 0) % 360
    if rotate and float(osd.get("orientation_conf", 0) or 0) >= OSD_MIN_CONFIDENCE:
        return rotate
    return 0


def _text_from_data(data: dict) -> tuple[str, float, int]:
    """Lines and paragraphs from Tesseract's word table, and the mean confidence of its words."""
    lines: dict[tuple[int, int, int], list[str]] = {}
    confs: list[float] = []
    for i, word in enumerate(data.get("text", [])):
        word = (word or "").strip()
        try:
            conf = float(data["conf"][i])
        except (KeyError, ValueError, IndexError):
            conf = -1.0
        if not word or conf < 0:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        lines.setdefault(key, []).append(word)
        confs.append(conf)
    if not confs:
        return "", 0.0, 0
    paragraphs: list[list[str]] = []
    current: tuple[int, int] | None = None
    for (block, par, _line), words in lines.items():  # dicts keep Tesseract's reading order
        if (block, par) != current:
            paragraphs.append([])
            current = (block, par)
        paragraphs[-1].append(" ".join(words))
    # lines as lines, paragraphs after a blank line: the PDF loader's paragraph rules apply as for a text layer
    return "\n\n".join("\n".join(p) for p in paragraphs), sum(confs) / len(confs), len(confs)


def _blank(image) -> bool:
    """No dark pixels worth a letter: an empty page or a scanned back side.

    Not only a saving: on a blank page with scanner noise Tesseract's global threshold falls
    into the noise, and reading the resulting specks took over two minutes for one A4 page.
    """
    hist = image.histogram()
    total = sum(hist) or 1
    return sum(hist[:BLANK_DARK_LEVEL]) / total < BLANK_MAX_DARK_SHARE


def _dpi(image, opts: OcrOptions) -> int:
    """The image's resolution as its file or renderer says, else the configured one (Tesseract needs it)."""
    try:
        dpi = int(float(image.info.get("dpi", (opts.dpi, opts.dpi))[0]) or opts.dpi)
    except (TypeError, ValueError, IndexError):
        dpi = opts.dpi
    return max(70, min(dpi, 1200))


def _read(image, opts: OcrOptions) -> tuple[str, float, int]:
    import pytesseract

    config = f"--psm 3 --dpi {_dpi(image, opts)}"
    try:
        data = pytesseract.image_to_data(image, lang=opts.languages, config=config,
                                         output_type=pytesseract.Output.DICT, timeout=opts.page_timeout_s)
    except pytesseract.TesseractError as exc:
        raise IngestError("corrupt", f"Texterkennung fehlgeschlagen: {str(exc)[:200]}") from exc
    except RuntimeError as exc:  # pytesseract's timeout (TesseractError is a RuntimeError too: caught above)
        raise IngestError("timeout", f"Texterkennung einer Seite dauerte über {opts.page_timeout_s:g} s") from exc
    return _text_from_data(data)


def ocr_image(image, opts: OcrOptions = OcrOptions()) -> OcrPage:
    """Read one page image (PIL). Raises ``IngestError('timeout')`` when a page takes too long.

    Orientation is checked only when the upright reading is poor (OSD costs ~2 s a page at
    300 dpi, about half a reading): a turned page reads as nonsense with a low confidence, and
    the turned reading is kept only when it is more confident than the upright one.
    """
    _require(opts)
    os.environ["OMP_THREAD_LIMIT"] = "1"  # pages run in parallel; OpenMP threads would fight over 2 cores
    image = _prepare(image)
    if _blank(image):
        return OcrPage("", 0.0, 0)
    text, conf, words = _read(image, opts)
    rotate = 0
    if opts.osd and (conf < OSD_BELOW_CONFIDENCE or words < 5):
        turn = _orientation(image, opts)
        if turn:
            dpi = image.info.get("dpi")
            # OSD's "rotate" is clockwise; PIL's rotate() is counter-clockwise
            turned = image.rotate(-turn, expand=True)
            if dpi:
                turned.info["dpi"] = dpi
            t_text, t_conf, t_words = _read(turned, opts)
            if t_conf > conf and t_words:
                text, conf, words, rotate = t_text, t_conf, t_words, turn
    if words and conf < NOISE_CONFIDENCE:
        # a photo or a drawing: "words" Tesseract itself doubts this much are not text
        return OcrPage("", conf, 0, rotate)
    return OcrPage(tidy(text), conf, words, rotate)


def ocr_pages(pages: Sequence[tuple[int, Callable[[], object]]], opts: OcrOptions = OcrOptions()
              ) -> dict[int, OcrPage]:
    """OCR several pages, ``workers`` at a time; ``pages`` are ``(page_no, render)`` pairs.

    ``render`` produces the page's image only when its turn comes, so a 300-page scan never
    holds more than ``workers`` page images in memory. Progress goes to :data:`PROGRESS`.
    """
    _require(opts)
    total = len(pages)
    progress = PROGRESS.get()
    if progress:
        progress(0, total)
    out: dict[int, OcrPage] = {}

    def one(item: tuple[int, Callable[[], object]]) -> tuple[int, OcrPage]:
        page_no, render = item
        image = render()  # a page over the limits fails the file (raised here)
        try:
            return page_no, ocr_image(image, opts)
        except IngestError as err:  # one page Tesseract cannot finish must not lose the others
            log.warning("Seite %d: Texterkennung übersprungen: %s", page_no, err)
            return page_no, OcrPage("", 0.0, 0)

    workers = max(1, min(opts.workers, total))
    if workers == 1:
        results: Iterable[tuple[int, OcrPage]] = map(one, pages)
        for done, (page_no, page) in enumerate(results, 1):
            out[page_no] = page
            if progress:
                progress(done, total)
        return out
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr") as pool:
        for done, (page_no, page) in enumerate(pool.map(one, pages), 1):
            out[page_no] = page
            if progress:
                progress(done, total)
    return out


_SPACE_RE = re.compile(r"[ \t]+")


def tidy(text: str) -> str:
    """Tesseract's text with single spaces (it sometimes doubles them around punctuation)."""
    return "\n".join(_SPACE_RE.sub(" ", ln).strip() for ln in text.split("\n"))
