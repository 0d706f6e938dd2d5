"""Attack found by a probe: without login (``auth.mode = "none"``, the default on one machine), a web
page whose name the attacker re-points to 127.0.0.1 (DNS rebinding) sends its own name as Host *and*
Origin, so the same-origin check passes, and every request acts as the local administrator: the
page read the audit log and every document, and created collections. The portal now answers only
requests for its loopback names in this mode (and for ``server.allowed_hosts``)."""
from __future__ import annotations

import pytest

from sec_client import call, http

pytestmark = pytest.mark.integration

REBOUND = "rebind.attacker.example"


def _port(portal) -> str:
    return portal.url.rstrip("/").rsplit(":", 1)[1]


def test_a_rebound_page_gets_nothing_from_a_portal_without_login(open_portal):
    rebound = {"Host": f"{REBOUND}:{_port(open_portal)}", "Origin": f"http://{REBOUND}:{_port(open_portal)}"}
    collections = {c["name"] for c in open_portal.ctx.app.catalog.collections()}
    with http(open_portal) as c:
        for path in ("config", "gradio_api/info", ""):
            r = c.get(path, headers=rebound)
            assert r.status_code == 400 and "Host" in r.text, (path, r.status_code)
        r = c.post("gradio_api/queue/join", headers=rebound,
                   json={"data": ["rebound-by-attacker", "intern", []], "session_hash": "rb",
                         "fn_index": open_portal.fn_index("admin_create_collection")})
        assert r.status_code == 400
    assert {c["name"] for c in open_portal.ctx.app.catalog.collections()} == collections


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST"])
def test_the_loopback_names_still_work(open_portal, host):
    with http(open_portal) as c:
        own = {"Host": f"{host}:{_port(open_portal)}"}
        assert c.get("config", headers=own).status_code == 200
        result = call(c, open_portal, "session", [])
        assert result["success"], result
