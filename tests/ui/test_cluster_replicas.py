"""Two portal replicas over HTTP (separate data directories, one PostgreSQL, one auth.secret): a
login made on replica A and a signed source link A put into an answer work on replica B, and a
logout on B ends the session on A. Without the shared secret and cookie name, B refused both.

Only A ingests: B knows the document from the shared catalog in the app database.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from gradio_client import Client
from portal_replicas import replica_contexts, serving

pytestmark = pytest.mark.cluster

PASSWORD = "Replika-Test-2026!"
QUESTION = "Wann öffnet die Kantine im Rathaus?"
LLM = {"default": "extraktiv", "models": {"extraktiv": {"mode": "extractive", "label": "Nur Textstellen"}}}


@pytest.fixture
def replicas(tmp_path, pg_url, app_factory):
    """Portals A and B (hash embedder, own data dirs) on one PostgreSQL, each in its own server."""
    shared = tmp_path / "shared-files"  # the file store both machines see (NFS in production)
    shared.mkdir()
    (shared / "kantine.md").write_text("# Kantine\n\nDie Kantine im Rathaus öffnet montags bis freitags um "
                                       "11:30 Uhr.\n", encoding="utf-8")
    ctxs = replica_contexts(tmp_path, app_factory, pg_url, llm=LLM)
    assert ctxs["a"].app.ingestor.ingest([shared], collection="allgemein").failed == []
    ids = {name: [d.doc_id for d in ctx.app.catalog.documents()] for name, ctx in ctxs.items()}
    assert len(ids["a"]) == 1 and ids["b"] == ids["a"]  # B lists A's document without ingesting it
    ctxs["a"].users.add("anna", PASSWORD, "staff")  # one user table: B knows anna too
    ctxs["a"].users.add("bernd", PASSWORD, "staff")
    with serving(ctxs) as served:
        yield {name: url for name, (url, _) in served.items()}, ctxs, ids["a"][0]


def login(url: str, user: str) -> dict[str, str]:
    """The cookies of a password login through gradio's /login."""
    with httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("login", data={"username": user, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return dict(r.cookies)


def get(url: str, path: str, cookies: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=60, cookies=cookies or {}, follow_redirects=False) as c:
        return c.get(path)


def answer_link(url: str) -> str:
    """The first source link of anna's answer on this replica (path and query, as the browser follows it)."""
    client = Client(url, auth=("anna", PASSWORD), verbose=False)
    client.predict(api_name="/session")
    chatbot = client.predict(QUESTION, "extraktiv", [], api_name="/ask")[0]
    content = chatbot[-1]["content"]
    text = "".join(p.get("text", "") for p in content if isinstance(p, dict)) if isinstance(content, list) else str(content)
    href = re.search(r'class="kp-src-link"[^>]*href="([^"]+)"|href="([^"]+)"[^>]*class="kp-src-link"', text)
    assert href, text
    link = (href.group(1) or href.group(2)).replace("&amp;", "&").split("#", 1)[0]
    parts = urlsplit(link)
    return parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")


def test_login_and_source_link_of_replica_a_work_on_replica_b(replicas):
    urls, ctxs, doc_id = replicas
    link = answer_link(urls["a"])
    assert f"doc/{doc_id}" in link and "t=" in link
    cookies = login(urls["a"], "anna")  # logged in on A …
    assert get(urls["a"], link, cookies).status_code == 200
    on_b = get(urls["b"], link, cookies)  # … the load balancer sends the next click to B
    assert on_b.status_code == 200, on_b.text
    assert "11:30" in on_b.text or on_b.headers["content-type"].startswith("application/")

    # B really checks: no login, another user, a forged token are refused as on A
    assert get(urls["b"], link).status_code == 401
    assert get(urls["b"], link, login(urls["b"], "bernd")).status_code == 403  # the link is bound to anna
    forged = re.sub(r"t=(\d+)\.", lambda m: f"t={int(m.group(1)) + 3600}.", link)
    assert get(urls["b"], forged, cookies).status_code == 403

    # one session table: logging out on B ends the login on A
    assert get(urls["b"], "logout", cookies).status_code in (200, 302, 303, 307)
    assert get(urls["a"], link, cookies).status_code == 401


def test_both_replicas_are_listed_while_they_run(replicas):
    from assistant.cluster import status_report

    urls, ctxs, _ = replicas
    report = status_report(ctxs["b"].app)
    addresses = sorted(n["address"] for n in report["nodes"] if n["role"] == "serve" and n["state"] == "aktiv")
    assert addresses == sorted(urlsplit(u).netloc for u in urls.values())
