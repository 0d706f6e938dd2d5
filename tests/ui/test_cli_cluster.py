"""`kiportal status` and the shared-store section of `kiportal doctor` (CliRunner; real servers
for the cluster cases), and `kiportal serve` refusing a cluster without its shared secret."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from assistant.settings import load_settings
from ui.cli import cli

SECRET = "c" * 64
PG = "postgresql+psycopg://kiportal@db.example:5432/kiportal"  # never connected: the rules read settings only


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")

    def invoke(*args, home: str = "data"):
        return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / home), *args], obj={})

    return invoke


def test_status_embedded(run):
    res = run("status")
    assert res.exit_code == 0, res.output
    assert "Einzelbetrieb" in res.output and "✓ App-Datenbank (sqlite)" in res.output
    assert "Portale und Worker" not in res.output  # nothing registers outside cluster mode
    data = json.loads(run("status", "--json").output)
    assert data["ok"] and not data["cluster"] and data["queue"] == {"queued": 0, "running": 0}


def test_status_and_doctor_fail_when_a_shared_store_is_away(run, monkeypatch):
    from servers import free_port

    port = free_port()  # nothing listens: a PostgreSQL and a Chroma server that are down
    monkeypatch.setenv("KIPORTAL_APP_DB_URL", f"postgresql+psycopg://kiportal@127.0.0.1:{port}/kiportal")
    monkeypatch.setenv("KIPORTAL_AUTH__SECRET", SECRET)
    monkeypatch.setenv("KIPORTAL_VECTOR__MODE", "chroma_http")
    monkeypatch.setenv("KIPORTAL_VECTOR__PORT", str(port))
    res = run("status")
    assert res.exit_code == 1
    assert "✗ App-Datenbank" in res.output and "nicht erreichbar" in res.output
    assert f"✗ Vektorindex (chroma_http): Chroma-Server 127.0.0.1:{port} nicht erreichbar" in res.output
    doc = run("doctor", "--no-repair", "--json")
    assert doc.exit_code == 1
    stores = json.loads(doc.output.splitlines()[0])["shared_stores"]
    assert [st["ok"] for st in stores] == [False, False]


def test_serve_refuses_a_cluster_without_secret(run, monkeypatch):
    monkeypatch.setenv("KIPORTAL_APP_DB_URL", "postgresql+psycopg://kiportal@127.0.0.1:1/kiportal")
    monkeypatch.setenv("KIPORTAL_AUTH__MODE", "password")
    res = run("serve", "--host", "0.0.0.0")
    assert res.exit_code != 0 and "auth.secret" in res.output and "Cluster" in res.output


@pytest.mark.parametrize("env, says", [
    ({}, "Cluster-Betrieb"),                                       # the embedded default: nothing to take jobs from
    ({"KIPORTAL_APP_DB_URL": PG}, "auth.secret"),                  # a cluster without its shared secret
])
def test_worker_refuses_before_it_names_a_database(run, monkeypatch, env, says):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    res = run("worker")
    assert res.exit_code != 0 and says in res.output, res.output
    assert "Aufträge aus" not in res.output  # no line that looks like a start


def test_serve_refuses_next_to_the_header_mode_check(tmp_path):
    """`kiportal serve` runs check_auth_mode before anything starts: the cluster rule is part of it."""
    from ui.portal import check_auth_mode

    settings = load_settings(tmp_path, app_db_url=PG, auth={"mode": "password"})
    with pytest.raises(RuntimeError, match="auth.secret"):
        check_auth_mode(settings, "0.0.0.0")
    check_auth_mode(load_settings(tmp_path, app_db_url=PG, auth={"mode": "password", "secret": SECRET}), "0.0.0.0")


def test_the_shared_cookie_name_follows_the_secret():
    from ui.portal import shared_cookie_id

    assert shared_cookie_id(b"s" * 32) == shared_cookie_id(b"s" * 32) != shared_cookie_id(b"t" * 32)


@pytest.mark.cluster
def test_status_and_doctor_on_real_servers(run, monkeypatch, pg_url, chroma_server, tmp_path):
    monkeypatch.setenv("KIPORTAL_APP_DB_URL", pg_url)
    monkeypatch.setenv("KIPORTAL_AUTH__SECRET", SECRET)
    monkeypatch.setenv("KIPORTAL_VECTOR__MODE", "chroma_http")
    monkeypatch.setenv("KIPORTAL_VECTOR__HOST", chroma_server.host)
    monkeypatch.setenv("KIPORTAL_VECTOR__PORT", str(chroma_server.port))
    monkeypatch.setenv("KIPORTAL_VECTOR__COLLECTION", f"cli_{tmp_path.name[-20:].replace('-', '_')}")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kantine.md").write_text("# Kantine\n\nDie Kantine öffnet um 11:30 Uhr.\n", encoding="utf-8")
    assert run("ingest", str(docs), "-c", "allgemein").exit_code == 0
    doc = run("doctor", "--no-repair", "--json")
    assert doc.exit_code == 0, doc.output
    doctor = json.loads(doc.output)
    assert doctor["queue"] == {"queued": 0, "running": 0} and doctor["nodes"] == []
    stores = {st["store"]: st for st in doctor["shared_stores"]}
    assert stores["app_db"]["backend"] == "postgresql" and stores["app_db"]["ok"]
    assert stores["vector"]["shared"] and stores["vector"]["chunks"] >= 1
    res = run("status", home="other-replica")  # any replica sees the same shared stores
    assert res.exit_code == 0, res.output
    assert "Cluster (PostgreSQL)" in res.output and "✓ App-Datenbank (postgresql)" in res.output
    assert "✓ Vektorindex (chroma_http)" in res.output and "Warteschlange: 0 wartend, 0 laufend" in res.output
    assert "Portale und Worker: 0 aktiv" in res.output
    data = json.loads(run("status", "--json").output)
    assert data["stores"][0]["migrated"] and data["stores"][0]["migrations"]["cluster"] == 1


def test_a_cli_write_that_lost_the_writer_lock_ends_with_a_sentence_not_a_traceback(monkeypatch, capsys):
    import ui.cli as cli_module
    from corpus.db import LockLost

    def lost(**_kw):
        raise LockLost("kiportal-writer")

    monkeypatch.setattr(cli_module, "cli", lost)
    with pytest.raises(SystemExit) as ended:
        cli_module.main()
    assert ended.value.code == 1
    err = capsys.readouterr().err
    assert "Schreibsperre" in err and "run it again" in err and "Traceback" not in err
