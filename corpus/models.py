"""Plain data models shared by every layer: what a loader extracts, what the index stores.

They are frozen dataclasses on purpose: they cross threads (ingest workers, the
portal's request handlers) and must never be mutated after creation.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

BlockKind = Literal["title", "heading", "paragraph", "table", "notes"]
PageKind = Literal["page", "slide", "sheet"]

FORMATS = ("pdf", "pptx", "docx", "odt", "xlsx", "html", "md", "txt", "rtf", "image")


@dataclass(frozen=True)
class Block:
    """One structural piece of a document as a loader saw it.

    ``page`` is 1-based (page, slide or sheet number as a viewer shows it) or
    ``None`` for formats without pages (Markdown, HTML, plain text).
    ``level`` is the heading level for ``kind == "heading"`` (1 = top).
    """

    text: str
    page: int | None = None
    kind: BlockKind = "paragraph"
    level: int = 0


@dataclass(frozen=True)
class ExtractedDocument:
    """The text of one file, as structured blocks, before chunking."""

    format: str
    title: str
    blocks: tuple[Block, ...]
    page_count: int | None = None
    page_kind: PageKind | None = None
    #: ``(page, mean word confidence 0-100)`` for every page read by text recognition (OCR)
    ocr_pages: tuple[tuple[int, float], ...] = ()
    #: the title people read where it differs from ``title`` (a PDF's cover headline, when its first
    #: line is a label such as "Herausgeber:"); "" = ``title``. Only ``title`` is indexed with the passages.
    display_title: str = ""

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.blocks)


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage with everything needed to cite it."""

    chunk_id: str
    doc_id: str
    ordinal: int
    text: str
    source: str
    title: str
    page: int | None
    section: str | None
    collection: str
    content_hash: str = field(default="")

    def metadata(self) -> dict:
        """Flat metadata for vector stores (no None values: Chroma rejects them)."""
        return {
            "doc_id": self.doc_id,
            "ordinal": self.ordinal,
            "source": self.source,
            "title": self.title,
            "page": self.page if self.page is not None else -1,
            "section": self.section or "",
            "collection": self.collection,
            "content_hash": self.content_hash,
        }


@dataclass(frozen=True)
class Hit:
    """A search result: a chunk with its score and, for transparency, its ranks."""

    chunk: Chunk
    score: float
    bm25_rank: int | None = None
    dense_rank: int | None = None
    dense_score: float | None = None
    late_rank: int | None = None  # place by late interaction among the re-ranked candidates (assistant.late_interaction)


def chunk_id_for(doc_id: str, version: str, n: int) -> str:
    """The id of passage ``n`` of one version of a document: ``doc:version:nnnnn`` (the version in
    the id keeps old and new passages apart while a new version replaces an old one)."""
    return f"{doc_id}:{version[:10]}:{n:05d}"


def doc_id_of_chunk(chunk_id: str) -> str:
    """The document part of an id made by :func:`chunk_id_for` (the last two parts cut off, so a
    document id may itself hold a colon); an id of another form gives itself back."""
    parts = chunk_id.rsplit(":", 2)
    return parts[0] if len(parts) == 3 else chunk_id


def page_label(page: int | None, page_kind: str | None) -> str:
    """"Seite 3", "Folie 3" or "Blatt 2" as the document's viewer would name it ("" without a page)."""
    if not page:
        return ""
    return {"slide": "Folie", "sheet": "Blatt"}.get(page_kind or "", "Seite") + f" {page}"


def ocr_label(confidence: float | None) -> str:
    """"per Texterkennung gelesen, Sicherheit 92 %" for a page read by OCR ("" for a text layer)."""
    if confidence is None:
        return ""
    return f"per Texterkennung gelesen, Sicherheit {confidence:.0f} %"


def page_kind_of(source: str) -> str:
    """The page kind a file's format implies where no catalog record is at hand (slides, sheets, pages)."""
    ext = source.lower().rsplit(".", 1)[-1]
    return {"pptx": "slide", "ppt": "slide", "odp": "slide", "xlsx": "sheet", "xls": "sheet", "ods": "sheet"}.get(ext, "page")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks by the standard library (files may be GBs)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
