"""Attack 2: header mode trusted every local client, took a free role name and had no gate.

The portal trusts only its proxy at 127.0.0.2, which must also send the shared secret; SSO
groups become roles only through ``auth.group_roles``. Every route answers only behind the
same identity check, including gradio's own (/config, info, upload, file, queue, openapi).
"""
from __future__ import annotations

import pytest

from sec_client import PROXY_SECRET, audit, call, http, proxy, upload

pytestmark = pytest.mark.integration

ROUTES = [("GET", "/"), ("GET", "/config"), ("GET", "/gradio_api/info"), ("GET", "/gradio_api/info?all_endpoints=true"),
          ("POST", "/gradio_api/upload"), ("GET", "/gradio_api/file=/etc/passwd"),
          ("POST", "/gradio_api/queue/join"), ("GET", "/gradio_api/queue/data?session_hash=x"),
          ("GET", "/openapi.json"), ("GET", "/gradio_api/openapi.json"), ("GET", "/theme.css"),
          ("GET", "/gradio_api/api_info"), ("GET", "/doc/x/text")]


def _send(c, method, path):
    if method == "POST" and path.endswith("upload"):
        return c.post(path, files=[("files", ("gross.bin", b"x" * 1024, "application/octet-stream"))])
    if method == "POST":
        return c.post(path, json={"data": [], "fn_index": 0, "session_hash": "x"})
    return c.get(path)


def test_header_mode_refuses_to_start_without_trusted_proxies(tmp_path):
    from assistant.settings import load_settings
    from assistant.wiring import App
    from ui.context import PortalContext
    from ui.portal import create_app

    settings = load_settings(tmp_path / "data", embedding={"mode": "hash"}, vector={"mode": "memory"},
                             auth={"mode": "header"})
    assert settings.auth.trusted_proxies == []  # no default any more
    with pytest.raises(RuntimeError, match="trusted_proxies"):
        create_app(PortalContext(App(settings)), "127.0.0.1", 7998)


@pytest.mark.parametrize("who", ["nobody", "untrusted", "no-secret", "wrong-secret"])
def test_every_route_is_closed_without_a_vouched_identity(hdr_portal, who):
    clients = {
        "nobody": lambda: proxy(hdr_portal, None),  # from the proxy, but no user
        "untrusted": lambda: proxy(hdr_portal, "mallory", "kiportal-admins", source="127.0.0.1"),
        "no-secret": lambda: proxy(hdr_portal, "mallory", "kiportal-admins", secret=None),
        "wrong-secret": lambda: proxy(hdr_portal, "mallory", "kiportal-admins", secret="geraten"),
    }
    with clients[who]() as c:
        for method, path in ROUTES:
            r = _send(c, method, path)
            assert r.status_code in (401, 403, 404), (who, method, path, r.status_code, r.text[:200])
            assert "named_endpoints" not in r.text and "admin_audit" not in r.text


def test_spoofed_identity_is_audited(hdr_portal):
    with proxy(hdr_portal, "mallory", "kiportal-admins", source="127.0.0.1") as c:
        c.get("/config")
    with proxy(hdr_portal, "mallory", "kiportal-admins", secret="geraten") as c:
        c.get("/config")
    reasons = {e["detail"].get("reason") for e in audit(hdr_portal, "header_auth_refused", actor="mallory")}
    assert {"untrusted_address", "proxy_secret_wrong"} <= reasons


def test_a_free_role_header_gives_no_role(hdr_portal):
    extra = {"X-Remote-Role": "admin"}
    with proxy(hdr_portal, "mallory", extra=extra) as c:
        assert c.get("/config").status_code == 200  # logged in, as staff
        result = call(c, hdr_portal, "admin_audit", [None, "", None, None, ""])
    assert result["success"] is False and "Keine Berechtigung" in (result["error"] or "")


def test_groups_map_to_roles_only_through_the_setting(hdr_portal):
    with proxy(hdr_portal, "mallory", "kiportal-users, admins") as c:  # unmapped groups: staff
        result = call(c, hdr_portal, "admin_audit", [None, "", None, None, ""])
        assert result["success"] is False
    with proxy(hdr_portal, "erika", "kiportal-users,kiportal-admins") as c:
        result = call(c, hdr_portal, "admin_audit", [None, "", None, None, ""])
        assert result["success"], result


@pytest.mark.parametrize("name", ["../../etc", "<b>x</b>", "a b", "x" * 65, ".."])
def test_invalid_user_names_are_refused(hdr_portal, name):
    with proxy(hdr_portal, name) as c:
        assert c.get("/config").status_code == 403
        assert c.get("/").status_code == 403


def test_the_vouched_user_gets_the_portal(hdr_portal):
    with proxy(hdr_portal, "sam") as c:
        r = c.get("/")
        assert r.status_code == 200 and "gradio_config" in r.text
        assert c.get("/config").status_code == 200
        result = call(c, hdr_portal, "session", [])
        assert result["success"] and "sam" in str(result["output"][0])
        r = upload(c, "notiz.txt", b"x" * (2 * 1024 * 1024))  # over server.max_upload_mb
        assert r.status_code in (400, 413)


def test_an_admins_export_is_not_served_to_others(hdr_portal):
    with proxy(hdr_portal, "adam", "kiportal-admins") as admin:
        result = call(admin, hdr_portal, "admin_audit_export", [None, "", None, None, ""])
        assert result["success"], result
        url = result["output"][0]["url"]
        path = url.split("/gradio_api/", 1)[1]
        with http(hdr_portal, source="127.0.0.1") as anonymous:
            assert anonymous.get(f"gradio_api/{path}").status_code == 401
        with proxy(hdr_portal, "sam") as staff:
            r = staff.get(f"gradio_api/{path}")
            assert r.status_code == 404, (path, r.status_code, r.text)
        r = admin.get(f"gradio_api/{path}")
        assert r.status_code == 200 and r.text.startswith("zeit;akteur")
        assert admin.get(f"gradio_api/{path}").status_code == 404  # deleted after the download
    assert PROXY_SECRET  # the proxy helper sent it
