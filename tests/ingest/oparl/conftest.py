"""The OParl test server: a real HTTP server on 127.0.0.1, one per test (tests change its world)."""
from __future__ import annotations

import pytest
from settings_factory import make_settings
from oparl_world import FAST_OPARL, OParlServer


@pytest.fixture
def oparl_app(tmp_path):
    """Hash embedder, memory vectors, files read in-process (the worker process is tested elsewhere)."""
    from assistant.wiring import App

    return App(make_settings(tmp_path / "data", limits={"load_timeout_s": 0}, oparl=FAST_OPARL))


@pytest.fixture
def oparl_server():
    server = OParlServer()
    try:
        yield server
    finally:
        server.close()
