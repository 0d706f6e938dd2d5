"""The real servers of the cluster tests: the start logic lives in :mod:`evals.servers`, shared
with `kiportal bench`'s cluster section; the session fixtures in tests/conftest.py import it from here."""
from evals.servers import (  # noqa: F401
    PG_USER,
    ChromaServer,
    PostgresServer,
    chroma_command,
    free_port,
    pg_bin,
    postgres_available,
    start_chroma,
    start_postgres,
    stop_process,
    wait_port,
)
