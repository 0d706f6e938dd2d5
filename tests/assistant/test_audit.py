"""Audit log: filters, CSV export, retention purge, question privacy modes, CLI."""
from __future__ import annotations

import csv
import io
import json
import time

import pytest
from click.testing import CliRunner

from assistant.appdb import AppDB
from assistant.audit import AuditLog


@pytest.fixture
def db(tmp_path):
    return AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")


def _age(db, days: float, **where) -> None:
    """Move matching entries ``days`` into the past."""
    sql = "UPDATE audit SET at = at - :d"
    if where:
        sql += " WHERE " + " AND ".join(f"{k}=:{k}" for k in where)
    db.execute(sql, {"d": days * 86400, **where})


def test_filters(db):
    log = AuditLog(db)
    log.record("upload", "anna", "Bericht 100% fertig.pdf", {"collection": "Bauamt"})
    log.record("delete", "ben", "alt.pdf", {"doc_id": "abc"})
    log.record("collection.create", "anna", "Kultur", {"classification": "intern"})
    log.record("collection.rename", "ben", "Kultur", {"to": "Kulturamt"})
    _age(db, 10, action="upload")

    assert [e["action"] for e in log.entries(action="delete")] == ["delete"]
    assert {e["action"] for e in log.entries(action="collection.*")} == {"collection.create", "collection.rename"}
    assert {e["actor"] for e in log.entries(actor="anna")} == {"anna"}
    assert [e["action"] for e in log.entries(since=time.time() - 86400, actor="anna")] == ["collection.create"]
    assert [e["action"] for e in log.entries(until=time.time() - 86400)] == ["upload"]
    assert [e["action"] for e in log.entries(text="KULTURAMT")] == ["collection.rename"]   # detail, any case
    assert [e["target"] for e in log.entries(text="100%")] == ["Bericht 100% fertig.pdf"]  # % is literal
    assert log.entries(text="1_0") == []                                                    # _ is literal
    assert log.count(actor="ben") == 2 and log.count() == 4
    assert log.actions() == sorted(["upload", "delete", "collection.create", "collection.rename"])
    assert log.entries(limit=2, offset=0)[0]["action"] != "upload"  # newest first
    assert len(log.entries(limit=2, offset=2)) == 2


def test_csv_export_is_spreadsheet_safe(db):
    log = AuditLog(db, log_questions="full")
    log.record("upload", "anna", "a;b \"c\".pdf", {"x": 1})
    log.record_question("ben", "=HYPERLINK(\"http://evil\")", {"refused": True})
    text = log.export_csv()
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0] == ["zeit", "akteur", "aktion", "ziel", "details"]
    assert rows[1][1:4] == ["anna", "upload", "a;b \"c\".pdf"] and json.loads(rows[1][4]) == {"x": 1}
    assert rows[2][3].startswith("'=")  # formula neutralised
    only = list(csv.reader(io.StringIO(log.export_csv(action="upload")), delimiter=";"))
    assert len(only) == 2


def test_purge_respects_retention_and_logs_itself(db):
    log = AuditLog(db, retention_days=30)
    for n in range(5):
        log.record("upload", "anna", f"old{n}")
    _age(db, 31)
    log.record("upload", "anna", "new")
    assert log.purge() == 5
    left = log.entries()
    assert {e["target"] for e in left} == {"new", ""}
    purge = log.entries(action="audit.purge")[0]
    assert json.loads(purge["detail"])["deleted"] == 5
    assert log.purge() == 0 and log.count(action="audit.purge") == 1  # nothing to do: not logged again
    assert log.purge(0) == 0 and log.purge(-1) == 0  # 0 = retention off
    _age(db, 2)
    assert log.purge(1) == 2


def test_question_modes(db):
    off = AuditLog(db, log_questions="off")
    off.record_question("anna", "Wie hoch ist die Hundesteuer?")
    assert off.entries(action="question") == []
    pseudo = AuditLog(db, log_questions="pseudonymised", secret="s")
    pseudo.record_question("anna", "Frage 1", {"refused": False, "latency_ms": 10})
    full = AuditLog(db, log_questions="full")
    full.record_question("anna", "Frage 2")
    rows = {e["target"]: e["actor"] for e in full.entries(action="question")}
    assert rows["Frage 2"] == "anna"
    assert rows["Frage 1"].startswith("u-") and rows["Frage 1"] != "anna"
    assert rows["Frage 1"] == pseudo.pseudonym("anna") != AuditLog(db, secret="t").pseudonym("anna")


def test_from_settings(tmp_path, db):
    from settings_factory import make_settings

    s = make_settings(tmp_path / "data", privacy={"log_questions": "off", "retention_days": 7})
    log = AuditLog.from_settings(db, s)
    assert log.retention_days == 7 and log.log_questions == "off"


def test_cli_export_and_purge(tmp_path, monkeypatch):
    from ui.cli import cli

    home = tmp_path / "data"
    monkeypatch.setenv("KIPORTAL_HOME", str(home))
    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    monkeypatch.setenv("KIPORTAL_PRIVACY__RETENTION_DAYS", "30")
    runner = CliRunner()
    r = runner.invoke(cli, ["collections", "create", "Bauamt", "--classification", "vertraulich"], obj={})
    assert r.exit_code == 0, r.output
    db = AppDB(f"sqlite:///{home / 'app.sqlite3'}")
    log = AuditLog(db)
    log.record("upload", "anna", "alt.pdf")
    _age(db, 40, target="alt.pdf")

    out = tmp_path / "audit.csv"
    r = runner.invoke(cli, ["audit", "export", "--out", str(out), "--since", "7"], obj={})
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(out.open(encoding="utf-8"), delimiter=";"))
    assert [row[2] for row in rows[1:]] == ["collection.create"]
    assert rows[1][1].startswith("cli:")

    r = runner.invoke(cli, ["audit", "purge", "--json"], obj={})
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1]) == {"deleted": 1, "days": 30}
    assert log.entries(text="alt.pdf") == []
    assert log.count(action="audit.export") == 1


@pytest.mark.parametrize("value, kept", [
    ("sabine.staff", "sabine.staff"),
    ("Grünflächenamt – Öffnungszeiten", "Grünflächenamt – Öffnungszeiten"),
    ("\x1b[2J\x1b]0;owned\x07", "\\u001b[2J\\u001b]0;owned\\u0007"),  # terminal escapes: written out
    ("a\nb\r\nc\td", "a b  c d"),                                        # one line
    ("x\u202egnp.exe", "x\\u202egnp.exe"),                               # a bidi override
    ("null\x00byte\x7f\x85", "null\\u0000byte\\u007f\\u0085"),
])
def test_one_line(value, kept):
    from assistant.audit import one_line

    assert one_line(value) == kept


def test_entries_keep_no_control_characters_and_their_details_stay_json(db):
    """Found by an attacker's probe: login names with ESC[2J reached `kiportal audit export` raw and
    cleared the operator's screen; a newline forged a line."""
    log = AuditLog(db)
    log.record("login_failed", "mallory\x1b[2J\nzeit;akteur", "ziel\x1b]0;x\x07", {"name": "m\x85\u2028x"})
    (entry,) = log.entries(action="login_failed")
    assert "\x1b" not in entry["actor"] + entry["target"] and "\n" not in entry["actor"]
    assert json.loads(entry["detail"]) == {"name": "m\x85\u2028x"}  # the same value, escaped in the JSON
    exported = log.export_csv(action="login_failed")
    assert not any(ch in exported for ch in "\x1b\x07\x85\u2028") and exported.count("\n") == 2
    db.execute("INSERT INTO audit(id, at, actor, action, target, detail) VALUES ('alt', 1, :a, 'login', '', '{}')",
               {"a": "vorher\x1b[2J"})  # a row written before the escaping
    assert "\x1b" not in log.export_csv(action="login")


def test_a_formula_behind_spaces_or_a_tab_stays_text_in_the_csv(db):
    log = AuditLog(db)
    for value in ("=HYPERLINK(1)", "  =HYPERLINK(2)", "\t=HYPERLINK(3)"):
        log.record("question", "anna", value)
    rows = list(csv.reader(io.StringIO(log.export_csv(action="question")), delimiter=";"))[1:]
    assert all(r[3].startswith("'") for r in rows), rows
