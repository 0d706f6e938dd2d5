"""Header mode decisions, table-driven: trusted address, proxy secret, valid name, mapped groups."""
from __future__ import annotations

import pytest

from assistant.settings import AuthSettings
from ui.header_auth import check_header_settings, identify, role_for

AUTH = AuthSettings(mode="header", trusted_proxies=["10.0.0.5", "192.168.7.0/24"], proxy_secret="s3cret",
                    group_roles={"kiportal-admins": "admin", "/kiportal-trainer": "trainer"})


class Users:
    def get(self, name):
        from assistant.users import User

        return User(name, "trainer") if name == "tina" else None


@pytest.mark.parametrize("client, headers, user, reason", [
    ("10.0.0.5", {"x-remote-user": "sam", "x-kiportal-proxy-secret": "s3cret"}, ("sam", "staff"), ""),
    ("192.168.7.20", {"x-remote-user": "sam", "x-kiportal-proxy-secret": "s3cret"}, ("sam", "staff"), ""),
    ("127.0.0.1", {"x-remote-user": "sam", "x-kiportal-proxy-secret": "s3cret"}, None, "untrusted_address"),
    ("10.0.0.5", {"x-remote-user": "sam"}, None, "proxy_secret_missing"),
    ("10.0.0.5", {"x-remote-user": "sam", "x-kiportal-proxy-secret": "S3CRET"}, None, "proxy_secret_wrong"),
    ("10.0.0.5", {"x-kiportal-proxy-secret": "s3cret"}, None, "no_user_header"),
    ("10.0.0.5", {"x-remote-user": "../../etc", "x-kiportal-proxy-secret": "s3cret"}, None, "invalid_user_name"),
    ("10.0.0.5", {"x-remote-user": "<b>x</b>", "x-kiportal-proxy-secret": "s3cret"}, None, "invalid_user_name"),
    ("10.0.0.5", {"x-remote-user": "mallory", "x-remote-role": "admin", "x-kiportal-proxy-secret": "s3cret"},
     ("mallory", "staff"), ""),
    ("10.0.0.5", {"x-remote-user": "erika", "x-remote-groups": "staff, kiportal-admins",
                  "x-kiportal-proxy-secret": "s3cret"}, ("erika", "admin"), ""),
    ("10.0.0.5", {"x-remote-user": "tina", "x-remote-groups": "andere", "x-kiportal-proxy-secret": "s3cret"},
     ("tina", "trainer"), ""),
])
def test_identify(client, headers, user, reason):
    decision = identify(client, headers, AUTH, Users())
    assert (decision.user.name, decision.user.role) == user if user else decision.user is None
    assert decision.reason == reason


@pytest.mark.parametrize("groups, known, role", [
    ([], None, "staff"), (["kiportal-admins"], None, "admin"), (["/kiportal-trainer"], "staff", "trainer"),
    (["kiportal-trainer"], None, "staff"), ([], "admin", "admin")])
def test_role_for(groups, known, role):
    assert role_for(groups, AUTH.group_roles, known) == role


def test_header_mode_needs_its_proxies():
    with pytest.raises(RuntimeError, match="trusted_proxies"):
        check_header_settings(AuthSettings(mode="header"))
    with pytest.raises(ValueError):
        check_header_settings(AuthSettings(mode="header", trusted_proxies=["10.0.0.0/8, 1.2.3.4"]))
    with pytest.raises(ValueError, match="unknown role"):
        AuthSettings(group_roles={"x": "superuser"})
    check_header_settings(AuthSettings(mode="password"))


SUBJECT_AUTH = AuthSettings(mode="header", trusted_proxies=["10.0.0.5"], subject_header="X-Forwarded-User")


@pytest.mark.parametrize("headers, subject, reason", [
    ({"x-remote-user": "sam", "x-forwarded-user": "f81d4fae-7dec"}, "f81d4fae-7dec", ""),
    ({"x-remote-user": "sam", "x-forwarded-user": "  f81d4fae-7dec "}, "f81d4fae-7dec", ""),
    ({"x-remote-user": "sam"}, None, "no_subject_header"),
    ({"x-remote-user": "sam", "x-forwarded-user": ""}, None, "no_subject_header"),
    ({"x-remote-user": "sam", "x-forwarded-user": "a b"}, None, "invalid_subject"),
    ({"x-remote-user": "sam", "x-forwarded-user": "x" * 256}, None, "invalid_subject"),
    ({"x-forwarded-user": "f81d4fae-7dec"}, None, "no_user_header"),  # a subject is no name
])
def test_identify_with_a_subject_header(headers, subject, reason):
    decision = identify("10.0.0.5", headers, SUBJECT_AUTH, Users())
    assert decision.reason == reason
    assert (decision.subject if decision.user else None) == subject
    plain = AuthSettings(mode="header", trusted_proxies=["10.0.0.5"])  # without the setting: names only, as before
    assert identify("10.0.0.5", {"x-remote-user": "sam", "x-forwarded-user": "s"}, plain, Users()).subject == ""
