"""`kiportal status`: the cluster at a glance from any replica (assistant.cluster does the work).

Exit code 0 only when every shared store answers, so a monitoring check can call it."""
from __future__ import annotations

import datetime as dt

import click

from ui.cli_common import app_for, emit


def _time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def store_line(st: dict) -> str:
    """One line per shared store: ✓/✗, what it is, its figures or its error."""
    mark = "✓" if st["ok"] else "✗"
    if st["store"] == "app_db":
        what = f"App-Datenbank ({st['backend']})"
        detail = (f"erreichbar ({st.get('latency_ms')} ms), Migrationen: "
                  + (", ".join(f"{k} v{v}" for k, v in st.get("migrations", {}).items()) or "keine")
                  + (f", Katalog-Revision {st['catalog_revision']}" if st.get("catalog_revision") else ""))
    elif st["store"] == "vector":
        what = f"Vektorindex ({st['mode']})"
        detail = (f"{st['host']}:{st['port']} erreichbar ({st.get('latency_ms')} ms), {st.get('collections')} "
                  f"Sammlung(en), {st.get('chunks') if st.get('chunks') is not None else 0} Abschnitte in "
                  f"{st['collection']!r}" if st.get("shared") and st["ok"] else "lokal (nicht geteilt)")
    else:
        what = "Modelle" + (" (geteilter Ordner)" if st.get("shared") else "")
        detail = st["path"]
    note = f" – {st['note']}" if st.get("note") else ""
    return f"{mark} {what}: {st['error'] if not st['ok'] and st.get('error') else detail}{note}"


def print_status(report: dict) -> None:
    click.echo("Betrieb: " + ("Cluster (PostgreSQL)" if report["cluster"] else "Einzelbetrieb (eingebettet)"))
    for problem in report["problems"]:
        click.echo(f"✗ {problem}")
    for st in report["stores"]:
        click.echo(store_line(st))
    if report["queue"] is not None:
        click.echo(f"Warteschlange: {report['queue']['queued']} wartend, {report['queue']['running']} laufend")
    nodes = report["nodes"]
    if report["cluster"]:
        live = [n for n in nodes if n["state"] == "aktiv"]
        click.echo(f"Portale und Worker: {len(live)} aktiv" + (f", {len(nodes) - len(live)} verstummt" if len(live) < len(nodes) else ""))
        for n in nodes:
            click.echo(f"  {n['state']:<9} {n['role']:<6} {n['host']}:{n['pid']} {n['address'] or '-'} "
                       f"v{n['version']} seit {_time(n['started_at'])}, letztes Lebenszeichen vor {n['silent_s']:.0f} s")
        for w in report.get("job_workers") or []:  # the queue's view: which worker runs which job now
            state = "aktiv" if w["alive"] else "verstummt"
            click.echo(f"  Auftrags-Worker {state:<9} {w['role']:<6} {w['host']}:{w['pid']} "
                       f"×{w['concurrency']}, läuft: {', '.join(w['running']) or '–'}")


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Ein JSON-Objekt / one JSON object.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Zeigt Portale, Worker, Warteschlange und prüft die geteilten Speicher (Exit 0 nur wenn alle antworten)."""
    from assistant.cluster import status_report

    report = status_report(app_for(ctx))
    emit(report, as_json, print_status)
    if not report["ok"]:
        ctx.exit(1)
