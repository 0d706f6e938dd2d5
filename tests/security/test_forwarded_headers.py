"""A forged X-Forwarded-Host (and kin) against real portals over HTTP (hash embedder, no model).

The attacker's probe: gradio 6 builds the page's root URL (``root`` in ``/config`` and in the page,
the base of every file link) from ``X-Forwarded-Host`` and ``X-Forwarded-Proto``
(``gradio.route_utils.get_request_origin``), and from ``X-Gradio-Server``, whoever sends them. One
request with ``X-Forwarded-Host: evil.example`` got a page pointing at ``https://evil.example``;
behind a cache that page goes to every user. Now the door (:mod:`ui.forwarded`) passes the
forwarding headers only from ``auth.trusted_proxies``, or from loopback when the list is empty.

gradio 6.31 reads neither ``Forwarded`` nor ``X-Forwarded-Port``/``-Prefix``/``-For``; what reaches
the app behind the door is shown by a route added for the test in front of gradio's mount, which
echoes the headers it got (and the client address the door decided on).

Peers: 127.0.0.2 is the listed proxy, 127.0.0.1 an outsider on the listed portal. A connection from
127.0.0.3 is shown to the portal as 198.51.100.7, a machine elsewhere in the network (a shim in front
of the app: a test machine can connect from loopback only).
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Iterator

import pytest

from portal_http import login
from settings_factory import make_settings
from ui.forwarded import ForwardingFilter
from ui.header_auth import parse_networks
from ui.security import is_loopback, is_loopback_address

pytestmark = pytest.mark.integration

PASSWORD = "Forwarded-Test-2026!"
PROXY = "127.0.0.2"
OUTSIDER = "127.0.0.1"
REMOTE_SOURCE, REMOTE = "127.0.0.3", "198.51.100.7"
PUBLIC = "kiportal.stadt.example"
FORGED = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Port": "8443",
          "X-Forwarded-Prefix": "/evil", "X-Forwarded-For": "203.0.113.66",
          "Forwarded": "for=203.0.113.66;host=evil.example;proto=https"}
ECHO = "/__test_echo_headers"


class RemotePeer:
    """In front of the whole app: a connection from 127.0.0.3 comes from 198.51.100.7."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and client[0] == REMOTE_SOURCE:
            scope = dict(scope, client=(REMOTE, client[1]))
        await self.app(scope, receive, send)


class Running:
    def __init__(self, url: str) -> None:
        self.url = url
        self.own_root = url.rstrip("/")


@contextmanager
def _portal(tmp_path_factory, name: str, trusted_proxies: list[str]) -> Iterator[Running]:
    """A password-mode portal as ``kiportal serve`` runs it, plus the echo route and the remote-peer shim."""
    import ui.portal as portal
    from assistant.wiring import App
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from ui.context import PortalContext
    from ui.login import client_address

    async def echo(request):
        return JSONResponse({"headers": dict(request.headers.items()), "client": client_address.get()})

    real_create_app = portal.create_app

    def create_app(*args, **kwargs):
        server = real_create_app(*args, **kwargs)
        server.app.router.routes.insert(0, Route(ECHO, echo))  # before gradio's mount at "/"
        server.app.add_middleware(RemotePeer)
        return server

    root = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # no kiportal.toml or KIPORTAL_* of the developer's
        for key in [k for k in os.environ if k.startswith("KIPORTAL_") and k != "KIPORTAL_TEST_CACHE"]:
            mp.delenv(key)
        settings = make_settings(root / "data",
                                 auth={"mode": "password", "secret": "f" * 40, "trusted_proxies": trusted_proxies},
                                 llm={"default": "extraktiv", "models": {
                                     "extraktiv": {"mode": "extractive", "label": "Nur Textstellen"}}})
    ctx = PortalContext(App(settings))
    ctx.users.add("anna", PASSWORD, "staff")
    patch = pytest.MonkeyPatch()
    patch.setattr(portal, "create_app", create_app)
    try:
        with portal.background_portal(ctx) as (url, _):
            patch.undo()  # only this portal is built so
            yield Running(url)
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def listed(tmp_path_factory):
    """Password mode behind the proxy at 127.0.0.2 (``auth.trusted_proxies = ["127.0.0.2"]``)."""
    with _portal(tmp_path_factory, "fwd-listed", [PROXY]) as portal:
        yield portal


@pytest.fixture(scope="module")
def unlisted(tmp_path_factory):
    """Password mode without ``auth.trusted_proxies`` (nginx on the same machine, unlisted)."""
    with _portal(tmp_path_factory, "fwd-unlisted", []) as portal:
        yield portal


def _root(portal, source: str, headers: dict) -> tuple[str, str]:
    """What gradio names as the page's root: in ``/config`` and in the page itself."""
    with login(portal, "anna", PASSWORD, source=source) as c:
        config = c.get("config", headers=headers)
        page = c.get("", headers=headers)
    assert config.status_code == 200 and page.status_code == 200, (config.status_code, page.status_code)
    return config.json()["root"], page.text


def _echo(portal, source: str, headers: dict) -> dict:
    with login(portal, "anna", PASSWORD, source=source) as c:
        r = c.get(ECHO.lstrip("/"), headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _forwarding(received: dict) -> dict:
    return {k: v for k, v in received["headers"].items() if k in {h.lower() for h in FORGED} | {"x-gradio-server"}}


# -- the real effect: gradio's root URL --------------------------------------------------------------
@pytest.mark.parametrize("source", [OUTSIDER, REMOTE_SOURCE])
def test_a_forged_forwarded_host_from_an_untrusted_peer_does_not_reach_the_page(listed, source):
    root, page = _root(listed, source, FORGED)
    assert root == listed.own_root
    assert "evil.example" not in page and listed.own_root in page


def test_the_listed_proxy_names_the_public_host_and_scheme(listed):
    root, page = _root(listed, PROXY, {"X-Forwarded-Host": PUBLIC, "X-Forwarded-Proto": "https"})
    assert root == f"https://{PUBLIC}"
    assert f"https://{PUBLIC}" in page


def test_x_gradio_server_names_the_root_for_nobody(listed):
    """gradio takes it as the root URL too; only its server-side rendering (off here) sends it."""
    for source in (OUTSIDER, PROXY):
        root, page = _root(listed, source, {"X-Gradio-Server": "https://evil.example/"})
        assert root == listed.own_root and "evil.example" not in page, source


# -- what reaches the app behind the door -------------------------------------------------------------
def test_an_untrusted_peer_forwards_nothing(listed):
    for source in (OUTSIDER, REMOTE_SOURCE):
        received = _echo(listed, source, {**FORGED, "X-Gradio-Server": "https://evil.example/"})
        assert _forwarding(received) == {}, source
        assert received["client"] == (OUTSIDER if source == OUTSIDER else REMOTE)


def test_the_listed_proxy_forwards_every_header_unchanged(listed):
    received = _echo(listed, PROXY, {**FORGED, "X-Gradio-Server": "https://evil.example/"})
    assert _forwarding(received) == {k.lower(): v for k, v in FORGED.items()}  # Forwarded too; X-Gradio-Server never
    assert received["client"] == "203.0.113.66"  # the door still reads the proxy's X-Forwarded-For


def test_the_forwarded_header_alone(listed):
    """RFC 7239's header, which gradio does not read today (a later version or Starlette might)."""
    value = "for=203.0.113.66;host=evil.example;proto=https"
    assert "forwarded" not in _echo(listed, OUTSIDER, {"Forwarded": value})["headers"]
    assert _echo(listed, PROXY, {"Forwarded": value})["headers"]["forwarded"] == value


# -- auth.trusted_proxies empty: loopback only --------------------------------------------------------
def test_without_a_list_a_proxy_on_this_machine_still_works(unlisted):
    """nginx on the same host, ``proxy_pass http://127.0.0.1:7860``, nothing listed."""
    root, page = _root(unlisted, OUTSIDER, {"X-Forwarded-Host": PUBLIC, "X-Forwarded-Proto": "https"})
    assert root == f"https://{PUBLIC}" and f"https://{PUBLIC}" in page
    received = _echo(unlisted, OUTSIDER, FORGED)
    assert _forwarding(received) == {k.lower(): v for k, v in FORGED.items()}
    assert received["client"] == OUTSIDER  # X-Forwarded-For is still no client address without a list


def test_without_a_list_another_machine_forwards_nothing(unlisted):
    root, page = _root(unlisted, REMOTE_SOURCE, FORGED)
    assert root == unlisted.own_root and "evil.example" not in page
    received = _echo(unlisted, REMOTE_SOURCE, FORGED)
    assert _forwarding(received) == {} and received["client"] == REMOTE


# -- the rule as a table ------------------------------------------------------------------------------
@pytest.mark.parametrize("proxies, peer, passes", [
    (["127.0.0.2"], "127.0.0.2", True),
    (["127.0.0.2"], "127.0.0.1", False),          # listed proxies only: loopback is no exception then
    (["10.0.0.0/24"], "10.0.0.7", True),
    (["10.0.0.0/24"], "10.0.1.7", False),
    ([], "127.0.0.1", True),
    ([], "127.0.0.5", True),
    ([], "::1", True),
    ([], "::ffff:127.0.0.1", True),                # a dual-stack socket's IPv4 loopback
    ([], "10.0.0.5", False),
    ([], "::ffff:10.0.0.5", False),
    ([], "", False),
])
def test_which_peer_may_forward(proxies, peer, passes):
    assert ForwardingFilter(parse_networks(proxies) if proxies else []).may_forward(peer) is passes


def test_a_loopback_peer_is_an_address_and_a_loopback_host_may_be_a_name():
    assert is_loopback_address("127.0.0.1") and is_loopback_address("::1") and not is_loopback_address("localhost")
    assert is_loopback_address("::ffff:127.0.0.1") and not is_loopback_address("::ffff:10.0.0.5")
    assert is_loopback("localhost") and is_loopback("::ffff:127.0.0.1") and not is_loopback("kiportal.stadt.example")


def test_an_unlisted_remote_proxy_is_named_in_one_warning(caplog):
    cleaner = ForwardingFilter([])
    scope = {"type": "http", "headers": [(b"host", b"x"), (b"X-Forwarded-Host", b"kiportal.stadt.example")]}
    with caplog.at_level(logging.WARNING, logger="ui.forwarded"):
        for _ in range(3):
            assert cleaner.clean(scope, "10.0.0.5")["headers"] == [(b"host", b"x")]
    warnings = [r.getMessage() for r in caplog.records if r.name == "ui.forwarded"]
    assert len(warnings) == 1 and "10.0.0.5" in warnings[0] and "auth.trusted_proxies" in warnings[0]
    assert cleaner.clean(scope, "127.0.0.1") is scope  # nothing to remove: the request as it came


def test_any_host_name_answered_without_allowed_hosts_is_named_in_one_warning(tmp_path_factory, caplog):
    """Probe s51's side note: a login mode without ``server.allowed_hosts`` answers every Host, and
    gradio names it as the page's root. Not a hole (a cache keys on Host), but the admin should list
    the public names: the first foreign name is logged once; loopback names say nothing."""
    import httpx

    with _portal(tmp_path_factory, "fwd-any-host", []) as portal, caplog.at_level(logging.WARNING, logger="ui.http_guard"):
        with httpx.Client(base_url=portal.url, timeout=30) as c:
            assert c.get("").status_code == 200  # the login page at the portal's own loopback address
            assert not [r for r in caplog.records if r.name == "ui.http_guard"]
            for name in (PUBLIC, "evil.example", PUBLIC):
                assert c.get("", headers={"Host": name}).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.name == "ui.http_guard" and "allowed_hosts" in r.getMessage()]
    assert len(warnings) == 1 and PUBLIC in warnings[0], warnings
