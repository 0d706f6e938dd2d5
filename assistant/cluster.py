"""Cluster mode: the start-up rule, the registry of running replicas and workers, and the status
of the shared stores (docs/cluster.md).

Why each piece is here:

* :func:`cluster_problems` / :func:`check_cluster_settings`: every replica signs login cookies
  and document links; a secret generated into each replica's own data directory would make a
  link or login of replica A worthless on replica B. So in cluster mode (``Settings.cluster``)
  ``kiportal serve`` and ``kiportal worker`` refuse to start without one ``auth.secret``. A pure
  function on the settings, next to the header-mode check (``ui.portal.check_auth_mode``).
* :class:`NodeRegistry` and :class:`Heartbeat`: an operator behind a load balancer cannot see
  which replicas and workers are alive. Each process writes a row into the app database and
  refreshes it every few seconds from a background thread; a row not refreshed for
  ``STALE_AFTER_S`` counts as gone (a killed process cannot delete its own row).
* :func:`status_report`: `kiportal status` and `kiportal doctor` check the shared stores (app
  database reachable and migrated, Chroma server reachable with its collection count), list the
  nodes and the queue depth from any replica.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Callable

from assistant.appdb import AppDB, new_id, now

log = logging.getLogger(__name__)

MIN_SECRET_CHARS = 32
HEARTBEAT_EVERY_S = 5.0
STALE_AFTER_S = 30.0
FORGET_AFTER_S = 24 * 3600.0  # rows of nodes silent this long are deleted (they only clutter the list)
ROLES = ("serve", "worker")

_MIGRATIONS = [
    "CREATE TABLE cluster_nodes (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, "
    "role TEXT NOT NULL, version TEXT NOT NULL, address TEXT NOT NULL DEFAULT '', "
    "started_at DOUBLE PRECISION NOT NULL, heartbeat_at DOUBLE PRECISION NOT NULL)",
]


# -- the start-up rule --------------------------------------------------------------------------
def cluster_problems(settings) -> list[str]:
    """Why these settings cannot run as one replica of a cluster (empty: they can, or no cluster).

    Only ``auth.secret`` is a hard rule: without it logins and links break between replicas and a
    short one can be guessed. (A vector index that is not shared is reported by `kiportal status`.)"""
    if not settings.cluster:
        return []
    secret = settings.auth.secret.get_secret_value()
    if not secret:
        return ["Im Cluster-Betrieb (app_db_url zeigt auf PostgreSQL) brauchen alle Portale und Worker dasselbe "
                "auth.secret, z. B. KIPORTAL_AUTH__SECRET=$(openssl rand -hex 32); ohne startet kiportal nicht, "
                "denn Anmeldungen und Quellen-Links eines Portals gälten auf keinem anderen. / cluster mode "
                "(app_db_url on PostgreSQL) needs the same auth.secret on every portal and worker."]
    if len(secret) < MIN_SECRET_CHARS:
        return [f"auth.secret ist zu kurz ({len(secret)} Zeichen, mindestens {MIN_SECRET_CHARS}), z. B. "
                f"`openssl rand -hex 32`. / auth.secret too short for cluster mode (at least {MIN_SECRET_CHARS} "
                "characters)."]
    return []


WORKER_NEEDS_CLUSTER = ("Ein Worker braucht den Cluster-Betrieb: app_db_url muss auf PostgreSQL zeigen "
                        "(postgresql+psycopg://…). / A worker needs cluster mode: app_db_url must be PostgreSQL.")


def worker_problems(settings) -> list[str]:
    """Why ``kiportal worker`` cannot start with these settings (empty: it can). In the embedded
    default the portal runs its jobs itself, so a worker would have nothing to take them from."""
    return cluster_problems(settings) if settings.cluster else [WORKER_NEEDS_CLUSTER]


def check_cluster_settings(settings) -> None:
    """Refuse to start a portal or worker whose settings cannot join a cluster (see :func:`cluster_problems`)."""
    problems = cluster_problems(settings)
    if problems:
        raise RuntimeError(problems[0])


# -- the registry of replicas and workers -------------------------------------------------------
def node_state(heartbeat_at: float, at: float, stale_after_s: float = STALE_AFTER_S) -> str:
    """``aktiv`` while the heartbeat is fresh, else ``verstummt`` (the process is gone or hangs)."""
    return "aktiv" if at - heartbeat_at <= stale_after_s else "verstummt"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("kiportal")
    except Exception:  # noqa: BLE001 - not installed (source checkout on PYTHONPATH)
        return "unbekannt"


class NodeRegistry:
    """Rows of running portals and workers in the app database (table ``cluster_nodes``)."""

    def __init__(self, db: AppDB, *, stale_after_s: float = STALE_AFTER_S) -> None:
        self.db = db
        self.stale_after_s = stale_after_s
        db.ensure_schema("cluster", _MIGRATIONS)

    def register(self, role: str, *, address: str = "", host: str | None = None, pid: int | None = None,
                 version: str | None = None, at: float | None = None) -> str:
        """Add this process and return its node id."""
        if role not in ROLES:
            raise ValueError(f"unknown node role {role!r} ({', '.join(ROLES)})")
        t = now() if at is None else at
        node_id = new_id()
        self.db.execute(
            "INSERT INTO cluster_nodes(id, host, pid, role, version, address, started_at, heartbeat_at) "
            "VALUES (:i, :h, :p, :r, :v, :a, :t, :t)",
            {"i": node_id, "h": host or socket.gethostname(), "p": os.getpid() if pid is None else pid, "r": role,
             "v": version or _version(), "a": address, "t": t})
        log.info("registered as %s node %s", role, node_id)
        return node_id

    def beat(self, node_id: str, *, at: float | None = None) -> bool:
        """Refresh the heartbeat; False if the row is gone (deleted by an operator or a purge)."""
        return self.db.execute("UPDATE cluster_nodes SET heartbeat_at=:t WHERE id=:i",
                               {"t": now() if at is None else at, "i": node_id}) > 0

    def leave(self, node_id: str) -> None:
        self.db.execute("DELETE FROM cluster_nodes WHERE id=:i", {"i": node_id})

    def nodes(self, *, at: float | None = None) -> list[dict[str, Any]]:
        """All known nodes, newest heartbeat first, each with ``state`` and ``silent_s``."""
        t = now() if at is None else at
        rows = self.db.query("SELECT id, host, pid, role, version, address, started_at, heartbeat_at "
                             "FROM cluster_nodes ORDER BY heartbeat_at DESC, id")
        for row in rows:
            row["silent_s"] = round(max(0.0, t - row["heartbeat_at"]), 1)
            row["state"] = node_state(row["heartbeat_at"], t, self.stale_after_s)
        return rows

    def purge(self, *, at: float | None = None, older_than_s: float = FORGET_AFTER_S) -> int:
        """Forget nodes silent for longer than ``older_than_s``."""
        t = now() if at is None else at
        return self.db.execute("DELETE FROM cluster_nodes WHERE heartbeat_at < :t", {"t": t - older_than_s})


class Heartbeat:
    """Registers this process on start, refreshes its row every ``every_s`` from a daemon thread,
    and removes it on stop. A failed refresh (database away) is logged and retried; a row deleted
    meanwhile is registered again, so the node reappears once the database is back."""

    def __init__(self, registry: NodeRegistry, role: str, *, address: str = "",
                 every_s: float = HEARTBEAT_EVERY_S) -> None:
        self.registry = registry
        self.role = role
        self.address = address
        self.every_s = every_s
        self.node_id: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Heartbeat":
        self.node_id = self.registry.register(self.role, address=self.address)
        try:
            self.registry.purge()
        except Exception:  # noqa: BLE001 - housekeeping only
            log.debug("purging old cluster nodes failed", exc_info=True)
        self._thread = threading.Thread(target=self._run, name=f"kiportal-heartbeat-{self.role}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.every_s):
            try:
                if not self.registry.beat(self.node_id):
                    self.node_id = self.registry.register(self.role, address=self.address)
                if failing:
                    log.warning("heartbeat to the app database works again")
                failing = False
            except Exception as exc:  # noqa: BLE001 - the database may be away for a while
                if not failing:
                    log.warning("heartbeat to the app database failed (%s); retrying every %.0f s", exc, self.every_s)
                failing = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every_s + 5)
        if self.node_id is not None:
            try:
                self.registry.leave(self.node_id)
            except Exception:  # noqa: BLE001 - shutting down; the row goes stale by itself
                log.info("could not remove cluster node %s", self.node_id, exc_info=True)

    def __enter__(self) -> "Heartbeat":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def heartbeat_for(app, role: str, address: str = "") -> AbstractContextManager:
    """The heartbeat of a portal or worker in cluster mode; nothing in the embedded default
    (one process: nothing to list, and no thread writing into the SQLite file)."""
    if not app.settings.cluster:
        return nullcontext()
    return Heartbeat(NodeRegistry(app.app_db), role, address=address)


# -- the status of the shared stores --------------------------------------------------------------
def check_app_db(db: AppDB | Callable[[], AppDB]) -> dict[str, Any]:
    """Reachable (a round trip), and how far it is migrated: the components' migration records, and
    the catalog's Alembic revision against the newest one (in a cluster the catalog lives in this
    database). ``db`` may be a callable (``lambda: app.app_db``): opening the database is the first
    thing that can fail."""
    from sqlalchemy import inspect

    from corpus.catalog import VERSION_TABLE, schema_revision

    out: dict[str, Any] = {"store": "app_db", "backend": "?", "ok": False}
    started = time.perf_counter()
    try:
        if callable(db):
            db = db()
        out["backend"] = db.engine.dialect.name
        db.query("SELECT 1 AS one")
        out["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        tables = set(inspect(db.engine).get_table_names())
        components = db.query("SELECT component, MAX(version) AS version FROM schema_migrations GROUP BY component "
                              "ORDER BY component") if "schema_migrations" in tables else []
        out["migrations"] = {r["component"]: int(r["version"]) for r in components}
        if VERSION_TABLE in tables:
            current, head = schema_revision(db.engine)
            out["catalog_revision"], out["catalog_head"] = current, head
        out["migrated"] = bool(components) or bool(out.get("catalog_revision"))
        out["ok"] = True  # an empty database is no fault: each component migrates its tables on first use
        if not out["migrated"]:
            out["note"] = "noch keine Tabellen: das erste Portal oder der erste Worker legt sie an"
        elif out.get("catalog_revision") not in (None, out.get("catalog_head")):
            # an older replica's catalog: the next start of a current one upgrades it (under the schema lock)
            out["note"] = f"Katalog auf Stand {out['catalog_revision']}, aktuell ist {out['catalog_head']}"
    except Exception as exc:  # noqa: BLE001 - any driver error means: not reachable
        out["error"] = f"nicht erreichbar / unreachable: {exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"
    return out


def check_vector_store(settings) -> dict[str, Any]:
    """The Chroma server answers its heartbeat; how many collections and chunks it holds.

    Embedded Chroma is checked by `kiportal doctor` against the catalog; here it only counts as
    a problem in cluster mode, where every replica would keep vectors of its own."""
    v = settings.vector
    out: dict[str, Any] = {"store": "vector", "mode": v.mode, "ok": True}
    if v.mode != "chroma_http":
        out["shared"] = False
        if settings.cluster:
            out["ok"] = False
            out["error"] = (f"vector.mode = \"{v.mode}\" ist nicht geteilt: im Cluster-Betrieb vector.mode = "
                            "\"chroma_http\" mit vector.host/port einstellen. / not shared: use chroma_http")
        return out
    out.update(shared=True, host=v.host, port=v.port, collection=v.collection, ok=False)
    try:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        client = chromadb.HttpClient(host=v.host, port=v.port, settings=ChromaSettings(anonymized_telemetry=False))
        started = time.perf_counter()
        client.heartbeat()
        out["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
        out["collections"] = client.count_collections()
        names = {c.name for c in client.list_collections()}
        out["chunks"] = client.get_collection(v.collection).count() if v.collection in names else None
        out["ok"] = True
        if out["chunks"] is None:
            out["note"] = f"Sammlung {v.collection!r} noch nicht angelegt (erstes Ingest legt sie an)"
    except Exception as exc:  # noqa: BLE001 - connection refused, timeouts, HTTP errors
        out["error"] = f"Chroma-Server {v.host}:{v.port} nicht erreichbar / unreachable: " \
                       f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    return out


def check_models(settings) -> dict[str, Any]:
    """The models folder (``models_path``: shared, or the data dir's) exists and is readable."""
    folder = settings.models_dir
    out: dict[str, Any] = {"store": "models", "path": str(folder), "shared": bool(settings.models_path)}
    needed = settings.embedding.mode in ("e5", "e5_onnx", "e5_int8") or any(
        p.mode == "local" and not p.model for p in settings.llm.models.values())
    out["ok"] = folder.is_dir() and os.access(folder, os.R_OK | os.X_OK)
    if out["ok"]:
        out["entries"] = sorted(p.name for p in folder.iterdir())[:20]
    elif needed:
        out["error"] = f"Modellordner {folder} fehlt oder ist nicht lesbar: `kiportal models prepare` ausführen"
    else:
        out.update(ok=True, note="keine vorbereiteten Modelle nötig (Einstellungen)")
    return out


def status_report(app, *, at: float | None = None) -> dict[str, Any]:
    """Everything `kiportal status` shows: mode, shared stores, nodes and queue depth.

    ``ok`` is False when a shared store fails; nodes and queue are listed only when the app
    database answers."""
    s = app.settings
    stores = [check_app_db(lambda: app.app_db), check_vector_store(s), check_models(s)]
    report: dict[str, Any] = {"cluster": s.cluster, "stores": stores, "nodes": [], "queue": None,
                              "problems": cluster_problems(s)}
    if stores[0]["ok"]:
        from assistant import jobs

        report["nodes"] = NodeRegistry(app.app_db).nodes(at=at)
        report["queue"] = jobs.queue_depth(app.app_db)
        # the queue's own view of its workers (with the jobs each runs now); nodes above are every process
        report["job_workers"] = jobs.workers(app.app_db, stale_after=s.jobs.stalled_after_seconds)
    report["ok"] = all(st["ok"] for st in stores if st["store"] != "models") and not report["problems"]
    return report
