from __future__ import annotations

from corpus.keyword_index import BM25Index


def _index() -> BM25Index:
    idx = BM25Index()
    idx.build(
        ["a", "b", "c"],
        ["Die Friedhofssatzung regelt die Ruhezeiten für Urnengräber.",
         "Der Haushaltsplan 2025 sieht Investitionen in Schulen vor.",
         "Im Nordpark messen Sensoren die Luftqualität."],
        ["satzung", "haushalt", "projekte"], ["d1", "d2", "d3"], generation=7,
    )
    return idx


def test_german_stemming_matches_inflections():
    hits = _index().query("Ruhezeit eines Urnengrabes", 3)
    assert hits[0][0] == "a"
    assert [cid for cid, _ in _index().query("Sensor", 3)] == ["c"]


def test_stopwords_only_query_finds_nothing():
    assert _index().query("die der und", 3) == []


def test_filters():
    idx = _index()
    assert idx.query("Luftqualität Sensoren", 3, {"collections": ["satzung"]}) == []
    assert [c for c, _ in idx.query("Luftqualität", 3, {"doc_ids": ["d3"]})] == ["c"]


def test_save_load_roundtrip(tmp_path):
    _index().save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded.generation == 7 and len(loaded) == 3
    assert loaded.query("Haushaltsplan", 1)[0][0] == "b"


def test_broken_or_missing_index_loads_empty(tmp_path):
    assert BM25Index.load(tmp_path / "none").generation == -1
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "ids.json").write_text("{kaputt")
    assert BM25Index.load(tmp_path / "bad").generation == -1


def test_crash_between_renames_recovers_old(tmp_path):
    _index().save(tmp_path / "bm25")
    (tmp_path / "bm25").rename(tmp_path / "bm25.old")
    assert BM25Index.load(tmp_path / "bm25").generation == 7


def test_empty_filter_list_matches_nothing():
    idx = _index()
    assert idx.query("Luftqualität", 3, {"collections": []}) == []
    assert [c for c, _ in idx.query("Luftqualität", 3, {"collections": None})] == ["c"]


def _many() -> BM25Index:
    """90 passages in three collections, each mentioning 'Frist' a different number of times."""
    idx = BM25Index()
    texts = [" ".join(["Frist"] * (1 + i % 7) + ["Antrag", f"Wort{i}"] * (1 + i % 5)) for i in range(90)]
    idx.build([f"c{i:02d}" for i in range(90)], texts, ["abc"[i % 3] for i in range(90)],
              [f"d{i}" for i in range(90)], generation=1)
    return idx


def test_allow_everything_filter_gives_exactly_the_unfiltered_results():
    idx = _many()
    for q in ("Frist", "Antrag Frist", "Wort17 Frist"):
        assert idx.query(q, 40, {"collections": ["a", "b", "c"]}) == idx.query(q, 40)


def test_filter_before_top_k_returns_k_allowed_hits():
    idx = _many()
    got = idx.query("Frist", 10, {"collections": ["b"]})
    assert len(got) == 10 and all(int(c[1:]) % 3 == 1 for c, _ in got)
    best_b = [h for h in idx.query("Frist", 90) if int(h[0][1:]) % 3 == 1][:10]
    assert [s for _, s in got] == [s for _, s in best_b]  # the best ten "b" scores (ties may swap ids)
