"""Worked examples for evals.metrics, with the expected numbers computed by hand."""

from __future__ import annotations

import math

import pytest

from evals import metrics
from evals.metrics import (
    aggregate,
    citation_precision,
    contains_key_terms,
    hit_at_k,
    linear_percentile,
    mean,
    ndcg_at_k,
    normalize_text,
    page_hit_at_k,
    reciprocal_rank,
    refusal_scores,
)

# ---------------------------------------------------------------- hit@k


def test_hit_at_k_found_within_k():
    assert hit_at_k(["x", "a", "y"], {"a"}, k=2) == 1.0


def test_hit_at_k_found_only_beyond_k():
    assert hit_at_k(["x", "y", "a"], {"a"}, k=2) == 0.0


def test_hit_at_k_accepts_single_string():
    assert hit_at_k(["x", "a"], "a", k=5) == 1.0
    # A plain string must not be treated as a set of characters.
    assert hit_at_k(["a"], "abc", k=1) == 0.0


def test_hit_at_k_edge_cases():
    assert hit_at_k([], {"a"}, k=3) == 0.0
    assert hit_at_k(["a"], {"a"}, k=100) == 1.0  # k larger than the list
    assert hit_at_k(["x", "y"], {"a"}, k=2) == 0.0  # relevant absent
    assert hit_at_k(["a"], set(), k=1) == 0.0  # nothing relevant
    assert hit_at_k(["a"], {"a"}, k=0) == 0.0


# ---------------------------------------------------------------- reciprocal rank


def test_reciprocal_rank_worked_example():
    # First relevant at rank 3 -> 1/3.
    assert reciprocal_rank(["x", "y", "b", "a"], {"a", "b"}) == pytest.approx(1 / 3)


def test_reciprocal_rank_first_position():
    assert reciprocal_rank(["a", "b"], "a") == 1.0


def test_reciprocal_rank_cut_at_k():
    assert reciprocal_rank(["x", "y", "a"], {"a"}, k=2) == 0.0
    assert reciprocal_rank(["x", "y", "a"], {"a"}, k=3) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x", "a"], {"a"}, k=50) == 0.5


def test_reciprocal_rank_edge_cases():
    assert reciprocal_rank([], {"a"}) == 0.0
    assert reciprocal_rank(["x", "y"], {"a"}) == 0.0


def test_mrr_over_queries():
    rrs = [
        reciprocal_rank(["a"], "a"),  # 1
        reciprocal_rank(["x", "a"], "a"),  # 1/2
        reciprocal_rank(["x", "y"], "a"),  # 0
        reciprocal_rank(["x", "y", "z", "a"], "a"),  # 1/4
    ]
    # (1 + 0.5 + 0 + 0.25) / 4 = 0.4375
    assert mean(rrs) == pytest.approx(0.4375)


# ---------------------------------------------------------------- nDCG


def test_ndcg_binary_worked_example():
    # ranked [a, x, b], relevant {a, b}
    # DCG  = 1/log2(2) + 0/log2(3) + 1/log2(4) = 1 + 0.5 = 1.5
    # IDCG = 1/log2(2) + 1/log2(3)             = 1 + 0.6309297535714575
    expected = (1 + 1 / 2) / (1 + 0.6309297535714575)  # = 0.9197207891481876
    assert ndcg_at_k(["a", "x", "b"], {"a", "b"}, k=10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "x", "b"], {"a", "b"}, k=10) == pytest.approx(0.9197207891481876)


def test_ndcg_perfect_ranking_is_one():
    assert ndcg_at_k(["a", "b", "x"], {"a", "b"}, k=3) == pytest.approx(1.0)


def test_ndcg_cut_at_k_loses_late_hit():
    # k=2 -> ranked [a, x]: DCG = 1; IDCG@2 = 1 + 1/log2(3)
    assert ndcg_at_k(["a", "x", "b"], {"a", "b"}, k=2) == pytest.approx(
        1 / (1 + 0.6309297535714575)
    )


def test_ndcg_ideal_is_cut_at_k_too():
    # Three relevant docs, k=1: IDCG@1 = 1, DCG@1 = 1 -> 1.0
    assert ndcg_at_k(["a", "b", "c"], {"a", "b", "c"}, k=1) == 1.0


def test_ndcg_graded_worked_example():
    # gains a=3, b=1; ranked [b, a]
    # DCG  = 1/log2(2) + 3/log2(3) = 1 + 3 * 0.6309297535714575 = 2.8927892607143724
    # IDCG = 3/log2(2) + 1/log2(3) = 3 + 0.6309297535714575      = 3.6309297535714575
    expected = 2.8927892607143724 / 3.6309297535714575  # = 0.7967075809425906
    assert ndcg_at_k(["b", "a"], {"a": 3.0, "b": 1.0}, k=10) == pytest.approx(expected)


def test_ndcg_duplicates_count_once():
    # [a, a]: the second "a" gains nothing, so nDCG stays <= 1.
    assert ndcg_at_k(["a", "a"], {"a"}, k=2) == 1.0
    # [a, a, b]: DCG = 1 + 0 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    assert ndcg_at_k(["a", "a", "b"], {"a", "b"}, k=3) == pytest.approx(
        1.5 / (1 + 0.6309297535714575)
    )


def test_ndcg_edge_cases():
    assert ndcg_at_k([], {"a"}, k=10) == 0.0
    assert ndcg_at_k(["x", "y"], {"a"}, k=10) == 0.0  # relevant absent
    assert ndcg_at_k(["a"], set(), k=10) == 0.0  # IDCG = 0
    assert ndcg_at_k(["a"], {"a": 0.0}, k=10) == 0.0  # only zero gains
    assert ndcg_at_k(["a"], {"a"}, k=0) == 0.0
    # k larger than the list: [x, a], relevant {a} -> (1/log2(3)) / 1
    assert ndcg_at_k(["x", "a"], "a", k=100) == pytest.approx(0.6309297535714575)


# ---------------------------------------------------------------- page hit


def test_page_hit_exact_page():
    ranked = [("a.pdf", 3), ("b.pdf", 7)]
    assert page_hit_at_k(ranked, ("b.pdf", 7), k=2) == 1.0
    assert page_hit_at_k(ranked, ("b.pdf", 7), k=1) == 0.0


def test_page_hit_requires_same_source():
    assert page_hit_at_k([("a.pdf", 7)], ("b.pdf", 7), k=5) == 0.0


def test_page_hit_tolerance():
    ranked = [("a.pdf", 5)]
    assert page_hit_at_k(ranked, ("a.pdf", 6), k=1) == 0.0
    assert page_hit_at_k(ranked, ("a.pdf", 6), k=1, page_tolerance=1) == 1.0
    assert page_hit_at_k(ranked, ("a.pdf", 4), k=1, page_tolerance=1) == 1.0
    assert page_hit_at_k(ranked, ("a.pdf", 7), k=1, page_tolerance=1) == 0.0


def test_page_hit_expected_page_none_matches_any_page():
    assert page_hit_at_k([("x.md", None)], ("x.md", None), k=1) == 1.0
    assert page_hit_at_k([("x.pdf", 12)], ("x.pdf", None), k=1) == 1.0


def test_page_hit_retrieved_page_none_does_not_match_concrete_page():
    assert page_hit_at_k([("x.pdf", None)], ("x.pdf", 3), k=1) == 0.0


def test_page_hit_edge_cases():
    assert page_hit_at_k([], ("a.pdf", 1), k=5) == 0.0
    assert page_hit_at_k([("a.pdf", 1)], ("a.pdf", 1), k=50) == 1.0
    assert page_hit_at_k([("a.pdf", 1)], ("a.pdf", 1), k=0) == 0.0


# ---------------------------------------------------------------- mean / percentile


def test_mean():
    assert mean([1.0, 2.0, 6.0]) == 3.0
    assert mean([1.0, None, 3.0]) == 2.0
    assert math.isnan(mean([]))
    assert math.isnan(mean([None]))


def test_percentile_linear_interpolation_like_numpy():
    xs = [15.0, 20.0, 35.0, 40.0, 50.0]
    # h = (5-1) * p/100
    assert linear_percentile(xs, 0) == 15.0
    assert linear_percentile(xs, 100) == 50.0
    assert linear_percentile(xs, 50) == 35.0  # h = 2
    assert linear_percentile(xs, 40) == pytest.approx(29.0)  # h = 1.6 -> 20 + 0.6*15
    assert linear_percentile(xs, 95) == pytest.approx(48.0)  # h = 3.8 -> 40 + 0.8*10
    # unsorted input is sorted first
    assert linear_percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)


def test_percentile_edge_cases():
    assert math.isnan(linear_percentile([], 50))
    assert linear_percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        linear_percentile([1.0], 101)
    with pytest.raises(ValueError):
        linear_percentile([1.0], -1)


# ---------------------------------------------------------------- key terms


def test_normalize_text_folds_umlauts_case_and_thousands():
    assert normalize_text("Gebühr für Straßen") == "gebuehr fuer strassen"
    assert normalize_text("1.200 €") == "1200 €"
    assert normalize_text("1.200.000") == "1200000"
    assert normalize_text("3,50 Euro") == "3,50 euro"  # decimal comma untouched
    assert normalize_text("  a \n b ") == "a b"


def test_contains_key_terms_share():
    answer = "Die Ruhezeit für Urnengräber beträgt 15 Jahre."
    # Substring match after folding: 2 of 2, 1 of 2, 0 of 3.
    assert contains_key_terms(answer, ["15 Jahre", "Ruhezeit"]) == 1.0
    assert contains_key_terms(answer, ["15 Jahre", "20 Jahre"]) == 0.5
    assert contains_key_terms(answer, ["25 Jahre", "Reihengrab", "Gemeinderat"]) == 0.0


def test_contains_key_terms_case_and_umlaut_tolerant():
    assert contains_key_terms("Die GEBÜHR beträgt …", ["gebuehr"]) == 1.0
    assert contains_key_terms("Die Gebuehr betraegt …", ["Gebühr", "beträgt"]) == 1.0
    assert contains_key_terms("Strasse", ["Straße"]) == 1.0
    assert contains_key_terms("Straße", ["STRASSE"]) == 1.0
    assert contains_key_terms("Ölförderung", ["oelfoerderung"]) == 1.0


def test_contains_key_terms_thousands_separator():
    assert contains_key_terms("Es kostet 1200 Euro.", ["1.200 Euro"]) == 1.0
    assert contains_key_terms("Es kostet 1.200 Euro.", ["1200"]) == 1.0
    assert contains_key_terms("Es kostet 12 Euro.", ["1.200"]) == 0.0


@pytest.mark.parametrize("answer, term, share", [
    ("um 20 LoRa-Nodes erweitert", "zwanzig", 1.0),       # a figure in digits or in words is the same figure
    ("zehn Jahre lang", "10 Jahre", 1.0),
    ("Zwei Arduinos", "2 Arduinos", 1.0),
    ("Es kostet 300 Euro.", "30", 0.0),                   # a figure is not part of a longer one
    ("im Jahr 2024", "vier", 0.0),
    ("Frequenzbereich 165 bis 174 MHz", "6", 0.0),
    ("30 – 45 Minuten", "45 Minuten", 1.0),
    ("Es kostet 30 €.", "30", 1.0),
    ("Ulm hat 127.500 Einwohner [4].", "vier", 0.0),        # a source number is no figure of the answer
    ("Die Taste hat fuenf Stufen.", "fünf", 1.0),
])
def test_contains_key_terms_number_words_and_whole_figures(answer, term, share):
    assert contains_key_terms(answer, [term]) == share


def test_contains_key_terms_edge_cases():
    assert contains_key_terms("irgendwas", []) == 1.0
    assert contains_key_terms("", ["x"]) == 0.0
    assert contains_key_terms("abc", ["", "  "]) == 1.0


# ---------------------------------------------------------------- citations


def test_citation_precision_worked_example():
    cited = [("a.pdf", 3), ("a.pdf", 4), ("b.pdf", 3), ("a.pdf", 9)]
    # exact: only (a.pdf, 3) -> 1/4
    assert citation_precision(cited, ("a.pdf", 3)) == 0.25
    # tolerance 1: (a.pdf, 3) and (a.pdf, 4) -> 2/4
    assert citation_precision(cited, ("a.pdf", 3), page_tolerance=1) == 0.5


def test_citation_precision_pageless_expected():
    cited = [("x.md", None), ("y.md", None), ("x.md", None)]
    assert citation_precision(cited, ("x.md", None)) == pytest.approx(2 / 3)


def test_citation_precision_nothing_cited_is_none():
    assert citation_precision([], ("a.pdf", 1)) is None


# ---------------------------------------------------------------- refusals


def test_refusal_scores_worked_example():
    records = [
        (False, True),  # unanswerable, refused       -> TP
        (False, True),  # unanswerable, refused       -> TP
        (False, False),  # unanswerable, answered     -> FN
        (True, True),  # answerable, refused          -> FP
        (True, False),  # answerable, answered        -> TN
        (True, False),  # answerable, answered        -> TN
        (True, False),  # answerable, answered        -> TN
    ]
    s = refusal_scores(records)
    # P = 2/3, R = 2/3, F1 = 2/3, FRR = 1/4
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert s["false_refusal_rate"] == pytest.approx(0.25)


def test_refusal_scores_asymmetric():
    # TP=1, FP=3, FN=0, 4 answerable -> P=0.25, R=1, F1=2*0.25/1.25=0.4, FRR=0.75
    s = refusal_scores([(False, True), (True, True), (True, True), (True, True), (True, False)])
    assert s["precision"] == pytest.approx(0.25)
    assert s["recall"] == 1.0
    assert s["f1"] == pytest.approx(0.4)
    assert s["false_refusal_rate"] == pytest.approx(0.75)


def test_refusal_scores_edge_cases():
    s = refusal_scores([])
    assert all(math.isnan(v) for v in s.values())
    # never refuses: precision undefined, recall 0
    s = refusal_scores([(False, False), (True, False)])
    assert math.isnan(s["precision"])
    assert s["recall"] == 0.0
    assert math.isnan(s["f1"])
    assert s["false_refusal_rate"] == 0.0
    # refuses only answerable ones: P = 0, R = 0 -> F1 = 0
    s = refusal_scores([(False, False), (True, True)])
    assert s["precision"] == 0.0 and s["recall"] == 0.0 and s["f1"] == 0.0
    assert s["false_refusal_rate"] == 1.0


# ---------------------------------------------------------------- aggregate


def test_aggregate_means_numeric_keys_ignoring_none():
    rows = [
        {"id": "q1", "hit@5": 1.0, "mrr": 0.5, "cit": None, "refused": False},
        {"id": "q2", "hit@5": 0.0, "mrr": 0.25, "cit": 1.0, "refused": True},
        {"id": "q3", "hit@5": 1.0, "mrr": 1, "cit": 0.5},
    ]
    out = aggregate(rows)
    assert set(out) == {"hit@5", "mrr", "cit", "refused"}
    assert out["hit@5"] == pytest.approx(2 / 3)
    assert out["mrr"] == pytest.approx(1.75 / 3)
    assert out["cit"] == pytest.approx(0.75)
    assert out["refused"] == 0.5


def test_aggregate_edge_cases():
    assert aggregate([]) == {}
    assert aggregate([{"x": None}, {"x": None}]) == {}


# ---------------------------------------------------------------- evidence recall, confidently wrong
@pytest.mark.parametrize("evidence, terms, expected", [
    ("Die Gebühr beträgt 1.200 € im Jahr.", ["1200 €", "Jahr"], 1.0),
    ("Die Gebühr beträgt 1.200 € im Jahr.", ["1200 €", "Monat"], 0.0),   # all facts or nothing
    ("", ["x"], 0.0),
])
def test_evidence_recall(evidence, terms, expected):
    assert metrics.evidence_recall(evidence, terms) == expected


@pytest.mark.parametrize("answerable, refused, share, expected", [
    (True, False, 1.0, 0.0),     # given, with every key fact
    (True, False, 0.5, 1.0),     # given, a fact missing
    (False, False, None, 1.0),   # a near miss answered
    (True, True, 0.0, None),     # refusals are not answers given
    (False, True, None, None),
])
def test_confidently_wrong(answerable, refused, share, expected):
    assert metrics.confidently_wrong(answerable, refused, share) == expected
