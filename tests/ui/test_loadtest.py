from __future__ import annotations

import time
from pathlib import Path

import pytest

from ui.context import PortalContext
from ui.loadtest import run_load

DEMO = Path(__file__).resolve().parents[2] / "corpus" / "demo" / "files"


@pytest.mark.integration
def test_simultaneous_users_all_get_answers(hash_app, monkeypatch):
    hash_app.ingestor.ingest([DEMO], collection="demo")
    # an extractive answer takes milliseconds: given a model's half second, the users' questions
    # overlap for certain, and the queue positions below are shown (a full run once saw none)
    from assistant.chain import Assistant

    stream = Assistant.stream

    def slow_stream(self, *args, **kwargs):
        time.sleep(0.5)
        yield from stream(self, *args, **kwargs)

    monkeypatch.setattr(Assistant, "stream", slow_stream)
    report = run_load(PortalContext(hash_app), users=4, per_user=2, time_limit_s=240)
    assert report["errors"] == [] and report["answered"] == report["requests"] == 8
    assert report["latency_p95_ms"] >= report["latency_p50_ms"] > 0
    # one answer at a time (server.concurrency = 1): the others were shown their place in the queue
    assert report["users_who_saw_a_queue_position"] >= 1


def test_load_test_refuses_password_mode(hash_app):
    hash_app.settings.auth.mode = "password"
    with pytest.raises(ValueError, match="auth.mode"):
        run_load(PortalContext(hash_app), users=1, per_user=1)


@pytest.mark.integration
def test_loadtest_command_runs_end_to_end(tmp_path, monkeypatch):
    """The `kiportal loadtest` command itself (CI runs it): builds the portal, asks, reports JSON."""
    import json

    from click.testing import CliRunner

    from ui.cli import cli

    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    data = str(tmp_path / "data")
    res = CliRunner().invoke(cli, ["--data-dir", data, "ingest", str(DEMO), "--collection", "demo", "--json"], obj={})
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["--data-dir", data, "loadtest", "--users", "2", "--per-user", "1", "--json"], obj={})
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["answered"] == report["requests"] == 2 and report["errors"] == []


def test_summary_counts_answers_per_portal():
    """Several portals (cluster replicas): the report says how many answers each gave."""
    from ui.loadtest import summarize

    rows = [{"user": n, "url": "http://a/" if n % 2 == 0 else "http://b/", "ok": n != 3, "latency_ms": 10.0 + n,
             "max_queue_rank": 0, "error": None if n != 3 else "TimeoutError: x"} for n in range(4)]
    report = summarize(rows, users=4, per_user=1, model="extraktiv", urls=["http://a/", "http://b/"], wall_s=1.23)
    assert report["answered"] == 3 and report["requests"] == 4 and report["errors"] == ["TimeoutError: x"]
    assert report["answered_per_url"] == {"http://a/": 2, "http://b/": 1} and report["wall_s"] == 1.2


def test_loadtest_user_needs_url():
    from click.testing import CliRunner

    from ui.cli import cli

    res = CliRunner().invoke(cli, ["loadtest", "--user", "anna"], obj={})
    assert res.exit_code != 0 and "--url" in res.output
