"""Audit log: who did what and when. Question text is stored only as the settings allow."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from assistant.appdb import AppDB, new_id, now

_MIGRATIONS = [
    ["CREATE TABLE audit (id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL, "
     "action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '{}')",
     "CREATE INDEX audit_at ON audit(at)"],
]


class AuditLog:
    def __init__(self, db: AppDB, *, log_questions: str = "pseudonymised", secret: str = "") -> None:
        self.db = db
        self.log_questions = log_questions
        self._secret = secret
        db.ensure_schema("audit", _MIGRATIONS)

    def pseudonym(self, user: str) -> str:
        return "u-" + hashlib.sha256((self._secret + user).encode()).hexdigest()[:10]

    def record(self, action: str, actor: str, target: str = "", detail: dict[str, Any] | None = None) -> None:
        self.db.execute(
            "INSERT INTO audit(id, at, actor, action, target, detail) VALUES (:i, :t, :a, :x, :g, :d)",
            {"i": new_id(), "t": now(), "a": actor, "x": action, "g": target[:500],
             "d": json.dumps(detail or {}, ensure_ascii=False, default=str)},
        )

    def record_question(self, actor: str, question: str, detail: dict[str, Any] | None = None) -> None:
        """Questions follow `privacy.log_questions`: off, pseudonymised (user hashed) or full."""
        if self.log_questions == "off":
            return
        who = actor if self.log_questions == "full" else self.pseudonym(actor)
        self.record("question", who, question[:1000], detail)

    def entries(self, *, action: str | None = None, actor: str | None = None, since: float | None = None,
                limit: int = 1000) -> list[dict]:
        sql, args = "SELECT * FROM audit WHERE 1=1", {"l": limit}
        if action:
            sql += " AND action=:x"
            args["x"] = action
        if actor:
            sql += " AND actor=:a"
            args["a"] = actor
        if since:
            sql += " AND at>=:s"
            args["s"] = since
        return self.db.query(sql + " ORDER BY at DESC LIMIT :l", args)
