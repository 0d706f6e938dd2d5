"""Embedded Chroma shared by processes one after another: the portal runs while ``kiportal ingest``
writes to the same folder. Before the write stamp, the portal's Chroma kept its graph from before
the other process's write: new passages were not found, and a filtered search or a fetch by id
failed ("Error finding id") until a restart. Real Chroma, real second processes."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from corpus.models import Chunk
from corpus.vector_store import ChromaVectorIndex

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _chunk(cid: str, coll: str = "a") -> Chunk:
    return Chunk(chunk_id=cid, doc_id=cid, ordinal=0, text=cid, source=f"{cid}.txt", title=cid,
                 page=None, section=None, collection=coll)


def _vec(i: int) -> np.ndarray:
    v = np.zeros(8, dtype=np.float32)
    v[i % 8] = 1.0
    v[(i + 1) % 8] = 0.3
    return v / np.linalg.norm(v)


def _other_process(code: str, path: Path) -> None:
    """Run ``code`` in a fresh Python with ``path`` (the Chroma folder) and the test's helpers."""
    prelude = textwrap.dedent(f"""
        from pathlib import Path
        import numpy as np
        from corpus.models import Chunk
        from corpus.vector_store import ChromaVectorIndex
        path = Path({str(path)!r})
        def chunk(cid, coll="a"):
            return Chunk(chunk_id=cid, doc_id=cid, ordinal=0, text=cid, source=cid + ".txt", title=cid,
                         page=None, section=None, collection=coll)
        def vec(i):
            v = np.zeros(8, dtype=np.float32); v[i % 8] = 1.0; v[(i + 1) % 8] = 0.3
            return v / np.linalg.norm(v)
    """)
    subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=ROOT, check=True,
                   env={"PATH": "/usr/bin:/bin", "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(ROOT)})


@pytest.fixture
def portal_index(tmp_path):
    """The running portal's index: it has written and searched, so its graph is in memory."""
    index = ChromaVectorIndex.persistent(tmp_path / "chroma", "kiportal")
    index.add([_chunk(f"p{i}") for i in range(20)], np.stack([_vec(i) for i in range(20)]))
    assert len(index.query(_vec(3), 5)) == 5 and len(index.query(_vec(3), 5, {"collections": ["a"]})) == 5
    return index


def test_a_running_process_finds_what_another_process_wrote_filtered_or_not(portal_index, tmp_path):
    _other_process("""
        index = ChromaVectorIndex.persistent(path, "kiportal")
        index.add([chunk("neu1", "bauamt"), chunk("neu2", "bauamt")], np.stack([vec(100), vec(101)]))
        index.delete(["p0"])
    """, tmp_path / "chroma")
    assert {"neu1", "neu2"} <= portal_index.ids() and "p0" not in portal_index.ids()
    assert portal_index.count() == 21
    assert [c for c, _ in portal_index.query(_vec(4), 2, {"collections": ["bauamt"]})] == ["neu1", "neu2"]
    assert "neu1" in [c for c, _ in portal_index.query(_vec(100), 3)]
    assert "p0" not in [c for c, _ in portal_index.query(_vec(0), 3)]
    got = portal_index.vectors_of(["neu2", "p5"])
    assert set(got) == {"neu2", "p5"} and np.allclose(got["neu2"], _vec(101), atol=1e-5)


def test_a_write_by_a_client_without_the_stamp_is_found_after_chroma_reports_the_missing_id(portal_index, tmp_path):
    """Chroma's own client writes no stamp (a write a moment before its stamp looks the same): the
    filtered search and the fetch by id fail once inside, reopen, and answer."""
    _other_process("""
        import chromadb
        from chromadb.config import Settings
        client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
        col = client.get_collection("kiportal")
        col.upsert(ids=["roh"], embeddings=np.stack([vec(2)]), metadatas=[chunk("roh", "bauamt").metadata()])
    """, tmp_path / "chroma")
    assert [c for c, _ in portal_index.query(_vec(2), 1, {"collections": ["bauamt"]})] == ["roh"]
    assert set(portal_index.vectors_of(["roh"])) == {"roh"}


def test_nothing_is_lost_when_both_processes_write_in_turn(portal_index, tmp_path):
    """A guard, not the fix's proof (it passed before the stamp too): a reopen must not lose what
    either process wrote."""
    _other_process("""
        ChromaVectorIndex.persistent(path, "kiportal").add([chunk("cli")], np.stack([vec(7)]))
    """, tmp_path / "chroma")
    portal_index.add([_chunk("upload")], np.stack([_vec(6)]))
    portal_index.set_collection(["cli"], "bauamt")
    _other_process("""
        index = ChromaVectorIndex.persistent(path, "kiportal")
        ids = index.ids()
        assert {"cli", "upload"} <= ids and len(ids) == 22, sorted(ids)
        assert [c for c, _ in index.query(vec(7), 1, {"collections": ["bauamt"]})] == ["cli"]
    """, tmp_path / "chroma")


def test_searches_running_in_threads_while_the_client_reopens_all_answer(portal_index, tmp_path):
    """The portal serves many users at once: a reopen waits for the searches in progress, and the
    searches that arrive meanwhile wait for the reopen; none fails."""
    import threading

    errors: list[BaseException] = []
    stop = threading.Event()

    def search(n: int) -> None:
        while not stop.is_set():
            try:
                assert portal_index.query(_vec(n), 3, {"collections": ["a"]})
                portal_index.vectors_of([f"p{n}"])
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
                return

    threads = [threading.Thread(target=search, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        for round_ in range(3):
            _other_process(f"""
                ChromaVectorIndex.persistent(path, "kiportal").add([chunk("r{round_}")], np.stack([vec({round_})]))
            """, tmp_path / "chroma")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:3]
    assert {"r0", "r1", "r2"} <= portal_index.ids()


def test_own_writes_beside_searching_threads_do_not_reopen_the_client(portal_index):
    """Reopening reloads the graph from disk, so a process's own writes must not cost it; a search
    that read the stamp between the replace and its bookkeeping once took the process's own write for
    another's (134 reopens in 200 writes, a review)."""
    import threading

    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            portal_index.count()

    threads = [threading.Thread(target=search) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(100):
            portal_index.add([_chunk(f"eigen{i}")], np.stack([_vec(i)]))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert portal_index._reopens == 0 and portal_index.count() == 120


def test_a_reopen_that_fails_is_tried_again_on_the_next_call(portal_index, tmp_path, monkeypatch):
    _other_process("""
        ChromaVectorIndex.persistent(path, "kiportal").add([chunk("spaet", "bauamt")], np.stack([vec(3)]))
    """, tmp_path / "chroma")
    make = portal_index._reopen_client
    calls = []

    def fails_once():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("Datenträger kurz nicht erreichbar")
        return make()

    monkeypatch.setattr(portal_index, "_reopen_client", fails_once)
    with pytest.raises(OSError):
        portal_index.count()
    assert [c for c, _ in portal_index.query(_vec(3), 1, {"collections": ["bauamt"]})] == ["spaet"]
    assert len(calls) == 2


def test_one_index_per_folder_and_collection_in_a_process(tmp_path):
    """Two would share chromadb's engine, and neither could reopen it for another process's writes."""
    a = ChromaVectorIndex.persistent(tmp_path / "chroma", "kiportal")
    assert ChromaVectorIndex.persistent(tmp_path / "chroma" / ".." / "chroma", "kiportal") is a
    assert ChromaVectorIndex.persistent(tmp_path / "chroma", "anders") is not a


def test_a_second_collection_of_the_same_folder_keeps_the_engine_and_says_so(portal_index, tmp_path, caplog):
    """chromadb keeps one engine per folder: while another collection's index holds it, a reopen gets
    the old engine back, so the index warns instead of failing silently."""
    other = ChromaVectorIndex.persistent(tmp_path / "chroma", "anders")
    other.add([_chunk("x")], np.stack([_vec(1)]))
    _other_process("""
        ChromaVectorIndex.persistent(path, "kiportal").add([chunk("neu")], np.stack([vec(2)]))
    """, tmp_path / "chroma")
    with caplog.at_level("WARNING", logger="corpus.vector_store"):
        portal_index.count()
    assert portal_index._reopens == 1 and "keeps the old graph" in caplog.text
    assert other.ids() == {"x"}
