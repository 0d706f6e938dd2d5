"""Departments on the command line (CliRunner, hash embedder): the admin commands with their errors,
and `--as USER` giving exactly that user's view, audited."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ui.cli import cli

DOCS = {
    "bauakten": ("gebuehren.md", "# Gebührenliste Bauamt\n\nDie Gebühr für eine Bauvoranfrage beträgt 312 Euro. "
                                 "Kennwort Maulwurfhuegel.\n"),
    "personalakten": ("homeoffice.md", "# Homeoffice\n\nDer Zuschlag für Homeoffice beträgt 47 Euro. "
                                       "Kennwort Kranichfeder.\n"),
    "allgemein": ("kantine.md", "# Kantine\n\nDie Kantine öffnet um 11:30 Uhr. Die Gebühr für Gäste beträgt 6 Euro.\n"),
}


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    monkeypatch.setenv("KIPORTAL_ACCESS__GROUPS", '["bauamt", "personalamt"]')

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], obj={}, input=input)

    return invoke


@pytest.fixture
def installed(run, tmp_path):
    assert run("collections", "create", "bauakten", "--groups", "bauamt").exit_code == 0
    res = run("collections", "create", "personalakten", "-k", "vertraulich", "--groups", "personalamt")
    assert res.exit_code == 0 and "lesen dürfen: personalamt" in res.output
    for coll, (name, text) in DOCS.items():
        folder = tmp_path / "docs" / coll
        folder.mkdir(parents=True)
        (folder / name).write_text(text, encoding="utf-8")
        res = run("ingest", str(folder), "-c", coll, "--json")
        assert res.exit_code == 0, res.output
    for name, groups in (("bob", ["bauamt"]), ("petra", ["personalamt"]), ("nora", [])):
        args = [a for g in groups for a in ("--group", g)]
        res = run("users", "add", name, *args, "--password-stdin", input="geheim-123\n")
        assert res.exit_code == 0, res.output
    return run


def _hits(run, *args) -> list[dict]:
    res = run("search", "--json", "-k", "10", *args)
    assert res.exit_code == 0, res.output
    return [h for line in res.output.splitlines() for h in json.loads(line)["hits"]]


def _audit(tmp_path, action: str) -> list[dict]:
    from assistant.appdb import AppDB

    return AppDB(f"sqlite:///{tmp_path / 'data' / 'app.sqlite3'}").query(
        "SELECT actor, target, detail FROM audit WHERE action = :a ORDER BY at", {"a": action})


def test_as_gives_exactly_the_users_view(installed, tmp_path):
    run = installed
    q = "Wie hoch ist die Gebühr für eine Bauvoranfrage?"
    full = _hits(run, q)
    assert {h["source"].rsplit("/", 1)[-1] for h in full} >= {"gebuehren.md"}  # the operator sees everything
    nora = _hits(run, "--as", "nora", q)
    assert nora and all("gebuehren" not in json.dumps(h) and "homeoffice" not in json.dumps(h) for h in nora)
    assert nora == _hits(run, "-c", "allgemein", q)  # exactly what her collections give
    bob = _hits(run, "--as", "bob", q)
    assert bob == _hits(run, "-c", "allgemein", "-c", "bauakten", q)
    assert "Maulwurfhuegel" in json.dumps(bob)
    # a crafted collection outside the scope adds nothing
    assert _hits(run, "--as", "nora", "-c", "bauakten", q) == []

    res = run("ask", "--as", "nora", "--model", "extraktiv", "--json", q)
    assert res.exit_code == 0, res.output
    answer = json.loads(res.output)
    assert "312" not in res.output and "Maulwurfhuegel" not in res.output
    assert all(c["collection"] == "allgemein" for c in answer["citations"])
    res = run("ask", "--as", "bob", "--model", "extraktiv", "--json", q)
    assert "312 Euro" in json.loads(res.output)["answer"]

    listed = [json.loads(line) for line in run("docs", "list", "--json", "--as", "nora").output.splitlines()]
    assert [d["collection"] for d in listed] == ["allgemein"]
    assert len(run("docs", "list", "--json").output.splitlines()) == 3

    audited = _audit(tmp_path, "as_user")
    assert [a["target"] for a in audited] == ["nora", "bob", "nora", "nora", "bob", "nora"]
    assert {json.loads(a["detail"])["command"] for a in audited} == {"search", "ask", "docs list"}
    assert all(a["actor"].startswith("cli") for a in audited)


def test_as_an_unknown_user_is_an_error(installed):
    res = installed("search", "--as", "niemand", "Gebühr")
    assert res.exit_code != 0 and "niemand" in res.output


def test_help_says_the_cli_reads_everything_without_as(run):
    for cmd in ("search", "ask"):
        out = " ".join(run(cmd, "--help").output.split())  # help text is wrapped
        assert "--as" in out and "volle Sicht" in out


def test_admin_commands_and_their_errors(installed, tmp_path):
    run = installed
    shown = json.loads(run("collections", "show", "bauakten", "--json").output)
    assert shown["readers"] == ["bauamt"] and [u["name"] for u in shown["users"]] == ["bob"]
    assert run("collections", "grant", "bauakten", "personalamt").exit_code == 0
    dup = run("collections", "grant", "bauakten", "personalamt")
    assert dup.exit_code != 0 and "schon" in dup.output
    for args, fragment in ((("grant", "bauakten", "kaemmerei"), "Unbekannte Gruppe"),
                           (("grant", "fehlt", "bauamt"), "gibt es nicht"),
                           (("grant", "bauakten", "Bau Amt"), "Ungültiger Gruppenname"),
                           (("grant", "allgemein", "bauamt"), "für alle lesbar"),
                           (("revoke", "bauakten", "alle"), "gar nicht"),
                           (("create", "neu", "--groups", "kaemmerei"), "Unbekannte Gruppe"),
                           (("create", "ne/u"), "")):
        res = run("collections", *args)
        assert res.exit_code != 0 and fragment in res.output, (args, res.output)
    assert run("collections", "revoke", "bauakten", "personalamt").exit_code == 0
    assert "lesen: bauamt" in run("collections", "list").output

    assert run("users", "groups", "nora", "bauamt").exit_code == 0
    assert [u["name"] for u in json.loads(run("collections", "show", "bauakten", "--json").output)["users"]] == \
        ["bob", "nora"]
    bad = run("users", "groups", "nora", "kaemmerei")
    assert bad.exit_code != 0 and "Unbekannte Gruppe" in bad.output
    assert run("users", "groups", "niemand", "bauamt").exit_code != 0
    assert run("users", "groups", "nora").exit_code == 0  # no groups: cleared
    bad = run("users", "add", "karl", "--group", "kaemmerei", "--password-stdin", input="geheim-123\n")
    assert bad.exit_code != 0 and "Unbekannte Gruppe" in bad.output
    assert "karl" not in run("users", "list").output
    changes = _audit(tmp_path, "user_groups")
    assert [json.loads(c["detail"]) for c in changes] == [{"before": [], "after": ["bauamt"]},
                                                          {"before": ["bauamt"], "after": []}]
    grant = _audit(tmp_path, "collection.grant")[0]
    assert json.loads(grant["detail"]) == {"group": "personalamt", "before": ["bauamt"],
                                           "after": ["bauamt", "personalamt"]}


def test_the_cli_keeps_the_last_admin_unless_forced(run):
    """The portal's rule on the command line: the last admin is neither removed nor demoted by a slip."""
    assert run("users", "add", "adam", "--role", "admin", "--password-stdin", input="geheim-123\n").exit_code == 0
    res = run("users", "remove", "adam")
    assert res.exit_code != 0 and "letzte Person mit der Rolle Administration" in res.output and "--force" in res.output
    res = run("users", "passwd", "adam", "--role", "staff", "--password-stdin", input="geheim-456\n")
    assert res.exit_code != 0 and "letzte Person" in res.output
    assert run("users", "add", "ada", "--role", "admin", "--password-stdin", input="geheim-123\n").exit_code == 0
    res = run("users", "passwd", "adam", "--role", "staff", "--password-stdin", input="geheim-456\n")
    assert res.exit_code == 0, res.output  # two admins: one may go
    assert run("users", "remove", "ada").exit_code != 0  # now the last one again
    res = run("users", "remove", "ada", "--force")
    assert res.exit_code == 0 and "gelöscht: ada" in res.output


@pytest.fixture
def groups_cmd():
    """`kiportal groups` (ui.cli_access.groups_cli), as ui/cli.py registers it."""
    from ui import cli_access

    assert cli.commands["groups"] is cli_access.groups_cli


def test_groups_are_created_used_and_removed_on_the_command_line(installed, groups_cmd, tmp_path):
    run = installed
    res = run("groups", "add", "ordnungsamt")
    assert res.exit_code == 0 and "angelegt: ordnungsamt" in res.output
    for name, fragment in (("ordnungsamt", "gibt es schon"), ("bauamt", "access.groups"), ("alle", "alle Benutzer"),
                           ("Ordnungsamt", "Ungültiger Gruppenname")):
        res = run("groups", "add", name)
        assert res.exit_code != 0 and fragment in res.output, (name, res.output)
    # known at once to the other commands
    res = run("users", "add", "olga", "--group", "ordnungsamt", "--password-stdin", input="geheim-123\n")
    assert res.exit_code == 0, res.output
    assert run("collections", "grant", "bauakten", "ordnungsamt").exit_code == 0
    listed = {r["name"]: r for r in map(json.loads, run("groups", "list", "--json").output.splitlines())}
    assert {n: r["source"] for n, r in listed.items()} == {"bauamt": "config", "ordnungsamt": "portal",
                                                           "personalamt": "config"}
    assert listed["ordnungsamt"]["users"] == ["olga"] and listed["ordnungsamt"]["collections"] == ["bauakten"]
    assert "3 Gruppen" in run("groups", "list").output

    res = run("groups", "remove", "ordnungsamt")
    assert res.exit_code != 0 and "noch verwendet" in res.output and "olga" in res.output and "bauakten" in res.output
    res = run("groups", "remove", "bauamt")
    assert res.exit_code != 0 and "nur dort entfernen" in res.output
    assert run("users", "groups", "olga").exit_code == 0
    assert run("collections", "revoke", "bauakten", "ordnungsamt").exit_code == 0
    res = run("groups", "remove", "ordnungsamt")
    assert res.exit_code == 0 and "entfernt: ordnungsamt" in res.output
    assert run("groups", "remove", "ordnungsamt").exit_code != 0
    bad = run("users", "groups", "olga", "ordnungsamt")
    assert bad.exit_code != 0 and "Unbekannte Gruppe" in bad.output
    assert [(a["target"], a["actor"].startswith("cli")) for a in _audit(tmp_path, "group.create")] == [
        ("ordnungsamt", True)]
    assert [a["target"] for a in _audit(tmp_path, "group.remove")] == ["ordnungsamt"]


def test_a_new_collection_may_name_a_created_group(run, groups_cmd):
    assert run("groups", "add", "ordnungsamt").exit_code == 0
    res = run("collections", "create", "ordnung", "--groups", "ordnungsamt")
    assert res.exit_code == 0 and "lesen dürfen: ordnungsamt" in res.output, res.output
