"""The department rule: who may read which collection (a pure function, tested as a table)."""
from __future__ import annotations

import sqlite3

import pytest

from assistant.access import (
    FULL, AccessError, Scope, check_groups, may_read, readable_collections, scope_for, split_groups,
)
from assistant.appdb import AppDB
from assistant.users import UserStore
from corpus.catalog import Catalog

COLLECTIONS = {
    "allgemein": ["alle"],
    "personal": ["personalamt"],
    "bau": ["bauamt"],
    "gemeinsam": ["bauamt", "personalamt"],
    "gesperrt": [],
}


@pytest.mark.parametrize("role, groups, expected", [
    ("staff", [], ["allgemein"]),
    ("staff", ["personalamt"], ["allgemein", "gemeinsam", "personal"]),
    ("staff", ["bauamt"], ["allgemein", "bau", "gemeinsam"]),
    ("staff", ["bauamt", "personalamt"], ["allgemein", "bau", "gemeinsam", "personal"]),
    ("trainer", ["bauamt"], ["allgemein", "bau", "gemeinsam"]),
    ("staff", ["unbekannt"], ["allgemein"]),
    ("staff", ["alle"], ["allgemein"]),  # 'alle' as a user's group opens nothing extra
    ("admin", [], ["allgemein", "bau", "gemeinsam", "gesperrt", "personal"]),
    ("gast", ["bauamt"], ["allgemein", "bau", "gemeinsam"]),
])
def test_readable_collections(role, groups, expected):
    assert readable_collections(role, groups, COLLECTIONS) == expected


@pytest.mark.parametrize("role, groups, readers, expected", [
    ("staff", [], ["alle"], True),
    ("staff", [], [], False),
    ("staff", ["bauamt"], ["personalamt"], False),
    ("staff", ["bauamt"], ["personalamt", "bauamt"], True),
    ("admin", [], [], True),
])
def test_may_read(role, groups, readers, expected):
    assert may_read(role, groups, readers) is expected


@pytest.mark.parametrize("scope, chosen, expected", [
    (FULL, None, None),
    (FULL, ["bau"], ["bau"]),
    (Scope(frozenset({"a", "b"})), None, ["a", "b"]),
    (Scope(frozenset({"a", "b"})), ["b", "c"], ["b"]),   # a crafted name outside the scope is dropped
    (Scope(frozenset({"a"})), ["c"], []),               # nothing left: nothing is searched, never everything
    (Scope(frozenset()), None, []),
])
def test_scope_restrict(scope, chosen, expected):
    assert scope.restrict(chosen) == expected


@pytest.mark.parametrize("names, allow_everyone, expected", [
    (["bauamt", "bauamt"], False, ["bauamt"]),
    (["alle", "bauamt"], True, ["alle", "bauamt"]),
])
def test_check_groups_accepts(names, allow_everyone, expected):
    assert check_groups(names, ["bauamt", "personalamt"], allow_everyone=allow_everyone) == expected


@pytest.mark.parametrize("names, allow_everyone, fragment", [
    (["kaemmerei"], False, "Unbekannte Gruppe"),
    (["Bau Amt"], False, "Ungültiger Gruppenname"),
    ([""], False, "Ungültiger Gruppenname"),
    (["alle"], False, "keine Gruppe"),
])
def test_check_groups_refuses(names, allow_everyone, fragment):
    with pytest.raises(AccessError, match=fragment):
        check_groups(names, ["bauamt", "personalamt"], allow_everyone=allow_everyone)


def test_split_groups():
    assert split_groups("a,b c") == ["a", "b", "c"]
    assert split_groups(["a", "b,c"]) == ["a", "b", "c"]
    assert split_groups(None) == []


def test_catalog_readers_default_and_explicit(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.ensure_collection("offen")
    restricted = Catalog(tmp_path / "c.sqlite3", new_collection_readers=["bauamt"])
    restricted.ensure_collection("bau")
    restricted.ensure_collection("personal", readers=["personalamt"])
    assert cat.collection_readers() == {"offen": ["alle"], "bau": ["bauamt"], "personal": ["personalamt"]}
    cat.set_collection_readers("bau", ["bauamt", "personalamt"])
    assert {c["name"]: c["readers"] for c in cat.collections()}["bau"] == ["bauamt", "personalamt"]
    with pytest.raises(KeyError):
        cat.set_collection_readers("fehlt", ["bauamt"])


def test_implicit_collection_of_an_ingest_gets_the_default_readers(tmp_path):
    from corpus.catalog import DocumentRecord

    cat = Catalog(tmp_path / "c.sqlite3", new_collection_readers=[])
    cat.commit_document(DocumentRecord(doc_id="d", source="d.txt", path="/x/d.txt", collection="neu",
                                       status="indexed"), [])
    assert cat.collection_readers() == {"neu": []}


def test_old_catalog_is_migrated_and_stays_readable_by_everyone(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '2'), ('generation', '7');
        CREATE TABLE collections (name TEXT PRIMARY KEY, classification TEXT NOT NULL DEFAULT 'intern',
                                  created_at REAL NOT NULL);
        INSERT INTO collections VALUES ('bestand', 'intern', 1.0);
    """)
    conn.commit()
    conn.close()
    cat = Catalog(path, new_collection_readers=["bauamt"])
    assert cat.collection_readers() == {"bestand": ["alle"]}
    assert cat.get_meta("schema_version") == "4" and cat.generation() == 7
    Catalog(path)  # migrating twice is harmless
    assert cat.collection_readers() == {"bestand": ["alle"]}


def test_scope_for_reads_the_catalog(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.ensure_collection("offen")
    cat.ensure_collection("bau", readers=["bauamt"])
    assert scope_for("staff", ["bauamt"], cat).collections == {"offen", "bau"}
    assert scope_for("staff", [], cat).collections == {"offen"}


def test_user_groups_stored_replaced_and_migrated(tmp_path):
    db = AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    # a database from before groups: only version 1 of the users table
    db.ensure_schema("users", ["CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, "
                               "role TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, last_login DOUBLE PRECISION)"])
    db.execute("INSERT INTO users VALUES ('alt', 'x', 'staff', 1.0, NULL)")
    users = UserStore(db)
    assert users.get("alt").groups == ()
    u = users.add("bea", "geheim123", "staff", ["personalamt", "bauamt", "bauamt"])
    assert u.groups == ("bauamt", "personalamt") == users.get("bea").groups
    assert users.verify("bea", "geheim123").groups == ("bauamt", "personalamt")
    assert users.set_groups("bea", ["bauamt"]) == ("bauamt",)
    assert {r["name"]: r["groups"] for r in users.list()} == {"alt": [], "bea": ["bauamt"]}
    with pytest.raises(KeyError):
        users.set_groups("niemand", ["bauamt"])
    users.remove("bea")
    assert db.query("SELECT * FROM user_groups") == []


@pytest.fixture
def departments(tmp_path):
    from assistant.access import Departments
    from assistant.audit import AuditLog
    from settings_factory import make_settings

    settings = make_settings(tmp_path / "data", access={"groups": ["bauamt", "personalamt"]})
    db = AppDB(settings.app_db)
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.ensure_collection("bau", readers=["bauamt"])
    cat.ensure_collection("offen")
    return Departments(cat, UserStore(db), AuditLog(db), settings)


def _last(dep, action):
    import json

    entry = dep.audit.entries(action=action)[0]
    return dict(entry, detail=json.loads(entry["detail"]))


def test_user_groups_are_checked_set_and_audited(departments):
    dep = departments
    dep.add_user("petra", "geheim123", "staff", ["personalamt"], actor="adam")
    assert dep.set_user_groups("petra", ["bauamt", "personalamt"], actor="adam") == ("bauamt", "personalamt")
    entry = _last(dep, "user_groups")
    assert entry["actor"] == "adam" and entry["target"] == "petra"
    assert entry["detail"] == {"before": ["personalamt"], "after": ["bauamt", "personalamt"]}
    with pytest.raises(AccessError, match="Unbekannte Gruppe"):
        dep.set_user_groups("petra", ["kaemmerei"], actor="adam")
    with pytest.raises(AccessError, match="gibt es nicht"):
        dep.set_user_groups("niemand", ["bauamt"], actor="adam")
    with pytest.raises(AccessError, match="Unbekannte Gruppe"):
        dep.add_user("karl", "geheim123", "staff", ["kaemmerei"], actor="adam")
    assert dep.users.get("karl") is None and dep.users.get("petra").groups == ("bauamt", "personalamt")


def test_grant_revoke_and_their_errors(departments):
    dep = departments
    assert dep.grant("bau", "personalamt", actor="adam") == ["bauamt", "personalamt"]
    assert _last(dep, "collection.grant")["detail"] == {
        "group": "personalamt", "before": ["bauamt"], "after": ["bauamt", "personalamt"]}
    with pytest.raises(AccessError, match="schon"):
        dep.grant("bau", "personalamt", actor="adam")
    with pytest.raises(AccessError, match="für alle lesbar"):
        dep.grant("offen", "bauamt", actor="adam")
    with pytest.raises(AccessError, match="Unbekannte Gruppe"):
        dep.grant("bau", "kaemmerei", actor="adam")
    with pytest.raises(AccessError, match="gibt es nicht"):
        dep.grant("fehlt", "bauamt", actor="adam")
    assert dep.revoke("bau", "bauamt", actor="adam") == ["personalamt"]
    with pytest.raises(AccessError, match="gar nicht"):
        dep.revoke("bau", "bauamt", actor="adam")
    assert dep.revoke("offen", "alle", actor="adam") == []
    assert dep.grant("offen", "alle", actor="adam") == ["alle"]
    assert dep.catalog.collection_readers() == {"bau": ["personalamt"], "offen": ["alle"]}


def test_show_lists_who_may_read(departments):
    dep = departments
    dep.add_user("bob", "geheim123", "staff", ["bauamt"], actor="adam")
    dep.add_user("nora", "geheim123", "staff", [], actor="adam")
    dep.add_user("adam", "geheim123", "admin", [], actor="adam")
    shown = dep.show("bau")
    assert shown["readers"] == ["bauamt"] and [u["name"] for u in shown["users"]] == ["adam", "bob"]
    assert [u["name"] for u in dep.show("offen")["users"]] == ["adam", "bob", "nora"]


def test_settings_refuse_default_readers_outside_the_groups(tmp_path):
    from settings_factory import make_settings

    with pytest.raises(Exception, match="access.groups"):
        make_settings(tmp_path, access={"groups": ["bauamt"], "new_collection_readers": ["kaemmerei"]})


MAP = {"/Personalamt": "personalamt", "/Bauamt": "bauamt", "bau-azure-id": "bauamt"}


@pytest.mark.parametrize("header, groups, ignored", [
    ("/Personalamt", ("personalamt",), []),
    ("/Bauamt, /Personalamt", ("bauamt", "personalamt"), []),
    ("/Bauamt,bau-azure-id", ("bauamt",), []),
    ("/Kaemmerei", (), ["/Kaemmerei"]),                      # unknown: ignored, grants nothing
    ("/Kaemmerei,/Bauamt", ("bauamt",), ["/Kaemmerei"]),
    ("personalamt", (), ["personalamt"]),                    # a kiportal name counts only when mapped
    ("", (), []),
    (None, (), []),
    (" , ", (), []),
])
def test_sso_groups(header, groups, ignored):
    from assistant.access import sso_groups

    assert sso_groups(header, MAP) == (groups, ignored)


def test_settings_refuse_a_group_map_to_unknown_groups(tmp_path):
    from settings_factory import make_settings

    with pytest.raises(Exception, match="group_map"):
        make_settings(tmp_path, access={"groups": ["bauamt"], "group_map": {"/X": "kaemmerei"}})


@pytest.mark.parametrize("selected, clicked, checked, readers", [
    (["alle", "bauamt"], "bauamt", True, ["bauamt"]),            # a group ticked beside "alle"
    (["bauamt", "personalamt", "alle"], "alle", True, ["alle"]),  # "alle" ticked beside groups
    (["bauamt", "personalamt"], "personalamt", True, ["bauamt", "personalamt"]),
    (["bauamt"], "personalamt", False, ["bauamt"]),             # unticking changes nothing else
    ([], "alle", False, []),
    # the ticks before the click, as gradio's form passes them
    (["alle"], "bauamt", True, ["bauamt"]),
    (["bauamt"], "personalamt", True, ["bauamt", "personalamt"]),
    (["bauamt", "personalamt"], "personalamt", False, ["bauamt"]),
    (["bauamt"], "alle", True, ["alle"]),
])
def test_exclusive_readers(selected, clicked, checked, readers):
    from assistant.access import exclusive_readers

    assert exclusive_readers(selected, clicked, checked) == readers
