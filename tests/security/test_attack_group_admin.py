"""Group management (Ämter) in the Verwaltung tab, attacked over HTTP like every admin endpoint: a
staff user and a trainer create, list and remove groups through gradio's queue protocol by hand and
are refused in the handler, and nothing changes or is audited. The admin's own calls keep the rules:
a group in use stays, and a group created again under a removed name inherits nobody.
"""
from __future__ import annotations

import json

import pytest

from sec_client import audit, call, login

GROUP = "ordnungsamt-sec"


def _state(portal) -> tuple:
    dep = portal.ctx.app.departments
    return tuple(dep.known_groups), tuple((u["name"], tuple(u["groups"])) for u in portal.ctx.users.list())


@pytest.mark.parametrize("who", ["sam", "tina"])  # staff and trainer
def test_non_admins_cannot_create_list_or_remove_groups(pw_portal, who):
    dep = pw_portal.ctx.app.departments
    dep.create_group(GROUP, actor="test")
    try:
        before, audit_before = _state(pw_portal), len(audit(pw_portal, "group.*"))
        with login(pw_portal, who) as c:
            for api_name, data in (("admin_groups", []), ("admin_create_group", ["mallory-amt"]),
                                   ("admin_create_group", [None]), ("admin_remove_group", [GROUP]),
                                   ("admin_remove_group", [None])):
                result = call(c, pw_portal, api_name, data)
                assert result["join"] == 200 and result["success"] is False, (who, api_name, result)
                assert "Keine Berechtigung" in (result["error"] or ""), (api_name, result)
            quiet = call(c, pw_portal, "admin_group_choices", [])  # the page load: nothing, no error
            assert quiet["success"] and quiet["output"][0]["data"] == [], quiet
            assert GROUP not in json.dumps(quiet["output"])
            # giving oneself the created group: refused (by gradio's choices or the role check)
            taken = call(c, pw_portal, "admin_set_user_groups", [who, [GROUP]])
            assert taken["success"] is False, taken
        assert _state(pw_portal) == before and len(audit(pw_portal, "group.*")) == audit_before
        assert "mallory-amt" not in dep.known_groups
    finally:
        dep.remove_group(GROUP, actor="test")


def test_the_admin_over_http_keeps_a_group_in_use_and_a_new_one_inherits_nobody(pw_portal):
    dep = pw_portal.ctx.app.departments
    with login(pw_portal, "adam") as c:
        session = "groups-admin"
        made = call(c, pw_portal, "admin_create_group", [GROUP], session=session)
        assert made["success"] and "angelegt" in made["output"][0], made
        assert GROUP in json.dumps(made["output"][3])  # the users' group choices, updated in the answer
        dep.set_user_groups("sam", [GROUP], actor="adam")
        try:
            kept = call(c, pw_portal, "admin_remove_group", [GROUP], session=session)
            assert kept["success"] and "noch verwendet" in kept["output"][0] and "sam" in kept["output"][0], kept
            assert GROUP in dep.known_groups
        finally:
            dep.set_user_groups("sam", [], actor="adam")
        gone = call(c, pw_portal, "admin_remove_group", [GROUP], session=session)
        assert gone["success"] and "entfernt" in gone["output"][0], gone
        again = call(c, pw_portal, "admin_create_group", [GROUP], session=session)
        assert again["success"], again
    try:
        row = next(g for g in dep.groups() if g["name"] == GROUP)
        assert row["users"] == [] and row["collections"] == []  # nobody from before
    finally:
        dep.remove_group(GROUP, actor="test")
    trail = [(e["action"], e["actor"]) for e in audit(pw_portal, "group.*") if e["target"] == GROUP][:4]
    assert ("group.create", "adam") in trail and ("group.remove", "adam") in trail


class _ByIndex:
    """The portal with a fixed event (for the events without an API name: a submit, a tab select)."""

    def __init__(self, portal, index: int) -> None:
        self.url, self.index = portal.url, index

    def fn_index(self, _api_name: str) -> int:
        return self.index


GROUP_FNS = {"groups_table": [], "groups_on_load": [], "groups_table_on_load": [], "create_group": ["mallory-amt"],
             "remove_group": [GROUP]}


def test_staff_calling_every_group_event_by_index_gets_nothing(pw_portal):
    """Every event of the group forms, named or not (the name field's Enter, the tab selects)."""
    dep = pw_portal.ctx.app.departments
    fns = {i: fn for i, fn in pw_portal.server.demo.fns.items() if getattr(fn.fn, "__name__", "") in GROUP_FNS}
    assert {fn.fn.__name__ for fn in fns.values()} == set(GROUP_FNS)
    assert any(not fn.api_name or fn.api_name.startswith("false") for fn in fns.values())  # the unnamed ones too
    dep.create_group(GROUP, actor="test")
    try:
        before = _state(pw_portal)
        with login(pw_portal, "sam") as sam:
            for index, fn in fns.items():
                name = fn.fn.__name__
                result = call(sam, _ByIndex(pw_portal, index), name, GROUP_FNS[name])
                text = json.dumps(result, ensure_ascii=False)
                if name.endswith("on_load"):  # page load, tab select, after a change: quietly empty
                    assert result["success"] and result["output"][0]["data"] == [], (index, name, text)
                else:
                    assert result["success"] is False and "Keine Berechtigung" in text, (index, name, text)
                assert GROUP not in text.replace(json.dumps(GROUP_FNS[name]), ""), (index, name, text)
        assert _state(pw_portal) == before
    finally:
        dep.remove_group(GROUP, actor="test")
