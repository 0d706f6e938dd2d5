"""Evidence selection: condensing passages by the question's words and, when given, their meaning."""
from __future__ import annotations

import numpy as np
import pytest

from assistant.evidence import embedding_similarity, select_evidence
from corpus.models import Chunk, Hit


def test_condensing_keeps_the_sentence_that_means_the_question_without_its_words():
    filler = [f"Abschnitt {i} beschreibt die Gliederung des Verfahrens." for i in range(12)]
    answer = "Anträge gehen bis zum 31. März beim Bürgerbüro ein."
    text = " ".join(filler[:6] + [answer] + filler[6:])
    c = Chunk(chunk_id="c", doc_id="d", ordinal=0, text=text, source="s", title="t", page=1, section=None, collection="c")
    question = "Bis wann muss man das Formular abgeben?"  # no word of the answer sentence
    count = lambda t: len(t.split())  # noqa: E731
    near = lambda sents: [0.9 if s == answer else 0.5 for s in sents]  # noqa: E731
    words_only, _ = select_evidence(question, [Hit(c, 1.0)], budget_tokens=25, count=count)
    with_meaning, _ = select_evidence(question, [Hit(c, 1.0)], budget_tokens=25, count=count,
                                      similarity=near, similarity_weight=8.0)
    assert "31. März" not in words_only[0].text
    assert "31. März" in with_meaning[0].text and with_meaning[0].tokens <= 25


@pytest.mark.parametrize("units, sims, weight, expected", [
    (["Ruhezeit Urnengrab zwanzig Jahre", "Sonstiges"], None, 8.0, [2.0, 0.0]),            # words only
    (["Ruhezeit Urnengrab", "Sonstiges"], {"Ruhezeit Urnengrab": 0.8, "Sonstiges": 0.6}, 0.0, [2.0, 0.0]),  # off
    (["Ruhezeit Urnengrab", "Sonstiges"], {"Ruhezeit Urnengrab": 0.6, "Sonstiges": 0.8}, 8.0, [2.0, 8.0]),  # meaning wins
    (["Ruhezeit Urnengrab", "Sonstiges"], {"Ruhezeit Urnengrab": 0.7, "Sonstiges": 0.7}, 8.0, [2.0, 0.0]),  # no spread
    (["Ruhezeit 20 Urnengrab"], {"Ruhezeit 20 Urnengrab": 0.9}, 8.0, [2.5]),              # one sentence: nothing to scale
])
def test_sentence_scores(units, sims, weight, expected):
    from assistant.evidence import sentence_scores
    from corpus.text import content_stems

    assert sentence_scores(units, set(content_stems("Ruhezeit Urnengrab")), sims, weight) == pytest.approx(expected)


def test_a_failing_similarity_leaves_the_words_to_choose():
    text = " ".join(f"Satz {i} handelt von etwas anderem." for i in range(20)) + " Die Ruhezeit für Urnengräber beträgt 20 Jahre."
    c = Chunk(chunk_id="c", doc_id="d", ordinal=0, text=text, source="s", title="t", page=1, section=None, collection="c")

    def broken(sentences):
        raise RuntimeError("model gone")

    ev, _ = select_evidence("Ruhezeit Urnengräber", [Hit(c, 1.0)], budget_tokens=30, count=lambda t: len(t.split()),
                            similarity=broken, similarity_weight=8.0)
    assert "Ruhezeit für Urnengräber beträgt 20 Jahre" in ev[0].text



class _CountingEmbedder:
    """Two-dimensional vectors: a sentence with "März" points where the question does."""

    def __init__(self) -> None:
        self.passages: list[str] = []
        self.queries = 0

    def embed_query_vector(self, text):
        self.queries += 1
        return np.array([1.0, 0.0])

    def embed_passages(self, texts, batch_size=32):
        self.passages.extend(texts)
        return np.array([[1.0, 0.0] if "März" in t else [0.0, 1.0] for t in texts])


def test_embedding_similarity_embeds_each_sentence_and_the_question_once():
    emb, cache = _CountingEmbedder(), {}
    sim = embedding_similarity(emb, "Bis wann?", cache)
    assert sim(["Frist bis 31. März.", "Anderes.", "Anderes."]) == [1.0, 0.0, 0.0]
    assert embedding_similarity(emb, "Bis wann?", cache)(["Anderes.", "Frist bis 31. März."]) == [0.0, 1.0]
    assert sorted(emb.passages) == ["Anderes.", "Frist bis 31. März."] and emb.queries == 1


@pytest.mark.integration
def test_a_sentence_scores_the_same_whatever_is_embedded_beside_it(e5_onnx_dir):
    """The evidence step embeds sentences one per run: the int8 graph quantises activations per
    run, so in a shared batch a sentence's score (and the evidence chosen) moved with its
    neighbours; alone it is the same every time (and the runs spread over both cores)."""
    from corpus.embeddings import OnnxEmbedder

    texts = ["Die Hundesteuer beträgt für den ersten Hund 120 Euro im Jahr.", "Sperrmüll",
             "Der Gemeinderat hat die Fortschreibung des Lärmaktionsplans beschlossen; betroffen sind die "
             "Hauptstraße, die Bahnhofstraße und der Ring. " * 3, "Wie beantrage ich einen Anwohnerparkausweis?"]
    int8 = OnnxEmbedder(e5_onnx_dir, threads=2)
    alone = embedding_similarity(int8, "Was kostet die Hundesteuer?")([texts[0]])
    crowded = embedding_similarity(int8, "Was kostet die Hundesteuer?")(texts[::-1] * 3)
    assert crowded[-1] == pytest.approx(alone[0], abs=1e-6) and crowded[3] == pytest.approx(alone[0], abs=1e-6)


def test_a_follow_ups_new_words_outweigh_the_topic_it_shares_with_the_question_before():
    from assistant.evidence import sentence_scores
    from corpus.text import content_stems

    units = ["Im Reallabor sind 304 Sensoren verbaut.", "Parkplatzsensoren im Boden | 240"]
    asked = set(content_stems("Wie viele Sensoren sind im Reallabor verbaut? Und wie viele davon sind Parkplatzsensoren?"))
    plain = sentence_scores(units, asked)
    assert plain[0] > plain[1]  # by the words of both questions, the previous answer's sentence
    focused = sentence_scores(units, asked, focus={"parkplatzsensor"})
    assert focused[1] > focused[0] and focused[0] == plain[0]
    assert sentence_scores(["Batteriewechsel alle fünf Jahre", "Sonstiges"], set(), focus={"batteri"})[0] > 0  # compounds


def _chunk(text: str) -> Chunk:
    return Chunk(chunk_id="c", doc_id="d", ordinal=0, text=text, source="s", title="t", page=1, section=None,
                 collection="c")


def test_a_pages_running_footer_is_no_evidence_in_a_whole_or_a_condensed_passage():
    footer = "Bericht: Exkursion zum Reallabor im Nordpark - Seite 1 von 3"
    count = lambda t: len(t.split())  # noqa: E731
    short = _chunk(f"Treffpunkt ist die REDBOX um 17 Uhr.\n{footer}")
    whole, _ = select_evidence("Wo ist der Treffpunkt der Exkursion?", [Hit(short, 1.0)], budget_tokens=200, count=count)
    assert whole[0].text == "Treffpunkt ist die REDBOX um 17 Uhr."
    # a flattened page runs its last sentence into the footer: the footer goes, the sentence stays
    flat = _chunk("Die Teilnahme ist kostenfrei. Eine Bestätigung kommt per E-Mail. " + footer)
    ev, _ = select_evidence("Was kostet die Teilnahme an der Exkursion?", [Hit(flat, 1.0)], budget_tokens=200,
                            count=count)
    assert ev[0].text == "Die Teilnahme ist kostenfrei. Eine Bestätigung kommt per E-Mail."


def test_a_condensed_table_row_keeps_its_header_on_a_line_of_its_own():
    """Joined by spaces, "Leistung | Gebühr Reisepass | 70,00 Euro" read as one row of four cells, and
    the quote, which takes lines apart, could not give the row under its header."""
    rows = [f"Leistung {i} | {i},00 Euro" for i in range(30)]
    text = "\n".join(["Gebühren des Bürgerbüros", "Leistung | Gebühr", "Reisepass | 70,00 Euro", *rows])
    count = lambda t: len(t.split())  # noqa: E731
    ev, _ = select_evidence("Was kostet ein Reisepass?", [Hit(_chunk(text), 1.0)], budget_tokens=20, count=count)
    assert "Leistung | Gebühr\nReisepass | 70,00 Euro" in ev[0].text, ev[0].text
