"""SSO groups in header mode: the trusted proxy's group header replaces stored groups, mapped by a
setting; unknown groups, an empty header and an untrusted address grant nothing."""
from __future__ import annotations

import pytest
from settings_factory import make_settings

from assistant.appdb import AppDB
from assistant.users import UserStore
from ui.security import resolve_user


class FakeRequest:
    """The two things resolve_user reads of a gr.Request (unit test: no server)."""

    def __init__(self, headers: dict[str, str], host: str = "127.0.0.1") -> None:
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.client = type("Client", (), {"host": host})()
        self.username = None


@pytest.fixture
def env(tmp_path):
    settings = make_settings(tmp_path / "data", auth={"mode": "header", "trusted_proxies": ["127.0.0.1"],
                                                       "groups_header": "X-Forwarded-Groups"},
                             access={"groups": ["bauamt", "personalamt"],
                                     "group_map": {"/Bauamt": "bauamt", "/Personalamt": "personalamt"}})
    users = UserStore(AppDB(settings.app_db))
    users.add("bob", "geheim-123", "staff", ["personalamt"])  # stored groups: replaced by the header
    return settings, users


@pytest.mark.parametrize("header, expected", [
    ({"X-Forwarded-Groups": "/Bauamt"}, ("bauamt",)),
    ({"X-Forwarded-Groups": "/Bauamt,/Personalamt"}, ("bauamt", "personalamt")),
    ({"X-Forwarded-Groups": "/Kaemmerei"}, ()),          # unknown group: nothing
    ({"X-Forwarded-Groups": ""}, ()),                    # empty header: no groups, not the stored ones
    ({}, ()),                                            # missing header: the same
])
def test_header_groups_replace_stored_ones(env, header, expected):
    settings, users = env
    for name in ("bob", "neu"):  # a stored user and one known only to the proxy
        user = resolve_user(FakeRequest({"X-Remote-User": name, **header}), settings, users)
        assert user is not None and user.name == name and user.groups == expected
    assert users.get("bob").groups == ("personalamt",)  # the stored groups stay as they were


def test_untrusted_address_gets_no_user_and_no_groups(env):
    settings, users = env
    req = FakeRequest({"X-Remote-User": "bob", "X-Forwarded-Groups": "/Bauamt"}, host="10.0.0.9")
    assert resolve_user(req, settings, users) is None


def test_without_a_group_map_the_stored_groups_count(env, tmp_path):
    settings, users = env
    plain = settings.model_copy(update={"access": settings.access.model_copy(update={"group_map": {}})})
    user = resolve_user(FakeRequest({"X-Remote-User": "bob", "X-Forwarded-Groups": "/Bauamt"}), plain, users)
    assert user.groups == ("personalamt",)
