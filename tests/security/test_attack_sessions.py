"""Attack 3: a session outlived a password change, a role change and the removal of its user.

The user database is changed the way an administrator does it, with the ``kiportal`` command
in another process; the old cookie is replayed over HTTP afterwards.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sec_client import PASSWORD, call, login

pytestmark = pytest.mark.integration


def kiportal(portal, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIPORTAL_") or k == "KIPORTAL_TEST_CACHE"}
    proc = subprocess.run([sys.executable, "-m", "ui.cli", "--data-dir", str(portal.home), *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=portal.home.parent, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def works(c, portal) -> bool:
    """The cookie still opens the portal: gradio's config and a queued call."""
    if c.get("config").status_code != 200:
        return False
    return bool(call(c, portal, "session", [])["success"])


def test_password_change_ends_the_session(pw_portal):
    try:
        with login(pw_portal, "sam") as c:
            assert works(c, pw_portal)
            kiportal(pw_portal, "users", "passwd", "sam", "--password-stdin", stdin="Neues-Passwort-42\n")
            assert not works(c, pw_portal)
        with login(pw_portal, "sam", "Neues-Passwort-42") as c:
            assert works(c, pw_portal)
    finally:  # the suite's other modules log in as sam with the suite's password
        pw_portal.ctx.users.set_password("sam", PASSWORD)


def test_role_change_ends_the_session(pw_portal):
    try:
        with login(pw_portal, "bernd") as c:
            assert works(c, pw_portal)
            pw_portal.ctx.users.set_role("bernd", "trainer")
            assert not works(c, pw_portal)
    finally:
        pw_portal.ctx.users.set_role("bernd", "staff")


def test_removed_and_re_added_user_does_not_get_the_old_session(pw_portal):
    with login(pw_portal, "anna") as c:
        assert works(c, pw_portal)
        kiportal(pw_portal, "users", "remove", "anna")
        assert not works(c, pw_portal)
        kiportal(pw_portal, "users", "add", "anna", "--password-stdin", stdin=f"{PASSWORD}\n")
        assert not works(c, pw_portal)


def test_idle_and_old_sessions_expire(pw_portal):
    s = pw_portal.ctx.app.settings.auth
    assert s.session_idle_minutes <= 8 * 60 and s.session_max_hours <= 24  # sensible defaults
    db = pw_portal.ctx.db
    with login(pw_portal, "tina") as c:
        assert works(c, pw_portal)
        db.execute("UPDATE sessions SET last_seen = last_seen - :d WHERE user_name='tina'",
                   {"d": s.session_idle_minutes * 60 + 5})
        assert not works(c, pw_portal)
    with login(pw_portal, "tina") as c:
        assert works(c, pw_portal)
        db.execute("UPDATE sessions SET created_at = created_at - :d WHERE user_name='tina'",
                   {"d": s.session_max_hours * 3600 + 5})
        assert not works(c, pw_portal)


def test_logout_still_works(pw_portal):
    with login(pw_portal, "mayor") as c:
        assert works(c, pw_portal)
        cookies = dict(c.cookies)
        r = c.get("logout")
        assert r.status_code in (302, 303, 307)
        c.cookies.clear()
        for k, v in cookies.items():  # the stolen cookie after logout
            c.cookies.set(k, v)
        assert not works(c, pw_portal)
