"""Attack: department groups from the SSO proxy's group header, over real HTTP (issue 15).

tests/ui/test_security_groups.py proves the rules on ``resolve_user`` alone; here the same rules
are sent as the proxy (or someone pretending to be it) sends them, to a running portal in header
mode (``sso_portal``): ``X-Forwarded-Groups`` with Keycloak's group paths, mapped by
``access.group_map`` (/Personalamt → personalamt, /Bauamt → bauamt). Each department's collection
holds a code word; the markers of tests/departments.py (``DeptPortal``: document id, file name,
title, code word, pieces of every passage) must never reach someone the header does not put in
that department. Every refusal test also has its positive twin, so a door that shows nothing at
all cannot pass.
"""
from __future__ import annotations

import json
import re
import time

import pytest

from departments import DEPT_QUESTIONS, DeptPortal
from sec_client import audit, call, proxy

pytestmark = pytest.mark.integration

Q_BAU, Q_PERS = DEPT_QUESTIONS["bauakten"], DEPT_QUESTIONS["personalakten"]
REFUSAL = "keine Informationen"
GROUPS = "X-Forwarded-Groups"
NOT_SENT = object()  # the groups header missing altogether (not merely empty)


@pytest.fixture(scope="module")
def dept(sso_portal):
    """Leak markers of the portal's department collections (tests/departments.py)."""
    assert sso_portal.ctx.app.settings.auth.groups_header == GROUPS
    return DeptPortal(sso_portal.url, sso_portal.ctx, sso_portal.server)


def sso(portal, user: str, groups=NOT_SENT, **kwargs):
    """A client as the proxy sends it: user header, proxy secret and (unless NOT_SENT) the groups."""
    extra = {} if groups is NOT_SENT else {GROUPS: groups}
    return proxy(portal, user, extra={**extra, **kwargs.pop("extra", {})}, **kwargs)


def page_load(c, portal) -> tuple[str, list[str]]:
    """The page load (``session``) in a fresh tab: (tab session hash, the collection filter's choices)."""
    tab = f"tab{time.monotonic_ns()}"
    result = call(c, portal, "session", [], session=tab)
    assert result["success"], result
    update = result["output"][2]
    return tab, [choice[1] if isinstance(choice, (list, tuple)) else choice for choice in update["choices"]]


def ask(c, portal, question: str, collections=(), tab: str | None = None) -> dict:
    return call(c, portal, "ask", [question, None, "extraktiv", list(collections)], session=tab)


def answer(result: dict) -> str:
    """An answer call's whole output as one string (messages, sources, links)."""
    assert result["success"], result
    return json.dumps(result["output"], ensure_ascii=False)


def doc_links(text: str, doc_id: str) -> list[str]:
    """The document links to ``doc_id`` in an answer (JSON-escaped HTML)."""
    hrefs = re.findall(r'href=\\"([^"\\]+)\\"', text)
    return [h.replace("&amp;", "&").split("#", 1)[0] for h in hrefs if doc_id in h]


# -- mapping -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("user", ["bob", "neu"])  # stored in bauamt; known only to the proxy
def test_a_mapped_group_reads_its_department_and_nothing_else(sso_portal, dept, user):
    with sso(sso_portal, user, "/Bauamt") as c:
        tab, choices = page_load(c, sso_portal)
        assert choices == ["allgemein", "bauakten"]
        mine = answer(ask(c, sso_portal, Q_BAU, tab=tab))
        assert "312 Euro" in mine and dept.leaks("bauakten", mine, typed=Q_BAU), mine[:500]
        other = answer(ask(c, sso_portal, Q_PERS, tab=tab))
        assert REFUSAL in other
        assert dept.leaks("personalakten", other, typed=Q_PERS) == []
        assert dept.leaks("personalakten", mine, typed=Q_BAU) == []


def test_two_mapped_groups_read_both_departments(sso_portal, dept):
    with sso(sso_portal, "neu", "/Personalamt, /Bauamt") as c:
        tab, choices = page_load(c, sso_portal)
        assert choices == ["allgemein", "bauakten", "personalakten"]
        assert "47 Euro" in answer(ask(c, sso_portal, Q_PERS, tab=tab))


def test_the_header_replaces_the_stored_groups(sso_portal, dept):
    """petra is stored in personalamt; the identity provider now says /Bauamt: bauamt only."""
    assert sso_portal.ctx.users.get("petra").groups == ("personalamt",)
    with sso(sso_portal, "petra", "/Bauamt") as c:
        tab, choices = page_load(c, sso_portal)
        assert choices == ["allgemein", "bauakten"]
        assert "312 Euro" in answer(ask(c, sso_portal, Q_BAU, tab=tab))
        stored = ask(c, sso_portal, Q_PERS, tab=tab)
        assert REFUSAL in answer(stored)
        assert dept.leaks("personalakten", answer(stored), typed=Q_PERS) == []
    assert sso_portal.ctx.users.get("petra").groups == ("personalamt",)  # the database stays as it was
    with sso(sso_portal, "petra", "/Personalamt") as c:  # positive twin: the same user, the stored group
        assert "47 Euro" in answer(ask(c, sso_portal, Q_PERS))


# -- nothing for unknown, empty, missing or misplaced groups -------------------------------------------------
@pytest.mark.parametrize("groups", [
    "/Kaemmerei",              # unknown to group_map
    "bauamt",                  # the kiportal name itself is no SSO group
    "/personalamt",            # the mapping is exact, not case-insensitive
    "/Personalamt/Sachgebiet", # a subgroup path is another group
    "/Personalamt;/Bauamt",    # one entry (the separator is the comma), unmapped
    "kiportal-trainer",        # a role group is no department
    "",                        # empty header: no groups, not the stored ones
    ",, ,",                    # only separators
    NOT_SENT,                  # header missing
], ids=lambda g: "missing" if g is NOT_SENT else repr(g))
def test_no_mapped_group_gives_no_department(sso_portal, dept, groups):
    """petra is stored in personalamt: without a mapped group in the header she reads only ``alle``."""
    with sso(sso_portal, "petra", groups) as c:
        tab, choices = page_load(c, sso_portal)
        assert choices == ["allgemein"]  # only the collections for everyone
        result = answer(ask(c, sso_portal, Q_PERS, tab=tab))
    assert REFUSAL in result
    assert dept.leaks("personalakten", result, typed=Q_PERS) == [] and dept.leaks("bauakten", result) == []


@pytest.mark.parametrize("groups", ["", NOT_SENT], ids=["empty", "missing"])
@pytest.mark.parametrize("user", ["bob", "neu"])  # stored in bauamt; known only to the proxy
def test_without_groups_another_user_reads_no_department_either(sso_portal, dept, user, groups):
    with sso(sso_portal, user, groups) as c:
        tab, choices = page_load(c, sso_portal)
        assert choices == ["allgemein"]
        result = answer(ask(c, sso_portal, Q_BAU, tab=tab))
    assert REFUSAL in result and dept.leaks("bauakten", result, typed=Q_BAU) == []


def test_groups_in_another_header_count_for_nothing(sso_portal, dept):
    """Only ``auth.groups_header`` is read: the role-mode header name or a look-alike carries nothing."""
    extra = {"X-Remote-Groups": "/Bauamt", "X-Forwarded-Group": "/Bauamt", "X-Auth-Request-Groups": "/Bauamt"}
    with sso(sso_portal, "bob", extra=extra) as c:
        tab, choices = page_load(c, sso_portal)
        assert choices == ["allgemein"]
        assert dept.leaks("bauakten", answer(ask(c, sso_portal, Q_BAU, tab=tab)), typed=Q_BAU) == []


def test_a_crafted_collection_outside_the_header_groups_is_refused(sso_portal, dept):
    """A user the header puts in personalamt names bauakten (stored in bauamt, too): refused like a
    collection that does not exist."""
    with sso(sso_portal, "bob", "/Personalamt") as c:
        tab, _ = page_load(c, sso_portal)
        crafted = ask(c, sso_portal, Q_BAU, ["bauakten"], tab=tab)
        unknown = ask(c, sso_portal, Q_BAU, ["gibt-es-nicht"], tab=tab)
    assert crafted["success"] is False and unknown["success"] is False
    assert dept.leaks("bauakten", json.dumps(crafted), typed=Q_BAU + " bauakten") == []
    assert (crafted["error"] or "").replace("bauakten", "X") == (unknown["error"] or "").replace("gibt-es-nicht", "X")


# -- links and the trainer's search follow the header of each request -------------------------------------
def test_a_document_link_closes_when_the_header_drops_the_group(sso_portal, dept):
    rec = dept.doc_of("bauakten")
    with sso(sso_portal, "bob", "/Bauamt") as c:
        links = doc_links(answer(ask(c, sso_portal, Q_BAU)), rec.doc_id)
        assert links
        r = c.get(links[0])
        assert r.status_code in (200, 303) and (r.status_code == 303 or "312 Euro" in r.text)
    for groups in ("/Personalamt", "", NOT_SENT):  # the same user, the next request, another header
        with sso(sso_portal, "bob", groups) as c:
            r = c.get(links[0])
            assert r.status_code == 403 and "Kein Zugriff" in r.text
            assert dept.leaks("bauakten", r.text) == [] and dept.leaks("bauakten", dict(r.headers)) == []


@pytest.mark.parametrize("groups, sees", [("/Personalamt,kiportal-trainer", False), ("/Bauamt,kiportal-trainer", True)])
def test_the_trainers_search_follows_the_header_groups(sso_portal, dept, groups, sees):
    with sso(sso_portal, "trainerin", groups) as c:
        result = call(c, sso_portal, "trainer_inspect", [Q_BAU, "extraktiv", [], 4, 1000, True, None, False])
    assert result["success"], result
    assert bool(dept.leaks("bauakten", json.dumps(result["output"], ensure_ascii=False), typed=Q_BAU)) is sees


def test_the_proxys_forwarded_for_header_locks_nobody_out(sso_portal, dept):
    """oauth2-proxy (like nginx) adds X-Forwarded-For with the browser's address; the identity is
    still vouched for by the proxy's own address, so the header must not turn it into an outsider."""
    with sso(sso_portal, "bob", "/Bauamt", extra={"X-Forwarded-For": "10.20.30.40"}) as c:
        assert c.get("config").status_code == 200
        tab, choices = page_load(c, sso_portal)
        assert choices == ["allgemein", "bauakten"]
        assert "312 Euro" in answer(ask(c, sso_portal, Q_BAU, tab=tab))


# -- the group header from someone who is not the proxy -----------------------------------------------------
SPOOFS = {  # how the headers are sent: (client arguments, the refusal reason the audit names)
    "untrusted-address": (dict(source="127.0.0.1"), "untrusted_address"),  # the right secret, the wrong sender
    "no-secret": (dict(secret=None), "proxy_secret_missing"),
    "wrong-secret": (dict(secret="geraten"), "proxy_secret_wrong"),
    # an outsider naming the proxy as the forwarded client
    "forwarded-for-proxy": (dict(source="127.0.0.1", extra={"X-Forwarded-For": "127.0.0.2"}), "untrusted_address"),
}


def refusals(portal, reason: str) -> int:
    return sum(e["detail"].get("reason") == reason for e in audit(portal, "header_auth_refused", actor="bob"))


@pytest.mark.parametrize("how", SPOOFS)
def test_group_header_from_an_untrusted_sender_grants_nothing(sso_portal, dept, how):
    spoof, reason = SPOOFS[how]
    rec = dept.doc_of("bauakten")
    link = f"doc/{rec.doc_id}/text?t={dept.sign(rec.doc_id, 'bob')}"
    before = refusals(sso_portal, reason)
    with sso(sso_portal, "bob", "/Bauamt,/Personalamt,kiportal-admins", **spoof) as c:
        responses = [c.get("config"), c.get(link)]
        for api_name, data in (("session", []), ("ask", [Q_BAU, None, "extraktiv", ["bauakten"]]),
                               ("tools_choices", [])):
            result = call(c, sso_portal, api_name, data)
            assert result["join"] in (401, 403) and result["success"] is None, (api_name, result)
            assert dept.leaks("bauakten", result["join_body"]) == []
    for r in responses:
        assert r.status_code in (401, 403), (r.status_code, r.text[:200])
        assert dept.leaks("bauakten", r.text) == [] and "bauakten" not in r.text
    assert refusals(sso_portal, reason) > before  # audited as the spoof it is
    with sso(sso_portal, "bob", "/Bauamt") as c:  # positive twin: the real proxy gets the same link
        assert c.get(link).status_code == 200


def test_a_guessed_document_id_tells_no_one_whether_the_file_exists(sso_portal, dept):
    """Document ids are a hash of a path, so anyone can compute the id of a guessed file name
    ("personalakten/abmahnung-<name>.txt"). Found by an attacker's probe: the text view answered
    404 for a guess that does not exist and 403 for one that does, before it looked at the link.
    Now every unsigned request gets the same refusal, audited as a refused link."""
    rec = dept.doc_of("personalakten")
    unknown = "1e788672b5479fd7"
    assert sso_portal.ctx.app.catalog.get(unknown) is None
    own = dept.doc_of("bauakten").doc_id
    def refused_links() -> int:  # one row a minute, its attempts counted
        return sum(e["detail"].get("attempts", 1) for e in audit(sso_portal, "doc_refused", actor="bob")
                   if e["detail"].get("reason") == "link")

    before, rows_before = refused_links(), len(audit(sso_portal, "doc_refused", actor="bob"))
    with sso(sso_portal, "bob", "/Bauamt") as c:
        for view, query in (("/text", {}), ("/original", {}), ("/image", {"page": 1}), ("", {})):
            seen = set()
            for doc_id in (rec.doc_id, unknown):
                # a non-ASCII or endless token too: each was a 500 with a traceback
                for token in ({}, {"t": "x"}, {"t": dept.sign(own, "bob")}, {"t": "1.ä"}, {"t": "9" * 5000 + ".x"}):
                    r = c.get(f"doc/{doc_id}{view}", params=query | token)
                    seen.add((r.status_code, r.text))
                    assert dept.leaks("personalakten", r.text) == []
            assert len(seen) == 1 and next(iter(seen))[0] == 403, (view, seen)
        assert c.get(f"doc/{own}/text", params={"t": dept.sign(own, "bob")}).status_code == 200  # the positive twin
    assert refused_links() - before == 4 * 2 * 5
    assert len(audit(sso_portal, "doc_refused", actor="bob")) - rows_before <= 1  # not a row per request
    tried = {d for e in audit(sso_portal, "doc_refused", actor="bob") for d in e["detail"].get("docs", [])}
    assert {rec.doc_id, unknown} <= tried  # the row names the documents tried
