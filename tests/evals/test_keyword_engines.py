"""The keyword-engine comparison of issue 16 (evals/keyword_engines.py): its pure query builder
and the PostgreSQL full-text side on a real server."""
from __future__ import annotations

import pytest

from evals.keyword_engines import PgFullText, or_query


@pytest.mark.parametrize("question, expected", [
    ("Wann öffnet die Kantine?", "wann | öffnet | die | kantine"),
    ("Kantine & Kantine | x'); DROP TABLE kw_fts; --", "kantine | drop | table | kw_fts"),  # words only
    ("?!", ""),
])
def test_or_query_keeps_words_only(question, expected):
    assert or_query(question) == expected


@pytest.mark.cluster
def test_pg_full_text_ranks_the_matching_passage_first(pg_url):
    fts = PgFullText(pg_url)
    fts.build([("a", "Die Kantine im Rathaus öffnet um 11:30 Uhr."),
               ("b", "Der Bauantrag wird beim Bauamt eingereicht."),
               ("c", "Öffnungszeiten der Bibliothek: dienstags bis samstags.")])
    assert [cid for cid, _ in fts.query("Wann öffnen die Kantinen?", 3)][0] == "a"  # German stems: Kantinen → kantin
    assert [cid for cid, _ in fts.query("Bauanträge", 3)] == ["b"]
    assert fts.query("?!", 3) == []
