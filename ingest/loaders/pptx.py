"""PPTX loader: one slide is one page, so answers can cite "Folie 7".

Shapes are read in visual order (top to bottom, left to right) rather than
z-order, because z-order follows the author's editing history, not reading.
Speaker notes are kept: in municipal decks they often hold the actual
explanation the slides only hint at.
"""
from __future__ import annotations

import logging
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.errors import IngestError
from ingest.loaders.blocks import BlockBuilder, sensible_title
from ingest.loaders.limits import LoadLimits

log = logging.getLogger(__name__)

MAX_GROUP_DEPTH = 20  # nested groups deeper than this are malformed or hostile


def load_pptx(path: Path, limits: LoadLimits) -> ExtractedDocument:
    from pptx import Presentation

    prs = Presentation(str(path))
    slides = list(prs.slides)
    if len(slides) > limits.max_pages:
        raise IngestError("too_many_pages", f"{len(slides)} Folien (Grenze {limits.max_pages})")

    builder = BlockBuilder()
    first_slide_title = ""
    for no, slide in enumerate(slides, start=1):
        try:
            title = _slide(slide, no, builder)
        except Exception as exc:  # noqa: BLE001 - one broken slide must not lose the deck
            log.warning("Folie %d von %s übersprungen: %s: %s", no, path.name, type(exc).__name__, exc)
            continue
        if title and not first_slide_title:
            first_slide_title = title

    title = sensible_title(prs.core_properties.title) or first_slide_title
    return ExtractedDocument(
        format="pptx", title=title, blocks=tuple(builder.blocks), page_count=len(slides), page_kind="slide"
    )


def _slide(slide, no: int, builder: BlockBuilder) -> str:
    title_shape = slide.shapes.title
    title = ""
    if title_shape is not None and title_shape.has_text_frame:
        title = title_shape.text_frame.text
        builder.add(title, page=no, kind="title", level=1)
    title_id = title_shape.shape_id if title_shape is not None else None
    _shapes(slide.shapes, no, builder, title_id, depth=0)
    if slide.has_notes_slide:
        notes_frame = slide.notes_slide.notes_text_frame
        notes = notes_frame.text if notes_frame is not None else ""
        if notes.strip():
            builder.add("Notizen: " + notes, page=no, kind="notes")
    return title


def _position(shape) -> tuple[int, int]:
    return (shape.top or 0, shape.left or 0)


def _is_chrome_placeholder(shape) -> bool:
    """Footer, date and slide-number placeholders repeat on every slide and carry no content."""
    from pptx.enum.shapes import PP_PLACEHOLDER

    if not getattr(shape, "is_placeholder", False):
        return False
    try:
        return shape.placeholder_format.type in (PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.SLIDE_NUMBER)
    except Exception:  # noqa: BLE001 - malformed placeholder: treat as content
        return False


def _shapes(shapes, no: int, builder: BlockBuilder, title_id, depth: int) -> None:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if depth > MAX_GROUP_DEPTH:
        return
    try:
        ordered = sorted(shapes, key=_position)
    except Exception:  # noqa: BLE001 - odd geometry: fall back to document order
        ordered = list(shapes)
    for shape in ordered:
        if depth == 0 and title_id is not None and shape.shape_id == title_id:
            continue
        if _is_chrome_placeholder(shape):
            continue
        try:
            shape_type = shape.shape_type
        except NotImplementedError:  # exotic graphic frames: nothing we can read
            continue
        if shape_type == MSO_SHAPE_TYPE.GROUP:
            _shapes(shape.shapes, no, builder, title_id, depth + 1)
        elif getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
            builder.add_table(rows, page=no)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            lines = [p.text for p in shape.text_frame.paragraphs]
            builder.add("\n".join(lines), page=no)
