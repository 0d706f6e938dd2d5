"""Two replicas, one installation (issue 16): what one replica does, the other shows within seconds,
and nothing one replica runs deletes what the shared catalog holds.

Users act over HTTP (gradio's queue protocol, as the browser sends it), administrators through
the admin functions over HTTP or the CLI on "their" machine. The replicas are separate
processes with separate data directories; they share only PostgreSQL and the Chroma server.
"""
from __future__ import annotations

import json
import logging
import re
import subprocess
import time
import uuid

import pytest

from cluster_harness import PASSWORD, eventually
from evals.bench import kiportal_command
from portal_http import admin_session, call, file_value, login, upload

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.cluster, pytest.mark.integration]

VISIBLE_WITHIN_S = 5.0


# -- what users and administrators do ---------------------------------------------------------
def answer_of(result: dict) -> str:
    """The answer of an `ask` call as one string (messages, source list and links)."""
    assert result["success"], result
    return json.dumps(result["output"][0], ensure_ascii=False)


def ask(c, replica, question: str, model: str = "extraktiv") -> str:
    return answer_of(call(c, replica.portal, "ask", [question, None, model, []]))


def table_rows(table: dict) -> list[dict]:
    """A gradio DataFrame value ({"headers", "data"}) as dicts."""
    return [dict(zip(table["headers"], row)) for row in table["data"]]


def admin_upload(replica, name: str, text: str, collection: str) -> str:
    """adam uploads one file in the Verwaltung tab of ``replica``; returns the new document's id."""
    with login(replica.portal, "adam", PASSWORD) as c:
        r = upload(c, name, text.encode("utf-8"))
        assert r.status_code == 200, r.text
        result = call(c, replica.portal, "admin_upload", [[file_value(r.json()[0])], collection],
                      session=admin_session(c, replica.portal))
    assert result["success"] and "übernommen" in str(result["output"][0]), result
    rows = [row for row in table_rows(result["output"][1]) if row["Datei"] == name]
    assert len(rows) == 1, result["output"][1]
    return rows[0]["ID"]


def listed(c, replica, name: str) -> bool:
    """Whether the Verwaltung tab's document list of ``replica`` shows the file."""
    result = call(c, replica.portal, "admin_documents", ["", None, None])
    assert result["success"], result
    return any(row["Datei"] == name for row in table_rows(result["output"][0]))


def unique(word: str) -> str:
    return f"{word}{uuid.uuid4().hex[:6]}"


# -- the tests ----------------------------------------------------------------------------------
def test_what_a_ingests_b_searches_lists_and_cites(cluster):
    a, b = cluster.a, cluster.b
    word = unique("Zwergpudelsteuer")
    name = f"{word}.txt"
    doc_id = admin_upload(a, name, f"Satzung über die {word}\n\nDie {word} der Stadt Kempenrath beträgt 97 Euro "
                                   "im Jahr und ist zum 15. Februar fällig.\n", "demo")
    question = f"Wie hoch ist die {word}?"
    with login(b.portal, "anna", PASSWORD) as anna, login(b.portal, "adam", PASSWORD) as adam:
        answer, seconds = eventually(lambda: (lambda t: t if f"doc/{doc_id}/" in t else None)(ask(anna, b, question)),
                                     within_s=VISIBLE_WITHIN_S)
        assert "97 Euro" in answer
        _, listed_s = eventually(lambda: listed(adam, b, name), within_s=VISIBLE_WITHIN_S)
        # the cited source opens on B for the user it was signed for
        href = next(h.replace("&amp;", "&") for h in re.findall(r'href=\\"([^"\\]+)\\"', answer) if doc_id in h)
        opened = anna.get(href.split("#", 1)[0])
        assert opened.status_code == 200 and word in opened.text
    # and the administrator's CLI on B lists it with its chunks
    docs = [json.loads(line) for line in b.cli("docs", "list", "--json").stdout.splitlines() if line.strip()]
    mine = [d for d in docs if d["doc_id"] == doc_id]
    assert mine and mine[0]["status"] == "indexed" and mine[0]["chunks"] >= 1
    searched = json.loads(b.cli("search", question, "--json").stdout.splitlines()[0])
    assert searched["hits"] and searched["hits"][0]["doc_id"] == doc_id
    log.info("found on B after %.2f s, listed after %.2f s", seconds, listed_s)


def test_a_delete_on_a_disappears_on_b(cluster):
    a, b = cluster.a, cluster.b
    word = unique("Kakadusteuer")
    name = f"{word}.txt"
    doc_id = admin_upload(a, name, f"Merkblatt {word}\n\nDie {word} beträgt in Kempenrath 31 Euro im Jahr.\n", "demo")
    question = f"Wie hoch ist die {word}?"
    with login(b.portal, "anna", PASSWORD) as anna, login(b.portal, "adam", PASSWORD) as adam:
        eventually(lambda: f"doc/{doc_id}/" in ask(anna, b, question), within_s=VISIBLE_WITHIN_S)
        with login(a.portal, "adam", PASSWORD) as adam_a:
            deleted = call(adam_a, a.portal, "admin_delete_document", [doc_id, True])
        assert deleted["success"] and "Gelöscht" in str(deleted["output"][0]), deleted
        eventually(lambda: f"doc/{doc_id}/" not in ask(anna, b, question) and not listed(adam, b, name),
                   within_s=VISIBLE_WITHIN_S)
    assert not any(i.startswith(f"{doc_id}:") for i in cluster.vector_ids())


def test_a_reclassification_on_a_is_enforced_on_b(cluster):
    """A collection moves from "intern" to "vertraulich" on A: B's yellow-zone model no longer
    gets its passages (the green one still does, so the document is still there)."""
    a, b = cluster.a, cluster.b
    coll = unique("ampel")
    a.cli("collections", "create", coll, "--classification", "intern")
    word = unique("Biberschutzzulage")
    doc_id = admin_upload(a, f"{word}.txt", f"Richtlinie {word}\n\nDie {word} beträgt 250 Euro je Antrag "
                                            "und wird vom Umweltamt bewilligt.\n", coll)
    question = f"Wie hoch ist die {word}?"
    with login(b.portal, "anna", PASSWORD) as anna:
        eventually(lambda: f"doc/{doc_id}/" in ask(anna, b, question, "gelb"), within_s=VISIBLE_WITHIN_S)
        a.cli("collections", "classify", coll, "vertraulich")
        eventually(lambda: f"doc/{doc_id}/" not in ask(anna, b, question, "gelb"), within_s=VISIBLE_WITHIN_S)
        assert f"doc/{doc_id}/" in ask(anna, b, question, "extraktiv")
    shown = [json.loads(line) for line in b.cli("collections", "list", "--json").stdout.splitlines() if line.strip()]
    assert {r["name"]: r["classification"] for r in shown}[coll] == "vertraulich"


def test_ingest_and_doctor_on_b_keep_every_vector_the_catalog_holds(cluster, tmp_path):
    a, b = cluster.a, cluster.b
    folder = tmp_path / "bestand"
    folder.mkdir()
    for i in range(3):
        w = unique(f"Bestandsakte{i}x")
        (folder / f"{w}.txt").write_text(f"Akte {w}\n\nDie {w} liegt im Archiv, Regal {i + 4}.\n", encoding="utf-8")
    a.cli("ingest", str(folder), "--collection", "bestand", "--json")
    before = cluster.vector_ids()  # A's documents (and the fixture's): all in the shared catalog
    other = tmp_path / "neu"
    other.mkdir()
    (other / "neu.txt").write_text("Neue Akte\n\nDie Akte Wasserzähler liegt beim Bauhof.\n", encoding="utf-8")
    summary = json.loads(b.cli("ingest", str(other), "--collection", "neu", "--json").stdout.splitlines()[-1])
    assert summary["added"] == 1 and not summary["failed"]
    after_ingest = cluster.vector_ids()
    assert before <= after_ingest, f"B's ingest removed {len(before - after_ingest)} of {len(before)} vectors of A's documents"
    doctor = b.cli("doctor", "--repair", "--json", check=False)
    after_doctor = cluster.vector_ids()
    assert before <= after_doctor, f"B's doctor removed {len(before - after_doctor)} of {len(before)} vectors of A's documents"
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    # every vector belongs to a document of the shared catalog, as B sees it: nothing lost, nothing left over
    docs = [json.loads(line) for line in b.cli("docs", "list", "--json").stdout.splitlines() if line.strip()]
    assert len(after_doctor) == sum(d["chunks"] for d in docs if d["status"] == "indexed") == len(before) + 1


def test_doctor_on_b_while_a_ingests_keeps_every_vector(cluster, tmp_path):
    """B's repair starts while A's ingest is writing (vectors of versions not yet committed are on
    the server): it must not take them for orphans. When both are done every catalogued passage
    has its vector and nothing is left over."""
    a, b = cluster.a, cluster.b
    n = 60  # about 5 s of ingest on 2 cores: B's doctor surely starts inside it
    folder = tmp_path / "zugang"
    folder.mkdir()
    for i in range(n):
        w = unique(f"Zugangsvermerk{i}x")
        (folder / f"{w}.txt").write_text(f"Vermerk {w}\n\nDer {w} betrifft Raum {i + 100} im Rathaus.\n\n"
                                         + "Weitere Angaben zur Nutzung des Raums. " * 40 + "\n", encoding="utf-8")
    before = len(cluster.vector_ids())
    cmd = kiportal_command() + ["--data-dir", str(a.home), "ingest", str(folder), "--collection", "zugang", "--json"]
    ingest = subprocess.Popen(cmd, env=a.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=a.home.parent)
    try:  # B's doctor starts once A has written its first vectors (its catalog commits follow)
        eventually(lambda: ingest.poll() is not None or len(cluster.vector_ids()) > before, within_s=120, every_s=0.1)
        assert ingest.poll() is None, "A's ingest ended before B's doctor could start: nothing overlapped"
        t0 = time.monotonic()
        doctor = b.cli("doctor", "--repair", "--json", check=False)
        doctor_s = time.monotonic() - t0
        out, err = ingest.communicate(timeout=300)
    finally:
        if ingest.poll() is None:
            ingest.kill()
    assert ingest.returncode == 0, err[-3000:]
    summary = json.loads(out.splitlines()[-1])
    assert summary["added"] == n and not summary["failed"]
    log.info("B's doctor took %.1f s, A's ingest %.1f s", doctor_s, summary["seconds"])
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    docs = [json.loads(line) for line in b.cli("docs", "list", "--json").stdout.splitlines() if line.strip()]
    ids = cluster.vector_ids()
    assert len(ids) == sum(d["chunks"] for d in docs if d["status"] == "indexed")
    mine = [d for d in docs if d["collection"] == "zugang"]
    assert len(mine) == n and all(d["status"] == "indexed" for d in mine)
    assert all(any(i.startswith(f"{d['doc_id']}:") for i in ids) for d in mine)


def test_loadtest_with_ten_users_over_both_replicas(cluster):
    cmd = kiportal_command() + ["loadtest", "--url", cluster.a.url, "--url", cluster.b.url, "--users", "10",
                                "--per-user", "1", "--user", "anna", "--password-stdin", "--time-limit", "240", "--json"]
    res = subprocess.run(cmd, env=cluster.a.env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["answered"] == report["requests"] == 10 and report["errors"] == []
    assert report["answered_per_url"] == {cluster.a.url: 5, cluster.b.url: 5}


def writer_lock_pid(engine) -> int | None:
    """The server process of the connection that holds the cluster's writer lock (None: nobody)."""
    from sqlalchemy import text

    from corpus.db import lock_key

    key = lock_key("kiportal-writer") & 0xFFFFFFFFFFFFFFFF
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT pid, classid::bigint, objid::bigint FROM pg_locks "
                                 "WHERE locktype = 'advisory' AND granted AND objsubid = 1")).all()
    return next((pid for pid, hi, lo in rows if (hi << 32) | lo == key), None)


def test_an_upload_whose_lock_connection_breaks_commits_nothing_and_says_so(cluster):
    """A network cut in the middle of a write, for real: while the upload job of A writes, the
    writer lock's PostgreSQL connection is terminated and another process takes the lock (as B's
    ingest would). The job's commit is refused, the upload's answer over HTTP says so in German
    (no internal error, no class name), the document is listed nowhere, and B's repair leaves
    exactly the vectors of the catalogued passages."""
    import threading

    from sqlalchemy import text

    from corpus.db import database_lock, make_engine

    a, b = cluster.a, cluster.b
    word = unique("Sperrprobe")
    name = f"{word}.txt"
    body = f"Protokoll {word}\n\n" + "".join(
        f"Absatz {i}: Die {word} betrifft Raum {i} im Rathaus. " + "Weitere Angaben zur Nutzung des Raums. " * 12 + "\n\n"
        for i in range(3000))
    engine = make_engine(cluster.db_url)
    out: dict = {}

    def admin_uploads() -> None:
        with login(a.portal, "adam", PASSWORD) as c:
            r = upload(c, name, body.encode("utf-8"))
            assert r.status_code == 200, r.text
            out["result"] = call(c, a.portal, "admin_upload", [[file_value(r.json()[0])], "demo"],
                                 session=admin_session(c, a.portal), timeout_s=600)

    def epoch() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT coalesce(max(epoch), 0) FROM kiportal_lock_epochs "
                                     "WHERE name = 'kiportal-writer'")).scalar()

    before = epoch()

    def running_upload_holds_lock() -> int | None:
        """The lock connection's pid once the upload's job runs and holds the lock with its fence set up."""
        with engine.connect() as conn:
            running = conn.execute(text("SELECT count(*) FROM jobs WHERE kind = 'upload' AND status = 'running'")).scalar()
        return writer_lock_pid(engine) if running and epoch() > before else None

    uploader = threading.Thread(target=admin_uploads)
    uploader.start()
    try:
        pid, _ = eventually(running_upload_holds_lock, within_s=120, every_s=0.05)
        with engine.connect() as admin:  # the cut: what a network failure does to the lock connection
            assert admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        with database_lock(engine, "kiportal-writer", 30, fenced=True):  # another process writes now
            pass
    finally:
        uploader.join(600)
    assert not uploader.is_alive()
    result = out["result"]
    assert result["success"], result
    message = str(result["output"][0])
    assert "Schreibsperre" in message and "nichts übernommen" in message, message
    assert "LockLost" not in message and "Vorgangsnummer" not in message, message
    with engine.connect() as conn:
        job = conn.execute(text("SELECT status, message FROM jobs WHERE kind = 'upload' ORDER BY created_at DESC LIMIT 1")).one()
    assert job.status == "failed" and "Schreibsperre" in job.message
    with login(b.portal, "adam", PASSWORD) as c:
        assert not listed(c, b, name)
    doctor = b.cli("doctor", "--repair", "--json", check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    docs = [json.loads(line) for line in b.cli("docs", "list", "--json").stdout.splitlines() if line.strip()]
    assert name not in {d.get("source", "").rsplit("/", 1)[-1] for d in docs}
    assert len(cluster.vector_ids()) == sum(d["chunks"] for d in docs if d["status"] == "indexed")
    engine.dispose()
