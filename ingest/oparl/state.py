"""What the importer remembers between runs, in the app database.

* per body: when the last *successful* sync started (the next run asks only for what
  changed since then, ``modified_since``);
* per paper/meeting: the ``modified`` time it was imported at, or why it failed (a failed
  object is fetched again by the next run, even when the server no longer lists it as changed);
* per file of an object: the local file, its document path and what the server said about
  it (``modified``, ``sha1Checksum``, ``size``), so an unchanged file is never downloaded again.

``db`` is an :class:`assistant.appdb.AppDB` (passed in: ``ingest`` does not import ``assistant``);
only its ``ensure_schema``/``execute``/``query``/``one`` are used, in portable SQL.
"""
from __future__ import annotations

import time

_MIGRATIONS = [
    ["CREATE TABLE oparl_bodies (body_id TEXT PRIMARY KEY, source_url TEXT NOT NULL DEFAULT '', "
     "name TEXT NOT NULL DEFAULT '', last_sync TEXT NOT NULL DEFAULT '', last_sync_at DOUBLE PRECISION)",
     "CREATE TABLE oparl_objects (object_id TEXT PRIMARY KEY, body_id TEXT NOT NULL, kind TEXT NOT NULL, "
     "modified TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', "
     "label TEXT NOT NULL DEFAULT '', updated_at DOUBLE PRECISION NOT NULL)",
     "CREATE INDEX oparl_objects_body ON oparl_objects(body_id, status)",
     "CREATE TABLE oparl_files (object_id TEXT NOT NULL, file_id TEXT NOT NULL, body_id TEXT NOT NULL, "
     "doc_path TEXT NOT NULL, mode TEXT NOT NULL, modified TEXT NOT NULL DEFAULT '', sha1 TEXT NOT NULL DEFAULT '', "
     "size BIGINT, updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (object_id, file_id))"],
]


class SyncState:
    def __init__(self, db) -> None:
        self.db = db
        db.ensure_schema("oparl", _MIGRATIONS)

    # -- bodies ------------------------------------------------------------------
    def last_sync(self, body_id: str) -> str:
        row = self.db.one("SELECT last_sync FROM oparl_bodies WHERE body_id=:b", {"b": body_id})
        return row["last_sync"] if row else ""

    def set_last_sync(self, body_id: str, source_url: str, name: str, since: str) -> None:
        params = {"b": body_id, "u": source_url, "n": name, "s": since, "t": time.time()}
        if self.db.execute("UPDATE oparl_bodies SET source_url=:u, name=:n, last_sync=:s, last_sync_at=:t "
                           "WHERE body_id=:b", params) == 0:
            self.db.execute("INSERT INTO oparl_bodies(body_id, source_url, name, last_sync, last_sync_at) "
                            "VALUES (:b, :u, :n, :s, :t)", params)

    def bodies(self) -> list[dict]:
        return self.db.query("SELECT * FROM oparl_bodies ORDER BY name, body_id")

    # -- objects -----------------------------------------------------------------
    def object(self, object_id: str) -> dict | None:
        return self.db.one("SELECT * FROM oparl_objects WHERE object_id=:o", {"o": object_id})

    def failed_objects(self, body_id: str) -> list[dict]:
        return self.db.query("SELECT * FROM oparl_objects WHERE body_id=:b AND status='failed' ORDER BY object_id",
                             {"b": body_id})

    def _put_object(self, object_id: str, body_id: str, kind: str, modified: str, status: str, error: str,
                    label: str) -> None:
        params = {"o": object_id, "b": body_id, "k": kind, "m": modified, "s": status, "e": error[:2000],
                  "l": label, "t": time.time()}
        if self.db.execute("UPDATE oparl_objects SET body_id=:b, kind=:k, modified=:m, status=:s, error=:e, "
                           "label=:l, updated_at=:t WHERE object_id=:o", params) == 0:
            self.db.execute("INSERT INTO oparl_objects(object_id, body_id, kind, modified, status, error, label, "
                            "updated_at) VALUES (:o, :b, :k, :m, :s, :e, :l, :t)", params)

    def mark_done(self, object_id: str, body_id: str, kind: str, modified: str, label: str) -> None:
        self._put_object(object_id, body_id, kind, modified, "done", "", label)

    def mark_failed(self, object_id: str, body_id: str, kind: str, error: str, label: str = "") -> None:
        """Remember a failure without forgetting the last good ``modified`` (so nothing is skipped)."""
        old = self.object(object_id)
        self._put_object(object_id, body_id, kind, "", "failed", error, label or (old or {}).get("label", ""))

    def forget_object(self, object_id: str) -> None:
        self.db.execute("DELETE FROM oparl_files WHERE object_id=:o", {"o": object_id})
        self.db.execute("DELETE FROM oparl_objects WHERE object_id=:o", {"o": object_id})

    # -- files -------------------------------------------------------------------
    def files(self, object_id: str) -> dict[str, dict]:
        rows = self.db.query("SELECT * FROM oparl_files WHERE object_id=:o", {"o": object_id})
        return {r["file_id"]: r for r in rows}

    def put_file(self, object_id: str, file_id: str, body_id: str, doc_path: str, mode: str, modified: str,
                 sha1: str, size: int | None) -> None:
        params = {"o": object_id, "f": file_id, "b": body_id, "p": doc_path, "mo": mode, "m": modified,
                  "s": sha1, "z": size, "t": time.time()}
        if self.db.execute("UPDATE oparl_files SET body_id=:b, doc_path=:p, mode=:mo, modified=:m, sha1=:s, "
                           "size=:z, updated_at=:t WHERE object_id=:o AND file_id=:f", params) == 0:
            self.db.execute("INSERT INTO oparl_files(object_id, file_id, body_id, doc_path, mode, modified, sha1, "
                            "size, updated_at) VALUES (:o, :f, :b, :p, :mo, :m, :s, :z, :t)", params)

    def drop_file(self, object_id: str, file_id: str) -> None:
        self.db.execute("DELETE FROM oparl_files WHERE object_id=:o AND file_id=:f", {"o": object_id, "f": file_id})
