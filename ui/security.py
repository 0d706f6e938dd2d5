"""Who is asking, and may they? Checked in every server-side handler, never only in the UI.

Gradio exposes event handlers as HTTP API endpoints, so hiding a button protects nothing:
each handler calls :func:`require_role` with the ``gr.Request`` it receives.
"""
from __future__ import annotations

import ipaddress
import logging

import gradio as gr

from assistant.settings import Settings
from assistant.users import User, UserStore

log = logging.getLogger(__name__)

LOCAL_USER = User("lokal", "admin")


class PermissionDenied(gr.Error):
    def __init__(self, message: str = "Keine Berechtigung für diese Funktion. / Permission denied.") -> None:
        super().__init__(message)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def resolve_user(request: gr.Request | None, settings: Settings, users: UserStore) -> User | None:
    """The authenticated user of a request, or None."""
    if request is None:
        return None
    mode = settings.auth.mode
    if mode == "none":
        # only ever allowed on loopback (enforced at start-up); the one local user administers
        return LOCAL_USER
    if mode == "password":
        name = getattr(request, "username", None)
        return users.get(name) if name else None
    if mode == "header":
        client = request.client.host if request.client else ""
        if client not in settings.auth.trusted_proxies:
            log.warning("header auth from untrusted address %s refused", client)
            return None
        name = request.headers.get(settings.auth.header_name.lower()) or request.headers.get(settings.auth.header_name)
        if not name:
            return None
        known = users.get(name)
        if known:
            return known
        role = (request.headers.get(settings.auth.role_header.lower()) or "staff").strip().lower()
        return User(name, role if role in ("staff", "trainer", "admin") else "staff")
    return None


def require_role(request: gr.Request | None, settings: Settings, users: UserStore, role: str = "staff") -> User:
    user = resolve_user(request, settings, users)
    if user is None or not user.has(role):
        log.warning("denied %s-only action to %s", role, user.name if user else "anonymous")
        raise PermissionDenied()
    return user
