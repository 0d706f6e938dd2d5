from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.appdb import AppDB, new_id

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(any_db_url):
    """The app database on a SQLite file and on PostgreSQL."""
    return AppDB(any_db_url)


def test_migrations_apply_once_and_in_order(db, tmp_path):
    migrations = ["CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
                  ["ALTER TABLE notes ADD COLUMN created DOUBLE PRECISION", "CREATE INDEX notes_created ON notes(created)"]]
    db.ensure_schema("notes", migrations[:1])
    db.execute("INSERT INTO notes(id, body) VALUES (:i, :b)", {"i": new_id(), "b": "eins"})
    db.ensure_schema("notes", migrations)  # only version 2 runs; data stays
    db.ensure_schema("notes", migrations)
    again = AppDB(db.url)
    again.ensure_schema("notes", migrations)
    assert [r["body"] for r in again.query("SELECT body, created FROM notes")] == ["eins"]
    assert again.query("SELECT version FROM schema_migrations WHERE component='notes' ORDER BY version") == [
        {"version": 1}, {"version": 2}]


def test_failed_migration_rolls_back(db):
    with pytest.raises(Exception):
        db.ensure_schema("bad", ["CREATE TABLE ok1 (id TEXT)", "THIS IS NOT SQL"])
    assert db.query("SELECT * FROM schema_migrations WHERE component='bad'") == []


# A replica starting: every component of the app database and the catalog migrate the database.
# The processes import everything first and then wait for one go signal, so they really migrate
# at once (without the schema lock 3 processes fail about 3 times in 4).
STARTUP = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from assistant.appdb import AppDB
    from assistant.audit import AuditLog
    from assistant.chats import ChatStore
    from assistant.sessions import SessionStore
    from assistant.tools.history import ToolRunStore
    from assistant.training.sessions import TrainingStore
    from assistant.users import GroupStore, UserStore
    from corpus.catalog import Catalog
    from ingest.oparl.state import SyncState
    url, go = sys.argv[1], Path(sys.argv[2])
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    db = AppDB(url)
    users = UserStore(db)
    SessionStore(db, users, idle_s=60, max_age_s=60)
    AuditLog(db), ChatStore(db), TrainingStore(db), ToolRunStore(db), SyncState(db), GroupStore(db)
    db.ensure_schema("notes", ["CREATE TABLE notes (id TEXT PRIMARY KEY)", "ALTER TABLE notes ADD COLUMN body TEXT"])
    Catalog(db.engine).ensure_collection("allgemein")
    print("started")
""")


@pytest.mark.cluster
def test_processes_migrating_one_fresh_database_at_once_all_start(pg_server, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for round_ in range(3):
        url = pg_server.new_database("race")
        go = tmp_path / f"go-{round_}"
        procs = [subprocess.Popen([sys.executable, "-c", STARTUP, url, str(go)], env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.communicate()[1][-3000:]
        go.touch()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0 and "started" in out, err[-3000:]
        db = AppDB(url)
        assert db.query("SELECT version FROM schema_migrations WHERE component='notes' ORDER BY version") == [
            {"version": 1}, {"version": 2}]
        assert db.query("SELECT name FROM collections") == [{"name": "allgemein"}]
        db.engine.dispose()
