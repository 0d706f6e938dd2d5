"""HTTP for OParl: polite (bounded, timed, retried with back-off) and distrustful.

The remote server is untrusted. So every URL it hands us is checked before it is
requested (http/https only, no private addresses unless the configured server itself
is one), redirects are followed by hand so each hop is checked too (httpx would follow
one to any scheme it supports), JSON and files are streamed with a byte limit and cut
off when the limit is passed (a declared ``Content-Length`` or ``size`` is not
believed), and nothing the server says about a file's type is used: the bytes are
sniffed later by the loaders.

Internal addresses: a host is refused when any of its addresses is not public (unless it
is the configured server's own host). The check is made where the connection is opened
(:class:`PinnedBackend`): the name is resolved once, every address checked, and the socket
connects to a checked address — so a DNS answer that changes between a check and the
connection (rebinding: public for the check, 127.0.0.1 for the connection) reaches nothing.
TLS still verifies the certificate against the host name. The URL check before each request
(and each redirect hop) stays: it refuses early, with the URL in the message.

Retries (tenacity): timeouts, connection errors, HTTP 429 and 5xx; never 4xx (a 404
file stays missing however often we ask). A server's ``Retry-After`` is honoured up to
a minute.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

_REDIRECTS = (301, 302, 303, 307, 308)
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_REDIRECTS = 5


class OParlError(Exception):
    """A request to the OParl server failed; the message is a sentence for the admin."""


class UnsafeURL(OParlError):
    pass


class TooLarge(OParlError):
    pass


class HTTPStatusError(OParlError):
    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"HTTP {status} für {url}")
        self.status = status


class _Retryable(Exception):
    """Internal: a response worth asking again for (429/5xx), with the server's wish when to."""

    def __init__(self, status: int, url: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status} für {url}")
        self.status = status
        self.url = url
        self.retry_after = retry_after


@dataclass(frozen=True)
class ClientConfig:
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 1.0
    concurrency: int = 4
    max_file_bytes: int = 100 * 1024 * 1024
    max_json_bytes: int = 20 * 1024 * 1024
    max_pages: int = 100000
    allow_private_networks: bool = False
    user_agent: str = "kiportal-oparl/1.0"

    @classmethod
    def from_settings(cls, s) -> "ClientConfig":
        return cls(timeout_s=s.timeout_s, retries=s.retries, backoff_s=s.backoff_s, concurrency=s.concurrency,
                   max_file_bytes=s.max_file_bytes, max_json_bytes=s.max_json_bytes, max_pages=s.max_pages,
                   allow_private_networks=s.allow_private_networks, user_agent=s.user_agent)


@dataclass(frozen=True)
class Download:
    path: Path
    size: int
    sha1: str


def _addresses(host: str) -> list[str]:
    """The addresses a connection to ``host`` may use, in the resolver's order (one lookup)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise httpcore.ConnectError(f"{host}: {exc}") from None
    return list(dict.fromkeys(i[4][0].split("%", 1)[0] for i in infos))


def _any_internal(addrs: list[str]) -> bool:
    """True when one of ``addrs`` is not public (loopback, private, link-local, …)."""
    return any(not ipaddress.ip_address(a).is_global for a in addrs)


def _is_private(host: str) -> bool:
    """True when ``host`` is or resolves to a non-public address (the URL check's question)."""
    try:
        return _any_internal(_addresses(host))
    except httpcore.ConnectError:
        return False  # unresolvable: the request itself will fail with a clear error


class PinnedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, but the address checked is the address connected to.

    ``may_be_private(origin)`` (:func:`origin_of`) says whether that server may resolve to an internal address
    (the configured server itself, or ``allow_private_networks``); otherwise one non-public
    address refuses the host, as :func:`check_url` does."""

    def __init__(self, may_be_private: Callable[[str], bool]) -> None:
        self.may_be_private = may_be_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        addrs = _addresses(host)
        if not self.may_be_private(_origin(host, port)) and _any_internal(addrs):
            raise UnsafeURL(f"Adresse im internen Netz nicht erlaubt: {host}")
        last: Exception | None = None
        for addr in addrs:  # as socket.create_connection does, but only over the checked addresses
            try:
                return super().connect_tcp(addr, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host}: keine Adresse")


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(host: str, port: int | None) -> str:
    host = host.lower()
    return host if port in (None, 80, 443) else f"{host}:{port}"


def origin_of(url: str) -> str:
    """The server of a URL: its host, with the port when it is not http's or https's own
    ("ris.example.de", "127.0.0.1:8080"; "" for a URL without a host).

    An OParl source is its origin: the admin trusts *that server*, not every service on its host,
    and a server speaks only for the objects whose ids are on it (:mod:`ingest.oparl.sync`). The
    two default ports count as one server, since a server behind a TLS proxy often writes http ids
    while it is configured by its https URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except (ValueError, TypeError):
        return ""
    if not parts.hostname or parts.scheme not in _DEFAULT_PORTS:
        return ""
    return _origin(parts.hostname, port)


def check_url(url: str, trusted_origins: frozenset[str] = frozenset(), allow_private: bool = False,
              is_private: Callable[[str], bool] = _is_private) -> str:
    """Return ``url`` if it may be requested, else raise :class:`UnsafeURL` (pure apart from DNS).

    ``trusted_origins``: ``host:port`` of the URLs the admin configured (:func:`origin_of`); those
    may be internal (a council system on the city's own network), any other host, or another port
    of that host, a server links to may not (found by an attacker's probe: one source's data made
    the portal call another service on the trusted host)."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("leere oder ungültige URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"nur http(s) erlaubt, nicht „{parts.scheme or '?'}“: {url[:200]}")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeURL(f"URL ohne Host: {url[:200]}")
    if origin_of(url) not in trusted_origins and not allow_private and is_private(host):
        raise UnsafeURL(f"Adresse im internen Netz nicht erlaubt: {host}")
    return url


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "")
    try:
        return min(60.0, max(0.0, float(value)))
    except ValueError:
        return None


class OParlClient:
    """One HTTP client per sync run; thread-safe (downloads run on a small pool)."""

    def __init__(self, config: ClientConfig, trusted_urls: tuple[str, ...] = ()) -> None:
        self.config = config
        self.trusted_origins = frozenset(filter(None, (origin_of(u) for u in trusted_urls)))
        limits = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
        transport = httpx.HTTPTransport(limits=limits)
        # httpx has no parameter for the socket backend: its pool takes one, used for every new connection
        transport._pool._network_backend = PinnedBackend(
            lambda origin: origin in self.trusted_origins or config.allow_private_networks)
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(config.timeout_s),
            limits=limits,
            headers={"User-Agent": config.user_agent, "Accept": "application/json"},
            follow_redirects=False,
            trust_env=False,  # no proxy or netrc from the environment: the city configures what it wants here
        )
        self._lock = threading.Lock()
        self._private: dict[str, bool] = {}  # host -> resolves to an internal address (one lookup per run)
        self.requests = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "OParlClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the one request path ---------------------------------------------------------
    def _is_private(self, host: str) -> bool:
        if host not in self._private:
            self._private[host] = _is_private(host)
        return self._private[host]

    def _check(self, url: str) -> str:
        return check_url(url, self.trusted_origins, self.config.allow_private_networks, self._is_private)

    def _retrying(self) -> Retrying:
        def wait(state) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                return exc.retry_after
            return wait_exponential(multiplier=self.config.backoff_s, max=60)(state)

        return Retrying(
            stop=stop_after_attempt(self.config.retries + 1),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, (_Retryable, httpx.TransportError))),
            reraise=True,
        )

    def _stream(self, url: str, params: dict | None, max_bytes: int, sink) -> str:
        """GET ``url`` (redirects checked hop by hop) and feed the body to ``sink(bytes)``;
        returns the final URL. Raises :class:`OParlError` subclasses with German messages."""
        try:
            for attempt in self._retrying():
                with attempt:
                    sink(None)  # reset: a retried download starts from the first byte
                    return self._stream_once(url, params, max_bytes, sink)
        except _Retryable as exc:
            raise HTTPStatusError(exc.status, exc.url) from None
        except httpx.TimeoutException:
            raise OParlError(f"Zeitüberschreitung nach {self.config.timeout_s:g} s: {url[:200]}") from None
        except httpx.TransportError as exc:
            raise OParlError(f"Verbindung fehlgeschlagen ({type(exc).__name__}): {url[:200]}") from None
        raise AssertionError("unreachable")

    def _stream_once(self, url: str, params: dict | None, max_bytes: int, sink) -> str:
        current = self._check(url)
        for _hop in range(MAX_REDIRECTS + 1):
            with self._lock:
                self.requests += 1
            with self._http.stream("GET", current, params=params) as resp:
                if resp.status_code in _REDIRECTS:
                    location = resp.headers.get("location")
                    if not location:
                        raise OParlError(f"Weiterleitung ohne Ziel: {current[:200]}")
                    current = self._check(urljoin(current, location))
                    params = None  # the target URL carries its own query
                    continue
                if resp.status_code in _RETRY_STATUS:
                    raise _Retryable(resp.status_code, current, _retry_after(resp))
                if resp.status_code >= 400:
                    raise HTTPStatusError(resp.status_code, current)
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise TooLarge(f"größer als {max_bytes} Bytes (laut Server {int(declared)}): {current[:200]}")
                total = 0
                for chunk in resp.iter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise TooLarge(f"größer als {max_bytes} Bytes, Übertragung abgebrochen: {current[:200]}")
                    sink(chunk)
                return current
        raise OParlError(f"zu viele Weiterleitungen: {url[:200]}")

    # -- JSON objects and lists ------------------------------------------------------
    def get_json(self, url: str, params: dict | None = None) -> dict:
        buf = bytearray()

        def sink(chunk: bytes | None) -> None:
            if chunk is None:
                buf.clear()
            else:
                buf.extend(chunk)

        self._stream(url, params, self.config.max_json_bytes, sink)
        try:
            data = json.loads(bytes(buf))
        except ValueError:
            raise OParlError(f"Antwort ist kein JSON: {url[:200]}") from None
        except RecursionError:  # nesting deeper than Python's stack: no OParl object is built like that
            raise OParlError(f"Antwort zu tief verschachtelt: {url[:200]}") from None
        if not isinstance(data, dict):
            raise OParlError(f"Antwort ist kein JSON-Objekt: {url[:200]}")
        return data

    def iter_list(self, url: str, params: dict | None = None,
                  on_page: Callable[[dict], None] | None = None) -> Iterator[dict]:
        """Every object of an OParl list, following ``links.next`` (each page URL checked;
        a ``next`` seen before ends the walk instead of looping forever)."""
        seen: set[str] = set()
        page_url: str | None = url
        pages = 0
        while page_url:
            if page_url in seen:
                log.warning("OParl list loops back to %s; stopping", page_url)
                return
            seen.add(page_url)
            pages += 1
            if pages > self.config.max_pages:
                raise OParlError(f"mehr als {self.config.max_pages} Listenseiten: {url[:200]}")
            page = self.get_json(page_url, params if pages == 1 else None)
            data = page.get("data")
            if not isinstance(data, list):
                raise OParlError(f"keine OParl-Liste (Feld „data“ fehlt): {page_url[:200]}")
            if on_page is not None:
                on_page(page)
            for obj in data:
                if isinstance(obj, dict):
                    yield obj
            links = page.get("links") if isinstance(page.get("links"), dict) else {}
            nxt = links.get("next")
            page_url = nxt if isinstance(nxt, str) and nxt else None

    # -- files --------------------------------------------------------------------------
    def download(self, url: str, dest: Path) -> Download:
        """Stream ``url`` into ``dest`` (cut off above ``max_file_bytes``); SHA-1 for OParl's checksum."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        state: dict = {}

        def sink(chunk: bytes | None) -> None:
            if chunk is None:
                if "fh" in state:
                    state["fh"].close()
                state["fh"] = open(dest, "wb")
                state["sha1"] = hashlib.sha1()
                state["size"] = 0
                return
            state["fh"].write(chunk)
            state["sha1"].update(chunk)
            state["size"] += len(chunk)

        try:
            self._stream(url, None, self.config.max_file_bytes, sink)
        except BaseException:
            if "fh" in state:
                state["fh"].close()
            dest.unlink(missing_ok=True)
            raise
        state["fh"].close()
        return Download(dest, state["size"], state["sha1"].hexdigest())
