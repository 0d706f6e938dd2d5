"""The OParl test server: a real HTTP server on 127.0.0.1, one per test (tests change its world)."""
from __future__ import annotations

import pytest
from oparl_world import OParlServer


@pytest.fixture
def oparl_server():
    server = OParlServer()
    try:
        yield server
    finally:
        server.close()
