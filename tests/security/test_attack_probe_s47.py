"""Attacks on session 47's doors, sent as raw HTTP against the real portal.

What the probe found and this replays: JSON nested thousands deep in a call's body made the door's
file-value check fail with a 500 and a traceback (json's RecursionError was not caught); it is a 400
now, and the call never reaches gradio. What held is tested where the features are (the example
buttons in tests/ui/test_browser_chat.py, the quality review in tests/ui/test_browser_admin.py).
"""
from __future__ import annotations

import pytest

from sec_client import login

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("route", ["gradio_api/queue/join", "gradio_api/run/predict"])
def test_a_call_nested_thousands_deep_is_a_clear_400(pw_portal, route):
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    body = '{"data": [], "fn_index": 0, "session_hash": "deep", "event_data": ' + deep + "}"
    with login(pw_portal, "sam") as c:
        r = c.post(route, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "verschachtelt" in r.text, (r.status_code, r.text[:200])
        assert c.get("config").status_code == 200  # the portal goes on
