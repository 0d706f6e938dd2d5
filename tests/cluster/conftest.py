"""The cluster of the end-to-end tests: two ``kiportal serve`` replicas on the session's
PostgreSQL and Chroma servers (tests/conftest.py), started once per test module: starting
two portals costs seconds, and CI runs the whole suite."""
from __future__ import annotations

import pytest

from cluster_harness import start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_server, chroma_server):
    running = start_cluster(tmp_path_factory.mktemp("cluster"), pg_server, chroma_server)
    yield running
    running.stop()
