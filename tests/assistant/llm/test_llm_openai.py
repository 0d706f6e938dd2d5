"""The `openai` backend against real HTTP servers on 127.0.0.1: llama-cpp-python's
OpenAI-compatible server with the same GGUF, a closed port, and a server that never answers."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from assistant.settings import ModelProfile

pytestmark = [pytest.mark.llm, pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(gguf_path, tmp_path_factory):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log_file = log_path.open("wb")  # a file, not a pipe: the verbose server would fill a pipe and hang
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path), "--model_alias", "qwen",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
        stdout=log_file, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 420  # loading a 1 GB GGUF on a busy 2-core machine
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log_path.read_text(errors="replace")[-2000:])
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2)
            break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        raise TimeoutError("llama_cpp.server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log_file.close()


@pytest.fixture
def app(hash_app, tmp_path):
    doc = tmp_path / "docs" / "kantine.md"
    doc.parent.mkdir()
    doc.write_text("# Kantine\n\nDie Kantine im Rathaus öffnet montags bis freitags um 11:30 Uhr.\n", encoding="utf-8")
    hash_app.ingestor.ingest([doc.parent])
    return hash_app


def _use(app, **profile) -> None:
    app.settings.llm.models["server"] = ModelProfile(mode="openai", label="Server", zone="green", model="qwen", **profile)


def test_streaming_through_the_openai_compatible_server(app, llama_server):
    _use(app, base_url=llama_server, timeout_s=120)
    events = list(app.assistant.stream("Wann öffnet die Kantine?", model="server"))
    tokens = [e for e in events if e["type"] == "token"]
    res = events[-1]["result"]
    assert len(tokens) > 3 and res.mode == "openai" and res.fallback is None
    assert "11:30" in res.answer and not res.refused


def test_unreachable_server_gives_clear_notice_and_extractive_answer(app):
    _use(app, base_url=f"http://127.0.0.1:{_free_port()}/v1", timeout_s=3, retries=0)
    res = app.assistant.answer("Wann öffnet die Kantine?", model="server")
    assert res.mode == "extractive" and res.fallback and "Connection" in res.fallback
    assert any("nicht erreichbar" in n for n in res.notices)
    assert "11:30" in res.answer and "[1]" in res.answer


def test_timing_out_server_falls_back(app):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    conns = []
    stop = threading.Event()

    def accept() -> None:  # accept and never answer
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(silent.accept()[0])
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        _use(app, base_url=f"http://127.0.0.1:{silent.getsockname()[1]}/v1", timeout_s=1.5, retries=0)
        t0 = time.time()
        res = app.assistant.answer("Wann öffnet die Kantine?", model="server")
        assert time.time() - t0 < 30
        assert res.mode == "extractive" and "Timeout" in res.fallback
        assert "11:30" in res.answer
    finally:
        stop.set()
        silent.close()
        for c in conns:
            c.close()
