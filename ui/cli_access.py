"""Departments on the command line: the groups themselves, users' groups, collections' readers, and ``--as USER``.

The CLI is the server operator's tool: without ``--as`` it reads every collection. With
``--as USER`` a command runs with exactly that user's scope (what they would see in the
portal), for an admin checking what a colleague sees; every such run is audited.
Changes go through :class:`assistant.access.Departments`, like the Verwaltung tab.
"""
from __future__ import annotations

import json

import click

from ui.cli_common import app_for, cli_actor

AS_HELP = ("Mit den Leserechten dieses Portal-Benutzers (nur seine Sammlungen; protokolliert). Ohne --as: "
           "volle Sicht auf alle Sammlungen (Werkzeug des Serverbetriebs). / run with USER's permissions "
           "(audited); without --as the CLI reads every collection.")


def as_user_option(f):
    """The ``--as USER`` option of commands that show document content."""
    return click.option("--as", "as_user", default=None, metavar="USER", help=AS_HELP)(f)


def departments_for(ctx: click.Context):
    return app_for(ctx).departments


def scope_as(ctx: click.Context, name: str | None, command: str):
    """The scope for ``--as NAME`` (audited), or the full scope without it."""
    from assistant.access import FULL, scope_for

    if not name:
        return FULL
    app = app_for(ctx)
    user = app.users.get(name)
    if user is None:
        raise click.BadParameter(f"Benutzer nicht gefunden / no such user: {name}", param_hint="--as")
    app.audit.record("as_user", cli_actor(), name, {"command": command, "role": user.role, "groups": list(user.groups)})
    return scope_for(user.role, user.groups, app.catalog)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


# -- commands added to `users` and `collections` by ui/cli.py ---------------------------------
@click.command("groups")
@click.argument("name")
@click.argument("groups", nargs=-1)
@click.pass_context
def users_groups(ctx: click.Context, name: str, groups: tuple[str, ...]) -> None:
    """Gruppen eines Benutzers setzen (ersetzt die bisherigen; keine Gruppe = keine). / set a user's groups."""
    from assistant.access import AccessError, split_groups

    try:
        after = departments_for(ctx).set_user_groups(name, split_groups(list(groups)), cli_actor())
    except AccessError as exc:
        raise _fail(exc) from None
    click.echo(f"{name}: {', '.join(after) or 'keine Gruppen'}")


@click.command("grant")
@click.argument("collection")
@click.argument("group")
@click.pass_context
def collections_grant(ctx: click.Context, collection: str, group: str) -> None:
    """GROUP (oder „alle“) darf COLLECTION lesen. / let GROUP read COLLECTION."""
    _change_readers(ctx, "grant", collection, group)


@click.command("revoke")
@click.argument("collection")
@click.argument("group")
@click.pass_context
def collections_revoke(ctx: click.Context, collection: str, group: str) -> None:
    """GROUP (oder „alle“) darf COLLECTION nicht mehr lesen. / stop GROUP reading COLLECTION."""
    _change_readers(ctx, "revoke", collection, group)


def _change_readers(ctx: click.Context, how: str, collection: str, group: str) -> None:
    """``grant`` or ``revoke`` one group's right to read a collection, and print who reads it now."""
    from assistant.access import AccessError, readers_label

    departments = departments_for(ctx)
    try:
        after = getattr(departments, how)(collection, group, cli_actor())
    except AccessError as exc:
        raise _fail(exc) from None
    click.echo(f"{collection}: lesen dürfen {readers_label(after)}")


@click.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Ein JSON-Objekt / one JSON object.")
@click.pass_context
def collections_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Wer darf die Sammlung lesen? Gruppen und die Benutzer, die daraus folgen. / who may read it."""
    from assistant.access import AccessError

    try:
        shown = departments_for(ctx).show(name)
    except AccessError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False))
        return
    click.echo(f"{shown['name']} ({shown['classification']}, {shown['documents']} Dokumente)")
    click.echo(f"lesen dürfen: {shown['readers_label']} (Administratoren immer)")
    for u in shown["users"]:
        click.echo(f"  {u['name']:24} {u['role']:8} {', '.join(u['groups']) or '–'}")
    click.echo(f"{len(shown['users'])} Benutzer")


# -- `kiportal groups`: the groups (Ämter) themselves; registered by ui/cli.py ----------------------
SOURCES = {"config": "Einstellung", "portal": "angelegt", "unknown": "nicht eingerichtet"}


@click.group("groups")
def groups_cli() -> None:
    """Gruppen (Ämter) anlegen, auflisten, entfernen / manage groups (departments).

    Bekannt sind die Gruppen der Einstellung access.groups und die hier oder in der Verwaltung
    angelegten. / Known groups: access.groups plus the ones created here or in the portal."""


@groups_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Ein JSON-Objekt je Gruppe / one JSON object per group.")
@click.pass_context
def groups_list(ctx: click.Context, as_json: bool) -> None:
    """Alle Gruppen mit Herkunft, Benutzern und Sammlungen. / every group, where from, who has it."""
    rows = departments_for(ctx).groups()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    for r in rows:
        click.echo(f"{r['name']:24} {SOURCES.get(r['source'], r['source']):18} "
                   f"Benutzer: {', '.join(r['users']) or '–'}  Sammlungen: {', '.join(r['collections']) or '–'}")
    click.echo(f"{len(rows)} Gruppen")


@groups_cli.command("add")
@click.argument("name")
@click.pass_context
def groups_add(ctx: click.Context, name: str) -> None:
    """Neue Gruppe anlegen (Kleinbuchstaben, Ziffern, . _ -). / create a group."""
    from assistant.access import AccessError

    try:
        made = departments_for(ctx).create_group(name, cli_actor())
    except AccessError as exc:
        raise _fail(exc) from None
    click.echo(f"angelegt: {made}")


@groups_cli.command("remove")
@click.argument("name")
@click.pass_context
def groups_remove(ctx: click.Context, name: str) -> None:
    """Angelegte Gruppe entfernen, wenn kein Benutzer und keine Sammlung sie hat. / remove an unused created group."""
    from assistant.access import AccessError

    try:
        gone = departments_for(ctx).remove_group(name, cli_actor())
    except AccessError as exc:
        raise _fail(exc) from None
    click.echo(f"entfernt: {gone}")
