"""What every portal handler needs: the App and the server-side role check.

The services themselves (app database, users, audit log, link signer, training store,
admin) are built and owned by :class:`assistant.wiring.App`; the properties here only
name them for the handlers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import gradio as gr

from assistant.access import Scope, citation_records, scope_for, visible_citations
from assistant.appdb import AppDB
from assistant.audit import AuditLog
from assistant.users import User, UserStore
from assistant.wiring import App
from ui.security import require_role


@dataclass
class PortalContext:
    app: App

    @property
    def db(self) -> AppDB:
        return self.app.app_db

    @property
    def users(self) -> UserStore:
        return self.app.users

    @property
    def audit(self) -> AuditLog:
        return self.app.audit

    def require(self, request: gr.Request | None, role: str = "staff", *, start_password_ok: bool = False) -> User:
        """Server-side role check; raises PermissionDenied (shown as an error in the UI). A user still
        on an admin's start password passes only where ``start_password_ok`` (ui.security)."""
        return require_role(request, self.app.settings, self.users, role, start_password_ok=start_password_ok)

    def scope(self, user: User) -> Scope:
        """The collections ``user`` may read now (read fresh: a revoke takes effect at once)."""
        return scope_for(user.role, user.groups, self.app.catalog)

    def sources_for_export(self, user: User, citations: Sequence[dict]) -> list[dict]:
        """Stored citations as an export lists them: only those ``user`` may read now (a revoke or a
        move hides them, as in the portal), each named by its document's readable title today (a
        run or chat made before a PDF got its cover headline exports the name staff now see)."""
        records = citation_records(citations, self.app.catalog)
        return [dict(c, title=rec.shown_title) if (rec := records.get(str(c.get("doc_id") or ""))) else dict(c)
                for c in visible_citations(self.scope(user), citations, self.app.catalog, records)]

    def source_filter(self, user: User) -> Callable[[dict], bool]:
        """``readable(source)`` for stored sources (a dict with ``doc_id``, maybe ``collection``)."""
        scope, catalog = self.scope(user), self.app.catalog
        return lambda src: bool(visible_citations(scope, [src], catalog))
