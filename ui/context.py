"""What every portal handler needs: the App and the server-side role check.

The services themselves (app database, users, audit log, link signer, training store,
admin) are built and owned by :class:`assistant.wiring.App`; the properties here only
name them for the handlers.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

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

    def require(self, request: gr.Request | None, role: str = "staff") -> User:
        """Server-side role check; raises PermissionDenied (shown as an error in the UI)."""
        return require_role(request, self.app.settings, self.users, role)
