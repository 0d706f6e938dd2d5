"""Also found: five wrong passwords locked any account; spraying one password over many names was free.

The portal trusts 127.0.0.2 as its proxy, so each test speaks for its own client address
through X-Forwarded-For (as behind the city's reverse proxy).
"""
from __future__ import annotations

import time

import pytest

from sec_client import PASSWORD, attempt, audit

pytestmark = pytest.mark.integration


def test_a_stranger_cannot_lock_out_an_account(pw_portal):
    for _ in range(6):
        assert attempt(pw_portal, "203.0.113.10", "mayor", "falsch-geraten") == 400
    # the stranger's own next try is held back, even with the right password …
    assert attempt(pw_portal, "203.0.113.10", "mayor", PASSWORD) == 400
    # … but the mayor's office logs in at once
    assert attempt(pw_portal, "198.51.100.7", "mayor", PASSWORD) == 200
    blocked = audit(pw_portal, "login_blocked", actor="mayor")
    assert blocked and blocked[0]["detail"]["address"] == "203.0.113.10"


def test_password_spraying_from_one_address_is_slowed(pw_portal):
    for n in range(10):
        assert attempt(pw_portal, "203.0.113.20", f"kollege{n}", "Sommer2026!") == 400
    assert attempt(pw_portal, "203.0.113.20", "tina", PASSWORD) == 400  # held back: the address is spraying
    assert any(e["detail"].get("by") == "address" for e in audit(pw_portal, "login_blocked"))


def test_back_off_instead_of_a_lock(pw_portal):
    for _ in range(3):
        assert attempt(pw_portal, "203.0.113.30", "adam", "falsch") == 400
    assert attempt(pw_portal, "203.0.113.30", "adam", PASSWORD) == 400  # held back (and the back-off doubles) …
    time.sleep(4.3)
    assert attempt(pw_portal, "203.0.113.30", "adam", PASSWORD) == 200  # … for seconds, not a five-minute lock
    failed = audit(pw_portal, "login_failed", actor="adam")
    assert failed and failed[0]["detail"]["address"] == "203.0.113.30"
