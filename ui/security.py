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
from ui.header_auth import identify, with_department_groups

log = logging.getLogger(__name__)

LOCAL_USER = User("lokal", "admin")


class PermissionDenied(gr.Error):
    def __init__(self, message: str = "Keine Berechtigung für diese Funktion. / Permission denied.") -> None:
        super().__init__(message)


def is_loopback_address(address: str) -> bool:
    """An IP address on this machine: 127.0.0.0/8, ``::1``, or one of them IPv4-mapped (a dual-stack
    socket reports ``::ffff:127.0.0.1``, which Python 3.11 does not call loopback). A name is none."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


def is_loopback(host: str) -> bool:
    """A host name or address of this machine (``localhost`` too)."""
    return host == "localhost" or is_loopback_address(host)


START_PASSWORD = ("Bitte ändern Sie zuerst das Startpasswort, das Sie von der Administration bekommen haben "
                  "(Reiter „Mein Konto“).")


def resolve_user(request: gr.Request | None, settings: Settings, users: UserStore, *,
                 start_password_ok: bool = False) -> User | None:
    """The authenticated user of a request, or None.

    A user still on a start password an admin handed out counts as nobody, except where
    ``start_password_ok`` (the page load, the password change): until its owner has replaced it,
    the person who passed it on could use it too."""
    if request is None:
        return None
    mode = settings.auth.mode
    if mode == "none":
        # only ever allowed on loopback (enforced at start-up); the one local user administers
        return LOCAL_USER
    if mode == "password":
        name = getattr(request, "username", None)
        user = users.get(name) if name else None
        if user is not None and user.must_change and not start_password_ok:
            return None
        return user
    if mode == "header":
        # the same decision as the HTTP guard in front of every route (ui.header_auth)
        client = request.client.host if request.client else ""
        headers = {k.lower(): v for k, v in request.headers.items()}
        decision = identify(client, headers, settings.auth, users)
        if decision.user is None:
            log.warning("header auth refused for a handler call from %s: %s", client, decision.reason)
            return None
        return with_department_groups(decision.user, headers, settings, users)
    return None


def require_role(request: gr.Request | None, settings: Settings, users: UserStore, role: str = "staff", *,
                 start_password_ok: bool = False) -> User:
    user = resolve_user(request, settings, users, start_password_ok=True)
    if user is not None and user.must_change and not start_password_ok:
        log.warning("denied %s-only action to %s: start password not changed yet", role, user.name)
        raise PermissionDenied(START_PASSWORD)
    if user is None or not user.has(role):
        log.warning("denied %s-only action to %s", role, user.name if user else "anonymous")
        raise PermissionDenied()
    return user
