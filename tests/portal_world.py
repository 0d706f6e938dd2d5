"""The portal's test world: its users, their password, the hostile document and the model list.

A plain module, not tests/ui/conftest.py: `from conftest import …` resolves to whichever conftest.py
Python imported first (tests/security has one too), so tests that need these names import them from
here (tests/settings_factory.py says the same of make_settings)."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from settings_factory import make_settings

PASSWORD = "Portal-Test-2025!"
USERS = {"anna": "staff", "bernd": "staff", "tina": "trainer", "adam": "admin"}
HOSTILE_NAME = "zaunkoenig-protokoll.txt"
HOSTILE_TEXT = (
    "Zaunkönig-Protokoll der Stadt Kempenrath\n\n"
    "Das Zaunkönig-Protokoll regelt die Prüfung gefährlicher Eingaben im Bürgerbüro. "
    "Als Beispiel nennt das Zaunkönig-Protokoll die Eingabe <script>window.__xss=1</script> "
    "und die Eingabe <img src=x onerror=\"window.__xss=2\"> – beide dürfen nie ausgeführt werden, so wenig wie "
    "ein Klick auf https://zaunkoenig-login.example/konto, www.zaunkoenig-login.example oder konto@zaunkoenig-login.example.\n\n"
    "Zuständig für das Zaunkönig-Protokoll ist das Sachgebiet IT-Sicherheit im Rathaus.\n"
)

LLM = {
    "default": "extraktiv",
    "models": {
        "extraktiv": {"mode": "extractive", "label": "Nur Textstellen (ohne KI-Modell)"},
        "gelb": {"mode": "extractive", "label": "EU-Testmodell", "zone": "yellow",
                 "operator": "Testanbieter GmbH", "location": "Frankfurt (EU)"},
        "chef": {"mode": "extractive", "label": "Nur für die Administration", "roles": ["admin"]},
    },
}


def portal_settings(home: Path, **overrides):
    return make_settings(home, llm=LLM, auth={"mode": "password"}, **overrides)


@dataclass
class LightPortal:
    url: str
    ctx: object  # ui.context.PortalContext


@contextmanager
def light_portal(home: Path) -> Iterator[LightPortal]:
    """A real portal (ui.portal.create_app) with password login on the hash embedder and no
    documents, served in this process."""
    from assistant.wiring import App
    from ui.context import PortalContext
    from ui.portal import background_portal

    ctx = PortalContext(App(portal_settings(home)))
    try:
        with background_portal(ctx) as (url, _server):
            yield LightPortal(url, ctx)
    finally:
        ctx.app.stop_jobs(wait=False)


def add_hostile_doc(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / HOSTILE_NAME
    path.write_text(HOSTILE_TEXT, encoding="utf-8")
    return path


def add_users(ctx) -> None:
    for name, role in USERS.items():
        if ctx.users.get(name) is None:
            ctx.users.add(name, PASSWORD, role)
