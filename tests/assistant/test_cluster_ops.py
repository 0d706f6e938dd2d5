"""Cluster mode: the start-up rule, the node registry with its heartbeat, and the store checks."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from assistant.appdb import AppDB
from assistant.cluster import (
    Heartbeat,
    NodeRegistry,
    check_app_db,
    check_cluster_settings,
    check_models,
    check_vector_store,
    cluster_problems,
    node_state,
    status_report,
)
from assistant.settings import load_settings

PG = "postgresql+psycopg://kiportal@db.example:5432/kiportal"  # never connected: the rule reads settings only
GOOD = "a" * 64


@pytest.mark.parametrize("app_db_url, secret, refused", [
    ("", "", None),                       # embedded default: a secret is generated into the data dir
    ("", "kurz", None),                   # embedded: not checked (as before)
    (PG, "", "auth.secret"),              # cluster without a secret: each replica would sign differently
    (PG, "x" * 31, "zu kurz"),            # guessable
    (PG, "x" * 32, None),
    (PG, GOOD, None),
    ("sqlite:////tmp/app.sqlite3", "", None),  # an explicit SQLite file is still one process
])
def test_cluster_mode_needs_a_shared_secret(tmp_path, app_db_url, secret, refused):
    settings = load_settings(tmp_path, app_db_url=app_db_url, auth={"secret": secret})
    problems = cluster_problems(settings)
    if refused is None:
        assert problems == []
        check_cluster_settings(settings)
    else:
        assert len(problems) == 1 and refused in problems[0] and "/" in problems[0]  # German / English
        with pytest.raises(RuntimeError, match=refused):
            check_cluster_settings(settings)


def test_no_replica_generates_a_link_secret_of_its_own(tmp_path):
    from assistant.links import load_secret

    with pytest.raises(RuntimeError, match="auth.secret"):
        load_secret(load_settings(tmp_path, app_db_url=PG))
    assert not (tmp_path / "portal_secret").exists()
    assert load_secret(load_settings(tmp_path, app_db_url=PG, auth={"secret": GOOD})) == GOOD.encode()
    assert len(load_secret(load_settings(tmp_path))) == 64  # embedded: generated as before


@pytest.mark.parametrize("silent_s, state", [(0, "aktiv"), (29.9, "aktiv"), (30, "aktiv"), (30.1, "verstummt"),
                                             (3600, "verstummt")])
def test_node_state(silent_s, state):
    assert node_state(1000.0, 1000.0 + silent_s, 30.0) == state


def test_registry_lists_beats_and_forgets(tmp_path):
    reg = NodeRegistry(AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}"))
    a = reg.register("serve", address="10.0.0.1:7860", at=100.0)
    w = reg.register("worker", at=100.0)
    with pytest.raises(ValueError):
        reg.register("spion")
    assert reg.beat(a, at=140.0)
    nodes = {n["id"]: n for n in reg.nodes(at=145.0)}
    assert nodes[a]["state"] == "aktiv" and nodes[a]["silent_s"] == 5.0 and nodes[a]["address"] == "10.0.0.1:7860"
    assert nodes[w]["state"] == "verstummt" and nodes[w]["role"] == "worker" and nodes[w]["host"] == socket.gethostname()
    assert reg.purge(at=100.0 + 24 * 3600 + 1) == 1  # the silent worker is forgotten after a day
    reg.leave(a)
    assert reg.nodes() == [] and not reg.beat(a)


def test_heartbeat_thread_keeps_the_row_fresh_and_removes_it(tmp_path):
    reg = NodeRegistry(AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}"), stale_after_s=1.0)
    with Heartbeat(reg, "worker", every_s=0.1) as hb:
        first = reg.nodes()[0]["heartbeat_at"]
        deadline = time.monotonic() + 5
        while reg.nodes()[0]["heartbeat_at"] == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reg.nodes()[0]["heartbeat_at"] > first and reg.nodes()[0]["state"] == "aktiv"
        reg.leave(hb.node_id)  # deleted meanwhile (an operator, a purge): registers again
        deadline = time.monotonic() + 5
        while not reg.nodes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [n["role"] for n in reg.nodes()] == ["worker"]
    assert reg.nodes() == []


def test_embedded_default_registers_nothing(hash_app):
    with hash_app.heartbeat("serve"):
        pass
    from sqlalchemy import inspect

    assert not inspect(hash_app.app_db.engine).has_table("cluster_nodes")


def test_store_checks_report_unreachable_servers(tmp_path):
    from servers import free_port

    port = free_port()  # nothing listens there
    s = load_settings(tmp_path, app_db_url=f"postgresql+psycopg://kiportal@127.0.0.1:{port}/x",
                      vector={"mode": "chroma_http", "host": "127.0.0.1", "port": port})
    vec = check_vector_store(s)
    assert not vec["ok"] and "nicht erreichbar" in vec["error"] and str(port) in vec["error"]


def test_embedded_stores_are_fine_alone_but_not_in_a_cluster(tmp_path, hash_app):
    assert check_vector_store(hash_app.settings)["ok"]
    clustered = load_settings(tmp_path, app_db_url=PG, vector={"mode": "chroma"})
    vec = check_vector_store(clustered)
    assert not vec["ok"] and "chroma_http" in vec["error"]
    db = check_app_db(hash_app.app_db)
    assert db["ok"] and not db["migrated"] and "noch keine Tabellen" in db["note"]  # reachable, still empty
    hash_app.users  # noqa: B018 - a component migrates its tables
    db = check_app_db(hash_app.app_db)
    assert db["ok"] and db["backend"] == "sqlite" and "users" in db["migrations"]


@pytest.mark.cluster
def test_status_of_a_cluster_on_real_servers(tmp_path, pg_url, chroma_server, app_factory):
    """Two replicas and a worker on one PostgreSQL and one Chroma server: every one lists all three."""
    name = f"status_{time.monotonic_ns()}"
    common = dict(app_db_url=pg_url, auth={"secret": GOOD},
                  vector={"mode": "chroma_http", "host": chroma_server.host, "port": chroma_server.port,
                          "collection": name})
    a = app_factory(tmp_path / "a", **common)
    b = app_factory(tmp_path / "b", **common)
    w = app_factory(tmp_path / "w", **common)
    with a.heartbeat("serve", "a:7860"), b.heartbeat("serve", "b:7860"), w.heartbeat("worker"):
        a.kb.catalog.stats()  # opens the Chroma collection and migrates the shared catalog
        report = status_report(b)
        assert report["ok"] and report["cluster"] and report["problems"] == []
        assert sorted((n["role"], n["address"]) for n in report["nodes"]) == [("serve", "a:7860"), ("serve", "b:7860"),
                                                                                ("worker", "")]
        assert all(n["state"] == "aktiv" for n in report["nodes"])
        db, vec, _models = report["stores"]
        assert db["backend"] == "postgresql" and db["migrations"]["cluster"] == 1
        # the shared catalog lives in the same database, at the newest Alembic revision
        from corpus.catalog import schema_revision

        assert db["catalog_revision"] == db["catalog_head"] == schema_revision(a.catalog.engine)[1]
        assert "note" not in db
        assert vec["shared"] and vec["collections"] >= 1 and vec["chunks"] == 0
        assert report["queue"] == {"queued": 0, "running": 0}
    assert status_report(a)["nodes"] == []  # each removed its row on the way out


@pytest.mark.parametrize("models_path, expect", [("", "home"), ("/srv/kiportal/models", "/srv/kiportal/models")])
def test_models_folder_is_the_data_dir_or_a_shared_one(tmp_path, app_factory, models_path, expect):
    """`kiportal models prepare` and every model loader use settings.models_dir: the data dir's
    `models` by default, the shared folder of `models_path` when set (one folder for all machines)."""
    llm = {"default": "x", "models": {"x": {"mode": "extractive"}}}
    app = app_factory(tmp_path / "data", models_path=models_path, llm=llm)
    folder = tmp_path / "data" / "models" if expect == "home" else Path(expect)
    assert app.settings.models_dir == folder
    assert app.e5_model_dir().parent == folder and app.e5_onnx_dir().parent == folder
    report = check_models(app.settings)  # missing, but hash embedder and extractive mode need no model
    assert report["ok"] and report["shared"] == bool(models_path)
    e5 = load_settings(tmp_path / "data", models_path=models_path, llm=llm)  # the default embedder needs one
    assert not check_models(e5)["ok"] and "models prepare" in check_models(e5)["error"]
