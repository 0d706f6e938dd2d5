"""What every portal handler needs, built once per server from the App."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import gradio as gr

from assistant.appdb import AppDB
from assistant.audit import AuditLog
from assistant.users import User, UserStore
from assistant.wiring import App
from ui.security import require_role


@dataclass
class PortalContext:
    app: App

    @cached_property
    def db(self) -> AppDB:
        return AppDB(self.app.settings.app_db)

    @cached_property
    def users(self) -> UserStore:
        return UserStore(self.db)

    @cached_property
    def audit(self) -> AuditLog:
        s = self.app.settings
        return AuditLog(self.db, log_questions=s.privacy.log_questions, secret=s.auth.secret.get_secret_value())

    def require(self, request: gr.Request | None, role: str = "staff") -> User:
        """Server-side role check; raises PermissionDenied (shown as an error in the UI)."""
        return require_role(request, self.app.settings, self.users, role)
