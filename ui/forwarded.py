"""Which of a request's proxy headers reach gradio (the door, :mod:`ui.http_guard`, asks here).

Why: gradio builds the page's root URL (``root`` in its config, embedded in the page and in every
link to a file) from ``X-Forwarded-Host`` and ``X-Forwarded-Proto`` (``gradio.route_utils.get_request_origin``),
whoever sends them. One crafted request put ``https://evil.example`` into the page it got back; behind
a cache that page goes to everyone (an attacker's probe). So these headers pass only from a peer that
may speak for the browser:

* ``auth.trusted_proxies`` set: only a peer in that list (the proxy itself, never an address it
  forwards). From every other peer ``X-Forwarded-Host``, ``-Proto``, ``-Port``, ``-Prefix``, ``-For``
  and ``Forwarded`` are removed before gradio sees the request. (The door reads ``X-Forwarded-For``
  itself only from a trusted peer, :meth:`ui.http_guard.PortalGuard._client`, so nothing it needs is lost.)
* ``auth.trusted_proxies`` empty: only a loopback peer (127.0.0.0/8, ``::1``, also IPv4-mapped); from
  every other peer they are removed. Chosen over "leave them and log a warning at start-up" because
  the portal cannot know whether a cache sits in front of it, and a warning leaves every such
  deployment open until someone reads it (it would also fire for every portal reached directly, where
  the headers have no business at all). What the choice costs is small: mode ``none`` answers loopback
  only anyway and header mode cannot start without the list, so it touches password mode only. A
  loopback peer is a process on this machine: the usual reverse proxy (nginx on the same host,
  ``proxy_pass http://127.0.0.1:7860``), which keeps working unlisted and, like a listed one, must set
  these headers itself rather than pass the client's on; or a process talking to the portal directly,
  which poisons only its own answer (a cache in front connects from its own address). A proxy on another machine that is not listed loses its forwarded host
  and scheme (gradio then names the address it was reached at): the first such request logs one warning
  naming the peer and the setting, and listing the proxy, which the login throttle needs anyway for
  ``X-Forwarded-For``, restores them.

``X-Gradio-Server`` is removed from every peer, trusted or not: gradio takes it as the root URL
just like ``X-Forwarded-Host``, and only gradio's own server-side rendering sends it, which the
portal does not run (``ssr_mode=False``). A reverse proxy passes headers it does not know through,
so from behind one it would be the client's.
"""
from __future__ import annotations

import logging

from ui.header_auth import is_trusted
from ui.security import is_loopback_address

log = logging.getLogger(__name__)

#: what a reverse proxy says about the browser's request; honoured only from a trusted peer
FORWARDING_HEADERS = frozenset({b"x-forwarded-host", b"x-forwarded-proto", b"x-forwarded-port",
                                b"x-forwarded-prefix", b"x-forwarded-for", b"forwarded"})
#: never honoured (gradio's server-side rendering only; the portal runs without it)
NEVER_PASSED = frozenset({b"x-gradio-server"})


class ForwardingFilter:
    """Removes what a peer may not say about the browser's request (see the module's doc)."""

    def __init__(self, proxies: list) -> None:
        self.proxies = proxies  # ui.header_auth.parse_networks(auth.trusted_proxies); empty = loopback only
        self._warned = False

    def may_forward(self, peer: str) -> bool:
        """Whether the forwarding headers of a request from ``peer`` reach gradio."""
        return is_trusted(peer, self.proxies) if self.proxies else is_loopback_address(peer)

    def clean(self, scope: dict, peer: str) -> dict:
        """The scope as gradio may see it: the same dict when nothing is removed, else a copy."""
        headers = scope.get("headers") or []
        drop = NEVER_PASSED if self.may_forward(peer) else NEVER_PASSED | FORWARDING_HEADERS
        kept = [(k, v) for k, v in headers if k.lower() not in drop]
        if len(kept) == len(headers):
            return scope
        removed = sorted({k.lower().decode("latin-1") for k, _ in headers if k.lower() in drop & FORWARDING_HEADERS})
        if removed and not self.proxies and not self._warned:
            self._warned = True  # once per portal: any client can send them, the log is not theirs to fill
            log.warning("%s from %s removed: auth.trusted_proxies is empty, so only a proxy on this machine "
                        "(127.0.0.1, ::1) may send them. If %s is your reverse proxy, list it in "
                        "auth.trusted_proxies.", ", ".join(removed), peer or "?", peer or "it")
        return dict(scope, headers=kept)
