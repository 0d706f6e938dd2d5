"""Load test of the portal: N simultaneous users (`kiportal loadtest`).

By default the portal runs in-process on a free loopback port; with ``--url`` (repeatable)
the users go to running portals instead, spread round-robin, e.g. the replicas of a cluster
behind no load balancer (issue 16), logged in as ``--user``. Each simulated user is a
``gradio_client`` session asking its questions one after another. The run is bounded in
count (users × questions) and time. With the extractive model it measures the portal
itself; with the local model requests wait in the queue (one generation at a time on
2 cores), and the queue positions each user was shown are recorded.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Sequence

import click

from evals.metrics import linear_percentile
from ui.cli_common import app_for, ask_password

if TYPE_CHECKING:  # importing the portal context pulls in gradio: not at CLI start-up
    from ui.context import PortalContext

log = logging.getLogger(__name__)

QUESTIONS = (
    "Welche Daten dürfen in ein Werkzeug der Zone Rot?",
    "Wie viele Sensoren sind im Reallabor im Nordpark verbaut?",
    "Bis wann muss ich mich für die Regionalkonferenz anmelden?",
    "Wie lange werden meine Chats im KI-Portal gespeichert?",
)


_LOGINS = threading.Lock()


def _user(url: str, n: int, questions: Sequence[str], model: str, deadline: float, out: list[dict],
          auth: tuple[str, str] | None = None, ready: threading.Barrier | None = None) -> None:
    """One user: log in, wait at ``ready`` until every user has, then ask ``questions`` in turn."""
    from gradio_client import Client

    try:
        with _LOGINS:  # one login at a time: the portal checks a burst of one name's logins a few at a time
            client = Client(url, auth=auth, verbose=False)
        client.predict(api_name="/session")
    except Exception as exc:  # a failed login or start counts as an error for each of the user's questions
        out += [{"user": n, "url": url, "question": q, "ok": False, "max_queue_rank": 0, "latency_ms": 0.0,
                 "error": f"{type(exc).__name__}: {exc}"[:300]} for q in questions]
        return
    finally:
        _all_logged_in(ready, deadline)
    for q in questions:
        row = {"user": n, "url": url, "question": q, "ok": False, "max_queue_rank": 0, "error": None}
        t0 = time.perf_counter()
        try:
            job = client.submit(q, model, [], api_name="/ask")
            while not job.done():
                if time.monotonic() > deadline:
                    job.cancel()
                    raise TimeoutError("Zeitlimit des Lasttests erreicht")
                status = job.status()
                rank = getattr(status, "rank", None)
                if rank is not None:
                    row["max_queue_rank"] = max(row["max_queue_rank"], int(rank) + 1)
                time.sleep(0.1)
            chatbot = job.result()[0]
            answer = str(chatbot[-1]["content"]) if chatbot else ""
            row["ok"] = bool(answer.strip())
        except Exception as exc:  # every error is counted, none stops the other users
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
        row["latency_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        out.append(row)


def _all_logged_in(ready: threading.Barrier | None, deadline: float) -> None:
    """Wait until every user has logged in (or failed to), so that the questions come at once:
    logins go one at a time, and the first users' answers were done before the last ones began."""
    if ready is None:
        return
    try:
        ready.wait(timeout=max(1.0, deadline - time.monotonic()))
    except threading.BrokenBarrierError:  # a user stuck in its login: the others go on
        pass


def drive(urls: Sequence[str], *, users: int = 10, per_user: int = 2, model: str = "extraktiv",
          questions: Sequence[str] = QUESTIONS, time_limit_s: float = 900.0,
          auth: tuple[str, str] | None = None) -> dict:
    """Let ``users`` clients ask ``per_user`` questions each at once; user n talks to ``urls[n % len(urls)]``."""
    if not urls:
        raise ValueError("Mindestens eine Portal-Adresse nötig. / at least one portal URL")
    rows: list[dict] = []
    deadline = time.monotonic() + time_limit_s
    t0 = time.perf_counter()
    ready = threading.Barrier(users)
    workers = [threading.Thread(target=_user, args=(urls[n % len(urls)], n,
                                                    [questions[(n + i) % len(questions)] for i in range(per_user)],
                                                    model, deadline, rows, auth, ready)) for n in range(users)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=max(1.0, deadline - time.monotonic() + 30))
    return summarize(rows, users=users, per_user=per_user, model=model, urls=urls, wall_s=time.perf_counter() - t0)


def summarize(rows: list[dict], *, users: int, per_user: int, model: str, urls: Sequence[str], wall_s: float) -> dict:
    """The report of a run from its rows (one per question asked)."""
    lat = [r["latency_ms"] for r in rows if r["ok"]]
    return {
        "users": users, "per_user": per_user, "model": model, "requests": users * per_user,
        "answered": sum(r["ok"] for r in rows), "errors": [r["error"] for r in rows if r["error"]],
        "latency_p50_ms": round(linear_percentile(lat, 50), 1) if lat else None,
        "latency_p95_ms": round(linear_percentile(lat, 95), 1) if lat else None,
        "max_queue_rank_seen": max((r["max_queue_rank"] for r in rows), default=0),
        "users_who_saw_a_queue_position": len({r["user"] for r in rows if r["max_queue_rank"] > 0}),
        "urls": list(urls),
        "answered_per_url": {u: sum(r["ok"] for r in rows if r.get("url") == u) for u in urls},
        "wall_s": round(wall_s, 1),
    }


def run_load(ctx: PortalContext, *, users: int = 10, per_user: int = 2, model: str = "extraktiv",
             questions: Sequence[str] = QUESTIONS, time_limit_s: float = 900.0) -> dict:
    """Start the portal on loopback, let ``users`` clients ask ``per_user`` questions each at once."""
    from ui.portal import background_portal

    if ctx.app.settings.auth.mode != "none":
        raise ValueError("Der Lasttest braucht auth.mode = none (nur Loopback). / load test needs auth.mode none")
    ctx.app.warm_up(llm=model != "extraktiv")
    with background_portal(ctx) as (url, _server):
        return drive([url], users=users, per_user=per_user, model=model, questions=questions,
                     time_limit_s=time_limit_s)


@click.command("loadtest")
@click.option("--users", default=10, show_default=True, help="Gleichzeitige Nutzer / simultaneous users.")
@click.option("--per-user", default=2, show_default=True, help="Fragen je Nutzer / questions per user.")
@click.option("--model", default="extraktiv", show_default=True, help="Modell-Schlüssel / model key.")
@click.option("--time-limit", default=900.0, show_default=True, help="Sekunden / seconds.")
@click.option("--url", "urls", multiple=True,
              help="Laufendes Portal statt eines eigenen; mehrfach: Nutzer reihum verteilt (z. B. Replikate) / "
                   "running portal(s), users spread round-robin.")
@click.option("--user", default=None, help="Anmeldename für Portale mit Passwort (mit --url) / login name.")
@click.option("--password-stdin", is_flag=True, help="Passwort aus der ersten Zeile von stdin lesen (mit --user).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def loadtest(ctx, users, per_user, model, time_limit, urls, user, password_stdin, as_json) -> None:
    """Lasttest: N Nutzer fragen gleichzeitig über das Portal (eigenes auf 127.0.0.1 oder --url), begrenzt."""
    if user and not urls:
        raise click.UsageError("--user nur zusammen mit --url / --user needs --url")
    if urls:
        auth = None
        if user:
            password = (sys.stdin.readline().rstrip("\r\n") if password_stdin
                        else ask_password(confirm=False))
            auth = (user, password)
        report = drive(list(urls), users=users, per_user=per_user, model=model, time_limit_s=time_limit, auth=auth)
    else:
        from ui.context import PortalContext  # here, not at module level: it pulls in gradio

        report = run_load(PortalContext(app_for(ctx)), users=users, per_user=per_user, model=model,
                          time_limit_s=time_limit)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        for k, v in report.items():
            click.echo(f"{k}: {v}")
    if report["errors"] or report["answered"] != report["requests"]:
        ctx.exit(1)
