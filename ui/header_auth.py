"""Header mode: who a request is, when a reverse proxy with single sign-on vouches for it.

Why pure functions on plain values (address, headers, settings): the same decision guards
the gradio handlers, the document routes and every other HTTP route (in
:mod:`ui.http_guard`), and it is tested table-driven without a server.

Trust, step by step:

1. The request comes straight from a configured proxy address (``auth.trusted_proxies``,
   addresses or CIDR networks, or the exact peer name of a local socket; there is no default: :func:`check_header_settings` refuses
   to start without it). Any other client could set the headers itself.
2. If ``auth.proxy_secret`` is set, the request carries it in ``auth.proxy_secret_header``
   (compared in constant time): a process on the proxy's machine that is not the proxy
   does not know it.
3. The user name is valid by the same rules as a password-mode name (no paths, no HTML).
4. The role is the highest of: staff, the role of the name in the user database, and the
   roles mapped from the SSO groups in ``auth.groups_header`` through ``auth.group_roles``.
   A free role name in a header is never taken. (Department groups, issue 15, are another
   mapping from the same group list: :func:`groups_of` is their input too.)
5. With ``auth.subject_header``, the IdP's subject id is required too; which person a name belongs
   to is then decided by :mod:`assistant.sso_subjects` (a name handed on to another person).
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
from dataclasses import dataclass, replace
from typing import Mapping

from assistant.settings import AuthSettings
from assistant.sso_subjects import valid_subject
from assistant.users import RANK, User, UserStore, valid_user_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeaderDecision:
    """The outcome for one request: a user, or the reason (for the log and the audit) why not."""

    user: User | None
    reason: str = ""
    subject: str = ""  # the IdP's subject id, where ``auth.subject_header`` is set


def parse_networks(entries: list[str]) -> list:
    """``trusted_proxies`` as IP networks; an entry that is no address (e.g. the peer name a
    server reports for a local socket) is kept as a string and must match exactly."""
    nets: list = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            raise ValueError("auth.trusted_proxies: leerer Eintrag / empty entry")
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            if any(ch in entry for ch in "/*, "):
                raise ValueError(f"auth.trusted_proxies: keine gültige Adresse / not an address: {entry!r}") from None
            nets.append(entry)
    return nets


def check_header_settings(auth: AuthSettings) -> None:
    """Header mode must name its proxies: without them every local process could log in as anyone."""
    if auth.mode != "header":
        return
    if not auth.trusted_proxies:
        raise RuntimeError(
            "auth.mode = \"header\" braucht auth.trusted_proxies (Adressen des Reverse-Proxys, z. B. "
            "[\"127.0.0.1\"]); ohne diese Liste startet das Portal nicht. / header mode needs an explicit "
            "auth.trusted_proxies list.")
    parse_networks(auth.trusted_proxies)
    if not auth.header_name.strip():
        raise RuntimeError("auth.header_name ist leer / empty auth.header_name")


def is_trusted(client: str, networks) -> bool:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return bool(client) and client in [n for n in networks if isinstance(n, str)]
    return any(not isinstance(net, str) and address in net for net in networks)


def groups_of(value: str | None) -> list[str]:
    """The SSO groups of a groups header: comma-separated (oauth2-proxy, Keycloak mappers)."""
    return [g.strip() for g in (value or "").split(",") if g.strip()]


def role_for(groups: list[str], group_roles: Mapping[str, str], known_role: str | None = None) -> str:
    """The highest role among staff, the database role and the roles mapped from ``groups``."""
    roles = ["staff", *([known_role] if known_role in RANK else []),
             *(group_roles[g] for g in groups if g in group_roles)]
    return max(roles, key=lambda r: RANK[r])


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name.lower()) if name else None


def identify(client: str, headers: Mapping[str, str], auth: AuthSettings, users: UserStore | None) -> HeaderDecision:
    """Decide who sent a request in header mode. ``headers`` has lower-case names."""
    if not is_trusted(client, parse_networks(auth.trusted_proxies)):
        return HeaderDecision(None, "untrusted_address")
    secret = auth.proxy_secret.get_secret_value()
    if secret:
        sent = _header(headers, auth.proxy_secret_header) or ""
        if not hmac.compare_digest(sent.encode("utf-8", "replace"), secret.encode("utf-8")):
            return HeaderDecision(None, "proxy_secret_missing" if not sent else "proxy_secret_wrong")
    name = (_header(headers, auth.header_name) or "").strip()
    if not name:
        return HeaderDecision(None, "no_user_header")
    if not valid_user_name(name):
        return HeaderDecision(None, "invalid_user_name")
    subject = ""
    if auth.subject_header.strip():
        subject = (_header(headers, auth.subject_header.strip()) or "").strip()
        if not subject:
            return HeaderDecision(None, "no_subject_header")
        if not valid_subject(subject):
            return HeaderDecision(None, "invalid_subject")
    known = users.get(name) if users is not None else None
    role = role_for(groups_of(_header(headers, auth.groups_header)), auth.group_roles,
                    known.role if known else None)
    return HeaderDecision(User(name, role), subject=subject)


def with_department_groups(user: User, headers: Mapping[str, str], settings, users: UserStore | None) -> User:
    """The user with their department groups (issue 15) for this request.

    Without ``access.group_map``: the groups stored in the user database. With it: the SSO groups
    of ``auth.groups_header``, mapped by it, *replace* the stored ones (the identity provider is the
    source of truth; an empty or missing header means no groups, an unmapped group grants nothing).
    The map's targets are configured groups (``access.groups``, checked at start-up), so a group an
    admin creates in the portal reaches a header-mode user only through the stored groups, i.e.
    without a map (tests/assistant/test_groups.py).
    Call only with a user :func:`identify` accepted (so the headers come from a trusted proxy)."""
    from assistant.access import sso_groups

    mapping = settings.access.group_map
    if not mapping:
        known = users.get(user.name) if users is not None else None
        return replace(user, groups=known.groups if known else ())
    groups, ignored = sso_groups(_header(headers, settings.auth.groups_header), mapping)
    if ignored:
        log.info("SSO groups of %s without a kiportal group (ignored): %s", user.name, ", ".join(ignored))
    return replace(user, groups=groups)
