"""Admin commands of the `kiportal` CLI: collections, re-indexing, audit log.

Parity with the portal's admin area: the same :class:`assistant.admin.Admin` functions,
the same checks and the same audit entries (actor ``cli:<system user>``), so a cron job
or an SSH session leaves the same trail as a click.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from assistant.admin import AdminError
from assistant.policy.zones import CLASSIFICATIONS
from ui.cli_common import app_for, cli_actor, emit, print_summary, progress_bar


def admin_for(ctx: click.Context):
    """The App's admin operations, without background jobs (nothing loads a model)."""
    return app_for(ctx).admin


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def run_admin(ctx: click.Context, action: str, *args):
    """Call ``Admin.<action>(*args, actor)``; an :class:`AdminError` becomes a clean CLI error."""
    try:
        return getattr(admin_for(ctx), action)(*args, cli_actor())
    except AdminError as exc:
        raise _fail(exc) from None


# -- collections ---------------------------------------------------------
@click.group("collections")
def collections() -> None:
    """Sammlungen verwalten / manage collections."""


@collections.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def collections_list(ctx: click.Context, as_json: bool) -> None:
    """Alle Sammlungen mit Einstufung und Umfang."""
    rows = admin_for(ctx).collections()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    from assistant.access import readers_label

    for r in rows:
        click.echo(f"{r['name']:24} {r['classification']:16} {r['documents']:>6} Dok. {r['chunks']:>8} Abschn.  "
                   f"lesen: {readers_label(r['readers'])}")
    click.echo(f"{len(rows)} Sammlungen")


@collections.command("create")
@click.argument("name")
@click.option("--classification", "-k", type=click.Choice(CLASSIFICATIONS), default=None,
              help="Einstufung (Standard aus policy.default_classification).")
@click.option("--groups", default=None, metavar="G1,G2",
              help="Wer lesen darf: Gruppen oder „alle“ (Standard aus access.new_collection_readers).")
@click.pass_context
def collections_create(ctx: click.Context, name: str, classification: str | None, groups: str | None) -> None:
    """Neue Sammlung anlegen."""
    from assistant.access import readers_label, split_groups

    admin = admin_for(ctx)
    try:
        made = admin.create_collection(name, classification or admin.settings.policy.default_classification,
                                       cli_actor(), readers=None if groups is None else split_groups(groups))
    except AdminError as exc:
        raise _fail(exc) from None
    click.echo(f"angelegt: {name} (lesen dürfen: {readers_label(made['readers'])})")


@collections.command("classify")
@click.argument("name")
@click.argument("classification", type=click.Choice(CLASSIFICATIONS))
@click.pass_context
def collections_classify(ctx: click.Context, name: str, classification: str) -> None:
    """Einstufung einer Sammlung ändern."""
    run_admin(ctx, "classify_collection", name, classification)
    click.echo(f"{name}: {classification}")


@collections.command("rename")
@click.argument("old")
@click.argument("new")
@click.pass_context
def collections_rename(ctx: click.Context, old: str, new: str) -> None:
    """Sammlung umbenennen (Dokumente wandern mit)."""
    run_admin(ctx, "rename_collection", old, new)
    click.echo(f"umbenannt: {old} → {new}")


@collections.command("delete")
@click.argument("name")
@click.pass_context
def collections_delete(ctx: click.Context, name: str) -> None:
    """Leere Sammlung löschen."""
    run_admin(ctx, "delete_collection", name)
    click.echo(f"gelöscht: {name}")


@collections.command("move")
@click.argument("doc_id")
@click.argument("collection")
@click.pass_context
def collections_move(ctx: click.Context, doc_id: str, collection: str) -> None:
    """Dokument in eine andere Sammlung verschieben."""
    run_admin(ctx, "move_document", doc_id, collection)
    click.echo(f"verschoben: {doc_id} → {collection}")


# -- reindex -------------------------------------------------------------------
@click.command("reindex")
@click.argument("doc_id", required=False)
@click.option("--all", "everything", is_flag=True, help="Alle Dokumente neu einlesen und neu einbetten.")
@click.option("--changed", is_flag=True, help="Nur Dokumente, deren Datei sich geändert hat.")
@click.option("--collection", "-c", default=None, help="Alle Dokumente dieser Sammlung.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def reindex(ctx: click.Context, doc_id: str | None, everything: bool, changed: bool, collection: str | None,
            as_json: bool) -> None:
    """Dokumente neu indexieren; die Suche bleibt dabei verfügbar."""
    chosen = [x for x in (doc_id, everything or None, changed or None, collection) if x]
    if len(chosen) != 1:
        raise click.UsageError("Genau eines angeben: DOC_ID, --all, --changed oder --collection.")
    scope, target = ("doc", doc_id) if doc_id else ("all", None) if everything else \
        ("changed", None) if changed else ("collection", collection)
    cb, close = progress_bar(not as_json and sys.stderr.isatty())
    try:
        summary = admin_for(ctx).reindex(scope, target, cli_actor(), progress=cb)
    except AdminError as exc:
        raise _fail(exc) from None
    finally:
        close()

    def human(s: dict) -> None:
        print_summary(s)
        for m in s.get("missing_files", []):
            click.echo(f"  ✗ Datei fehlt: {m}")

    emit(summary, as_json, human)
    if summary.get("failed") or summary.get("missing_files"):
        ctx.exit(1)


# -- audit ---------------------------------------------------------------------
@click.group("audit")
def audit() -> None:
    """Protokoll exportieren und Aufbewahrungsfrist durchsetzen."""


@audit.command("export")
@click.option("--out", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="CSV-Datei (Standard: Ausgabe auf stdout).")


@click.option("--since", type=int, default=None, help="Nur die letzten N Tage.")
@click.option("--action", default=None, help="Nur diese Aktion (z. B. upload, collection.*).")
@click.option("--actor", default=None, help="Nur dieser Benutzer.")
@click.pass_context
def audit_export(ctx: click.Context, out: Path | None, since: int | None, action: str | None,
                 actor: str | None) -> None:
    """Protokoll als CSV (Semikolon, UTF-8)."""
    log = admin_for(ctx).audit
    filters = {"action": action, "actor": actor, "since": time.time() - since * 86400 if since else None}
    if out is None:
        n = log.write_csv(sys.stdout, **filters)
    else:
        with open(out, "w", encoding="utf-8", newline="") as fh:
            n = log.write_csv(fh, **filters)
        click.echo(f"{n} Einträge → {out}", err=True)
    log.record("audit.export", cli_actor(), str(out or "stdout"), {"rows": n, **{k: v for k, v in filters.items() if v}})


@audit.command("purge")
@click.option("--older-than", "days", type=int, default=None,
              help="Tage (Standard: privacy.retention_days).")


@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def audit_purge(ctx: click.Context, days: int | None, as_json: bool) -> None:
    """Einträge löschen, die älter als die Aufbewahrungsfrist sind."""
    admin = admin_for(ctx)
    days = admin.settings.privacy.retention_days if days is None else days
    n = admin.audit.purge(days, actor=cli_actor())
    emit({"deleted": n, "days": days}, as_json,
          lambda d: click.echo(f"{d['deleted']} Einträge gelöscht (älter als {d['days']} Tage)"
                               if d["days"] > 0 else "Aufbewahrungsfrist ist ausgeschaltet (0 Tage)."))
