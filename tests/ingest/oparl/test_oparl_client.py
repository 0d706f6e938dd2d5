"""The OParl HTTP client against the real test server: what it refuses, when it gives up, when it retries."""
from __future__ import annotations

import pytest
from oparl_world import FileSpec

from ingest.oparl.client import (
    ClientConfig, HTTPStatusError, OParlClient, OParlError, TooLarge, UnsafeURL, check_url, origin_of,
)


@pytest.mark.parametrize("url, trusted, private_ok, ok", [
    ("https://ris.example.org/oparl", (), False, True),
    ("http://ris.example.org/oparl", (), False, True),
    ("file:///etc/passwd", (), True, False),
    ("ftp://ris.example.org/x", (), True, False),
    ("gopher://127.0.0.1:70/", ("127.0.0.1:70",), True, False),
    ("javascript:alert(1)", (), True, False),
    ("https:///nohost", (), True, False),
    ("http://169.254.169.254/latest/meta-data", (), False, False),  # cloud metadata
    ("http://10.1.2.3/oparl", (), False, False),
    ("http://[::1]:8080/", (), False, False),
    ("http://127.0.0.1:8080/oparl", ("127.0.0.1:8080",), False, True),   # the admin's own server
    ("http://127.0.0.1:9200/_cat", ("127.0.0.1:8080",), False, False),   # not another service on its host (probe)
    ("http://127.0.0.1/oparl", ("127.0.0.1:8080",), False, False),
    ("https://localhost/oparl", ("localhost",), False, True),            # http's and https's ports: one server
    ("http://localhost:443/oparl", ("localhost",), False, True),
    ("http://localhost:8443/oparl", ("localhost",), False, False),
    ("http://10.1.2.3/oparl", (), True, True),                     # allow_private_networks
])
def test_check_url(url, trusted, private_ok, ok):
    if ok:
        assert check_url(url, frozenset(trusted), private_ok) == url
    else:
        with pytest.raises(UnsafeURL):
            check_url(url, frozenset(trusted), private_ok)


@pytest.mark.parametrize("url, origin", [
    ("https://ris.example.de/oparl/v1", "ris.example.de"),
    ("http://RIS.example.de/oparl/v1/paper/1", "ris.example.de"),  # http ids of a server behind a TLS proxy
    ("https://ris.example.de:443/x", "ris.example.de"),
    ("http://127.0.0.1:8080/oparl", "127.0.0.1:8080"),
    ("http://[::1]:9200/", "::1:9200"),
    ("file:///etc/passwd", ""), ("https:///nohost", ""), ("http://x:99999/", ""), (None, ""),
])
def test_origin_of(url, origin):
    assert origin_of(url) == origin


def client_for(server, **cfg) -> OParlClient:
    return OParlClient(ClientConfig(**{"timeout_s": 2.0, "retries": 1, "backoff_s": 0.01, **cfg}),
                       trusted_urls=(server.system_url,))


def test_redirect_to_another_scheme_is_refused(oparl_server, tmp_path):
    oparl_server.redirects["/go"] = "file:///etc/passwd"
    with client_for(oparl_server) as c, pytest.raises(UnsafeURL, match="nur http"):
        c.download(oparl_server.base + "/go", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_redirect_to_internal_host_is_refused_and_same_host_is_followed(oparl_server, tmp_path):
    oparl_server.redirects["/meta"] = "http://169.254.169.254/latest/meta-data"
    oparl_server.redirects["/moved"] = "/oparl/v1"
    with client_for(oparl_server) as c:
        with pytest.raises(UnsafeURL, match="internen Netz"):
            c.get_json(oparl_server.base + "/meta")
        assert c.get_json(oparl_server.base + "/moved")["name"] == "Ratsinformationssystem Musterstadt"


def test_huge_download_is_cut_off_while_streaming(oparl_server, tmp_path):
    oparl_server.world.files["/big"] = spec = FileSpec(huge_bytes=50 * 1024 * 1024)
    with client_for(oparl_server, max_file_bytes=256 * 1024) as c, pytest.raises(TooLarge, match="abgebrochen"):
        c.download(oparl_server.base + "/big", tmp_path / "big")
    assert not (tmp_path / "big").exists()
    assert spec.sent < 50 * 1024 * 1024  # the server was stopped long before the end


def test_declared_content_length_over_the_limit_is_refused_before_reading(oparl_server, tmp_path):
    oparl_server.world.files["/declared"] = FileSpec(content=b"%PDF-" + b"x" * 5000)
    with client_for(oparl_server, max_file_bytes=1000) as c, pytest.raises(TooLarge, match="laut Server"):
        c.download(oparl_server.base + "/declared", tmp_path / "d")


def test_timeout_is_retried_then_reported(oparl_server, tmp_path):
    oparl_server.world.files["/slow"] = FileSpec(content=b"late", delay_s=1.5)
    with client_for(oparl_server, timeout_s=0.2, retries=1) as c, pytest.raises(OParlError, match="Zeitüberschreitung"):
        c.download(oparl_server.base + "/slow", tmp_path / "s")
    assert oparl_server.requests.count("/slow") == 2


def test_404_is_not_retried(oparl_server, tmp_path):
    with client_for(oparl_server, retries=3) as c, pytest.raises(HTTPStatusError, match="HTTP 404"):
        c.download(oparl_server.base + "/files/119b/fotos.pdf", tmp_path / "f")
    assert oparl_server.requests.count("/files/119b/fotos.pdf") == 1


def test_server_errors_are_retried_with_backoff(oparl_server):
    world = oparl_server.world
    world.files["/oparl/v1"] = FileSpec(status=503)
    with client_for(oparl_server, retries=2) as c, pytest.raises(HTTPStatusError, match="HTTP 503"):
        c.get_json(oparl_server.system_url)
    assert oparl_server.requests.count("/oparl/v1") == 3  # first try + 2 retries
    del world.files["/oparl/v1"]
    with client_for(oparl_server, retries=2) as c:
        assert c.get_json(oparl_server.system_url)["type"].endswith("/System")


def test_list_follows_next_and_stops_on_a_loop(oparl_server):
    with client_for(oparl_server) as c:
        ids = [o["id"].rsplit("/", 1)[-1] for o in c.iter_list(oparl_server.base + "/oparl/v1/body/1/papers")]
    assert ids == ["117", "118", "119", "120", "121", "122", "123"]
    assert sum(r.startswith("/oparl/v1/body/1/papers") for r in oparl_server.requests) == 4
    world = oparl_server.world
    loop = {"data": [], "links": {"next": oparl_server.base + "/loop"}}
    world.objects["/loop"] = loop
    with client_for(oparl_server) as c:
        assert list(c.iter_list(oparl_server.base + "/loop")) == []
    assert oparl_server.requests.count("/loop") == 1


def test_json_responses_are_size_limited(oparl_server):
    with client_for(oparl_server, max_json_bytes=1024) as c, pytest.raises(TooLarge):
        c.get_json(oparl_server.base + "/oparl/v1/body/1/papers")


def test_json_nested_deeper_than_the_stack_is_an_oparl_error(oparl_server):
    """Found by an attacker's probe: it raised RecursionError, which no caller expects from a server."""
    oparl_server.world.files["/deep"] = FileSpec(content=b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    with client_for(oparl_server, max_json_bytes=1024 * 1024) as c, pytest.raises(OParlError, match="verschachtelt"):
        c.get_json(oparl_server.base + "/deep")


def test_dns_rebinding_reaches_nothing(oparl_server, monkeypatch):
    """A name that resolves to a public address for the check and to 127.0.0.1 for the connection
    (DNS rebinding) must not reach the local server: the address checked is the one connected to."""
    import socket

    real = socket.getaddrinfo
    port = int(oparl_server.base.rsplit(":", 1)[1].split("/", 1)[0])
    lookups: list[str] = []

    def rebinding(host, *args, **kwargs):
        if host != "ris.rebind.example":
            return real(host, *args, **kwargs)
        lookups.append(host)
        addr = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"  # public first, then the victim
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (addr, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    before = len(oparl_server.requests)
    with client_for(oparl_server, retries=0) as c, pytest.raises(UnsafeURL, match="internen Netz"):
        c.get_json(f"http://ris.rebind.example:{port}/oparl/v1")
    assert len(lookups) >= 2  # the URL check saw a public address, the connection another answer
    assert len(oparl_server.requests) == before  # the local server was never reached


def test_the_configured_server_may_be_internal_and_is_connected(oparl_server):
    with client_for(oparl_server) as c:  # 127.0.0.1: the admin's own server
        assert c.get_json(oparl_server.system_url)["name"] == "Ratsinformationssystem Musterstadt"
