"""Also found: the API description before login, missing security headers, internal error text."""
from __future__ import annotations

import re

import pytest

from sec_client import call, http, login

pytestmark = pytest.mark.integration


def test_nothing_about_the_api_before_login(pw_portal):
    with http(pw_portal) as c:
        page = c.get("/")
        assert page.status_code == 200
        info = re.search(r"window\.gradio_api_info = (.*?);</script>", page.text)
        assert info is None or info.group(1) in ("{}", "null")
        assert "admin_upload" not in page.text and "named_endpoints" not in page.text
        for path in ("openapi.json", "gradio_api/openapi.json", "gradio_api/info", "config", "gradio_api/upload",
                     "gradio_api/queue/data?session_hash=x", "docs"):
            r = c.get(path)
            assert r.status_code in (401, 404, 405), (path, r.status_code)
            assert "admin_upload" not in r.text


def test_security_headers_on_every_response(pw_portal):
    with http(pw_portal) as anonymous, login(pw_portal, "sam") as c:
        for client, path in ((anonymous, "/"), (anonymous, "gradio_api/info"), (c, "/"), (c, "config"),
                             (c, "theme.css"), (c, "gradio_api/info"), (anonymous, "doc/x/text")):
            r = client.get(path)
            h = {k.lower(): v for k, v in r.headers.items()}
            assert h.get("x-content-type-options") == "nosniff", path
            assert "frame-ancestors 'none'" in h.get("content-security-policy", ""), path
            assert h.get("x-frame-options") == "DENY", path
            assert h.get("referrer-policy") in ("same-origin", "no-referrer"), path
            assert re.fullmatch(r"[0-9a-f]{12}", h.get("x-request-id", "")), path


def test_internal_errors_reach_the_client_as_german_message_with_reference(pw_portal, monkeypatch, caplog):
    chats = pw_portal.server.handlers.chats

    def broken(*_a, **_k):
        raise RuntimeError("sqlite3.OperationalError: /var/lib/kiportal/app.sqlite3 is locked")

    monkeypatch.setattr(chats, "list_chats", broken)
    with login(pw_portal, "sam") as c:
        result = call(c, pw_portal, "session", [])
    assert result["success"] is False
    message = result["error"] or ""
    assert "sqlite" not in message and "/var/lib" not in message and "RuntimeError" not in message
    ref = re.search(r"Interner Fehler.*Vorgangsnummer ([0-9a-f]{12})", message)
    assert ref, message
    assert ref.group(1) in caplog.text and "app.sqlite3 is locked" in caplog.text  # the details are in the log
    assert result["title"] == "Fehler"  # gradio's heading would be "Error"


def test_a_refusal_is_headed_in_german(pw_portal):
    with login(pw_portal, "sam") as c:
        result = call(c, pw_portal, "admin_audit", [None, "", None, None, ""])
    assert result["success"] is False and "Keine Berechtigung" in (result["error"] or "")
    assert result["title"] == "Fehler"


def test_a_write_that_lost_the_cluster_writer_lock_says_so_instead_of_an_internal_error(pw_portal, monkeypatch):
    """LockLost is the one internal error meant for the person: nothing was committed, run it again."""
    from corpus.db import LockLost

    def lost(*_a, **_k):
        raise LockLost("kiportal-writer")

    monkeypatch.setattr(pw_portal.server.handlers.chats, "list_chats", lost)
    with login(pw_portal, "sam") as c:
        result = call(c, pw_portal, "session", [])
    assert result["success"] is False
    message = result["error"] or ""
    assert "Schreibsperre" in message and "nichts übernommen" in message and "Vorgangsnummer" not in message
