"""Groups (Ämter) created at run time: the name rule, create and remove with their refusals, the audit,
the app database's table on SQLite and PostgreSQL, and what the settings and header mode make of them."""
from __future__ import annotations

import json

import pytest
from settings_factory import make_settings

from assistant.access import AccessError, Departments, check_new_group_name
from assistant.appdb import AppDB
from assistant.audit import AuditLog
from assistant.users import GroupStore, UserStore
from corpus.catalog import Catalog

CONFIGURED = ["bauamt", "personalamt"]


@pytest.mark.parametrize("raw, name", [
    ("ordnungsamt", "ordnungsamt"),
    ("  standesamt ", "standesamt"),       # spaces around are dropped
    ("fb-3.2_jugend", "fb-3.2_jugend"),
    ("2b", "2b"),
    ("a" * 64, "a" * 64),
])
def test_a_new_group_name_is_accepted(raw, name):
    assert check_new_group_name(raw, CONFIGURED) == name


@pytest.mark.parametrize("raw, fragment", [
    ("", "Bitte einen Gruppennamen"),
    (None, "Bitte einen Gruppennamen"),
    ("   ", "Bitte einen Gruppennamen"),
    ("Ordnungsamt", "Ungültiger Gruppenname"),   # lower-case only, as in access.groups
    ("ordnungs amt", "Ungültiger Gruppenname"),
    ("ämter", "Ungültiger Gruppenname"),
    ("-amt", "Ungültiger Gruppenname"),
    (".amt", "Ungültiger Gruppenname"),
    ("amt/1", "Ungültiger Gruppenname"),
    ("<b>amt</b>", "Ungültiger Gruppenname"),
    ("a" * 65, "Ungültiger Gruppenname"),
    ("alle", "steht für alle Benutzer"),         # the everyone marker of a collection's readers
    ("bauamt", "gibt es schon"),
    (" bauamt ", "gibt es schon"),
])
def test_a_new_group_name_is_refused(raw, fragment):
    with pytest.raises(AccessError, match=fragment) as err:
        check_new_group_name(raw, CONFIGURED)
    assert " / " in str(err.value)  # German, then English


@pytest.fixture
def dep(any_db_url, tmp_path) -> Departments:
    """Departments on one database (SQLite file or PostgreSQL), app tables and catalog together as
    in a cluster; access.groups = bauamt, personalamt."""
    db = AppDB(any_db_url)
    catalog = Catalog(db.engine)
    catalog.ensure_collection("bau", readers=["bauamt"])
    catalog.ensure_collection("offen")
    return Departments(catalog, UserStore(db), AuditLog(db), make_settings(tmp_path / "data",
                                                                           access={"groups": CONFIGURED}))


def _audit(dep, action) -> list[tuple]:
    return [(e["actor"], e["target"], json.loads(e["detail"])) for e in dep.audit.entries(action=action)]


def test_a_created_group_is_known_assignable_and_removed_only_when_unused(dep):
    assert dep.known_groups == CONFIGURED
    assert dep.create_group(" ordnungsamt ", actor="adam") == "ordnungsamt"
    assert dep.known_groups == ["bauamt", "ordnungsamt", "personalamt"]
    # a second Departments (another process or replica) knows it at once
    other = Departments(dep.catalog, UserStore(dep.users.db), dep.audit, dep.settings)
    assert "ordnungsamt" in other.known_groups
    for name, fragment in (("ordnungsamt", "gibt es schon"), ("bauamt", "access.groups"), ("alle", "alle Benutzer"),
                           ("Ordnungsamt", "Ungültiger")):
        with pytest.raises(AccessError, match=fragment):
            dep.create_group(name, actor="adam")

    dep.add_user("olga", "geheim-123", "staff", ["ordnungsamt"], actor="adam")
    dep.grant("bau", "ordnungsamt", actor="adam")
    dep.set_readers("offen", ["ordnungsamt"], actor="adam")
    rows = {g["name"]: g for g in dep.groups()}
    assert rows["ordnungsamt"] | {"created_at": None} == {
        "name": "ordnungsamt", "source": "portal", "users": ["olga"], "collections": ["bau", "offen"],
        "created_at": None, "created_by": "adam"}
    assert rows["bauamt"]["source"] == "config" and rows["bauamt"]["collections"] == ["bau"]

    with pytest.raises(AccessError) as err:
        dep.remove_group("ordnungsamt", actor="adam")
    assert "noch verwendet" in str(err.value) and "Benutzer: olga" in str(err.value)
    assert "Sammlungen (Leserecht): bau, offen" in str(err.value)
    dep.set_user_groups("olga", [], actor="adam")
    dep.revoke("bau", "ordnungsamt", actor="adam")
    with pytest.raises(AccessError, match=r"Sammlungen \(Leserecht\): offen\)"):
        dep.remove_group("ordnungsamt", actor="adam")
    dep.set_readers("offen", ["alle"], actor="adam")
    assert dep.remove_group("ordnungsamt", actor="adam") == "ordnungsamt"
    assert dep.known_groups == CONFIGURED and "ordnungsamt" not in {g["name"] for g in dep.groups()}
    with pytest.raises(AccessError, match="Unbekannte Gruppe"):
        dep.set_user_groups("olga", ["ordnungsamt"], actor="adam")

    assert _audit(dep, "group.create") == [("adam", "ordnungsamt", {})]
    assert _audit(dep, "group.remove") == [("adam", "ordnungsamt", {})]


@pytest.mark.parametrize("name, fragment", [
    ("bauamt", "nur dort entfernen"),     # configured: only in the configuration, even unused
    ("personalamt", "nur dort entfernen"),
    ("kaemmerei", "gibt es nicht"),
    ("", "Bitte eine Gruppe"),
    (None, "Bitte eine Gruppe"),
])
def test_removal_refused(dep, name, fragment):
    with pytest.raises(AccessError, match=fragment):
        dep.remove_group(name, actor="adam")
    assert dep.audit.entries(action="group.*") == [] and dep.known_groups == CONFIGURED


def test_many_users_are_named_and_counted(dep):
    from argon2 import PasswordHasher

    dep.users._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # twelve accounts, quickly
    dep.create_group("ordnungsamt", actor="adam")
    for n in range(12):
        dep.add_user(f"u{n:02}", "geheim-123", "staff", ["ordnungsamt"], actor="adam")
    with pytest.raises(AccessError, match=r"Benutzer: u00, u01, .*u09 und 2 weitere\)"):
        dep.remove_group("ordnungsamt", actor="adam")


def test_the_group_table_migrates_once_beside_the_users(any_db_url):
    db = AppDB(any_db_url)
    UserStore(db)  # a database from before: users, no created groups
    store = GroupStore(db)
    assert store.add("ordnungsamt", "adam") and not store.add("ordnungsamt", "eve")
    GroupStore(AppDB(any_db_url))  # again, in another process: nothing runs twice, nothing is lost
    assert [(r["name"], r["created_by"]) for r in store.list()] == [("ordnungsamt", "adam")]
    assert db.query("SELECT version FROM schema_migrations WHERE component='groups'") == [{"version": 1}]
    assert store.remove("ordnungsamt") and not store.remove("ordnungsamt") and store.names() == []


# -- settings and header mode ------------------------------------------------------------------------
@pytest.mark.parametrize("groups", [["Bauamt"], ["bau amt"], ["alle"], [""], ["bauamt", "-x"]])
def test_settings_refuse_configured_group_names_the_portal_would_refuse(tmp_path, groups):
    with pytest.raises(Exception, match="access.groups: invalid group names"):
        make_settings(tmp_path, access={"groups": groups})


def test_settings_know_only_configured_groups_for_defaults_and_the_group_map(dep, tmp_path):
    """new_collection_readers and group_map are checked at start-up, before the database is open: a group
    created in the portal is refused there, whatever the database holds."""
    dep.create_group("ordnungsamt", actor="adam")
    for access in ({"new_collection_readers": ["ordnungsamt"]}, {"group_map": {"/Ordnungsamt": "ordnungsamt"}}):
        with pytest.raises(Exception, match="groups created in the portal do not count"):
            make_settings(tmp_path, access={"groups": CONFIGURED, **access})


class _Request:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.client = type("Client", (), {"host": "127.0.0.1"})()
        self.username = None


def test_header_mode_users_get_a_created_group_through_their_stored_groups(dep, tmp_path):
    """Without access.group_map the stored groups count in header mode: a created group works there.
    With it, the header's mapped (configured) groups replace them, so a created group grants nothing."""
    from ui.security import resolve_user

    auth = {"mode": "header", "trusted_proxies": ["127.0.0.1"], "groups_header": "X-Forwarded-Groups"}
    dep.create_group("ordnungsamt", actor="adam")
    dep.add_user("olga", "geheim-123", "staff", ["ordnungsamt"], actor="adam")
    headers = {"X-Remote-User": "olga", "X-Forwarded-Groups": "/Bauamt,/Ordnungsamt"}
    plain = make_settings(tmp_path / "a", auth=auth, access={"groups": CONFIGURED})
    assert resolve_user(_Request(headers), plain, dep.users).groups == ("ordnungsamt",)
    mapped = make_settings(tmp_path / "b", auth=auth, access={"groups": CONFIGURED, "group_map": {"/Bauamt": "bauamt"}})
    assert resolve_user(_Request(headers), mapped, dep.users).groups == ("bauamt",)
