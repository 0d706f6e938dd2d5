"""Audit log: who did what and when. Question text is stored only as the settings allow.

Administrators must be able to answer "who deleted this document?" months later, and
the data-protection officer must be able to show that nothing is kept longer than
``privacy.retention_days``. So every admin action writes one row, the log can be
filtered and exported as CSV (for the DPO's spreadsheet), and :meth:`AuditLog.purge`
deletes what is past the retention period (at portal start and daily by the job runner).
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
from typing import IO, Any, Iterable

from assistant.appdb import AppDB, new_id, now
from assistant.escaping import one_line

log = logging.getLogger(__name__)

_MIGRATIONS = [
    ["CREATE TABLE audit (id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL, "
     "action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '{}')",
     "CREATE INDEX audit_at ON audit(at)"],
    # filters by action/actor are the common admin queries
    ["CREATE INDEX audit_action ON audit(action, at)",
     "CREATE INDEX audit_actor ON audit(actor, at)"],
]

#: Actions in the log: the admin area's, and those the portal and the `users` CLI write
#: (logins, questions, document views, user changes). The filter list is read from the data.
ACTIONS = (
    "upload", "upload.rejected", "replace", "delete", "reindex", "sync", "repair",
    "collection.create", "collection.rename", "collection.delete", "collection.move", "collection.classify",
    "audit.purge", "audit.export", "oparl.sync", "oparl.source.add", "oparl.source.remove",
    "login", "login_failed", "login_blocked", "question", "doc_view", "user_add", "user_remove", "user_passwd",
    "user_groups", "collection.readers", "collection.grant", "collection.revoke", "doc_refused", "as_user",
)

CSV_COLUMNS = ("zeit", "akteur", "aktion", "ziel", "details")
DAY = 86400.0


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` literally anywhere (``%`` and ``_`` escaped)."""
    esc = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{esc}%"


def _csv_cell(value: str) -> str:
    """Neutralise spreadsheet formulas: the CSV is opened in Excel/LibreOffice by people,
    and a question text like ``=HYPERLINK(...)`` must stay text (CSV injection)."""
    return "'" + value if value.lstrip()[:1] in ("=", "+", "-", "@") or value[:1] in ("\t", "\r") else value


def format_time(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


class AuditLog:
    def __init__(self, db: AppDB, *, log_questions: str = "pseudonymised", secret: str = "",
                 retention_days: int = 90) -> None:
        self.db = db
        self.log_questions = log_questions
        self.retention_days = retention_days
        self._secret = secret
        db.ensure_schema("audit", _MIGRATIONS)

    @classmethod
    def from_settings(cls, db: AppDB, settings) -> "AuditLog":
        p = settings.privacy
        return cls(db, log_questions=p.log_questions, secret=settings.auth.secret.get_secret_value(),
                   retention_days=p.retention_days)

    def pseudonym(self, user: str) -> str:
        return "u-" + hashlib.sha256((self._secret + user).encode()).hexdigest()[:10]

    def usage_actor(self, user: str) -> str:
        """Who an entry about using the portal's content names (a question, a rating, a tool run, a
        warning): the person only with ``privacy.log_questions = "full"``, else their pseudonym. A
        rating under the real name and the second it was given linked the review's question to a
        person (an attacker's probe); one rule for all such entries."""
        return user if self.log_questions == "full" else self.pseudonym(user)

    def record(self, action: str, actor: str, target: str = "", detail: dict[str, Any] | None = None) -> str:
        """Write one entry; its id."""
        entry = new_id()
        self.db.execute(
            "INSERT INTO audit(id, at, actor, action, target, detail) VALUES (:i, :t, :a, :x, :g, :d)",
            {"i": entry, "t": now(), "a": one_line(actor)[:200], "x": action, "g": one_line(target)[:500],
             "d": self._detail(detail)},
        )
        return entry

    def update_detail(self, entry: str, detail: dict[str, Any]) -> None:
        """Replace an entry's details (a count that goes on, e.g. held-back logins in one minute)."""
        self.db.execute("UPDATE audit SET detail=:d WHERE id=:i", {"i": entry, "d": self._detail(detail)})

    @staticmethod
    def _detail(detail: dict[str, Any] | None) -> str:
        return one_line(json.dumps(detail or {}, ensure_ascii=False, default=str))

    def record_question(self, actor: str, question: str, detail: dict[str, Any] | None = None) -> None:
        """Questions follow `privacy.log_questions`: off, pseudonymised (user hashed) or full."""
        if self.log_questions == "off":
            return
        self.record("question", self.usage_actor(actor), question[:1000], detail)

    # -- reading -----------------------------------------------------------
    @staticmethod
    def _where(action: str | None, actor: str | None, since: float | None, until: float | None,
               text: str | None, exclude: Iterable[str] = ()) -> tuple[str, dict]:
        sql, args = " WHERE 1=1", {}
        if action:
            if action.endswith("*"):  # "collection.*" = every collection action
                sql += " AND action LIKE :xp ESCAPE '\\'"
                args["xp"] = action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            else:
                sql += " AND action=:x"
                args["x"] = action
        for n, ex in enumerate(exclude):
            sql += f" AND action<>:ex{n}"
            args[f"ex{n}"] = ex
        if actor:
            sql += " AND actor=:a"
            args["a"] = actor
        if since:
            sql += " AND at>=:s"
            args["s"] = since
        if until:
            sql += " AND at<:u"
            args["u"] = until
        if text:
            sql += (" AND (LOWER(target) LIKE :q ESCAPE '\\' OR LOWER(detail) LIKE :q ESCAPE '\\'"
                    " OR LOWER(actor) LIKE :q ESCAPE '\\')")
            args["q"] = _like_pattern(text)
        return sql, args

    def entries(self, *, action: str | None = None, actor: str | None = None, since: float | None = None,
                until: float | None = None, text: str | None = None, exclude: Iterable[str] = (),
                limit: int = 1000, offset: int = 0) -> list[dict]:
        """Newest first. ``action`` ending in ``*`` is a prefix; ``text`` searches target, detail
        and actor case-insensitively; ``until`` is exclusive."""
        where, args = self._where(action, actor, since, until, text, exclude)
        args.update(l=limit, o=offset)
        return self.db.query("SELECT * FROM audit" + where + " ORDER BY at DESC LIMIT :l OFFSET :o", args)

    def count(self, **filters) -> int:
        where, args = self._where(filters.get("action"), filters.get("actor"), filters.get("since"),
                                  filters.get("until"), filters.get("text"), filters.get("exclude", ()))
        row = self.db.one("SELECT COUNT(*) AS n FROM audit" + where, args)
        return int(row["n"]) if row else 0

    def actions(self) -> list[str]:
        """Actions present in the log (for the filter drop-down)."""
        return [r["action"] for r in self.db.query("SELECT DISTINCT action FROM audit ORDER BY action")]

    def actors(self, limit: int = 200) -> list[str]:
        return [r["actor"] for r in self.db.query(
            "SELECT actor, MAX(at) AS last FROM audit GROUP BY actor ORDER BY last DESC LIMIT :l", {"l": limit})]

    # -- export ------------------------------------------------------------
    def write_csv(self, out: IO[str], **filters) -> int:
        """Write matching entries (oldest first, all of them) as CSV; returns the row count.

        Semicolon-separated with a BOM-free UTF-8 header: what German spreadsheet programs
        open correctly by double-click."""
        where, args = self._where(filters.get("action"), filters.get("actor"), filters.get("since"),
                                  filters.get("until"), filters.get("text"), filters.get("exclude", ()))
        writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        n, offset, page = 0, 0, 5000
        while True:
            rows = self.db.query("SELECT * FROM audit" + where + " ORDER BY at, id LIMIT :l OFFSET :o",
                                 dict(args, l=page, o=offset))
            for r in rows:
                writer.writerow([format_time(r["at"]), *(_csv_cell(one_line(r[c] or ""))  # rows written before one_line
                                                         for c in ("actor", "action", "target", "detail"))])
            n += len(rows)
            if len(rows) < page:
                return n
            offset += page

    def export_csv(self, **filters) -> str:
        buf = io.StringIO()
        self.write_csv(buf, **filters)
        return buf.getvalue()

    # -- retention ---------------------------------------------------------
    def purge(self, older_than_days: int | None = None, *, actor: str = "system") -> int:
        """Delete entries older than ``older_than_days`` (default: the configured retention).

        ``0`` or less keeps everything (retention switched off). The purge itself is logged
        (count and cut-off only), so the log shows that deletion happened on schedule."""
        days = self.retention_days if older_than_days is None else older_than_days
        if days is None or days <= 0:
            return 0
        cutoff = now() - days * DAY
        n = self.db.execute("DELETE FROM audit WHERE at < :c", {"c": cutoff})
        if n:
            log.info("audit retention: %d entries older than %d days deleted", n, days)
            self.record("audit.purge", actor, "", {"deleted": n, "days": days, "cutoff": format_time(cutoff)})
        return n
