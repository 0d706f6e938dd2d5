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


# -- portals with a scripted model, for the Werkzeuge and the probes of them ----------------------------
FAKE_MODELS = {  # "lokal", "gelb" and "rot" are one FakeChatModel (fake_model_portal installs it)
    "lokal": {"mode": "fake", "label": "Testmodell lokal"},
    "gelb": {"mode": "fake", "label": "EU-Modell", "zone": "yellow"},
    "rot": {"mode": "fake", "label": "Großes Modell", "zone": "red"},
    "extraktiv": {"mode": "extractive", "label": "Nur Textstellen (ohne KI-Modell)"},
}


@dataclass
class FakeModelPortal:
    url: str
    ctx: object  # ui.context.PortalContext
    server: object  # ui.portal.PortalServer
    fake: object  # the FakeChatModel behind "lokal", "gelb" and "rot": its ``calls`` are what went out
    doc_id: str  # the one document

    def fn_index(self, api_name: str) -> int:
        """An event's index, for gradio's queue protocol by hand (tests/portal_http.py)."""
        return next(i for i, fn in self.server.demo.fns.items() if fn.api_name == api_name)

    def fn_named(self, name: str) -> int:
        """The first event whose Python function has this name (private events have no api_name)."""
        return next(i for i, fn in self.server.demo.fns.items() if getattr(fn.fn, "__name__", "") == name)


@contextmanager
def fake_model_portal(root: Path, *, doc: tuple[str, str], respond, users: dict[str, str], password: str,
                      default: str = "lokal", **overrides) -> Iterator[FakeModelPortal]:
    """A real portal (ui.portal.create_app) with password login on the hash embedder, served in this
    process: the models of FAKE_MODELS answered by ``respond(prompt)``, ``doc`` (file name, text) in
    the collection "satzungen", ``users`` (name → role) with ``password``; ``overrides`` are settings
    sections (tests/settings_factory.py)."""
    from assistant.llm.fake import FakeChatModel
    from assistant.wiring import App
    from ui.context import PortalContext
    from ui.portal import background_portal

    docs = root / "docs"
    docs.mkdir()
    (docs / doc[0]).write_text(doc[1], encoding="utf-8")
    overrides = {"auth": {"mode": "password", "secret": "y" * 40}, "limits": {"load_timeout_s": 300.0},
                 "llm": {"default": default, "models": FAKE_MODELS}, **overrides}
    app = App(make_settings(root / "data", **overrides))
    assert not app.ingestor.ingest([docs], collection="satzungen").failed
    fake = FakeChatModel(respond=respond)
    app._chat_models["lokal"] = app._chat_models["gelb"] = app._chat_models["rot"] = fake
    ctx = PortalContext(app)
    for name, role in users.items():
        ctx.users.add(name, password, role)
    (rec,) = app.catalog.documents()
    with background_portal(ctx) as (url, server):
        yield FakeModelPortal(url, ctx, server, fake, rec.doc_id)


# The Werkzeuge' portal (the fixture ``tools_portal`` in tests/conftest.py): a Satzung to summarise and a
# model whose output carries HTML that must arrive escaped.
TOOL_USERS = {"anna": "staff", "bernd": "staff"}
SATZUNG = ("# Friedhofssatzung\n\n## § 8 Ruhezeit\n\nDie Ruhezeit der Verstorbenen beträgt 20 Jahre. Die Ruhezeit von "
           "Aschen beträgt 15 Jahre.\n")
BESCHEID = "Die Gebühr von 25 Euro ist bis zum 31.03.2026 zu zahlen. Der Antrag wird vom Amt geprüft."
HOSTILE_OUTPUT = '<img src=x onerror="window.__xss=1">'
# personal data: the Ampel warns before it goes to a yellow model, and blocks it for a red one
PERSONAL = "Bescheid an Frau Petra Schulz, Lindenstraße 12, 47906 Kempenrath. Die Gebühr von 25 Euro ist zu zahlen."


def tools_respond(prompt: str) -> str:
    if "Sätze:" in prompt:
        return "1. Das Amt prüft den Antrag."
    if "Ausschnitt:" in prompt:
        return "- Die Ruhezeit der Verstorbenen beträgt 20 Jahre (Abschn. 1)"
    if "Anweisung:" in prompt:
        return "Betreff: Termin\n\nSehr geehrte Frau Schmitz,\nbitte kommen Sie am 12.05.2026 ins Rathaus."
    return f"Zahlen Sie 25 Euro bis zum 30.03.2026.\nDer Antrag wird vom Amt geprüft.\n{HOSTILE_OUTPUT}"


def tools_world(root: Path):
    """The Werkzeuge' portal: the Friedhofssatzung, "lokal" as the default model, a tool read time of 3 s."""
    return fake_model_portal(root, doc=("friedhof.md", SATZUNG), respond=tools_respond, users=TOOL_USERS,
                             password=PASSWORD, tools={"file_read_seconds": 3.0})
