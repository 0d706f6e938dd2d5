"""Plain-text loader: paragraphs at blank lines, robust decoding.

Text files from municipal IT come in UTF-8, UTF-8 with BOM, or cp1252 from old
Windows tools; decoding is strict-first with a logged fallback (see
``blocks.decode_bytes``). Numbered or all-caps single-line paragraphs become
headings so chunks of long texts (e.g. statutes with "§ 5 ...") get sections.
"""
from __future__ import annotations

import logging
from pathlib import Path

from corpus.models import ExtractedDocument
from ingest.loaders.blocks import (
    BlockBuilder,
    decode_text_file,
    heading_level,
    label_heading,
    split_paragraphs,
    title_from_text,
)
from ingest.loaders.limits import LoadLimits

log = logging.getLogger(__name__)


def paragraphs_to_blocks(paragraphs: list[str], builder: BlockBuilder) -> None:
    """One block per paragraph; a single-line paragraph that looks like a heading becomes one."""
    skip = 0
    for i, para in enumerate(paragraphs):
        if skip:
            skip -= 1
            continue
        heading, used = label_heading(para, paragraphs[i + 1: i + 4]) if "\n" not in para else ("", 0)
        if used:
            builder.add(heading, kind="heading", level=2)
            skip = used
            continue
        level = heading_level(para) if "\n" not in para else 0
        if level:
            builder.add(para, kind="heading", level=level)
        else:
            builder.add(para)


def load_text(path: Path, limits: LoadLimits) -> ExtractedDocument:
    text = decode_text_file(path.read_bytes(), path.name)
    builder = BlockBuilder()
    paragraphs_to_blocks(split_paragraphs(text), builder)
    title = builder.first_heading() if builder.blocks and builder.blocks[0].kind == "heading" else ""
    if not title and builder.blocks:
        first = title_from_text(builder.blocks[0].text)
        title = first if len(first) <= 120 else ""
    return ExtractedDocument(format="txt", title=title, blocks=tuple(builder.blocks))
