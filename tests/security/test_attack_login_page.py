"""The portal's own login page: gradio's answered a held-back try as "wrong password" and emptied
the name, so the owner typed the right password again and dug the back-off deeper. The page and
what the login route answers, over HTTP; the form itself in a browser (tests/ui/test_browser_login.py)."""
from __future__ import annotations

import re

import pytest

from sec_client import PASSWORD, PROXY, http

pytestmark = pytest.mark.integration


def test_the_login_page_is_the_portals_own_strict_german_page(pw_portal):
    with http(pw_portal) as c:
        page = c.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="de">' in page.text and "<title>Anmelden – KI-Portal</title>" in page.text
    assert 'action="login"' in page.text and 'autocomplete="current-password"' in page.text
    assert "gradio" not in page.text.lower() and "named_endpoints" not in page.text  # nothing of the app
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp).group(1)
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert page.text.count(f'nonce="{nonce}"') == 2  # its one style and one script, nothing else runs
    with http(pw_portal) as c:
        assert nonce not in c.get("/").headers["content-security-policy"]  # a fresh nonce per page
        assert c.head("/").status_code == 200


def test_a_held_back_login_is_429_with_the_wait_and_a_wrong_password_400(pw_portal):
    address = "203.0.113.91"
    with http(pw_portal, source=PROXY, headers={"X-Forwarded-For": address}) as c:
        for _ in range(3):
            wrong = c.post("login", data={"username": "adam", "password": "falsch"})
            assert wrong.status_code == 400
        held = c.post("login", data={"username": "adam", "password": PASSWORD})
    assert held.status_code == 429, held.text
    assert re.fullmatch(r"Zu viele fehlgeschlagene Anmeldungen\. Bitte versuchen Sie es in \d+ Sekunden erneut\. "
                        r"Ihr Passwort wurde dabei nicht geprüft\.", held.json()["detail"])
    assert 1 <= int(held.headers["retry-after"]) <= 2
    assert "set-cookie" not in held.headers  # and no session


def test_before_login_nothing_of_gradio_is_served(pw_portal):
    """The login page is the portal's own, so none of gradio's files or API routes answer before login."""
    with http(pw_portal) as c:
        for path in ("theme.css", "manifest.json", "gradio_api/login_check", "gradio_api/user", "gradio_api/token",
                     "gradio_api/app_id", "assets/index.js", "static/img/logo.svg", "svelte/svelte.js"):
            r = c.get(path)
            assert r.status_code == 401 and "Anmeldung erforderlich" in r.text, (path, r.status_code)
        assert c.get("favicon.ico").status_code != 401  # the browser's tab icon may load
