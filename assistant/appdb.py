"""App state (users, chats, feedback, audit, jobs, quiz): one small data-access layer.

SQLAlchemy Core with plain, portable SQL: the default URL is a SQLite file in the data
directory; ``app_db_url = "postgresql+psycopg://…"`` moves the same tables to PostgreSQL.
Each component owns its tables and registers numbered migrations with
:meth:`AppDB.ensure_schema`; applied versions are recorded in ``schema_migrations``.
Portable-SQL rules for migrations: ids are TEXT (uuid4 hex, never autoincrement), times
are DOUBLE PRECISION epoch seconds, booleans are INTEGER 0/1.
"""
from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> float:
    return time.time()


class AppDB:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn, _record) -> None:  # WAL: readers never wait for the writer
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._schema_lock = threading.Lock()
        with self.engine.begin() as conn:
            conn.execute(text(
                "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, "
                "applied_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (component, version))"
            ))

    def ensure_schema(self, component: str, migrations: Sequence[str | Sequence[str]]) -> int:
        """Apply the component's migrations not applied yet (1-based versions, in order)."""
        with self._schema_lock, self.engine.begin() as conn:
            done = {r[0] for r in conn.execute(text("SELECT version FROM schema_migrations WHERE component=:c"), {"c": component})}
            for version, stmts in enumerate(migrations, start=1):
                if version in done:
                    continue
                for stmt in [stmts] if isinstance(stmts, str) else stmts:
                    conn.execute(text(stmt))
                conn.execute(text("INSERT INTO schema_migrations(component, version, applied_at) VALUES (:c, :v, :t)"),
                             {"c": component, "v": version, "t": now()})
            return len(migrations)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def execute(self, sql: str, params: dict[str, Any] | Sequence[dict[str, Any]] | None = None) -> int:
        with self.engine.begin() as conn:
            res = conn.execute(text(sql), params or {})
            return res.rowcount

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), params or {})]

    def one(self, sql: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None
