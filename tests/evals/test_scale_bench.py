"""The scale benchmark's synthetic corpus and one tiny end-to-end run through the real stores."""
from __future__ import annotations

import json

import numpy as np
import pytest

from evals import scale_bench as sb

SENTENCES = [f"Der Gemeinderat beschließt in Sitzung {i} die Regelung Nummer {i} über Thema{i % 17}." for i in range(60)]


def test_passage_plan_is_reproducible_and_draws_distinct_sentences():
    a, b = sb.passage_plan(5000, 60, seed=3), sb.passage_plan(5000, 60, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, sb.passage_plan(5000, 60, seed=4))
    assert a.min() >= 0 and a.max() < 60
    assert all(len(set(row)) == sb.SENTENCES_PER_PASSAGE for row in a.tolist())


def test_each_passage_has_a_unique_marker_and_its_question_names_it():
    plan = sb.passage_plan(300, len(SENTENCES), seed=1)
    texts = [sb.passage_text(i, plan, SENTENCES) for i in range(300)]
    markers = [sb.marker(i) for i in range(300)]
    assert len(set(markers)) == 300
    assert all(sum(m in t for t in texts) == 1 for m in markers[:50])  # one right answer
    q = sb.known_item_question(7, plan, SENTENCES)
    assert sb.marker(7) in q
    first_words = " ".join(SENTENCES[plan[7][0]].split()[:3])
    assert first_words.rstrip(".") in q


def test_passage_vectors_are_unit_length_and_close_to_their_sentences():
    rng = np.random.default_rng(0)
    sent = rng.normal(size=(60, 384)).astype(np.float32)
    sent /= np.linalg.norm(sent, axis=1, keepdims=True)
    plan = sb.passage_plan(100, 60, seed=2)
    v = sb.passage_vectors(plan, sent, seed=5)
    assert v.dtype == np.float32 and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    mean = sent[plan].mean(axis=1)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    cos = np.sum(v * mean, axis=1)
    assert cos.min() > 0.9  # noise is small …
    assert cos.max() < 0.99999  # … but there


def test_base_sentences_come_from_shared(tmp_path):
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "a.txt").write_text(" ".join(SENTENCES), encoding="utf-8")
    got = sb.base_sentences(tmp_path)
    assert got[0] == SENTENCES[0] and len(got) == len(SENTENCES)
    with pytest.raises(FileNotFoundError):
        sb.base_sentences(tmp_path / "nichts")


@pytest.mark.integration
@pytest.mark.slow
def test_tiny_scale_run_measures_everything(tmp_path):
    """300 passages with the hash embedder and embedded Chroma: every figure is there, the known
    items are found, one new document becomes searchable and goes again."""
    from assistant.settings import load_settings

    shared = tmp_path / "shared"
    (shared / "seeds").mkdir(parents=True)
    (shared / "seeds" / "a.txt").write_text(" ".join(SENTENCES), encoding="utf-8")
    settings = load_settings(tmp_path / "data", embedding={"mode": "hash"}, vector={"mode": "chroma"})
    out = tmp_path / "out"
    report = sb.run_scale_bench([300], shared, out, settings=settings, work_dir=tmp_path / "work")
    row = report["sizes"]["300"]
    assert row["load"]["passages"] == 300 and row["load"]["documents"] == 30
    assert row["hit@10"] == 1.0  # the marker makes each question's answer unique
    assert row["add_searchable_s"] > 0 and row["delete_gone_s"] >= 0
    assert 0 < row["portal_rss_mb"] < 4096 and row["startup_s"] > 0
    assert row["disk_mb"]["total"] > 0
    assert set(row["search_parts_ms"]) == {"question_embedding", "bm25", "vectors", "catalog"}
    saved = json.loads((out / "scale-latest.json").read_text(encoding="utf-8"))
    assert saved["sizes"]["300"]["hybrid_p95_ms"] == row["hybrid_p95_ms"]
    assert (out / report["files"]["md"]).read_text(encoding="utf-8").count("| 300 |") == 2  # figures and parts
    assert list(out.glob("scale-*.png"))
