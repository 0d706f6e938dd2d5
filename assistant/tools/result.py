"""What every tool returns, and the error a person can fix."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TOOLS = ("einfach", "zusammenfassung", "entwurf")
TOOL_LABELS_DE = {"einfach": "Einfache Sprache", "zusammenfassung": "Zusammenfassung", "entwurf": "Entwurf"}


class ToolError(ValueError):
    """Bad input or a request the tool cannot do (German message, shown as is)."""


@dataclass
class ToolResult:
    """The outcome of one tool run. ``status``: ok; warn (personal data for a yellow model,
    nothing was sent, confirm to send); blocked (the Ampel refused)."""

    tool: str
    output: str = ""
    citations: list[dict] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    status: str = "ok"
    model: str = ""
    model_key: str = ""
    zone: str = "green"
    policy: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    title: str = ""

    def as_dict(self) -> dict:
        """One JSON object (``--json``): details such as ``readability_before`` at top level."""
        d = asdict(self)
        details = d.pop("details")
        return d | details
