"""Real PostgreSQL and Chroma servers for the cluster tests and the cluster benchmark.

Here and not under tests/ because `kiportal bench` starts the same servers for its cluster
section (evals/cluster_bench.py); tests/servers.py re-exports this module for the fixtures.

PostgreSQL comes from Debian's ``postgresql`` package (``make cluster-deps`` installs it):
``initdb`` in a temporary directory, the server on a free port on 127.0.0.1, trust auth for
the one local user. PostgreSQL refuses to run as root, so under root the cluster directory
belongs to the ``postgres`` system user (created by the package) and the server runs as it.
Chroma is ``chroma run`` from the chromadb package in the venv. Nothing here is a mock.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "kiportal"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen | None, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout``: how every server and portal
    process a test or the bench started is stopped."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_port(port: int, timeout: float, proc: subprocess.Popen, what: str, log: Path) -> None:
    """Until ``proc`` listens on ``port`` of 127.0.0.1; its ``log`` is in the error if it ends or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not open port {port} within {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def pg_bin(name: str) -> str:
    """A PostgreSQL server program: on PATH, else Debian's versioned folder (newest first)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0, reverse=True)
    if not candidates:
        raise RuntimeError(f"PostgreSQL's {name} not found: run `make cluster-deps` (Debian package postgresql)")
    return candidates[0]


def postgres_available() -> bool:
    """Whether this machine can start a throwaway PostgreSQL (the bench's cluster section runs only then)."""
    try:
        pg_bin("initdb")
        pg_bin("postgres")
    except RuntimeError:
        return False
    return True


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster; :meth:`new_database` gives each test its own database."""

    root: Path
    port: int
    proc: subprocess.Popen
    _run_as: list[str] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PostgresServer:
    root = Path(tempfile.mkdtemp(prefix="kiportal-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse root
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    log = root / "server.log"
    subprocess.run(run_as + [pg_bin("initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8",
                             "--locale=C.UTF-8", "--no-sync"],
                   check=True, capture_output=True, text=True)
    port = free_port()
    with open(log, "wb") as fh:
        if run_as:
            os.chown(log, pw.pw_uid, pw.pw_gid)
        proc = subprocess.Popen(
            run_as + [pg_bin("postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(root),
                      "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                      "-c", "max_connections=200", "-c", "shared_buffers=64MB"],
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
    wait_port(port, 60, proc, "postgres", log)
    server = PostgresServer(root, port, proc, run_as)
    # the port opens a moment before connections are accepted
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user={PG_USER} dbname=postgres").close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.2)
    return server


@dataclass
class ChromaServer:
    """``chroma run`` on a free port with its data in a temporary directory."""

    root: Path
    host: str
    port: int
    proc: subprocess.Popen

    def stop(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.root, ignore_errors=True)


def chroma_command() -> list[str]:
    exe = Path(sys.executable).with_name("chroma")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("chroma")
    if not found:
        raise RuntimeError("`chroma` not found: the chromadb package installs it into the venv")
    return [found]


def start_chroma() -> ChromaServer:
    root = Path(tempfile.mkdtemp(prefix="kiportal-chroma-"))
    port = free_port()
    log = root / "server.log"
    env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
    with open(log, "wb") as fh:
        proc = subprocess.Popen(chroma_command() + ["run", "--path", str(root / "data"), "--host", "127.0.0.1",
                                                    "--port", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    wait_port(port, 90, proc, "chroma run", log)
    return ChromaServer(root, "127.0.0.1", port, proc)
