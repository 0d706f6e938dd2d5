"""App state (users, chats, feedback, audit, jobs, quiz): one small data-access layer.

SQLAlchemy Core with plain, portable SQL: the default URL is a SQLite file in the data
directory; ``app_db_url = "postgresql+psycopg://…"`` moves the same tables to PostgreSQL.
Each component owns its tables and registers numbered migrations with
:meth:`AppDB.ensure_schema`; applied versions are recorded in ``schema_migrations``.
Portable-SQL rules for migrations: ids are TEXT (uuid4 hex, never autoincrement), times
are DOUBLE PRECISION epoch seconds, booleans are INTEGER 0/1. Migrations run under a database
lock, so any number of replicas may start on one fresh database at once.
"""
from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from corpus.db import database_lock, make_engine


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> float:
    return time.time()


class AppDB:
    #: the database lock every schema change runs under (shared with the catalog's migrations)
    SCHEMA_LOCK = "kiportal-schema"

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self._schema_lock = threading.Lock()
        self._ensure_migrations_table()

    def _ensure_migrations_table(self) -> None:
        """``schema_migrations`` under the schema lock: two processes creating it on a fresh
        PostgreSQL at once would otherwise collide in its catalog (a UniqueViolation)."""
        if inspect(self.engine).has_table("schema_migrations"):
            return
        with database_lock(self.engine, self.SCHEMA_LOCK), self.engine.begin() as conn:
            conn.execute(text(
                "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, "
                "applied_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (component, version))"
            ))

    def _applied(self, conn: Connection, component: str) -> set[int]:
        return {r[0] for r in conn.execute(text("SELECT version FROM schema_migrations WHERE component=:c"),
                                           {"c": component})}

    def ensure_schema(self, component: str, migrations: Sequence[str | Sequence[str]]) -> int:
        """Apply the component's migrations not applied yet (1-based versions, in order).

        Runs under the database's schema lock (:func:`corpus.db.database_lock`), so replicas
        starting together on one database apply each migration exactly once; a process that finds
        everything applied does not take the lock at all."""
        with self.engine.connect() as conn:
            if self._applied(conn, component) >= set(range(1, len(migrations) + 1)):
                return len(migrations)
        with self._schema_lock, database_lock(self.engine, self.SCHEMA_LOCK), self.engine.begin() as conn:
            done = self._applied(conn, component)
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
