from __future__ import annotations

from assistant.citations import attribute, is_refusal, parse_citations, strip_invalid_citations
from assistant.evidence import content_stems


def test_parse_citations_in_order_of_appearance():
    assert parse_citations("A [2]. B [1, 3]. C [2][4]. D [ 5 ; 1 ]") == [2, 1, 3, 4, 5]
    assert parse_citations("keine Quellen") == []


def test_invalid_citations_are_dropped():
    assert strip_invalid_citations("Die Frist ist 20 Jahre [1][7]. Siehe [2, 9].", {1, 2}) == \
        "Die Frist ist 20 Jahre [1]. Siehe [2]."
    assert strip_invalid_citations("Erfunden [8].", {1}) == "Erfunden."


def test_refusal_detection():
    assert is_refusal("Dazu finde ich in den Dokumenten keine Informationen.")
    assert is_refusal("Die Quellen enthalten dazu keine Angaben.")
    assert is_refusal("")
    assert not is_refusal("Die Ruhezeit beträgt 20 Jahre [1].")


def test_attribution_picks_the_supporting_source():
    sources = ["Der Workshop findet am 12. März statt.", "Die Ruhezeit für Urnen beträgt 20 Jahre."]
    n, share = attribute("Die Ruhezeit beträgt 20 Jahre.", sources, content_stems)
    assert n == 2 and share >= 0.5
