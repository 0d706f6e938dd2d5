"""DOCX loader: headings, paragraphs and tables in document order.

Body elements are walked directly (not ``doc.paragraphs`` then ``doc.tables``)
so a table stays under the heading it belongs to; the chunker derives the
section of a citation from the preceding heading. Heading levels come from
paragraph styles, resolved once per style (incl. inheritance and outline
level) instead of once per paragraph, which keeps long documents fast.
DOCX has no stable pages (layout happens in Word), so ``page`` is None.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.loaders.blocks import BlockBuilder, sensible_title, title_from_text
from ingest.loaders.limits import LoadLimits
from ingest.loaders.nesting import outermost

log = logging.getLogger(__name__)

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_HEADING_NAME_RE = re.compile(r"^(?:heading|überschrift|berschrift|titre|kop)\s*(\d)$", re.IGNORECASE)
_TITLE_NAMES = {"title", "titel"}
MAX_DEPTH = 30

# Macro-enabled documents and templates share the document schema; python-docx
# only registers the plain content type, so teach it the siblings once.
_EXTRA_MAIN_TYPES = (
    "application/vnd.ms-word.document.macroEnabled.main+xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
    "application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
)


def _open(path: Path):
    import docx  # noqa: F401 - registers python-docx part classes
    from docx.opc.part import PartFactory
    from docx.package import Package
    from docx.parts.document import DocumentPart

    for ct in _EXTRA_MAIN_TYPES:
        PartFactory.part_type_for.setdefault(ct, DocumentPart)
    part = Package.open(str(path)).main_document_part
    if not isinstance(part, DocumentPart):
        raise ValueError(f"kein Word-Dokument (Inhaltstyp {part.content_type})")
    return part.document


def _style_levels(doc) -> tuple[dict[str, int], str | None]:
    """Map paragraph style id -> heading level (0 = body text); also the default paragraph style id."""
    from docx.enum.style import WD_STYLE_TYPE

    levels: dict[str, int] = {}
    default: str | None = None
    for style in doc.styles:
        try:
            if style.type != WD_STYLE_TYPE.PARAGRAPH:
                continue
            level = 0
            cur, depth = style, 0
            while cur is not None and depth < 10 and not level:
                level = _level_of(cur)
                cur, depth = cur.base_style, depth + 1
            levels[style.style_id] = level
            if style.element.get(f"{W}default") in ("1", "true", "on"):
                default = style.style_id
        except Exception as exc:  # noqa: BLE001 - a broken style is just body text
            log.debug("Formatvorlage ignoriert: %s", exc)
    return levels, default


def _level_of(style) -> int:
    name = (style.name or "").strip()
    m = _HEADING_NAME_RE.match(name)
    if m:
        return max(1, int(m.group(1)))
    if name.lower() in _TITLE_NAMES:
        return 1
    return _outline_level(style.element.find(f"{W}pPr"))


def _outline_level(ppr) -> int:
    if ppr is None:
        return 0
    ol = ppr.find(f"{W}outlineLvl")
    if ol is None:
        return 0
    try:
        val = int(ol.get(f"{W}val"))
    except (TypeError, ValueError):
        return 0
    return val + 1 if 0 <= val < 9 else 0


_T, _TAB, _BR, _CR, _NBH = f"{W}t", f"{W}tab", f"{W}br", f"{W}cr", f"{W}noBreakHyphen"
# Subtrees whose text is not part of the paragraph's running text.
_SKIP = frozenset({f"{W}txbxContent", MC_FALLBACK, f"{W}del", f"{W}pPr", f"{W}rPr", f"{W}instrText"})


_WRAPPERS = frozenset({f"{W}sdt", f"{W}sdtContent", f"{W}customXml", f"{W}ins", f"{W}smartTag"})


def _children(el, tag: str):
    """``el``'s children named ``tag``, also those wrapped in content controls or tracked
    insertions: Word's repeating-section forms put each table row in a ``w:sdt``."""
    for ch in el.iterchildren():
        if ch.tag == tag:
            yield ch
        elif ch.tag in _WRAPPERS:
            yield from _children(ch, tag)


def _run_text(el, parts: list[str], depth: int) -> None:
    """Collect visible text of a paragraph, incl. hyperlinks, fields and tracked insertions.

    python-docx's ``Paragraph.text`` only looks at direct runs and hyperlinks and
    misses text inside tracked changes, smart tags and simple fields.
    """
    if depth > MAX_DEPTH:
        return
    for ch in el:
        tag = ch.tag
        if tag == _T:
            parts.append(ch.text or "")
        elif tag == _TAB:
            parts.append("\t")
        elif tag in (_BR, _CR):
            parts.append("\n")
        elif tag == _NBH:
            parts.append("-")
        elif tag in _SKIP or not isinstance(tag, str):
            continue
        else:
            _run_text(ch, parts, depth + 1)


class _Para:
    """A body paragraph before heading levels are final (they may depend on the whole document)."""

    __slots__ = ("text", "level", "size", "bold")

    def __init__(self, text: str, level: int, size: int | None, bold: bool) -> None:
        self.text, self.level, self.size, self.bold = text, level, size, bold


def _on(el) -> bool:
    """A WordprocessingML toggle property (``<w:b/>``, ``<w:b w:val="0"/>``) is on?"""
    return el is not None and el.get(f"{W}val") not in ("0", "false", "off")


def _run_format(p, style_size: int | None, style_bold: bool) -> tuple[int | None, bool]:
    """Largest font size (half-points) and whether all visible text is bold."""
    size: int | None = None
    all_bold = True
    seen = False
    for r in p.iter(f"{W}r"):
        if not any((t.text or "").strip() for t in r.iterchildren(_T)):
            continue
        seen = True
        rpr = r.find(f"{W}rPr")
        sz = rpr.find(f"{W}sz") if rpr is not None else None
        try:
            rsize = int(sz.get(f"{W}val")) if sz is not None else style_size
        except (TypeError, ValueError):
            rsize = style_size
        if rsize is not None and (size is None or rsize > size):
            size = rsize
        b = rpr.find(f"{W}b") if rpr is not None else None
        if not (_on(b) if b is not None else style_bold):
            all_bold = False
    return size, (all_bold and seen)


def _default_size(doc) -> int | None:
    """Font size from ``w:docDefaults``: what a run without any size setting gets."""
    try:
        sz = doc.styles.element.find(f"{W}docDefaults/{W}rPrDefault/{W}rPr/{W}sz")
        return int(sz.get(f"{W}val")) if sz is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def _style_fonts(doc) -> dict[str, tuple[int | None, bool]]:
    """Style id -> (font size in half-points, bold), following ``basedOn`` inheritance."""
    out: dict[str, tuple[int | None, bool]] = {"": (_default_size(doc), False)}
    for style in doc.styles:
        size, bold = None, None
        cur, depth = style, 0
        try:
            while cur is not None and depth < 10 and (size is None or bold is None):
                rpr = cur.element.find(f"{W}rPr")
                if rpr is not None:
                    sz = rpr.find(f"{W}sz")
                    if size is None and sz is not None:
                        try:
                            size = int(sz.get(f"{W}val"))
                        except (TypeError, ValueError):
                            pass
                    b = rpr.find(f"{W}b")
                    if bold is None and b is not None:
                        bold = _on(b)
                cur, depth = cur.base_style, depth + 1
            out[style.style_id] = (size if size is not None else out[""][0], bool(bold))
        except Exception as exc:  # noqa: BLE001 - a broken style just has no font info
            log.debug("Formatvorlage ohne Schriftinfo: %s", exc)
    return out


_HEADING_END = (".", ",", ";")  # "Was ist BärGPT?" is a fine heading; a sentence is not


def _visual_levels(items: list) -> dict[int, int]:
    """Heading levels from font size for documents that never use heading styles.

    Many municipal Word files format headings by hand (bigger font, bold).
    Without this they would have no sections at all. Sizes clearly above the
    dominant body size become levels 1..n (largest first); short all-bold
    paragraphs become the level below.
    """
    weight: dict[int, int] = {}
    for it in items:
        if isinstance(it, _Para) and it.size:
            weight[it.size] = weight.get(it.size, 0) + len(it.text)
    if not weight:
        return {}
    body = max(weight, key=weight.get)
    bigger = sorted({sz for sz in weight if sz >= body * 1.15}, reverse=True)[:5]
    return {sz: i + 1 for i, sz in enumerate(bigger)}


def _looks_like_heading_text(text: str) -> bool:
    text = text.strip()
    return 3 <= len(text) <= 150 and not text.endswith(_HEADING_END) and sum(c.isalpha() for c in text) >= 3


def load_docx(path: Path, limits: LoadLimits) -> ExtractedDocument:
    doc = _open(path)
    levels, default_style = _style_levels(doc)
    default_level = levels.get(default_style or "", 0)
    fonts = _style_fonts(doc)
    body = doc.element.body
    items: list = []  # _Para or ("table", rows), in document order

    def para_style(p) -> str | None:
        ppr = p.find(f"{W}pPr")
        ps = ppr.find(f"{W}pStyle") if ppr is not None else None
        return ps.get(f"{W}val") if ps is not None else default_style

    def para_level(p) -> int:
        ppr = p.find(f"{W}pPr")
        if ppr is not None:
            lvl = _outline_level(ppr)
            if lvl:
                return lvl
            ps = ppr.find(f"{W}pStyle")
            if ps is not None:
                return levels.get(ps.get(f"{W}val"), 0)
        return default_level

    def para_text(p) -> str:
        parts: list[str] = []
        _run_text(p, parts, 0)
        return "".join(parts)

    def text_boxes(p, depth: int) -> None:
        # Text boxes (flyers, forms) are invisible to Paragraph.text. The VML
        # fallback repeats the DrawingML content, so it is skipped.
        # A box in a box is read with the outer box's paragraphs.
        for box in outermost(p, (f"{W}txbxContent",), barriers=(MC_FALLBACK,)):
            walk(box, depth + 1)

    def cell_text(tc) -> str:
        return " ".join(t for t in (para_text(p) for p in tc.iter(f"{W}p")) if t.strip())

    def table(tbl) -> None:
        rows = []
        for tr in _children(tbl, f"{W}tr"):
            cells = []
            for tc in _children(tr, f"{W}tc"):
                tcpr = tc.find(f"{W}tcPr")
                vmerge = tcpr.find(f"{W}vMerge") if tcpr is not None else None
                if vmerge is not None and vmerge.get(f"{W}val") in (None, "continue"):
                    cells.append("")  # continuation of a vertical merge: text is in the row above
                    continue
                cells.append(cell_text(tc))
            rows.append(cells)
        items.append(("table", rows))

    def walk(container, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        for el in container.iterchildren():
            tag = el.tag
            if tag == f"{W}p":
                text = para_text(el)
                if text.strip():
                    ssize, sbold = fonts.get(para_style(el) or "", (None, False))
                    size, bold = _run_format(el, ssize, sbold)
                    items.append(_Para(text, para_level(el), size, bold))
                text_boxes(el, depth)
            elif tag == f"{W}tbl":
                table(el)
            elif tag in _WRAPPERS:
                walk(el, depth + 1)

    walk(body, 0)

    styled = any(isinstance(it, _Para) and it.level for it in items)
    visual = {} if styled else _visual_levels(items)
    bold_level = len(visual) + 1
    builder = BlockBuilder()
    for it in items:
        if not isinstance(it, _Para):
            builder.add_table(it[1])
            continue
        level = it.level
        if not styled and _looks_like_heading_text(it.text):
            if it.size in visual:
                level = visual[it.size]
            elif it.bold and len(it.text.strip()) <= 100 and not it.text.rstrip().endswith(":"):
                level = bold_level
        if level:
            builder.add(it.text, kind="heading", level=min(level, 9))
        else:
            builder.add(it.text)

    title = sensible_title(doc.core_properties.title) or builder.first_heading()
    if not title and builder.blocks:
        title = title_from_text(builder.blocks[0].text)
    return ExtractedDocument(format="docx", title=title, blocks=tuple(builder.blocks))
