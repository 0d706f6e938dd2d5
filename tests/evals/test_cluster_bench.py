"""The pure parts of the bench's cluster section (evals/cluster_bench.py): which files, which
ratios, which targets. The measurement itself needs the servers and runs in `kiportal bench`."""
from __future__ import annotations

from pathlib import Path

from evals.cluster_bench import (
    abba,
    cluster_settings,
    embedded_settings,
    pick_files,
    propagation_summary,
    ratio,
    section_figures,
    settings_env,
    summary_line,
    targets,
)


def test_files_are_a_stable_sample_of_text_files_within_the_size(tmp_path):
    for i in range(8):
        (tmp_path / f"d{i}.md").write_text("x" * 100, encoding="utf-8")
    (tmp_path / "gross.md").write_text("x" * 10_000, encoding="utf-8")
    (tmp_path / "scan.pdf").write_bytes(b"%PDF" * 10)
    (tmp_path / "sub").mkdir()
    picked = pick_files(tmp_path, 500, seed=7)
    assert len(picked) == 5 and picked == pick_files(tmp_path, 500, seed=7) and picked == sorted(picked)
    assert all(p.suffix == ".md" and p.name != "gross.md" for p in picked)
    assert len(pick_files(tmp_path, 100_000, seed=7)) == 9


def test_ratio_and_abba_order():
    assert ratio(3.0, 2.0) == 1.5 and ratio(None, 2.0) is None and ratio(1.0, 0) is None
    assert abba(["q1", "q2"]) == [("q1", 0), ("q1", 1), ("q2", 1), ("q2", 0)]


def test_propagation_a_missed_round_leaves_no_max():
    assert propagation_summary([0.4, 1.2, 0.8]) == {"rounds": 3, "found": 3, "missed": 0, "median_s": 0.8, "max_s": 1.2,
                                                    "seconds": [0.4, 1.2, 0.8]}
    missed = propagation_summary([0.4, None])
    assert missed["missed"] == 1 and missed["max_s"] is None and missed["median_s"] == 0.4


def _section(p95_cluster: float, rate_cluster: float, propagation: list) -> dict:
    embedded = {"ingest": {"chunks": 100, "chunks_per_s": 50.0, "seconds": 2.0},
                "search": {"latency_p50_ms": 12.0, "latency_p95_ms": 20.0}}
    cluster = {"ingest": {"chunks": 100, "chunks_per_s": rate_cluster, "seconds": 2.2},
               "search": {"latency_p50_ms": 15.0, "latency_p95_ms": p95_cluster}}
    return {"files": 9, "queries": 60, **section_figures(embedded, cluster, propagation_summary(propagation))}


def test_figures_and_targets():
    good = _section(25.0, 45.0, [0.3, 0.9])
    assert good["search_p95_ratio"] == 1.25 and good["ingest_rate_ratio"] == 0.9 and good["propagation_max_s"] == 0.9
    assert (good["cluster_search_p95_ms"], good["embedded_search_p95_ms"], good["chunks"]) == (25.0, 20.0, 100)
    assert all(not isinstance(v, dict) for v in good.values())  # flat: one report line per figure
    assert [t["ok"] for t in targets(good)] == [True, True, True]
    bad = _section(40.0, 30.0, [0.3, None])
    assert [t["ok"] for t in targets(bad)] == [False, False, False]  # a missed round fails the propagation goal
    line = summary_line(good)
    assert "= 1.250" in line and "0.900 s (max)" in line and "verpasst 0 von 2" in line and "100 Abschnitte" in line
    assert "– s (max)" in summary_line(bad)
    assert summary_line({"skipped": "PostgreSQL nicht installiert"}).startswith("Cluster: übersprungen")


def test_the_two_sides_differ_only_in_their_stores(tmp_path):
    from assistant.settings import load_settings

    base = load_settings(tmp_path / "main", vector={"mode": "chroma_http", "host": "chroma.intern", "port": 9000},
                         embedding={"mode": "e5"})
    emb = embedded_settings(base, tmp_path / "e")
    assert emb.home == tmp_path / "e" and emb.vector.mode == "chroma" and not emb.cluster
    clu = cluster_settings(base, tmp_path / "c", "postgresql+psycopg://u@127.0.0.1:5/db", "127.0.0.1", 8123, "bench_x", "s3cr3t")
    assert clu.cluster and clu.vector.mode == "chroma_http" and (clu.vector.port, clu.vector.collection) == (8123, "bench_x")
    assert clu.embedding == emb.embedding == base.embedding and clu.retrieval == emb.retrieval
    env = settings_env(clu)  # what replica B's process gets
    assert env["KIPORTAL_APP_DB_URL"].startswith("postgresql") and env["KIPORTAL_VECTOR__PORT"] == "8123"
    assert env["KIPORTAL_EMBEDDING__MODE"] == "e5" and env["KIPORTAL_AUTH__SECRET"] == "s3cr3t"
    assert Path(base.home) == tmp_path / "main"  # the main settings are untouched
