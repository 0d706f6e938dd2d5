"""Structure-aware chunking: slides stay whole, pages split at headings and paragraphs.

A chunk never crosses a page (citations are page-exact) nor a top-level section. Long
paragraphs are split at German sentence boundaries; consecutive chunks of one section
overlap by whole sentences. Token counts are estimated (about 1.3 XLM-R tokens per word
for German administrative text), which keeps chunking free of any model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from corpus.models import Block, Chunk, ExtractedDocument, chunk_id_for, text_hash
from corpus.text import estimate_tokens, split_sentences

@dataclass(frozen=True)
class ChunkParams:
    size_tokens: int = 200
    overlap_tokens: int = 30


@dataclass
class _Piece:
    text: str
    page: int | None
    section: str | None


def _sections(blocks: Sequence[Block]) -> Iterable[tuple[int | None, str | None, list[Block]]]:
    """Group consecutive blocks by (page, current heading path)."""
    headings: dict[int, str] = {}
    group: list[Block] = []
    key: tuple[int | None, str | None] | None = None

    def section_name() -> str | None:
        if not headings:
            return None
        return " › ".join(headings[k] for k in sorted(headings))[:300]

    for block in blocks:
        if block.kind in ("heading", "title"):
            level = block.level or 1
            if block.kind == "title":
                level = 0
            for lvl in [x for x in headings if x >= level]:
                del headings[lvl]
            headings[level] = block.text.strip()
        new_key = (block.page, section_name())
        if key is not None and new_key != key and group:
            # a heading followed directly by its text belongs with that text
            if not all(b.kind in ("heading", "title") for b in group):
                yield key[0], key[1], group
                group = []
        key = new_key
        group.append(block)
    if group and key is not None:
        yield key[0], key[1], group


def _split_long(text: str, size: int, count: Callable[[str], int]) -> list[str]:
    if count(text) <= size:
        return [text]
    out: list[str] = []
    for sentence in split_sentences(text):
        if count(sentence) <= size:
            out.append(sentence)
            continue
        step = max(1, int(size / 1.3))
        longest = size * 4  # characters (about size tokens): a run without spaces is cut, not one giant chunk
        piece: list[str] = []
        chars = 0
        for word in sentence.split():
            if len(word) > longest:
                out.extend([" ".join(piece)] if piece else [])
                out.extend(word[i : i + longest] for i in range(0, len(word), longest))
                piece, chars = [], 0
                continue
            piece.append(word)
            chars += len(word) + 1
            # a piece ends after ``step`` words, or sooner when its words are very long (2,000 words of
            # 790 letters made pieces of 121,000 characters); real text reaches ``step`` words first
            # (a table of contents with dotted leaders came to 3,700 characters, so the cap is higher)
            if len(piece) == step or chars > longest * 5:
                out.append(" ".join(piece))
                piece, chars = [], 0
        if piece:
            out.append(" ".join(piece))
    return out


def chunk_blocks(
    blocks: Sequence[Block],
    params: ChunkParams = ChunkParams(),
    *,
    slides: bool = False,
    count: Callable[[str], int] = estimate_tokens,
) -> list[_Piece]:
    """Turn blocks into chunk texts with page and section (see module docstring)."""
    pieces: list[_Piece] = []
    if slides:
        by_page: dict[int | None, list[Block]] = {}
        for b in blocks:
            by_page.setdefault(b.page, []).append(b)
        for page, bl in by_page.items():
            title = next((b.text for b in bl if b.kind == "title"), None)
            text = "\n".join(b.text for b in bl)
            if count(text) <= params.size_tokens * 2:
                pieces.append(_Piece(text, page, title))
            else:
                # a slide too long to stay whole: its blocks packed, a block too long cut like any text
                # (one text box of 1.2 million characters was one chunk)
                units = [u for b in bl for u in _split_long(b.text, params.size_tokens, count)]
                pieces.extend(_pack(units, page, title, params, count))
        return pieces
    for page, section, group in _sections(blocks):
        units: list[str] = []
        for b in group:
            units.extend(_split_long(b.text, params.size_tokens, count))
        pieces.extend(_pack(units, page, section, params, count))
    return _merge_tiny(pieces, params, count)


def _pack(units: list[str], page, section, params: ChunkParams, count) -> list[_Piece]:
    """Greedy packing of paragraphs/sentences up to the size, with sentence overlap."""
    out: list[_Piece] = []
    current: list[str] = []
    tokens = 0
    for unit in units:
        n = count(unit)
        if current and tokens + n > params.size_tokens:
            out.append(_Piece("\n".join(current), page, section))
            overlap: list[str] = []
            budget = params.overlap_tokens
            for prev in reversed(split_sentences(current[-1]) if params.overlap_tokens else []):
                c = count(prev)
                if c > budget:
                    break
                overlap.insert(0, prev)
                budget -= c
            current = [" ".join(overlap)] if overlap else []
            tokens = params.overlap_tokens - budget if overlap else 0
        current.append(unit)
        tokens += n
    if current:
        out.append(_Piece("\n".join(current), page, section))
    return out


def _merge_tiny(pieces: list[_Piece], params: ChunkParams, count, min_tokens: int = 12) -> list[_Piece]:
    """Fold fragments (a lone heading, a page number) into a neighbour on the same page."""
    out: list[_Piece] = []
    for p in pieces:
        if out and out[-1].page == p.page and (count(p.text) < min_tokens or count(out[-1].text) < min_tokens) \
                and count(out[-1].text) + count(p.text) <= params.size_tokens * 1.5:
            prev = out[-1]
            out[-1] = _Piece(prev.text + "\n" + p.text, prev.page, prev.section or p.section)
        else:
            out.append(p)
    return out


def make_chunks(
    doc: ExtractedDocument,
    *,
    doc_id: str,
    source: str,
    collection: str,
    version: str,
    params: ChunkParams = ChunkParams(),
    count: Callable[[str], int] = estimate_tokens,
) -> list[Chunk]:
    """Chunks of one document version. Ids embed the version so old and new never collide."""
    pieces = chunk_blocks(doc.blocks, params, slides=doc.page_kind == "slide", count=count)
    chunks = []
    for n, p in enumerate(pieces):
        text = p.text.strip()
        if not text:
            continue
        chunks.append(
            Chunk(
                chunk_id=chunk_id_for(doc_id, version, n),
                doc_id=doc_id,
                ordinal=n,
                text=text,
                source=source,
                title=doc.title,
                page=p.page,
                section=p.section,
                collection=collection,
                content_hash=text_hash(text)[:16],
            )
        )
    return chunks
