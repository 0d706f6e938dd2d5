from __future__ import annotations

import random

import pytest

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
def test_torn_save_keeps_the_previous_state(tmp_path, monkeypatch):
    """A crash after the new files but before the manifest rename: the old manifest still holds."""
    import corpus.keyword_index as ki

    idx = _index()
    idx.save(tmp_path / "bm25")
    idx.add(["d"], ["Neue Parkgebühren am Bahnhof"], ["satzung"], ["d4"])
    idx.delete_documents(["d1"])
    idx.generation = 8

    def crash(*_a, **_k):
        raise OSError("power cut")

    monkeypatch.setattr(ki.os, "replace", crash)
    with pytest.raises(OSError):
        idx.save(tmp_path / "bm25")
    monkeypatch.undo()
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded.generation == 7 and len(loaded) == 3
    assert loaded.query("Parkgebühren", 3) == []
    assert loaded.query("Friedhofssatzung", 3)[0][0] == "a"
    # the next save (this one completes) writes everything the torn one lost
    idx.save(tmp_path / "bm25")
    again = BM25Index.load(tmp_path / "bm25")
    assert again.generation == 8 and again.chunk_ids() == {"b", "c", "d"}


def test_older_format_loads_empty(tmp_path):
    (tmp_path / "bm25").mkdir()
    (tmp_path / "bm25" / "ids.json").write_text('{"generation": 3, "ids": []}')
    assert BM25Index.load(tmp_path / "bm25").generation == -1


WORDS = ("Satzung Gebühr Friedhof Urnengrab Haushalt Schule Kita Straße Bauantrag Parkplatz Radweg Bürgerbüro "
         "Hundesteuer Wasser Abwasser Müll Biotonne Sperrmüll Gemeinderat Sitzung Beschluss Förderung Verein "
         "Spielplatz Bibliothek Feuerwehr Bebauungsplan Lärm Luft Baum").split()


def _random_docs(rng: random.Random, n_docs: int, start: int = 0) -> dict[str, list[tuple[str, str, str]]]:
    docs = {}
    for d in range(start, start + n_docs):
        doc_id = f"doc{d}"
        coll = rng.choice(["satzung", "haushalt", "projekte"])
        docs[doc_id] = [(f"{doc_id}-{i}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))), coll)
                        for i in range(rng.randint(1, 4))]
    return docs


def _add(idx: BM25Index, docs: dict) -> None:
    rows = [(cid, text, coll, doc_id) for doc_id, chunks in docs.items() for cid, text, coll in chunks]
    idx.add([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


def _rebuilt(docs: dict) -> BM25Index:
    rows = [(cid, text, coll, doc_id) for doc_id, chunks in docs.items() for cid, text, coll in chunks]
    idx = BM25Index()
    idx.build([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], generation=1)
    return idx


QUERIES = ["Gebühr Friedhof", "Hundesteuer", "Sperrmüll Biotonne Müll", "Förderung Verein Spielplatz",
           "Bebauungsplan Lärm Baum Straße", "Schule"]


def _same_results(a: BM25Index, b: BM25Index, flt=None) -> None:
    for q in QUERIES:
        got, want = a.query(q, 10, flt), b.query(q, 10, flt)
        assert [c for c, _ in got] == [c for c, _ in want], q
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-9), q


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_changes_rank_exactly_like_a_full_rebuild(seed, tmp_path, monkeypatch):
    """Adds, deletes, replacements and merges applied one document at a time end in the same
    ranking and scores as building the final set from scratch (ties broken by chunk id in both)."""
    import corpus.keyword_index as ki

    monkeypatch.setattr(ki, "MAX_SEGMENTS", 3)  # force merges of small segments
    rng = random.Random(seed)
    docs = _random_docs(rng, 40)
    idx = BM25Index()
    _add(idx, dict(list(docs.items())[:25]))
    for doc_id, chunks in list(docs.items())[25:]:
        _add(idx, {doc_id: chunks})  # one document at a time
    for doc_id in rng.sample(sorted(docs), 10):  # delete some
        idx.delete_documents([doc_id])
        del docs[doc_id]
    for doc_id in rng.sample(sorted(docs), 5):  # replace some with a new version
        new = _random_docs(rng, 1, start=1000)
        chunks = [(f"{doc_id}-v2-{i}", text, coll) for i, (_, text, coll) in enumerate(next(iter(new.values())))]
        idx.delete_documents([doc_id])
        _add(idx, {doc_id: chunks})
        docs[doc_id] = chunks
    assert len(idx._segments) <= 3
    full = _rebuilt(docs)
    assert len(idx) == len(full) and idx.chunk_ids() == full.chunk_ids()
    _same_results(idx, full)
    _same_results(idx, full, {"collections": ["satzung"]})
    # and after a save/load round trip
    idx.generation = 5
    idx.save(tmp_path / "bm25")
    _same_results(BM25Index.load(tmp_path / "bm25"), full)


def test_incremental_save_writes_only_the_change(tmp_path):
    rng = random.Random(9)
    docs = _random_docs(rng, 30)
    idx = _rebuilt(docs)
    idx.save(tmp_path / "bm25")
    before = {f.name for f in (tmp_path / "bm25").iterdir()}
    _add(idx, _random_docs(rng, 1, start=500))
    idx.delete_documents(["doc3"])
    idx.generation = 2
    idx.save(tmp_path / "bm25")
    after = {f.name for f in (tmp_path / "bm25").iterdir()}
    assert before - after <= {n for n in before if n.startswith("state") or n == "manifest.json"} | {"manifest.json"}
    assert len(after - before) == 3  # one segment, one row block, one state file (manifest replaced)
    loaded = BM25Index.load(tmp_path / "bm25")
    assert loaded.generation == 2 and "doc3-0" not in loaded.chunk_ids() and "doc500-0" in loaded.chunk_ids()


def test_set_collection_moves_filter():
    idx = _index()
    idx.set_collection({"d3"}, "satzung")
    assert [c for c, _ in idx.query("Luftqualität", 3, {"collections": ["satzung"]})] == ["c"]


def _one(idx: BM25Index, doc: str, words: str) -> None:
    idx.add([f"{doc}:0"], [words], ["a"], [doc], fingerprints={doc: doc})


def test_two_processes_saving_the_same_folder_in_turn_leave_a_readable_current_index(tmp_path):
    """The portal (a) syncs and saves while ``kiportal ingest`` (b) runs and saves at its end. Both
    once numbered their files alike: a's manifest then named files that b had removed, and the next
    start found the index unreadable. Two indexes here are the two processes: they share nothing but
    the folder."""
    folder = tmp_path / "bm25"
    base = BM25Index()
    _one(base, "d0", "Hundesteuer Satzung")
    base.generation = 1
    base.save(folder)
    a, b = BM25Index.load(folder), BM25Index.load(folder)
    _one(b, "d1", "Parkgebühren Zone")
    _one(a, "d1", "Parkgebühren Zone")  # the portal applies the ingest's first commit
    a.generation = 2
    a.save(folder)
    _one(b, "d2", "Müllabfuhr Termine")
    b.generation = 3
    b.save(folder)
    older = BM25Index.load(folder)
    _one(a, "d2", "Müllabfuhr Termine")
    _one(a, "d3", "Baumschutz Fällung")  # and an upload after it
    a.generation = 4
    a.save(folder)
    loaded = BM25Index.load(folder)
    assert loaded.generation == 4 and set(loaded.documents()) == {"d0", "d1", "d2", "d3"}
    for word, doc in [("Hundesteuer", "d0"), ("Parkgebühren", "d1"), ("Müllabfuhr", "d2"), ("Baumschutz", "d3")]:
        assert [c for c, _ in loaded.query(word, 3)] == [f"{doc}:0"], word
    older.save(folder)  # the last save wins, an older generation too (a load syncs it by fingerprints)
    loaded = BM25Index.load(folder)
    assert loaded.generation == 3 and set(loaded.documents()) == {"d0", "d1", "d2"}
    assert [c for c, _ in loaded.query("Müllabfuhr", 3)] == ["d2:0"] and loaded.query("Baumschutz", 3) == []


@pytest.mark.integration
def test_saves_and_loads_in_two_real_processes_at_once_never_break_the_index(tmp_path):
    """Another process saves in a loop while this one saves and loads: every load is whole."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    folder = tmp_path / "bm25"
    first = BM25Index()
    _one(first, "start", "Anfang Text")
    first.generation = 1
    first.save(folder)
    code = textwrap.dedent(f"""
        from pathlib import Path
        from corpus.keyword_index import BM25Index
        idx = BM25Index.load(Path({str(folder)!r}))
        for i in range(40):
            idx.add([f"b{{i}}:0"], [f"Wort{{i}} Bauantrag"], ["a"], [f"b{{i}}"], fingerprints={{f"b{{i}}": "x"}})
            idx.generation = 2 + 2 * i
            idx.save(Path({str(folder)!r}))
    """)
    root = Path(__file__).resolve().parents[2]
    other = subprocess.Popen([sys.executable, "-c", code], cwd=root, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})
    mine = BM25Index.load(folder)
    try:
        for i in range(40):
            _one(mine, f"a{i}", f"Begriff{i} Gewerbe")
            mine.generation = 3 + 2 * i
            mine.save(folder)
            loaded = BM25Index.load(folder)
            # whole: the generation of one save with everything that save held
            assert loaded.generation > 1 and "start:0" in loaded.chunk_ids(), i
            who, n = ("a", (loaded.generation - 3) // 2) if loaded.generation % 2 else ("b", (loaded.generation - 2) // 2)
            assert {f"{who}{j}:0" for j in range(n + 1)} <= loaded.chunk_ids(), (i, loaded.generation)
    finally:
        assert other.wait(120) == 0
    last = BM25Index.load(folder)
    who = "a" if last.generation == 81 else "b"
    assert last.generation in (80, 81) and {f"{who}{i}:0" for i in range(40)} <= last.chunk_ids()


def test_a_save_gives_up_while_another_process_holds_the_folder_and_queries_do_not_wait(tmp_path, caplog):
    """A CLI stopped with Ctrl-Z while it saves must not hold up the portal's keyword search."""
    import subprocess
    import sys
    import threading

    folder = tmp_path / "bm25"
    idx = _index()
    idx.save(folder)
    before = (folder / "manifest.json").read_text(encoding="utf-8")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"fh = open({str(folder.with_name('bm25.lock'))!r}, 'a'); fcntl.flock(fh, fcntl.LOCK_EX)\n"
        "print('held', flush=True); sys.stdin.read()")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        idx.add(["n"], ["Neue Regel zum Winterdienst"], ["satzung"], ["d9"])
        idx.generation = 9
        saving = threading.Thread(target=idx.save, args=(folder,))  # waits up to SAVE_WAIT_S (10 s)
        saving.start()
        assert [c for c, _ in idx.query("Winterdienst", 3)] == ["n"]
        assert saving.is_alive()  # the query came back while the save still waits for its turn
        impatient = _index()
        impatient.SAVE_WAIT_S = 0.2
        with caplog.at_level("WARNING", logger="corpus.keyword_index"):
            impatient.save(folder)
        assert "not saved" in caplog.text and (folder / "manifest.json").read_text(encoding="utf-8") == before
    finally:
        holder.stdin.close()
        holder.wait(10)
    saving.join(30)
    assert not saving.is_alive() and BM25Index.load(folder).generation == 9
