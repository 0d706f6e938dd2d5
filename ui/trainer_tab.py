"""Trainer tab ("KI-Kompass"): opens the box for trainers. Placeholder until the full tab lands.

Kept importable from the first commit so the portal can wire the tab in while it is built.
"""
from __future__ import annotations

import logging

import gradio as gr

from ui.context import PortalContext

log = logging.getLogger(__name__)


def build(ctx: PortalContext) -> None:
    """Create the trainer components in the current gr.Blocks/gr.Tab context."""
    gr.Markdown("## KI-Kompass – Trainermodus\n\nWird gerade aufgebaut.")
