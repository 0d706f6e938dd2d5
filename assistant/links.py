"""Signed document links: the portal's link secret and the HMAC signer, one of each per App.

Every link to a cited document carries a token bound to document id, user name and
expiry, so a forwarded or guessed link does not open for anyone else and old links
expire. The secret is ``auth.secret`` if set, else generated once into the data
directory (mode 0600) so links stay valid across restarts. The training store reuses
the same secret for its participant pseudonyms. In cluster mode nothing is generated:
each replica's own secret would make links of one replica fail on the others, so
``auth.secret`` is required (:func:`assistant.cluster.check_cluster_settings`).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time

from assistant.settings import Settings

log = logging.getLogger(__name__)

SECRET_FILE = "portal_secret"
LINK_TTL_S = 12 * 3600


# -- the signing secret ----------------------------------------------------------
def load_secret(settings: Settings) -> bytes:
    """``auth.secret`` if set, else a random secret generated once into the data dir.

    Persisting it keeps links valid across restarts; file mode 0600 keeps it private.
    """
    configured = settings.auth.secret.get_secret_value()
    if configured:
        return configured.encode("utf-8")
    if settings.cluster:
        from assistant.cluster import check_cluster_settings

        check_cluster_settings(settings)  # raises: no replica may sign with a secret of its own
    path = settings.home / SECRET_FILE
    if path.is_file():
        value = path.read_text(encoding="ascii").strip()
        if len(value) >= 32:
            return value.encode("ascii")
    settings.home.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value)
    log.info("generated the portal link secret in %s", path)
    return value.encode("ascii")


class LinkSigner:
    """HMAC tokens ``<expiry>.<signature>`` bound to document id and user name."""

    def __init__(self, secret: bytes, ttl_s: int = LINK_TTL_S, *, purpose: str = "doc-link") -> None:
        """``purpose``: tokens of one purpose (document links, device cookies) never pass for another's."""
        if not secret:
            raise ValueError("empty link secret")
        self._key = hashlib.sha256(f"kiportal-{purpose}|".encode() + secret).digest()
        self.ttl_s = ttl_s

    def _sig(self, doc_id: str, user: str, exp: int) -> str:
        mac = hmac.new(self._key, f"{doc_id}\x1f{user}\x1f{exp}".encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode("ascii").rstrip("=")

    def sign(self, doc_id: str, user: str, *, now: float | None = None) -> str:
        exp = int((now if now is not None else time.time()) + self.ttl_s)
        return f"{exp}.{self._sig(doc_id, user, exp)}"

    def verify(self, token: str | None, doc_id: str, user: str, *, now: float | None = None) -> bool:
        """Never raises on a crafted token: a non-ASCII signature (compare_digest raises for it) or an
        expiry of thousands of digits (int() raises) was a 500 with a traceback per request."""
        if not isinstance(token, str) or "." not in token or not token.isascii():
            return False
        exp_s, sig = token.split(".", 1)
        if not exp_s.isdigit() or len(exp_s) > 12:
            return False
        exp = int(exp_s)
        if exp < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(sig, self._sig(doc_id, user, exp))
