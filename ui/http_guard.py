"""The portal's front door: one ASGI middleware in front of every route, gradio's and ours.

Why here and not in the handlers alone: gradio answers many routes itself (``/config``,
``/gradio_api/info``, ``/gradio_api/upload``, ``/gradio_api/file=…``, the queue,
``/openapi.json``), and in header mode it knows no login at all. Every request passes:

1. **Identity.** Header mode: the request must come from a trusted proxy, with the proxy
   secret if one is set, and name a valid user (:mod:`ui.header_auth`); else 401/403 for
   every route. Password mode: without a live session (:mod:`assistant.sessions`) only the
   login page and its static files answer; the page gets no API description.
2. **Host and cross-origin.** Without login only requests for a loopback name pass (DNS rebinding:
   a foreign page re-pointed to 127.0.0.1 sends its own name as Host); ``server.allowed_hosts``
   extends that check to every mode. A request with two Host or two Cookie headers is refused
   (the door would check one, the app use the other). A browser request from a foreign origin
   (not this host, not in ``server.allowed_origins``) never changes anything (CSRF: 403 for POST
   & co., and for preflights) and gets no CORS headers; allowed origins get them with credentials.
3. **Files.** A call naming a file the user did not upload here is refused before gradio
   copies it (:mod:`ui.file_values`); uploads are recorded per user; an export is served
   only to its owner and deleted after the download; other files in gradio's folder are
   not served at all.
4. **Tabs and the queue.** gradio's session hash (a browser tab) belongs to the user who sent it
   first; another user's hash is refused on every route that names one (:mod:`ui.tab_owners`).
   A user with ``server.max_open_events_per_user`` events waiting or running gets 429 for more,
   and uploads count against ``server.upload_quota_mb`` per user and hour. gradio's ``/call/…``
   routes (a second way into the queue, by event id rather than tab) are closed.
5. **Headers.** A request's proxy headers (``X-Forwarded-Host`` and kin, ``Forwarded``: gradio builds
   the page's root URL from them) reach gradio only from a trusted proxy, or from loopback when
   ``auth.trusted_proxies`` is empty (:mod:`ui.forwarded`). Every response carries
   frame-ancestors/X-Frame-Options, nosniff, a referrer policy, a CSP gradio works with, and
   ``X-Request-ID``; the login cookie gets ``SameSite=Lax`` (or Strict) instead of gradio's ``None``.
6. **Errors.** An exception escaping a route becomes a German message with the request id;
   the details go to the log only.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from ui.file_values import RECEIVED, is_inside, refused_file_values
from ui.forwarded import ForwardingFilter
from ui.header_auth import identify, is_trusted, parse_networks
from ui.login import client_address
from ui.login_devices import cookie_header, device_cookies_of, issued, request_cookies
from ui.login_page import login_page
from ui.security import is_loopback
from ui.tab_owners import BODY_HASH_ROUTE, JOIN_ROUTE, TabOwners, concurrency_group, open_events, tabs_of
from ui.texts import t

log = logging.getLogger(__name__)

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MAX_CALL_BODY = 2 * 1024 * 1024  # JSON calls (queue/join, run, call); uploads go to /upload
CSP_PORTAL = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data: blob:; media-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
              "worker-src 'self' blob:; frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
              "frame-ancestors 'none'")
SECURITY_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"same-origin",
    b"cross-origin-opener-policy": b"same-origin",
    b"permissions-policy": b"camera=(), microphone=(), geolocation=()",
}
# never answered: API descriptions and tools the portal does not offer (``deep_link`` wrote a tab's whole
# page state, any user's by its session hash, for ``/config?deep_link=…`` to hand out: one-time passwords)
CLOSED_PATHS = re.compile(r"^/(openapi\.json|docs|redoc|monitoring.*|(gradio_api/)?call/.*|"
                          r"gradio_api/(openapi\.json|docs|mcp.*|runs.*|dev/.*|deep_link|"
                          r"run-history/.*|vibe.*|undo-vibe.*|profiling/.*|process_recording|file=https?:.*))/?$")
# password mode without a session: the portal's own login page (it loads nothing: ui.login_page), the
# login and logout routes, and the document routes (they answer with their own "please sign in" page);
# none of gradio's scripts, styles or API routes
LOGIN_PATHS = re.compile(r"^/(|login/?|logout/?|favicon\.ico|robots\.txt|doc/.*)$")
# gradio's file route, also its older form ``/file/<path>`` that gradio still answers (same files)
FILE_ROUTE = re.compile(r"^/(?:gradio_api/)?file[=/](.+)$")
LOGIN_ROUTE = re.compile(r"^/login/?$")
UPLOAD_ROUTE = re.compile(r"^/(?:gradio_api/)?upload/?$")
#: gradio streams an upload's progress, with its file names, to whoever names its ``upload_id``
UPLOAD_ID_ROUTE = re.compile(r"^/(?:gradio_api/)?upload(?:_progress)?/?$")
#: headers the door decides on and the app reads too: the door read the last of two, Starlette (gradio's root
#: URL, its session cookie) the first, so two Host headers passed ``server.allowed_hosts`` with a foreign
#: name first, and two Cookie headers were two users at once. One each (RFC 9110, RFC 6265), else 400
SINGLE_HEADERS = frozenset({b"host", b"cookie"})
CALL_ROUTE = re.compile(r"^/(?:gradio_api/)?(queue/join|run/.+|call/.+|api/.+|stream/.+|component_server)/?$")


@dataclass
class GuardConfig:
    settings: Any
    users: Any
    audit: Any
    sessions: Any = None  # SessionStore (password mode)
    cookie_names: Callable[[], list[str]] = field(default=lambda: [])
    upload_folder: Callable[[], Path] = field(default=lambda: Path("/nonexistent"))
    tabs: TabOwners = field(default_factory=TabOwners)
    #: upload ids, by the same rule as tabs: the first user to send one owns it
    uploads: TabOwners = field(default_factory=TabOwners)
    open_events: Callable[[str, Any], int] = field(default=lambda user, fn_index: 0)  # the user's events of that kind
    subjects: Any = None  # SubjectBindings (header mode with auth.subject_header)
    refusals: Any = None  # ui.login.HeldBackAudit: refused SSO subjects, one audit row a minute each


def internal_error(rid: str) -> str:
    """What a failed request says: in German, with the number under which the log has the details."""
    return f"Interner Fehler. Bitte versuchen Sie es später erneut (Vorgangsnummer {rid})."


def _plain_text(raw_headers) -> bool:
    """A plain-text response, as the app's own "Internal Server Error" is (gradio's API errors are JSON)."""
    return any(k.lower() == b"content-type" and v.lower().startswith(b"text/plain") for k, v in raw_headers)


class _Answer(Exception):
    def __init__(self, status: int, text: str, *, json_body: bool = True, extra: dict | None = None) -> None:
        super().__init__(status)
        self.status, self.text, self.json_body, self.extra = status, text, json_body, extra or {}


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _repeated(scope, names: frozenset) -> list[str]:
    """Which of ``names`` the request carries more than once."""
    seen: dict[bytes, int] = {}
    for k, _ in scope.get("headers", []):
        key = k.lower()
        if key in names:
            seen[key] = seen.get(key, 0) + 1
    return sorted(k.decode("latin-1") for k, n in seen.items() if n > 1)


def _identity_encoding(scope) -> dict:
    """The scope without Accept-Encoding: a body read here must not come back brotli-compressed."""
    scope = dict(scope)
    scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"accept-encoding"]
    return scope


def same_origin(origin: str, host: str, allowed: list[str]) -> bool:
    """True for the portal's own origin (Host header) and the configured allow-list."""
    if origin in allowed:
        return True
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == (host or "").lower()


def host_name(host_header: str) -> str:
    """The name of a Host header without its port ("[::1]:7860" → "::1"), lower case."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host_header: str, mode: str, allowed_hosts: list[str]) -> bool:
    """Whether the portal answers a request for this Host. Without login (mode ``none``) only its
    loopback names: a web page whose name an attacker re-points to 127.0.0.1 (DNS rebinding) sends
    its own name as Host and Origin, so the same-origin check alone would let it act as the local
    admin. With ``server.allowed_hosts`` set, in every mode only those names (and loopback);
    ``"*"`` switches the check off."""
    allowed = [h.strip().lower() for h in allowed_hosts]
    if "*" in allowed:
        return True
    if not allowed and mode != "none":
        return True  # a login protects these modes; the names of a reverse proxy need no listing
    name = host_name(host_header)
    return bool(name) and (name in allowed or is_loopback(name))


class PortalGuard:
    """Pure ASGI middleware (streams and SSE pass through untouched)."""

    def __init__(self, app, config: GuardConfig) -> None:
        self.app = app
        self.cfg = config
        self.auth = config.settings.auth
        self.allowed_origins = [o.rstrip("/") for o in config.settings.server.allowed_origins]
        self.allowed_hosts = list(config.settings.server.allowed_hosts)
        self.proxies = parse_networks(self.auth.trusted_proxies) if self.auth.trusted_proxies else []
        self.forwarding = ForwardingFilter(self.proxies)
        self._any_host_warned = False

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _peer(scope) -> str:
        """The address that connected (the proxy itself, behind one)."""
        return (scope.get("client") or ("", 0))[0] or ""

    def _client(self, scope, headers: dict[str, str]) -> str:
        peer = self._peer(scope)
        forwarded = headers.get("x-forwarded-for", "")
        if forwarded and self.proxies and is_trusted(peer, self.proxies):
            # the entry the proxy added; an empty one ("a,") is no address: the proxy's own counts then
            return forwarded.split(",")[-1].strip() or peer
        return peer

    def _https(self, scope, headers: dict[str, str]) -> bool:
        """Whether the browser reached the portal over HTTPS (directly, or through a trusted proxy)."""
        if scope.get("scheme") == "https":
            return True
        peer = self._peer(scope)
        return (bool(self.proxies) and is_trusted(peer, self.proxies)
                and headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower() == "https")

    def _session_user(self, headers: dict[str, str]) -> tuple[str | None, str | None]:
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is no login
            return None, None
        for name in self.cfg.cookie_names():
            if name in cookies:
                token = cookies[name].value
                user = self.cfg.sessions.user_of(token) if self.cfg.sessions is not None else None
                if user:
                    return user, token
        return None, None

    # -- the door ------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        rid = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = rid
        # before anything reads them: an untrusted peer's X-Forwarded-Host would become gradio's root URL
        scope = self.forwarding.clean(scope, self._peer(scope))
        headers = _headers(scope)
        path = scope.get("path", "/")
        method = scope.get("method", "GET").upper()
        client = self._client(scope, headers)
        token = client_address.set(client)
        started = False
        new_cookies: list[tuple[str, str]] = []  # device cookies a login issues (ui.login_devices)

        replaced = False  # the app's own plain 500 ("Internal Server Error", English, no number) went out as ours

        async def internal_500(json_body: bool = True):
            """The German 500 with the request's number: for a failure here (JSON, as every answer of the
            door) and in place of the app's own plain one (plain text, as it was)."""
            nonlocal started
            started = True
            await self._answer(lambda m: send(m) if m["type"] != "http.response.start" else send(
                dict(m, headers=self._response_headers(list(m["headers"]), rid, headers))),
                _Answer(500, internal_error(rid), json_body=json_body), rid)

        async def send_wrapped(message):
            nonlocal started, replaced
            if replaced:
                return  # the app's body of the 500 we replaced
            if message["type"] == "http.response.start":
                started = True
                raw = list(message.get("headers", []))
                if message.get("status") == 500 and _plain_text(raw):
                    replaced = True
                    log.error("request %s %s: the app answered 500 (request id %s)", method, path, rid)
                    return await internal_500(json_body=False)
                if new_cookies and message.get("status") == 200:
                    raw += [(b"set-cookie", cookie_header(c, secure=self._https(scope, headers))) for c in new_cookies]
                message["headers"] = self._response_headers(raw, rid, headers)
            await send(message)

        if scope["type"] == "websocket":
            try:
                self._gate(scope, headers, path, method, client)
            except _Answer:
                return await send({"type": "websocket.close", "code": 1008})
            finally:
                client_address.reset(token)
            return await self.app(scope, receive, send)
        # a password login sees the browser's device cookies and may issue one
        logging_in = self.auth.mode == "password" and method == "POST" and bool(LOGIN_ROUTE.match(path))
        cookies_token = request_cookies.set(device_cookies_of(headers.get("cookie", "")) if logging_in else {})
        issued_token = issued.set(new_cookies if logging_in else None)
        try:
            user = self._gate(scope, headers, path, method, client)
            if method == "OPTIONS" and "access-control-request-method" in headers:
                return await self._preflight(headers, send_wrapped)
            body = None
            if user and method == "POST" and (CALL_ROUTE.match(path) or BODY_HASH_ROUTE.match(path)):
                receive, body = await self._check_call(receive, user, path)
            if user:
                query = scope.get("query_string", b"").decode("latin-1")
                self._check_tab(user, path, query, body)
                if UPLOAD_ID_ROUTE.match(path):
                    self._check_upload_id(user, path, query)
            if user and method == "POST" and JOIN_ROUTE.match(path):
                self._check_open_events(user, body)
            if user and method == "POST" and UPLOAD_ROUTE.match(path):
                self._check_upload_quota(user, headers)
                return await self._upload(scope, receive, send_wrapped, user)
            if method in ("GET", "HEAD") and FILE_ROUTE.match(path):
                return await self._file(scope, receive, send_wrapped, user, path)
            if user is None and path == "/" and method in ("GET", "HEAD") and self.auth.mode == "password":
                return await self._login_page(scope, send_wrapped)
            if self.auth.mode == "password" and re.match(r"^/logout/?$", path):
                if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
                    # a link or image on another site must not end the user's sessions (gradio's
                    # logout is a GET, and SameSite=Lax sends the cookie along on a link)
                    raise _Answer(403, "Abmelden nur aus dem Portal heraus.")
                self._logout(headers)
            await self.app(scope, receive, send_wrapped)
        except _Answer as ans:
            await self._answer(send_wrapped, ans, rid)
        except Exception:
            log.exception("request %s %s failed (request id %s)", method, path, rid)
            if not started:
                await internal_500()
        finally:
            client_address.reset(token)
            request_cookies.reset(cookies_token)
            issued.reset(issued_token)

    def _warn_any_host(self, host_header: str) -> None:
        """One warning when a login mode without ``server.allowed_hosts`` answers a name that is not
        loopback: gradio names that Host as the page's root URL (links in the page and its config), so
        the portal should know its public names. A cache in front keys on Host, so one client cannot
        poison another's page (probe s51); listing the names closes it."""
        if self._any_host_warned or self.allowed_hosts or self.auth.mode == "none":
            return
        name = host_name(host_header)
        if name and not is_loopback(name):
            self._any_host_warned = True
            log.warning("server.allowed_hosts is empty: the portal answers any host name (first: %r) and gradio "
                        "uses it in the page's links; set server.allowed_hosts to the portal's public name(s)",
                        name[:100])

    def _gate(self, scope, headers, path, method, client) -> str | None:
        """The user name of the request, or _Answer when it may not pass."""
        if CLOSED_PATHS.match(path):
            raise _Answer(404, "Nicht gefunden.")
        repeated = _repeated(scope, SINGLE_HEADERS)
        if repeated:
            log.warning("%s %s with %s more than once refused", method, path, ", ".join(repeated))
            raise _Answer(400, "Ungültige Anfrage: Kopfzeile mehrfach gesendet. / Header sent more than once.")
        if not host_allowed(headers.get("host", ""), self.auth.mode, self.allowed_hosts):
            log.warning("%s %s for unknown host %r refused", method, path, headers.get("host", "")[:100])
            raise _Answer(400, "Unbekannter Servername (Host) – Anfrage abgelehnt. / Unknown host name.")
        self._warn_any_host(headers.get("host", ""))
        origin = headers.get("origin", "")
        foreign = origin and not same_origin(origin.rstrip("/"), headers.get("host", ""), self.allowed_origins)
        if foreign and (method not in SAFE_METHODS or (method == "OPTIONS" and "access-control-request-method" in headers)
                        or scope["type"] == "websocket"):
            log.warning("cross-origin %s %s from %s refused", method, path, origin)
            raise _Answer(403, "Anfrage von fremder Herkunft abgelehnt.")
        if not origin and method not in SAFE_METHODS and headers.get("sec-fetch-site") == "cross-site":
            raise _Answer(403, "Anfrage von fremder Herkunft abgelehnt.")
        mode = self.auth.mode
        if mode == "none":
            return "lokal"
        if mode == "header":
            # who vouches is the peer (the proxy itself), never the X-Forwarded-For address it adds
            # for the browser: that one is no proxy, and taking it locked every SSO user out
            peer = self._peer(scope)
            decision = identify(peer, headers, self.auth, self.cfg.users)
            if decision.user is None:
                spoof = decision.reason in ("untrusted_address", "proxy_secret_missing", "proxy_secret_wrong", "invalid_user_name")
                if spoof and (headers.get(self.auth.header_name.lower()) or decision.reason != "untrusted_address"):
                    self.cfg.audit.record("header_auth_refused", (headers.get(self.auth.header_name.lower()) or "?")[:64],
                                          path[:200], {"address": client, "reason": decision.reason})
                log.warning("header auth refused for %s %s from %s: %s", method, path, client, decision.reason)
                raise _Answer(401 if decision.reason in ("untrusted_address", "no_user_header") else 403,
                              "Anmeldung erforderlich: Das Portal ist nur über den Anmelde-Proxy erreichbar.")
            if decision.subject:
                self._bind_subject(decision.user.name, decision.subject, path, client)
            scope["state"]["kiportal_user"] = decision.user
            return decision.user.name
        user, _ = self._session_user(headers)
        if user is None and not LOGIN_PATHS.match(path):
            raise _Answer(401, "Anmeldung erforderlich.")
        return user

    def _bind_subject(self, name: str, subject: str, path: str, client: str) -> None:
        """Header mode with a subject: the name's person (assistant.sso_subjects). Another subject for
        a bound name is refused until an admin hands the name on; audited once a minute per subject
        (a refused page load is dozens of requests)."""
        binding = self.cfg.subjects.bind(name, subject)
        if not binding.refused:
            return
        action = "sso_subject_conflict" if binding.reason == "conflict" else "header_auth_refused"
        self.cfg.refusals.record(f"{name}|{subject}", action, name, {"address": client, "reason": f"subject_{binding.reason}",
                                                                   "path": path[:200]}, time.time())
        raise _Answer(403, "Dieser Benutzername ist einer anderen Person zugeordnet. Bitte wenden Sie sich an die "
                           "Administration (kiportal users handover).")

    def _response_headers(self, raw: list, rid: str, req: dict[str, str]) -> list:
        out, present = [], set()
        origin = req.get("origin", "").rstrip("/")
        allowed = origin and origin in self.allowed_origins
        for k, v in raw:
            key = k.lower()
            if key.startswith(b"access-control-"):
                continue  # the policy is set here, whatever gradio added
            if key == b"set-cookie":
                v = self._cookie(v)
            present.add(key)
            out.append((k, v))
        for k, v in SECURITY_HEADERS.items():
            if k not in present:
                out.append((k, v))
        if b"content-security-policy" not in present:
            # a PDF opens in the browser's own viewer, which a page policy (object-src) would block
            pdf = any(k.lower() == b"content-type" and v.startswith(b"application/pdf") for k, v in raw)
            out.append((b"content-security-policy", b"frame-ancestors 'none'" if pdf else CSP_PORTAL.encode()))
        out.append((b"x-request-id", rid.encode()))
        if allowed:
            out += [(b"access-control-allow-origin", origin.encode()), (b"access-control-allow-credentials", b"true"),
                    (b"vary", b"Origin")]
        return out

    def _cookie(self, value: bytes) -> bytes:
        text = value.decode("latin-1")
        text = re.sub(r";\s*samesite=[a-z]+", "", text, flags=re.IGNORECASE)
        return (text + f"; SameSite={self.auth.cookie_samesite.capitalize()}").encode("latin-1")

    async def _preflight(self, headers, send):
        origin = headers.get("origin", "").rstrip("/")
        if origin not in self.allowed_origins:  # same-origin requests need no preflight
            raise _Answer(403, "Anfrage von fremder Herkunft abgelehnt.")
        await send({"type": "http.response.start", "status": 204, "headers": [
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", headers.get("access-control-request-headers", "").encode("latin-1")),
            (b"access-control-max-age", b"600")]})
        await send({"type": "http.response.body", "body": b""})

    async def _answer(self, send, ans: _Answer, rid: str):
        if ans.json_body:
            body = json.dumps({"detail": ans.text, "error": ans.text, "request_id": rid}, ensure_ascii=False).encode()
            ctype = b"application/json"
        else:
            body = ans.text.encode()
            ctype = b"text/plain; charset=utf-8"
        await send({"type": "http.response.start", "status": ans.status,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})

    # -- calls, uploads, files ------------------------------------------------------------
    async def _read_body(self, receive, limit: int) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Answer(400, "Verbindung abgebrochen.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Answer(413, "Anfrage zu groß.")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    @staticmethod
    def _replay(body: bytes):
        sent = False

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        return receive

    async def _check_call(self, receive, user: str, path: str):
        """Refuse a call whose file values the user did not upload here (before gradio copies them).
        Returns the replayed body and its JSON (None if it is none)."""
        body = await self._read_body(receive, MAX_CALL_BODY)
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        except RecursionError:  # JSON nested thousands deep: no call of the portal's is (a 500 with a traceback before)
            log.warning("call %s by %s refused: its JSON is nested too deep", path, user)
            raise _Answer(400, "Anfrage ungültig: zu tief verschachtelt.") from None
        refused = refused_file_values(data, user, self.cfg.upload_folder())
        if refused:
            for p, reason in refused:
                self.cfg.audit.record("file_value_refused", user, p[:300], {"route": path, "reason": reason})
            log.warning("call %s by %s refused: file values %s", path, user, [p for p, _ in refused])
            raise _Answer(403, refused[0][1])
        return self._replay(body), data

    def _check_tab(self, user: str, path: str, query: str, body: Any) -> None:
        """A request naming another user's browser tab is refused (its stream carries their answers)."""
        self._claim(self.cfg.tabs, tabs_of(path, query, body), user, path, "tab_refused",
                    "Diese Sitzung gehört einem anderen Benutzer.")

    def _check_upload_id(self, user: str, path: str, query: str) -> None:
        """Another user's upload progress is refused: gradio sends the names of the files on their
        way to whoever names the upload id (an attacker's probe, session 49)."""
        ids = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "upload_id"]
        self._claim(self.cfg.uploads, ids, user, path, "upload_refused", "Dieser Upload gehört einem anderen Benutzer.")

    def _claim(self, owners: TabOwners, ids: list[str], user: str, path: str, action: str, message: str) -> None:
        """Every id the request names is the user's or nobody's yet (then it becomes theirs); else 403, audited."""
        for value in ids:
            if not owners.claim(value, user):
                self.cfg.audit.record(action, user, path[:200], {"owner": owners.owner(value)})
                log.warning("%s by %s refused (%s): the id belongs to another user", path, user, action)
                raise _Answer(403, message)

    def _check_open_events(self, user: str, body: Any) -> None:
        """One user may not fill the queue that everyone shares. Without a login (mode none) there is
        one user on one machine, and the load test's simulated users are all that user."""
        if self.auth.mode == "none":
            return
        limit = self.cfg.settings.server.max_open_events_per_user
        fn_index = body.get("fn_index") if isinstance(body, dict) else None
        if self.cfg.open_events(user, fn_index) >= limit:
            log.warning("queue join by %s refused: %d open events", user, limit)
            raise _Answer(429, f"Sie haben bereits {limit} Anfragen in Arbeit. Bitte warten Sie, bis eine "
                               "davon fertig ist.")

    async def _buffered(self, scope, receive, send, edit: Callable[[dict, bytes], bytes]) -> None:
        """Run gradio with the whole (uncompressed) response held back, then pass ``edit(start,
        body)`` on with a matching length: the guard reads or rewrites what gradio answered."""
        scope = _identity_encoding(scope)
        start: dict = {}
        parts: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body"):
                    body = edit(start, b"".join(parts))
                    start["headers"] = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                    start["headers"].append((b"content-length", str(len(body)).encode()))
                    await send(start)
                    await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)

    def _check_upload_quota(self, user: str, headers: dict[str, str]) -> None:
        """gradio takes up to 1,000 files of ``server.max_upload_mb`` each per request and keeps them
        for an hour: one request of a staff account wrote 300 MB in 2 s (found by an attacker's probe).
        Each user may send ``server.upload_quota_mb`` per hour; the request must say its length
        (browsers do; the server holds a client to it)."""
        try:
            length = int(headers.get("content-length", ""))
        except ValueError:
            raise _Answer(411, "Hochladen ohne Längenangabe (Content-Length) wird nicht angenommen.") from None
        quota_mb = self.cfg.settings.server.upload_quota_mb
        if RECEIVED.uploaded_bytes(user) + length > quota_mb * 1024 * 1024:
            log.warning("upload of %d bytes by %s refused: quota of %d MB per hour", length, user, quota_mb)
            raise _Answer(413, f"Upload-Kontingent erschöpft: höchstens {quota_mb} MB je Stunde und Benutzer. "
                               "Bitte später erneut versuchen.")
        RECEIVED.count_upload(user, length)

    async def _upload(self, scope, receive, send, user: str):
        """Let gradio store the upload; record the stored paths for this user."""
        def record(start: dict, body: bytes) -> bytes:
            if start.get("status") == 200:
                try:
                    for p in json.loads(body):
                        RECEIVED.add_upload(p, user)
                except (ValueError, TypeError):
                    log.warning("unexpected upload response from gradio")
            return body

        await self._buffered(scope, receive, send, record)

    async def _file(self, scope, receive, send, user: str | None, path: str):
        """gradio's file route: in gradio's folder only the owner's export (then deleted) or upload."""
        raw = FILE_ROUTE.match(path).group(1)  # the ASGI path is decoded once already, as gradio reads it
        folder = self.cfg.upload_folder()
        if raw.lower().startswith(("http:", "https:")):
            raise _Answer(404, "Nicht gefunden.")  # gradio would fetch the URL for the client
        if not is_inside(raw, folder):
            return await self.app(scope, receive, send)  # gradio's own rules (static files)
        owner = RECEIVED.export_owner(raw)
        if owner is not None and owner == user and scope.get("method") == "HEAD":
            return await self.app(scope, receive, send)
        if owner is not None and owner == user and RECEIVED.claim_export(raw, user):
            async def send_then_delete(message):
                # the file is read whole once its last chunk is sent: delete it before the client
                # sees the end of the response, so "gone after the download" holds for the client
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    RECEIVED.downloaded(raw)
                await send(message)

            try:  # one download: a second request (or a concurrent one) finds nothing
                await self.app(scope, receive, send_then_delete)
            finally:
                RECEIVED.downloaded(raw)  # also when the download broke off (idempotent)
            self.cfg.audit.record("export_download", user, Path(raw).name)
            return None
        if owner is None and user and RECEIVED.uploaded_by(raw, user):
            return await self.app(scope, receive, send)
        if owner is not None:
            self.cfg.audit.record("export_refused", user or "?", Path(raw).name, {"owner": owner})
        log.warning("file %s refused to %s", raw, user)
        raise _Answer(404, "Datei nicht gefunden oder nicht (mehr) freigegeben.")

    async def _login_page(self, scope, send):
        """The portal's own login page (:mod:`ui.login_page`), for visitors who are not logged in:
        gradio's said "wrong password" to a held-back try and emptied the name."""
        body, csp = login_page(t("app_title"), t("header").lstrip("# "), t("login_message"))
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"), (b"content-security-policy", csp.encode())]})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})

    def _logout(self, headers):
        """gradio's logout ends the sessions it can list; ours are hashed, so end them here."""
        user, _ = self._session_user(headers)
        if user and self.cfg.sessions is not None:
            self.cfg.sessions.close_user(user)
            self.cfg.audit.record("logout", user, "")


# -- assembly ------------------------------------------------------------------------------
def prepare_server(settings) -> None:
    """Before the interface is built: private data dir, private gradio folder."""
    from assistant.datadir import make_private
    from ui.file_values import ensure_private_gradio_folder

    make_private(settings.home)
    ensure_private_gradio_folder()


def install_guard(fastapi_app, gradio_app, demo, ctx) -> GuardConfig:
    """Put :class:`PortalGuard` in front of ``fastapi_app`` and tie gradio's logins to sessions."""
    from assistant.sessions import SessionStore
    from ui.file_values import gradio_folder
    from ui.login import HeldBackAudit, SessionTokens

    s = ctx.app.settings
    sessions = None
    if s.auth.mode == "password":
        sessions = SessionStore.from_settings(ctx.db, ctx.users, s)
        sessions.purge()
        gradio_app.tokens = SessionTokens(sessions)
    # gradio checks that input files come from its upload folder only in launch(); mounted, say so here
    demo.has_launched = True
    folder = gradio_folder()
    tabs = TabOwners()
    config = GuardConfig(
        settings=s, users=ctx.users, audit=ctx.audit, sessions=sessions,
        subjects=ctx.app.sso_subjects if s.auth.mode == "header" and s.auth.subject_header.strip() else None,
        refusals=HeldBackAudit(ctx.audit),
        cookie_names=lambda: [f"access-token-{gradio_app.cookie_id}", f"access-token-unsecure-{gradio_app.cookie_id}"],
        upload_folder=lambda: folder, tabs=tabs,
        open_events=lambda user, fn_index: open_events(demo._queue, tabs, user, concurrency_group(demo, fn_index)))
    fastapi_app.add_middleware(PortalGuard, config=config)
    return config
