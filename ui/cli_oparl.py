"""`kiportal oparl …`: import from a council information system (OParl 1.1).

Thin: the work is :class:`assistant.oparl_admin.OParlAdmin` (same audit entries as the
portal's Verwaltung tab) over :class:`ingest.oparl.sync.OParlImporter`.
"""
from __future__ import annotations

import json
import sys

import click

from assistant.wording import counted


def _human(r: dict) -> None:
    from ingest.oparl.sync import report_message

    for b in r["bodies"]:
        since = f" (Änderungen seit {b['modified_since']})" if b["modified_since"] else " (vollständig)"
        click.echo(f"{b['name']}{since}{'' if b['complete'] else ' – unvollständig'}")
    click.echo(f"{report_message(r)}; Sammlung {r['collection']}, {r['requests']} Anfragen in {r['seconds']:.1f} s")
    for f in r["failed"]:
        click.echo(f"  ✗ {f['label'] or f['object']}: {f['error']}")


def _admin_call(ctx: click.Context, action: str, *args):
    """``OParlAdmin.<action>(*args, actor)``; an :class:`AdminError` becomes a clean CLI error."""
    from assistant.admin import AdminError
    from ui.cli_admin import admin_for
    from ui.cli_common import cli_actor

    try:
        return getattr(admin_for(ctx).oparl, action)(*args, cli_actor())
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("oparl")
def oparl() -> None:
    """Ratsinformationssystem über OParl 1.1 importieren (Drucksachen und Sitzungen)."""


@oparl.command("sync")
@click.argument("url")
@click.option("--collection", "-c", default=None, help="Sammlung (Standard: ratsinformation).")
@click.option("--json", "as_json", is_flag=True, help="Bericht als JSON / report as JSON.")
@click.pass_context
def oparl_sync(ctx: click.Context, url: str, collection: str | None, as_json: bool) -> None:
    """Drucksachen und Sitzungen von URL (OParl-System oder -Körperschaft) importieren.

    Der erste Lauf holt alles; spätere Läufe fragen nur nach Änderungen (modified_since),
    laden nur geänderte Dateien und entfernen gelöschte Vorgänge. Exit 1, wenn ein Vorgang
    nicht importiert werden konnte (die übrigen sind dann trotzdem importiert)."""
    from assistant.admin import AdminError
    from ui.cli_admin import admin_for
    from ui.cli_common import cli_actor, emit, progress_bar

    cb, close = progress_bar(not as_json and sys.stderr.isatty())
    try:
        report = admin_for(ctx).oparl.sync(url, collection, cli_actor(), progress=cb)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        close()
    emit(report, as_json, _human)
    if report["failed"]:
        ctx.exit(1)


@oparl.group("sources")
def sources() -> None:
    """OParl-Quellen für den regelmäßigen Abgleich (wie Verwaltung › Ratsinformation)."""


@sources.command("add")
@click.argument("url")
@click.option("--collection", "-c", default="ratsinformation", show_default=True, help="Sammlung.")
@click.option("--interval", type=float, default=24.0, show_default=True,
              help="Abgleich alle N Stunden, solange das Portal läuft (0 = nur von Hand).")
@click.pass_context
def sources_add(ctx: click.Context, url: str, collection: str, interval: float) -> None:
    """Quelle eintragen (protokolliert)."""
    src = _admin_call(ctx, "add_source", url, collection, interval)
    click.echo(f"eingetragen: {src['id'][:8]} {src['url']} → {src['collection']}")


@sources.command("remove")
@click.argument("source_id")
@click.pass_context
def sources_remove(ctx: click.Context, source_id: str) -> None:
    """Quelle austragen (ID oder ihr Anfang; die Dokumente bleiben)."""
    from ui.cli_admin import admin_for

    matches = [s["id"] for s in admin_for(ctx).oparl.sources() if s["id"].startswith(source_id.strip())]
    if len(matches) != 1:
        raise click.ClickException(f"Keine eindeutige Quelle für „{source_id}“ / no unique source.")
    _admin_call(ctx, "remove_source", matches[0])
    click.echo(f"ausgetragen: {matches[0][:8]}")


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def sources_list(ctx: click.Context, as_json: bool) -> None:
    """Eingetragene Quellen mit Intervall und letztem Ergebnis."""
    from ui.cli_admin import admin_for

    rows = admin_for(ctx).oparl.sources()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    for r in rows:
        for line in source_lines(r):
            click.echo(line)
    click.echo(counted(len(rows), "Quelle", "Quellen"))


def source_lines(r: dict) -> list[str]:
    """One source for ``oparl sources list``: a line with the German run status, and the last message
    below it when the run failed or ended with errors (how many, and the first error)."""
    from assistant.oparl_admin import run_status_de

    every = f"alle {r['interval_hours']:g} h" if r["interval_hours"] else "nur von Hand"
    lines = [f"{r['id'][:8]}  {r['collection']:20} {every:14} {run_status_de(r['last_status']):14} {r['url']}"]
    if r["last_status"] in ("with_errors", "failed") and (r.get("last_message") or "").strip():
        lines.append(f"          {' '.join(r['last_message'].split())}")
    return lines
