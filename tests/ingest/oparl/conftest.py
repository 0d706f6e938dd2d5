"""The OParl test server: a real HTTP server on 127.0.0.1, one per test (tests change its world)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from oparl_world import OParlServer

REPO = Path(__file__).resolve().parents[3]


def _root_conftest():
    """tests/conftest.py by path: several files named conftest.py make `from conftest import` ambiguous."""
    spec = importlib.util.spec_from_file_location("kiportal_tests_root_conftest", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# re-exported, so `from conftest import make_settings` works whichever conftest.py it resolves to
make_settings = _root_conftest().make_settings


#: fast and small limits for the test server (the slow file must time out in well under a second)
FAST_OPARL = {"timeout_s": 0.4, "retries": 1, "backoff_s": 0.01, "max_file_bytes": 1024 * 1024}


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
