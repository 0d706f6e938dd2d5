"""Attack 4: credentialed CORS for any origin, SameSite=None cookies, no CSRF protection.

Sent as a browser on https://evil.example would send it to a portal behind an HTTPS proxy
(Host: kiportal.stadt.example): a preflight for the queue, a credentialed GET, a POST.
"""
from __future__ import annotations

import pytest

from sec_client import call, login

pytestmark = pytest.mark.integration

EVIL = {"Host": "kiportal.stadt.example", "Origin": "https://evil.example"}


def _cors(r) -> dict:
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


def test_preflight_from_a_foreign_origin_is_refused(pw_portal):
    with login(pw_portal, "sam") as c:
        r = c.options("gradio_api/queue/join", headers={**EVIL, "Access-Control-Request-Method": "POST",
                                                         "Access-Control-Request-Headers": "content-type"})
    assert r.status_code >= 400 and _cors(r) == {}


def test_credentialed_requests_from_a_foreign_origin_get_no_cors_and_no_effect(pw_portal):
    with login(pw_portal, "sam") as c:
        r = c.get("config", headers=EVIL)
        assert "access-control-allow-origin" not in _cors(r) and "access-control-allow-credentials" not in _cors(r)
        r = c.post("gradio_api/queue/join", headers=EVIL,
                   json={"data": [], "fn_index": pw_portal.fn_index("new_chat"), "session_hash": "evil"})
        assert r.status_code == 403 and _cors(r) == {}
        r = c.post("gradio_api/queue/join", headers={"Sec-Fetch-Site": "cross-site"},
                   json={"data": [], "fn_index": pw_portal.fn_index("new_chat"), "session_hash": "evil2"})
        assert r.status_code == 403
        # the same call from the portal's own page works
        own = {"Origin": pw_portal.url.rstrip("/")}
        r = c.post("gradio_api/queue/join", headers=own,
                   json={"data": [], "fn_index": pw_portal.fn_index("new_chat"), "session_hash": "own"})
        assert r.status_code == 200, r.text


def test_login_from_a_foreign_origin_is_refused(pw_portal):
    with login(pw_portal, "sam") as c:
        r = c.post("login", data={"username": "sam", "password": "x"}, headers=EVIL)
    assert r.status_code == 403


def test_an_allowed_origin_gets_cors_with_credentials(pw_portal):
    origin = "https://intranet.stadt.example"  # server.allowed_origins of this portal
    with login(pw_portal, "sam") as c:
        r = c.options("gradio_api/queue/join", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert r.status_code < 300 and _cors(r)["access-control-allow-origin"] == origin
        r = c.get("config", headers={"Origin": origin})
        assert _cors(r) == {"access-control-allow-origin": origin, "access-control-allow-credentials": "true"}


def test_login_cookies_are_samesite_lax(pw_portal):
    with login(pw_portal, "sam") as c:
        pass
    with login(pw_portal, "sam") as c2:
        r = c2.post("login", data={"username": "sam", "password": "Sicher-Test-2026!"})
    cookies = r.headers.get_list("set-cookie")
    assert len(cookies) == 3  # gradio's two session cookies and the login's device cookie (ui.login_devices)
    for cookie in cookies:
        attrs = [a.strip().lower() for a in cookie.split(";")]
        assert "samesite=lax" in attrs and "samesite=none" not in attrs and "httponly" in attrs
    assert c is not None and call  # login() above already asserted a 200
