"""ODT loader: reads content.xml with lxml directly.

odfpy builds a full object tree for every element and is slow and fragile on
files written by other producers than LibreOffice; the text model of ODF is
simple enough to walk ourselves. The parser refuses entity expansion and
network access, so a hostile content.xml cannot expand or phone home.
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.errors import IngestError
from ingest.loaders.blocks import BlockBuilder, sensible_title, title_from_text
from ingest.loaders.limits import LoadLimits
from ingest.loaders.nesting import outermost

log = logging.getLogger(__name__)

TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
DC = "{http://purl.org/dc/elements/1.1/}"
MAX_DEPTH = 60

# Inside a paragraph: elements whose text must not flow into the sentence.
_INLINE_SKIP = frozenset({
    f"{TEXT}note", f"{OFFICE}annotation", f"{OFFICE}annotation-end", f"{TEXT}tracked-changes",
    f"{TEXT}bookmark-ref", f"{DRAW}frame", f"{DRAW}custom-shape",
})
# Containers whose children are walked as blocks.
_CONTAINERS = frozenset({
    f"{TEXT}section", f"{TEXT}list", f"{TEXT}list-item", f"{TEXT}list-header", f"{TEXT}index-body",
    f"{TEXT}table-of-content", f"{TEXT}alphabetical-index", f"{TEXT}illustration-index",
    f"{TEXT}table-index", f"{TEXT}user-index", f"{TEXT}bibliography", f"{TEXT}note-body",
    f"{DRAW}frame", f"{DRAW}text-box", f"{DRAW}custom-shape"
})


def _parser():
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)


def load_odt(path: Path, limits: LoadLimits) -> ExtractedDocument:
    from lxml import etree

    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if "META-INF/manifest.xml" in names and b"encryption-data" in zf.read("META-INF/manifest.xml"):
            # Password-protected ODF keeps the zip readable but encrypts content.xml.
            raise IngestError("encrypted", "ODT mit Passwort")
        try:
            content = zf.read("content.xml")
        except KeyError as exc:
            raise IngestError("corrupt", "content.xml fehlt im ODT") from exc
        meta = zf.read("meta.xml") if "meta.xml" in names else None

    root = etree.fromstring(content, parser=_parser())
    body = root.find(f"{OFFICE}body/{OFFICE}text")
    if body is None:
        raise IngestError("corrupt", "ODT ohne Textkörper")

    builder = BlockBuilder()
    _walk(body, builder, 0)

    title = ""
    if meta:
        try:
            mroot = etree.fromstring(meta, parser=_parser())
            el = mroot.find(f"{OFFICE}meta/{DC}title")
            title = sensible_title(el.text if el is not None else None)
        except etree.XMLSyntaxError as exc:
            log.debug("meta.xml nicht lesbar (%s): %s", path.name, exc)
    if not title:
        title = builder.first_heading() or (title_from_text(builder.blocks[0].text) if builder.blocks else "")
    return ExtractedDocument(format="odt", title=title, blocks=tuple(builder.blocks))


def _walk(el, builder: BlockBuilder, depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    for ch in el:
        tag = ch.tag
        if not isinstance(tag, str):
            continue
        if tag == f"{TEXT}h":
            try:
                level = int(ch.get(f"{TEXT}outline-level", "1"))
            except ValueError:
                level = 1
            builder.add(_inline_text(ch), kind="heading", level=max(1, min(level, 9)))
            _nested_blocks(ch, builder, depth)
        elif tag == f"{TEXT}p":
            builder.add(_inline_text(ch))
            _nested_blocks(ch, builder, depth)
        elif tag == f"{TABLE}table":
            _table(ch, builder, depth)
        elif tag in _CONTAINERS:
            _walk(ch, builder, depth + 1)


_NESTED = (f"{TEXT}note-body", f"{DRAW}text-box")


def _nested_blocks(p, builder: BlockBuilder, depth: int) -> None:
    """Footnotes and text boxes anchored in a paragraph become blocks after it (the outermost ones:
    a box in a box is read with the outer box's paragraphs)."""
    for ch in outermost(p, _NESTED):
        _walk(ch, builder, depth + 1)


def _inline_text(el, depth: int = 0) -> str:
    parts: list[str] = []

    def rec(node, d: int) -> None:
        if node.text:
            parts.append(node.text)
        for ch in node:
            tag = ch.tag
            if isinstance(tag, str) and tag not in _INLINE_SKIP and d < MAX_DEPTH:
                if tag == f"{TEXT}s":
                    try:
                        parts.append(" " * min(int(ch.get(f"{TEXT}c", "1")), 100))
                    except ValueError:
                        parts.append(" ")
                elif tag == f"{TEXT}tab":
                    parts.append("\t")
                elif tag == f"{TEXT}line-break":
                    parts.append("\n")
                else:
                    rec(ch, d + 1)
            if ch.tail:
                parts.append(ch.tail)

    rec(el, depth)
    return "".join(parts)


def _table(tbl, builder: BlockBuilder, depth: int) -> None:
    rows: list[list[str]] = []
    for row in tbl.iter(f"{TABLE}table-row"):
        # Only rows of this table, not of tables nested in its cells.
        anc = row.getparent()
        while anc is not None and anc.tag != f"{TABLE}table":
            anc = anc.getparent()
        if anc is not tbl:
            continue
        cells = []
        for cell in row.iterchildren(f"{TABLE}table-cell"):
            cells.append(" ".join(_inline_text(p) for p in cell.iter(f"{TEXT}p", f"{TEXT}h")))
        rows.append(cells)
    builder.add_table(rows)
