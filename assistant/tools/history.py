"""History of tool runs per user, in the app database, and their audit entries.

Like chats, a run is read, exported or deleted by its owner only: every access takes the
acting user and raises :class:`RunNotFound` both for unknown runs and for other users'
runs. The input is kept (the person may want to re-run or compare), capped in length.
"""
from __future__ import annotations

import json
from typing import Any

from assistant.appdb import AppDB, new_id, now
from assistant.tools.result import ToolResult

INPUT_CHARS = 20000
_MIGRATIONS = [
    [
        'CREATE TABLE tool_runs (id TEXT PRIMARY KEY, "user" TEXT NOT NULL, tool TEXT NOT NULL, '
        "title TEXT NOT NULL DEFAULT '', input_text TEXT NOT NULL DEFAULT '', output TEXT NOT NULL DEFAULT '', "
        "result_json TEXT NOT NULL DEFAULT '{}', created_at DOUBLE PRECISION NOT NULL)",
        'CREATE INDEX tool_runs_user ON tool_runs("user", created_at)',
    ],
]


class RunNotFound(KeyError):
    """Unknown run, or a run of another user (deliberately indistinguishable)."""


class ToolRunStore:
    def __init__(self, db: AppDB) -> None:
        self.db = db
        db.ensure_schema("tool_runs", _MIGRATIONS)

    def save(self, user: str, result: ToolResult, input_text: str = "") -> str:
        run_id = new_id()
        self.db.execute(
            'INSERT INTO tool_runs(id, "user", tool, title, input_text, output, result_json, created_at) '
            "VALUES (:i, :u, :t, :ti, :in, :o, :r, :c)",
            {"i": run_id, "u": user, "t": result.tool, "ti": result.title[:200], "in": (input_text or "")[:INPUT_CHARS],
             "o": result.output, "r": json.dumps(result.as_dict(), ensure_ascii=False, default=str), "c": now()},
        )
        return run_id

    def list_runs(self, user: str, tool: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        sql = 'SELECT id, tool, title, created_at FROM tool_runs WHERE "user" = :u'
        params: dict[str, Any] = {"u": user, "n": limit}
        if tool:
            sql += " AND tool = :t"
            params["t"] = tool
        return self.db.query(sql + " ORDER BY created_at DESC LIMIT :n", params)

    def get(self, user: str, run_id: str) -> dict[str, Any]:
        row = self.db.one('SELECT * FROM tool_runs WHERE id = :i AND "user" = :u', {"i": run_id or "", "u": user})
        if row is None:
            raise RunNotFound(run_id)
        row["result"] = json.loads(row.pop("result_json") or "{}")
        return row

    def delete_all(self, user: str) -> int:
        """Delete every run of ``user`` (an account being removed); returns how many."""
        return self.db.execute('DELETE FROM tool_runs WHERE "user" = :u', {"u": user})

    def delete(self, user: str, run_id: str) -> None:
        if not self.db.execute('DELETE FROM tool_runs WHERE id = :i AND "user" = :u', {"i": run_id or "", "u": user}):
            raise RunNotFound(run_id)


def audit_detail(result: ToolResult) -> dict[str, Any]:
    """What the audit log keeps of a run: never the text, only what happened."""
    d: dict[str, Any] = {"tool": result.tool, "model": result.model_key, "zone": result.zone, "status": result.status,
                         "policy": result.policy.get("action", ""),
                         "pii": [p.get("kind") for p in result.policy.get("pii", [])],
                         "total_ms": result.timings.get("total_ms")}
    if "facts_changed" in result.details:
        d["facts_changed"] = len(result.details["facts_changed"])
    if "doc_id" in result.details:
        d["doc_id"] = result.details["doc_id"]
    return d
