"""Two replicas (two Apps with data directories of their own) on one real PostgreSQL and one real
Chroma server form one knowledge base: what one ingests the other lists and finds, a delete or a
re-classification on one is seen by the other at once, and neither an ingest nor a repair on one
ever removes a vector of a document the other has committed or is writing."""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def replicas(tmp_path, pg_url, chroma_server, app_factory):
    vector = {"mode": "chroma_http", "host": chroma_server.host, "port": chroma_server.port,
              "collection": f"t{uuid.uuid4().hex[:12]}"}
    apps = [app_factory(tmp_path / name, app_db_url=pg_url, vector=vector) for name in ("a", "b")]
    assert all(app.settings.cluster for app in apps)
    yield apps
    for app in apps:
        app.catalog.close()


def test_what_one_replica_ingests_the_other_lists_and_finds_and_a_delete_disappears_on_both(replicas, tmp_path):
    a, b = replicas
    docs = tmp_path / "quellen"
    write(docs / "hund.txt", "Die Hundesteuer beträgt 120 Euro im Jahr für den ersten Hund.\n")
    write(docs / "friedhof.txt", "Die Ruhezeit für Urnengräber auf dem Waldfriedhof beträgt 20 Jahre.\n")
    b.kb.refresh_keyword_index()  # b has served queries before a ingests
    summary = a.ingestor.ingest([docs], collection="Bürgerbüro")
    assert summary.added == 2

    assert sorted(d.original_name for d in b.catalog.documents()) == ["friedhof.txt", "hund.txt"]
    hund = next(d for d in b.catalog.documents() if d.original_name == "hund.txt")
    dense = b.kb.dense_search("Hundesteuer 120 Euro", 3)
    assert any(b.catalog.chunks_by_ids([cid])[cid].doc_id == hund.doc_id for cid, _ in dense)
    keyword = b.kb.keyword_search("Hundesteuer", 3)
    assert keyword and b.catalog.chunks_by_ids([keyword[0][0]])[keyword[0][0]].doc_id == hund.doc_id
    hits = b.retriever.search("Ruhezeit Urnengräber", mode="hybrid").hits
    assert hits and hits[0].chunk.source.endswith("friedhof.txt")

    b.ingestor.delete(hund.doc_id)
    assert [d.original_name for d in a.catalog.documents()] == ["friedhof.txt"]
    assert not [cid for cid, _ in a.kb.keyword_search("Hundesteuer", 3)
                if a.catalog.chunks_by_ids([cid]).get(cid, None) and a.catalog.chunks_by_ids([cid])[cid].doc_id == hund.doc_id]
    assert a.vectors.ids() == a.catalog.chunk_ids() == b.catalog.chunk_ids()
    assert a.kb.check().ok and b.kb.check().ok


def test_a_replica_serving_a_stale_keyword_index_catches_up_within_seconds(replicas, tmp_path):
    a, b = replicas
    b.kb.refresh_keyword_index()
    a.ingestor.ingest([write(tmp_path / "q" / "park.txt", "Parkgebühren am Bahnhof: 1 Euro je Stunde.\n")])
    deadline = time.monotonic() + 5
    while not b.kb.keyword_search("Parkgebühren", 3, wait=False):  # never blocks a query
        assert time.monotonic() < deadline, "replica b did not pick up the new document"
        time.sleep(0.05)


def test_a_reclassification_and_new_readers_on_one_replica_hold_on_the_other(replicas, tmp_path):
    a, b = replicas
    a.ingestor.ingest([write(tmp_path / "q" / "akte.txt", "Personalakte Müller: Gehaltsstufe E9.\n")],
                      collection="Personal")
    hit = b.retriever.search("Personalakte Gehaltsstufe", mode="hybrid").hits[0]
    assert b.policy.classification(hit) == "intern"
    gen = b.catalog.generation()
    a.catalog.set_collection_classification("Personal", "vertraulich")
    a.catalog.set_collection_readers("Personal", ["personalamt"])
    assert b.catalog.generation() == gen + 2  # what b derived from the catalog is stale now
    assert b.policy.classification(hit) == "vertraulich"
    assert b.catalog.collection_readers()["Personal"] == ["personalamt"]


def test_ingest_and_repair_on_one_replica_never_remove_the_others_vectors(replicas, tmp_path, monkeypatch):
    a, b = replicas
    a.ingestor.ingest([write(tmp_path / "qa" / f"a{i}.txt", f"Satzung Nummer {i} der Stadt über Gebühren.\n")
                       for i in range(5)])
    a_vectors = a.catalog.chunk_ids()
    # an ingest on b sweeps orphans at its end, and a repair on b compares every vector
    b.ingestor.ingest([write(tmp_path / "qb" / "b0.txt", "Die Bibliothek öffnet montags um neun Uhr.\n")])
    assert b.kb.check(repair=True).ok
    assert a_vectors <= b.vectors.ids() and b.vectors.ids() == b.catalog.chunk_ids()

    # b is writing a document: its vectors are in Chroma, the catalog does not list them yet
    written, release = threading.Event(), threading.Event()
    commit = b.catalog.commit_documents

    def slow_commit(versions, **kw):
        written.set()
        assert release.wait(30)
        return commit(versions, **kw)

    monkeypatch.setattr(b.catalog, "commit_documents", slow_commit)
    writer = threading.Thread(target=b.ingestor.ingest,
                              args=([write(tmp_path / "qb" / "b1.txt", "Das Hallenbad schließt im August.\n")],))
    writer.start()
    assert written.wait(30)
    b1 = next(i for i in b.vectors.ids() if i not in b.catalog.chunk_ids())  # in flight
    reports: list = []
    repair = threading.Thread(target=lambda: reports.append(a.kb.check(repair=True)))
    sweep = threading.Thread(target=lambda: a.kb.sweep_orphans(full=True))
    repair.start()
    sweep.start()
    time.sleep(1.0)
    assert repair.is_alive() and sweep.is_alive()  # both wait for b's writer lock
    assert b1 in a.vectors.ids()
    release.set()
    for t in (writer, repair, sweep):
        t.join(30)
        assert not t.is_alive()
    assert reports and reports[0].orphans_in_vectors == 0
    assert b1 in a.catalog.chunk_ids() and a_vectors | {b1} <= a.vectors.ids()
    assert a.vectors.ids() == a.catalog.chunk_ids() and a.kb.check().ok


def test_a_starting_replica_leaves_uploads_in_progress_in_the_shared_storage_alone(tmp_path, pg_url, chroma_server,
                                                                                  app_factory):
    import os

    vector = {"mode": "chroma_http", "host": chroma_server.host, "port": chroma_server.port,
              "collection": f"t{uuid.uuid4().hex[:12]}"}
    share = tmp_path / "share"
    a, b = (app_factory(tmp_path / name, app_db_url=pg_url, vector=vector, storage=str(share)) for name in ("a", "b"))
    a.admin.create_collection("Bauamt", "intern", "adam")
    doc = a.admin.upload([(write(tmp_path / "in" / "satzung.txt", "Die Ruhezeit beträgt 20 Jahre.\n"), "satzung.txt")],
                         "Bauamt", "adam").accepted[0]
    # a's next upload is staged and placed, not yet catalogued, when b starts
    staged = write(share / ".staging" / "up-1.txt", "Neu.\n")
    placed = write(share / "Bauamt" / "neu.txt", "Neu.\n")
    b.admin.recover()
    assert staged.exists() and placed.exists()
    assert b.catalog.get(doc["doc_id"]) is not None and Path(b.catalog.get(doc["doc_id"]).path).exists()
    # left over for a day: an upload that died with its replica, cleaned up by the next start
    for p in (staged, placed):
        os.utime(p, (time.time() - 2 * 86400,) * 2)
    os.utime(Path(b.catalog.get(doc["doc_id"]).path), (time.time() - 2 * 86400,) * 2)
    out = b.admin.recover()
    assert not staged.exists() and not placed.exists() and out["orphans"] == 1
    assert Path(b.catalog.get(doc["doc_id"]).path).exists()  # what the catalog references stays
    for app in (a, b):
        app.catalog.close()


def test_a_replica_mounting_the_shared_storage_elsewhere_finds_the_files(tmp_path, pg_url, app_factory):
    """Machine a stored an upload under /…/share; machine b mounts the same share at /…/mnt/kiportal."""
    import os

    share = tmp_path / "share"
    a = app_factory(tmp_path / "a", app_db_url=pg_url, storage=str(share))
    a.admin.create_collection("Bauamt", "intern", "adam")
    doc = a.admin.upload([(write(tmp_path / "in" / "satzung.txt", "Die Ruhezeit beträgt 20 Jahre.\n"), "satzung.txt")],
                         "Bauamt", "adam").accepted[0]
    mount = tmp_path / "mnt" / "kiportal"
    mount.parent.mkdir()
    os.rename(share, mount)  # the same files, seen at b's mount point (a's path no longer exists here)
    b = app_factory(tmp_path / "b", app_db_url=pg_url, storage=str(mount))
    rec = b.catalog.get(doc["doc_id"])
    assert not Path(rec.path).exists() and rec.file(b.settings.uploads_dir) == mount / "Bauamt" / "satzung.txt"
    assert b.admin.documents()[0]["uploaded"]
    os.utime(mount / "Bauamt" / "satzung.txt", (time.time() - 2 * 86400,) * 2)  # old enough to be judged
    assert b.admin.recover()["orphans"] == 0 and (mount / "Bauamt" / "satzung.txt").exists()
    s = b.ingestor.reindex([doc["doc_id"]])
    assert s.updated == 1 and [d.doc_id for d in b.catalog.documents()] == [doc["doc_id"]]
    for app in (a, b):
        app.catalog.close()


def test_a_replica_whose_writer_lock_broke_commits_nothing_and_the_other_loses_nothing(replicas, tmp_path,
                                                                                       monkeypatch):
    """b is writing when its lock connection breaks (a network cut): the server drops b's lock, a
    takes it, sweeps b's uncommitted vectors as orphans and writes a document of its own. b's commit
    must then be refused – else the catalog would list passages whose vectors a has deleted."""
    from sqlalchemy import text

    from corpus.db import LockLost

    a, b = replicas
    a.ingestor.ingest([write(tmp_path / "qa" / "a0.txt", "Satzung über die Gebühren der Stadtbibliothek.\n")])
    written, release = threading.Event(), threading.Event()
    fences, errors = [], []
    commit = b.catalog.commit_documents

    def slow_commit(versions, **kw):
        fences.append(b.kb.writer_lock.fence())  # the writer thread's fence
        written.set()
        assert release.wait(30)
        return commit(versions, **kw)

    def b_ingest() -> None:
        try:
            b.ingestor.ingest([write(tmp_path / "qb" / "b1.txt", "Das Hallenbad schließt im August.\n")])
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            errors.append(exc)

    monkeypatch.setattr(b.catalog, "commit_documents", slow_commit)
    writer = threading.Thread(target=b_ingest)
    writer.start()
    assert written.wait(30)
    b1 = next(i for i in b.vectors.ids() if i not in b.catalog.chunk_ids())  # in flight
    with a.catalog.engine.connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": fences[0].pid}).scalar()
    assert a.kb.sweep_orphans(full=True) == 1 and b1 not in a.vectors.ids()  # a holds the lock now
    a.ingestor.ingest([write(tmp_path / "qa" / "a1.txt", "Die Musikschule nimmt ab März Anmeldungen an.\n")])
    release.set()
    writer.join(30)
    assert not writer.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], LockLost) and "nichts" in str(errors[0])
    assert b1 not in a.catalog.chunk_ids()  # nothing of b's write is listed ...
    assert a.vectors.ids() == a.catalog.chunk_ids() and a.kb.check().ok  # ... and nothing listed lacks its vectors
    assert len(a.catalog.documents()) == 2

    monkeypatch.undo()  # b runs its write again and it lands
    summary = b.ingestor.ingest([tmp_path / "qb" / "b1.txt"])
    assert summary.added == 1 and not summary.failed
    assert len(b.catalog.documents()) == 3 and b.kb.check().ok
    assert [h.chunk.doc_id for h in a.retriever.search("Wann schließt das Hallenbad?", k=1).hits] == \
        [next(d.doc_id for d in a.catalog.documents() if d.source.endswith("b1.txt"))]
