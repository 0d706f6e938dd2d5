"""Portal fixtures: a hash-embedder context for the handler tests, and a real running portal.

The live portal is started once per session (real e5 model, real Chroma, the demo corpus
plus a hostile document, password login, the extractive model as default) so the API and
browser tests talk to exactly what `kiportal serve` runs, on 127.0.0.1 and a free port.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from portal_world import HOSTILE_NAME, HOSTILE_TEXT, PASSWORD, USERS, add_hostile_doc, add_users, portal_settings
from departments import DEPT_PASSWORD, DEPT_USERS, DeptPortal, add_department_docs

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DEMO_FILES = REPO / "corpus" / "demo" / "files"


@pytest.fixture
def portal_data():
    """Users, password and the hostile document of the portal fixtures."""
    return {"users": dict(USERS), "password": PASSWORD, "hostile_name": HOSTILE_NAME, "hostile_text": HOSTILE_TEXT}


@pytest.fixture
def portal_ctx(tmp_path):
    """PortalContext on the hash embedder with the demo corpus and the hostile document."""
    from assistant.wiring import App
    from ui.context import PortalContext

    app = App(portal_settings(tmp_path / "data"))
    app.ingestor.ingest([DEMO_FILES], collection="demo")
    app.ingestor.ingest([add_hostile_doc(tmp_path / "extra")], collection="test")
    ctx = PortalContext(app)
    add_users(ctx)
    return ctx


@pytest.fixture
def handlers(portal_ctx):
    from ui.handlers import ChatHandlers

    return ChatHandlers(portal_ctx)


@dataclass
class LivePortal:
    url: str
    ctx: object
    server: object  # ui.portal.PortalServer
    home: Path

    def sign(self, doc_id: str, user: str) -> str:
        return self.server.handlers.signer.sign(doc_id, user)

    def doc_id_of(self, file_name: str) -> str:
        for rec in self.ctx.app.catalog.documents():
            if Path(rec.source).name == file_name:
                return rec.doc_id
        raise KeyError(file_name)


@pytest.fixture(scope="session")
def e5_settings(tmp_path_factory, e5_dir):
    """Factory ``(name, build, **overrides) -> (root, settings)`` for long-lived portals: a fresh data
    directory with the e5 model linked in; the settings are built with the repo's kiportal.toml and
    KIPORTAL_* variables kept out (session and module fixtures run before the per-test isolation)."""

    def make(name: str, build=None, **overrides):
        from assistant.settings import load_settings

        root = tmp_path_factory.mktemp(name)
        home = root / "data"
        (home / "models").mkdir(parents=True)
        (home / "models" / "multilingual-e5-small").symlink_to(e5_dir)
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(root)
            for key in [k for k in os.environ if k.startswith("KIPORTAL_") and k != "KIPORTAL_TEST_CACHE"]:
                mp.delenv(key)
            return root, (build or load_settings)(home, embedding={"mode": "e5"}, vector={"mode": "chroma"}, **overrides)

    return make


@pytest.fixture(scope="session")
def live_portal(e5_settings, real_embedder):
    """The real portal server in a background thread (stopped at the end of the session)."""
    from assistant.wiring import App
    from ui.context import PortalContext
    from ui.portal import background_portal

    root, settings = e5_settings("portal", portal_settings, portal={"example_questions": ["Welche Zonen hat das Ampelsystem?"]})
    home = settings.home
    app = App(settings)
    app.kb._embedder = real_embedder  # share the loaded model with other integration tests
    t0 = time.perf_counter()
    app.ingestor.ingest([DEMO_FILES], collection="demo")
    app.ingestor.ingest([add_hostile_doc(root / "extra")], collection="test")
    log.info("live portal corpus indexed in %.1f s", time.perf_counter() - t0)
    ctx = PortalContext(app)
    add_users(ctx)

    with background_portal(ctx) as (url, server):
        yield LivePortal(url, ctx, server, home)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright (never a downloaded browser). `make test` installs it;
    a missing browser is a failure, not a skip. Module scope: Playwright's sync API holds an event
    loop open while it runs, which must be gone before later tests use asyncio.run."""
    assert os.path.exists(CHROMIUM), "chromium missing: apt-get install -y chromium chromium-driver (make test does this)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def dept_portal(e5_settings, real_embedder):
    """The real portal with departments: collections readable by one group each, plus one for all."""
    from assistant.access import Departments
    from assistant.wiring import App
    from ui.context import PortalContext
    from ui.portal import background_portal

    root, settings = e5_settings("departments", portal_settings,
                                 access={"groups": ["bauamt", "personalamt"], "new_collection_readers": []})
    app = App(settings)
    app.kb._embedder = real_embedder
    add_department_docs(app, root / "docs")
    ctx = PortalContext(app)
    dep = Departments(app.catalog, ctx.users, ctx.audit, settings)
    for name, (role, groups) in DEPT_USERS.items():
        dep.add_user(name, DEPT_PASSWORD, role, groups, actor="test")
    with background_portal(ctx) as (url, server):
        yield DeptPortal(url, ctx, server)
