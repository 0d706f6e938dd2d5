"""Admin area of the portal: documents, uploads, jobs, collections, index health, audit, dashboard.

Every handler re-checks the admin role on the server (``ctx.require(request, "admin")``):
Gradio exposes each event as an HTTP endpoint, so hiding the tab protects nothing.
"""
from __future__ import annotations

import logging

import gradio as gr

from ui.context import PortalContext

log = logging.getLogger(__name__)


def build(ctx: PortalContext) -> None:
    """Create the admin components inside the caller's current gr.Blocks/gr.Tab context."""
    gr.Markdown("## Verwaltung")
    status = gr.Markdown("")

    def _whoami(request: gr.Request) -> str:
        user = ctx.require(request, "admin")
        return f"Angemeldet als **{user.name}** (Administration)."

    gr.Button("Status", size="sm").click(_whoami, outputs=status, api_name="admin_whoami")
