from __future__ import annotations

import pytest

from assistant.appdb import AppDB, new_id


@pytest.fixture
def db(tmp_path):
    return AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")


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
