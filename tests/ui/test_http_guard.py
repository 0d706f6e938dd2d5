"""The front door's pure decisions, as tables (the HTTP behaviour: tests/security/)."""
from __future__ import annotations

import pytest

from ui.http_guard import FILE_ROUTE, host_allowed, host_name, same_origin


@pytest.mark.parametrize("header, name", [
    ("127.0.0.1:7860", "127.0.0.1"), ("LocalHost:7860", "localhost"), ("[::1]:7860", "::1"), ("[::1]", "::1"),
    ("kiportal.stadt.example", "kiportal.stadt.example"), ("", ""), ("::1", "::1"),
])
def test_host_name(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize("host, mode, allowed, ok", [
    ("127.0.0.1:7860", "none", [], True),
    ("localhost:7860", "none", [], True),
    ("[::1]:7860", "none", [], True),
    ("127.0.0.2:7860", "none", [], True),                   # all of 127/8 is loopback
    ("rebind.attacker.example:7860", "none", [], False),   # DNS rebinding against the login-free default
    ("", "none", [], False),                               # HTTP/1.0 without Host
    ("192.168.1.5:7860", "none", [], False),
    ("kiportal.stadt.example", "none", ["kiportal.stadt.example"], True),
    ("kiportal.stadt.example", "password", [], True),      # a login protects; proxies' names need no list
    ("rebind.attacker.example", "header", [], True),
    ("rebind.attacker.example", "password", ["kiportal.stadt.example"], False),  # once listed, in every mode
    ("KIPORTAL.stadt.example:443", "password", ["kiportal.stadt.example"], True),
    ("localhost:7860", "password", ["kiportal.stadt.example"], True),
    ("anything.example", "none", ["*"], True),
])
def test_host_allowed(host, mode, allowed, ok):
    assert host_allowed(host, mode, allowed) is ok


@pytest.mark.parametrize("origin, host, ok", [
    ("http://127.0.0.1:7860", "127.0.0.1:7860", True),
    ("https://evil.example", "kiportal.stadt.example", False),
    ("null", "127.0.0.1:7860", False),
    ("https://intranet.stadt.example", "kiportal.stadt.example", True),  # allowed below
])
def test_same_origin(origin, host, ok):
    assert same_origin(origin, host, ["https://intranet.stadt.example"]) is ok


@pytest.mark.parametrize("path, file", [
    ("/gradio_api/file=/tmp/x/a.txt", "/tmp/x/a.txt"),
    ("/gradio_api/file//tmp/x/a.txt", "/tmp/x/a.txt"),  # gradio's older route: the same rule
    ("/file=/tmp/x/a.txt", "/tmp/x/a.txt"),
    ("/file//tmp/x/a.txt", "/tmp/x/a.txt"),
    ("/gradio_api/files/x", None),
    ("/gradio_api/upload", None),
])
def test_file_route(path, file):
    m = FILE_ROUTE.match(path)
    assert (m.group(1) if m else None) == file
