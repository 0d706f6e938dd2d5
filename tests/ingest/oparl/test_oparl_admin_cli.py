"""OParl through the front doors: `kiportal oparl sync`, `docs list --json`, and the admin's
sources with background jobs and audit entries (hash embedder, the real test server)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ui.cli import cli

FAST = {"timeout_s": 0.4, "retries": 1, "backoff_s": 0.01, "max_file_bytes": 1024 * 1024}


def test_cli_sync_then_docs_list_json_carries_the_oparl_metadata(tmp_path, monkeypatch, oparl_server):
    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    monkeypatch.setenv("KIPORTAL_VECTOR__MODE", "memory")
    monkeypatch.setenv("KIPORTAL_LIMITS__LOAD_TIMEOUT_S", "0")  # read in-process: the worker is tested elsewhere
    for key, value in FAST.items():
        monkeypatch.setenv(f"KIPORTAL_OPARL__{key.upper()}", str(value))

    def run(*args):
        return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], obj={})

    res = run("oparl", "sync", oparl_server.system_url, "--collection", "rat", "--json")
    assert res.exit_code == 1, res.output  # two papers failed: said, and the rest imported
    report = json.loads(res.stdout)
    assert report["imported"] == 6 and report["collection"] == "rat" and len(report["failed"]) == 2

    res = run("docs", "list", "--json")
    assert res.exit_code == 0, res.output
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    vorlage = next(d for d in docs if d["meta"].get("reference") == "2025/117" and d["meta"]["file_role"] == "mainFile")
    assert vorlage["title"] == "Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne im Stadtgebiet"
    assert vorlage["meta"]["body"] == "Stadt Musterstadt" and vorlage["meta"]["paper_type"] == "Beschlussvorlage"
    assert vorlage["original_name"] == "vorlage-2025-117.pdf" and vorlage["collection"] == "rat"
    protocol = next(d for d in docs if d["meta"].get("file_role") == "resultsProtocol")
    assert protocol["meta"]["meeting_date"] == "2025-03-04T18:00:00+01:00"

    res = run("oparl", "sync", oparl_server.system_url, "--collection", "rat")
    assert res.exit_code == 1 and "Stadt Musterstadt (Änderungen seit " in res.stdout
    assert "✗ Drucksache 2025/119 (Mitteilungsvorlage)" in res.stdout and "Fotodokumentation" in res.stdout
    res = run("audit", "export", "--action", "oparl.sync")
    assert res.stdout.count("oparl.sync") == 2

    res = run("oparl", "sync", "file:///etc/passwd")
    assert res.exit_code == 1 and "nur http(s) erlaubt" in res.output

    res = run("oparl", "sources", "add", oparl_server.system_url, "-c", "rat", "--interval", "12")
    assert res.exit_code == 0 and "→ rat" in res.stdout
    res = run("oparl", "sources", "add", oparl_server.system_url)
    assert res.exit_code == 1 and "schon eingetragen" in res.output
    res = run("oparl", "sources", "list", "--json")
    (src,) = [json.loads(line) for line in res.stdout.splitlines()]
    assert src["url"] == oparl_server.system_url and src["interval_hours"] == 12
    res = run("oparl", "sources", "remove", src["id"][:8])
    assert res.exit_code == 0 and run("oparl", "sources", "list").stdout.strip() == "0 Quellen"
    res = run("audit", "export", "--action", "oparl.source.*")
    assert res.stdout.count("oparl.source.add") == 1 and res.stdout.count("oparl.source.remove") == 1


@pytest.fixture
def admin(oparl_app):
    adm = oparl_app.start_jobs(workers=1)
    yield adm
    oparl_app.stop_jobs()


def test_admin_sources_jobs_schedule_and_audit(admin, oparl_server):
    from assistant.admin import AdminError

    src = admin.oparl.add_source(oparl_server.system_url, "rat", 6, "adam")
    for bad, why in (("file:///etc/passwd", "nur http"), (oparl_server.system_url, "schon eingetragen"),
                     ("https://ris.example.org/oparl", "Intervall")):
        with pytest.raises(AdminError, match=why):
            admin.oparl.add_source(bad, "rat", 99999 if why == "Intervall" else 1, "adam")
    assert [s["id"] for s in admin.oparl.due()] == [src["id"]]  # never ran: due now

    job = admin.oparl.submit_sync(src["id"], "adam")
    done = admin.jobs.wait(job, timeout=120)
    assert done["status"] == "done" and done["kind"] == "oparl" and done["collection"] == "rat"
    assert done["result"]["imported"] == 6 and "6 Vorgänge importiert" in done["message"]
    row = admin.oparl.source(src["id"])
    assert row["last_status"] == "with_errors" and "2 Fehler" in row["last_message"]
    assert admin.oparl.due() == []  # ran just now, interval 6 h
    assert [s["id"] for s in admin.oparl.due(at=row["last_run_at"] + 6 * 3600)] == [src["id"]]
    assert admin.oparl.submit_due() == []
    # a second source (the body itself) was never run: the scheduler submits it, once
    body = admin.oparl.add_source(oparl_server.base + "/oparl/v1/body/1", "rat", 1, "adam")
    (scheduled,) = admin.oparl.submit_due()
    assert admin.jobs.wait(scheduled, timeout=120)["status"] == "done"
    assert admin.jobs.get(scheduled)["actor"] == "system:oparl"
    assert admin.oparl.source(body["id"])["last_status"] == "with_errors" and admin.oparl.due() == []

    entries = admin.audit.entries(actor="adam")
    assert {"oparl.source.add", "oparl.sync"} <= {e["action"] for e in entries}
    sync_entry = next(e for e in entries if e["action"] == "oparl.sync")
    assert json.loads(sync_entry["detail"])["imported"] == 6
    admin.oparl.remove_source(src["id"], "adam")
    assert [s["id"] for s in admin.oparl.sources()] == [body["id"]]
    assert len(admin.catalog.documents()) == 9  # documents stay
