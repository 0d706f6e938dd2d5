"""Two real portal replicas on one PostgreSQL and one Chroma server, as an operator runs them.

Each replica is a ``kiportal serve`` process of its own with its own data directory (as on
two machines); what they share is only what a cluster shares: ``app_db_url`` (a fresh
database on the test PostgreSQL), the Chroma server (a collection of its own per cluster),
the session secret, the storage folder of uploaded originals and one config file.
Administrators act through the CLI (``kiportal --data-dir … users add``, ``collections
classify``, ``doctor``), users over HTTP (tests/portal_http.py). The hash embedder and the
extractive model keep start-up in seconds. Once the CLI has ``kiportal worker`` (jobs in
cluster mode), a worker process runs beside the replicas.

(A module of its own, not conftest.py: two conftest modules make ``from conftest import``
ambiguous.)
"""
from __future__ import annotations

import logging
import os
import secrets
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from evals.bench import kiportal_command
from evals.servers import free_port, stop_process
from portal_http import RemotePortal, login

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Cluster-Test-2026!"
USERS = {"adam": "admin", "anna": "staff"}
START_TIMEOUT_S = 120.0
DEMO_FILES = REPO / "corpus" / "demo" / "files"
# two light files of the demo corpus: something to answer the load test's questions from, in seconds
DEMO_SUBSET = ("merkblatt-datenschutz-ki.txt", "faq-ki-portal.html")

# Shared by every replica (one file, as a deployment would distribute it): the extractive model
# as default, and a yellow-zone profile that may see only "oeffentlich" and "intern" documents.
CONFIG_TOML = """\
[auth]
mode = "password"

[llm]
default = "extraktiv"

[llm.models.extraktiv]
mode = "extractive"
label = "Nur Textstellen (ohne KI-Modell)"

[llm.models.gelb]
mode = "extractive"
label = "EU-Testmodell"
zone = "yellow"
operator = "Testanbieter GmbH"
location = "Frankfurt (EU)"
"""


def cluster_env(root: Path, db_url: str, chroma_host: str, chroma_port: int, collection: str, secret: str) -> dict[str, str]:
    """The environment of every process of the cluster: the caller's, without its KIPORTAL_* settings."""
    (root / "storage").mkdir(mode=0o700, exist_ok=True)
    config = root / "kiportal-cluster.toml"
    config.write_text(CONFIG_TOML, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIPORTAL_") or k == "KIPORTAL_TEST_CACHE"}
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "KIPORTAL_CONFIG": str(config),
        "KIPORTAL_APP_DB_URL": db_url,
        # uploaded originals on storage every machine mounts (NFS in a deployment): a job staged by
        # one replica may run on another replica's worker thread or in `kiportal worker`
        "KIPORTAL_STORAGE": str(root / "storage"),
        "KIPORTAL_VECTOR__MODE": "chroma_http",
        "KIPORTAL_VECTOR__HOST": chroma_host,
        "KIPORTAL_VECTOR__PORT": str(chroma_port),
        "KIPORTAL_VECTOR__COLLECTION": collection,
        "KIPORTAL_EMBEDDING__MODE": "hash",
        "KIPORTAL_AUTH__MODE": "password",
        "KIPORTAL_AUTH__SECRET": secret,
    })
    return env


@dataclass
class Replica:
    """One ``kiportal serve`` process with its data directory."""

    name: str
    home: Path
    env: dict[str, str]
    port: int
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    portal: RemotePortal = field(init=False)

    def __post_init__(self) -> None:
        self.portal = RemotePortal(f"http://127.0.0.1:{self.port}/")

    @property
    def url(self) -> str:
        return self.portal.url

    def cli(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        """``kiportal --data-dir <home> …`` on this replica's machine, as an administrator types it."""
        cmd = kiportal_command() + ["--data-dir", str(self.home), *args]
        res = subprocess.run(cmd, env=self.env, input=input, capture_output=True, text=True, timeout=timeout,
                             cwd=self.home.parent)
        if check and res.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited with {res.returncode}:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
        return res

    def start(self) -> None:
        self.log_path = self.home.parent / f"{self.name}-serve.log"
        fh = open(self.log_path, "wb")
        cmd = kiportal_command() + ["--data-dir", str(self.home), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.home.parent, start_new_session=True)
        fh.close()

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:] if self.log_path and self.log_path.exists() else ""

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until the login page answers (the process has built its App and mounted gradio)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url, timeout=2).status_code == 200:
                    with login(self.portal, "adam", PASSWORD) as c:
                        self.portal.load_config(c)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"replica {self.name} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Worker:
    """A ``kiportal worker`` process (cluster jobs), started when the CLI has the command."""

    proc: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Cluster:
    """Two replicas (a, b) on one database and one Chroma collection; ``chroma`` is the server."""

    a: Replica
    b: Replica
    db_url: str
    chroma_host: str
    chroma_port: int
    collection: str
    workers: list[Worker] = field(default_factory=list)

    @property
    def replicas(self) -> list[Replica]:
        return [self.a, self.b]

    def vector_ids(self) -> set[str]:
        """Every vector id in the cluster's collection on the Chroma server (counted by the server itself)."""
        import chromadb

        client = chromadb.HttpClient(host=self.chroma_host, port=self.chroma_port)
        coll = client.get_collection(self.collection)
        total = coll.count()
        ids: set[str] = set()
        for offset in range(0, total, 5000):
            ids.update(coll.get(include=[], limit=5000, offset=offset)["ids"])
        return ids

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        for r in self.replicas:
            r.stop()


def has_worker_command() -> bool:
    """Cluster jobs run in ``kiportal worker`` processes once the CLI has that command (issue 16)."""
    from ui.cli import cli

    return "worker" in cli.commands


def start_cluster(root: Path, pg_server, chroma_server, *, demo_corpus: bool = True) -> Cluster:
    """Two replicas serving, users added through A's CLI (they live in the shared database),
    part of the demo corpus ingested on A. Stopped by :meth:`Cluster.stop`."""
    root.mkdir(parents=True, exist_ok=True)
    collection = f"cluster_{uuid.uuid4().hex[:10]}"
    env = cluster_env(root, pg_server.new_database("cluster"), chroma_server.host, chroma_server.port, collection,
                      secrets.token_urlsafe(32))
    a = Replica("a", root / "a" / "data", env, free_port())
    b = Replica("b", root / "b" / "data", env, free_port())
    for r in (a, b):
        r.home.mkdir(parents=True)
    cluster = Cluster(a, b, env["KIPORTAL_APP_DB_URL"], chroma_server.host, chroma_server.port, collection)
    try:
        t0 = time.monotonic()
        for r in (a, b):  # both at once, as a load balancer's replicas come up (migrations run under a lock)
            r.start()
        # while they boot, the administrator adds the users (to the shared database) and some documents on A
        for user, role in USERS.items():
            a.cli("users", "add", user, "--role", role, "--password-stdin", input=PASSWORD + "\n")
        if demo_corpus:
            a.cli("ingest", *(str(DEMO_FILES / n) for n in DEMO_SUBSET), "--collection", "demo", "--json")
        if has_worker_command():
            log_path = root / "worker.log"
            with open(log_path, "wb") as fh:
                proc = subprocess.Popen(kiportal_command() + ["--data-dir", str(root / "worker" / "data"), "worker"],
                                        env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=root, start_new_session=True)
            cluster.workers.append(Worker(proc, log_path))
        for r in (a, b):
            r.wait_ready()
        log.info("cluster serving after %.1f s", time.monotonic() - t0)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def eventually(check, *, within_s: float, every_s: float = 0.2):
    """Call ``check()`` until it returns a true value: (value, seconds at which that successful check
    began). "Within N s" means a request sent within N s sees it, however long the request itself
    takes on a busy machine; after N s an AssertionError carries the last value."""
    t0 = time.monotonic()
    while True:
        began = time.monotonic() - t0
        last = check()
        if last:
            return last, began
        if time.monotonic() - t0 > within_s:
            raise AssertionError(f"not within {within_s} s; last: {str(last)[:1500]}")
        time.sleep(every_s)
