"""German pages rendered as scans, and character accuracy: what OCR is measured on.

Why generated and not shipped: a scanned page is a few hundred KB, and a fixed set would be
tuned on. Here the text is written from seeded German phrases of municipal files (umlauts, ß,
amounts, dates, file numbers), rendered with Pillow like a scan (a slight tilt, sensor noise,
blur, 200 or 300 dpi, optionally turned by 90°) and compared with what the OCR read. The
font is DejaVu from matplotlib's own data (a dependency already), so no system font is needed.

Accuracy is ``1 - edit distance / reference length`` on whitespace-normalised text (the usual
character accuracy of OCR evaluations; line breaks and hyphenation do not count).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

_STREETS = ("Hauptstraße", "Mühlenweg", "Schloßallee", "Königsberger Straße", "Bülowplatz", "Grüner Weg",
            "Lößnitzstraße", "Am Großen Garten", "Fußgängerzone Süd", "Jägerstraße")
_OFFICES = ("Bauordnungsamt", "Stadtplanungsamt", "Amt für Grünflächen", "Ordnungsamt", "Kämmerei",
            "Straßenverkehrsbehörde", "Umweltamt", "Liegenschaftsamt")
_SUBJECTS = ("Baugenehmigung für ein Mehrfamilienhaus", "Nutzungsänderung einer Gaststätte",
             "Errichtung einer Garage mit Überdachung", "Abbruch eines Nebengebäudes",
             "Sanierung der Außenfassade", "Erweiterung des Kindergartens", "Umbau des Dachgeschosses",
             "Fällung einer Rotbuche", "Aufstellung eines Bebauungsplans", "Änderung der Grundstücksgrenze")
_NAMES = ("Müller", "Schäfer", "Weiß", "Krüger", "Böhm", "Groß", "Jürgens", "Köhler", "Strauß", "Hübner")
_MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember")
_SENTENCES = (
    "Gemäß § {par} der Landesbauordnung wird die {subject} unter Auflagen erteilt.",
    "Die Gebühr beträgt {amount} € und ist bis zum {date} zu überweisen.",
    "Der Antrag von Frau {name} vom {date} ist am {date2} beim {office} eingegangen.",
    "Das Grundstück {street} {nr} liegt im Geltungsbereich des Bebauungsplans Nr. {plan}.",
    "Bitte geben Sie bei Rückfragen stets das Aktenzeichen {az} an.",
    "Die Prüfung der Standsicherheit ergab keine Beanstandungen; die Maße betragen {m1} m × {m2} m.",
    "Für die Außenanlagen werden Kosten von {amount} € zuzüglich Umsatzsteuer veranschlagt.",
    "Gegen diesen Bescheid kann innerhalb eines Monats nach Bekanntgabe Widerspruch erhoben werden.",
    "Herr {name} äußerte Bedenken gegen die Höhe der Straßenausbaubeiträge für das Flurstück {flur}.",
    "Die Sitzung des Ausschusses für Stadtentwicklung am {date} beschloss die Vorlage {az} einstimmig.",
    "Zuständig ist das {office}, Zimmer {room}, Telefon 02153 898-{tel}.",
    "Die Frist verlängert sich um {days} Tage, weil Unterlagen zur Überprüfung nachgereicht wurden.",
)

_FONT_CACHE: dict[tuple[str, int], object] = {}


def _amount(rng: random.Random) -> str:
    euros = rng.randint(12, 98_000)
    return f"{euros:,}".replace(",", ".") + f",{rng.randint(0, 99):02d}"


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(1995, 2026)}"


def german_text(seed: int, sentences: int = 26) -> str:
    """Seeded German prose of a building file: umlauts, ß, amounts, dates and file numbers."""
    rng = random.Random(seed)
    head = (f"Stadt Kempenrath – {rng.choice(_OFFICES)}\n"
            f"Aktenzeichen {rng.randint(60, 69)}-{rng.randint(1995, 2026)}/{rng.randint(1, 9999):04d}, "
            f"{rng.randint(1, 28)}. {rng.choice(_MONTHS)} {rng.randint(1995, 2026)}\n"
            f"Betreff: {rng.choice(_SUBJECTS)}")
    body = []
    for _ in range(sentences):
        tpl = rng.choice(_SENTENCES)
        body.append(tpl.format(
            par=rng.randint(2, 89), subject=rng.choice(_SUBJECTS),
            amount=_amount(rng), date=_date(rng), date2=_date(rng), name=rng.choice(_NAMES),
            office=rng.choice(_OFFICES), street=rng.choice(_STREETS), nr=rng.randint(1, 140),
            plan=f"{rng.randint(1, 250)}/{rng.randint(1, 9)}",
            az=f"{rng.randint(60, 69)}-{rng.randint(2000, 2026)}/{rng.randint(1, 9999):04d}",
            m1=f"{rng.randint(3, 40)},{rng.randint(0, 99):02d}", m2=f"{rng.randint(3, 40)},{rng.randint(0, 99):02d}",
            flur=f"{rng.randint(1, 900)}/{rng.randint(1, 30)}", room=rng.randint(1, 420), tel=rng.randint(100, 999),
            days=rng.randint(7, 60)))
    return head + "\n\n" + " ".join(body)


def _font(size_px: int, serif: bool):
    from PIL import ImageFont
    import matplotlib

    name = "DejaVuSerif.ttf" if serif else "DejaVuSans.ttf"
    key = (name, size_px)
    if key not in _FONT_CACHE:
        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
        _FONT_CACHE[key] = ImageFont.truetype(str(path), size_px)
    return _FONT_CACHE[key]


def _wrap(text: str, font, width_px: int) -> list[str]:
    lines: list[str] = []
    for para in text.split("\n"):
        words, line = para.split(), ""
        for w in words:
            cand = f"{line} {w}".strip()
            if font.getlength(cand) <= width_px or not line:
                line = cand
            else:
                lines.append(line)
                line = w
        lines.append(line)
    return lines


@dataclass(frozen=True)
class Scan:
    """How a page is 'scanned'."""

    dpi: int = 300
    tilt_deg: float = 0.8
    noise: float = 12.0  # standard deviation of grey-level noise
    blur: float = 0.6  # Gaussian blur radius in pixels at 300 dpi
    rotate90: bool = False
    serif: bool = False
    point_size: float = 11.0


def render_scan(text: str, scan: Scan = Scan(), seed: int = 0):
    """``text`` on an A4 page as a greyscale scan (a PIL image)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    w, h = round(8.27 * scan.dpi), round(11.69 * scan.dpi)
    page = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(page)
    font = _font(round(scan.point_size / 72 * scan.dpi), scan.serif)
    margin = round(scan.dpi * 0.9)
    line_h = round(font.size * 1.45)
    y = margin
    for line in _wrap(text, font, w - 2 * margin):
        if y + line_h > h - margin:
            break
        draw.text((margin, y), line, font=font, fill=20)
        y += line_h
    if scan.tilt_deg:
        page = page.rotate(scan.tilt_deg, resample=Image.BICUBIC, fillcolor=255)
    if scan.blur:
        page = page.filter(ImageFilter.GaussianBlur(scan.blur * scan.dpi / 300))
    if scan.noise:
        rng = np.random.default_rng(seed)
        arr = np.asarray(page, dtype=np.float32) + rng.normal(0, scan.noise, (h, w))
        page = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if scan.rotate90:
        page = page.transpose(Image.ROTATE_90)
    page.info["dpi"] = (scan.dpi, scan.dpi)
    return page


def visible_text(text: str, scan: Scan = Scan()) -> str:
    """The part of ``text`` that fits on the page :func:`render_scan` draws."""
    w, h = round(8.27 * scan.dpi), round(11.69 * scan.dpi)
    font = _font(round(scan.point_size / 72 * scan.dpi), scan.serif)
    margin = round(scan.dpi * 0.9)
    line_h = round(font.size * 1.45)
    lines = _wrap(text, font, w - 2 * margin)
    fit = max(0, (h - 2 * margin) // line_h)
    return "\n".join(lines[:fit])


_WS = re.compile(r"\s+")
_HYPHEN_BREAK = re.compile(r"(?<=\w)-\s+(?=[a-zäöüß])")


def normalise(text: str) -> str:
    """Whitespace collapsed, line-end hyphenation joined, typographic quotes/dashes unified."""
    text = text.replace("\u2013", "-").replace("\u2014", "-").replace("\u201e", '"').replace("\u201c", '"')
    text = _HYPHEN_BREAK.sub("", text)
    return _WS.sub(" ", text).strip()


def char_accuracy(reference: str, ocr: str) -> float:
    """``1 - Levenshtein(reference, ocr) / len(reference)`` on normalised text (floor 0)."""
    import Levenshtein

    ref, got = normalise(reference), normalise(ocr)
    if not ref:
        return 1.0 if not got else 0.0
    return max(0.0, 1.0 - Levenshtein.distance(ref, got) / len(ref))


def write_mixed_pdf(path: Path, typed_text: str, scan) -> Path:
    """A PDF whose page 1 has a text layer (``typed_text``) and page 2 is ``scan`` (an image only)."""
    import io

    import matplotlib
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", fname=str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"))
    pdf.add_page()
    pdf.set_font("DejaVu", size=11)
    pdf.multi_cell(0, 6, typed_text)
    pdf.add_page()
    buf = io.BytesIO()
    scan.save(buf, format="PNG")
    buf.seek(0)
    pdf.image(buf, x=0, y=0, w=pdf.w, h=pdf.h)
    pdf.output(str(path))
    return path
