from __future__ import annotations

from corpus.models import Block, ExtractedDocument
from corpus.text import estimate_tokens, split_sentences
from ingest.chunking import ChunkParams, make_chunks


def _doc(blocks, kind="page"):
    return ExtractedDocument("pdf", "Titel", tuple(blocks), max((b.page or 0) for b in blocks) or None, kind)


def _chunks(doc, **kw):
    return make_chunks(doc, doc_id="d", source="s.pdf", collection="c", version="0123456789abcdef", **kw)


def test_chunks_never_cross_pages_and_carry_metadata():
    blocks = [Block("Kapitel 1", 1, "heading", 1), Block("Erster Absatz auf Seite eins.", 1),
              Block("Zweiter Absatz auf Seite zwei.", 2)]
    chunks = _chunks(_doc(blocks))
    assert [(c.page, c.section) for c in chunks] == [(1, "Kapitel 1"), (2, "Kapitel 1")]
    assert chunks[0].text.startswith("Kapitel 1") and "Seite zwei" not in chunks[0].text
    assert all(c.chunk_id.startswith("d:0123456789:") and c.collection == "c" and c.content_hash for c in chunks)


def test_headings_start_new_chunks_with_section_path():
    blocks = [Block("Satzung", 1, "heading", 1), Block("Dieser einleitende Text erklärt, wofür die Satzung gilt und wer sie beschlossen hat. " * 2, 1),
              Block("§ 2 Ruhezeit", 1, "heading", 2), Block("Die Ruhezeit für Urnen beträgt 20 Jahre. " * 3, 1)]
    chunks = _chunks(_doc(blocks))
    assert [c.section for c in chunks] == ["Satzung", "Satzung › § 2 Ruhezeit"]
    assert chunks[1].text.startswith("§ 2 Ruhezeit")


def test_long_sections_split_by_size_with_overlap():
    sentences = [f"Satz Nummer {i} beschreibt eine Regel der Verwaltung." for i in range(60)]
    chunks = _chunks(_doc([Block(" ".join(sentences), 1)]), params=ChunkParams(size_tokens=60, overlap_tokens=15))
    assert len(chunks) > 5
    assert all(estimate_tokens(c.text) <= 60 + 20 for c in chunks)
    # overlap: each chunk starts with the last sentence of the previous one
    for prev, nxt in zip(chunks, chunks[1:]):
        assert split_sentences(prev.text)[-1] in nxt.text
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)


def test_a_slide_is_one_chunk():
    blocks = [Block("Zeitplan", 3, "title"), Block("Start im Mai", 3), Block("Notizen: nicht vorlesen", 3, "notes"),
              Block("Budget", 4, "title"), Block("120.000 Euro", 4, "table")]
    chunks = _chunks(_doc(blocks, "slide"))
    assert [(c.page, c.section) for c in chunks] == [(3, "Zeitplan"), (4, "Budget")]
    assert "Notizen" in chunks[0].text


def test_versions_get_distinct_ids():
    doc = _doc([Block("Text eins.", 1)])
    a = make_chunks(doc, doc_id="d", source="s", collection="c", version="aaaaaaaaaaaa")
    b = make_chunks(doc, doc_id="d", source="s", collection="c", version="bbbbbbbbbbbb")
    assert a[0].chunk_id != b[0].chunk_id and a[0].content_hash == b[0].content_hash


def test_a_run_without_spaces_is_cut_not_one_giant_chunk():
    """18 MB of "Stadtratsbeschluss" without a space counted as one word and became one chunk of 18
    million characters (found by a hostile-input probe)."""
    from ingest.chunking import chunk_blocks

    run = "Stadtratsbeschluss" * 20_000
    pieces = chunk_blocks([Block(f"Vorwort. {run} Nachwort.")], ChunkParams(size_tokens=200))
    assert max(len(p.text) for p in pieces) <= 800 * 1.5
    assert "".join(p.text for p in pieces).count("Stadtratsbeschluss") >= 20_000 - 2  # nothing lost
    assert estimate_tokens(run) >= len(run) // 4 and estimate_tokens("Energieverbrauchskennzeichnungsverordnung") == 1


def test_a_slide_too_long_to_stay_whole_is_cut_like_any_text():
    """One text box of 1.2 million characters on a slide became one chunk (found by a probe)."""
    from ingest.chunking import chunk_blocks

    box = "Der Rat beschließt den Haushalt der Stadt für das kommende Jahr. " * 18_000
    pieces = chunk_blocks([Block("Haushalt", 5, "title"), Block(box, 5)], ChunkParams(size_tokens=200), slides=True)
    assert len(pieces) > 100 and max(len(p.text) for p in pieces) <= 200 * 4 * 2
    assert {(p.page, p.section) for p in pieces} == {(5, "Haushalt")}  # still cited to the one slide


def test_very_long_words_end_a_piece_before_its_word_count():
    """2,000 words of 790 letters (each under the cut for a single word) made pieces of 121,000 characters."""
    from ingest.chunking import chunk_blocks

    text = " ".join(["a" * 790] * 2_000)
    pieces = chunk_blocks([Block(text, 1)], ChunkParams(size_tokens=200))
    assert max(len(p.text) for p in pieces) <= 200 * 4 * 7
    assert sum(p.text.count("a" * 790) for p in pieces) >= 2_000  # nothing lost (overlap may repeat a word)
