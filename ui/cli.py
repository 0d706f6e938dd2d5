"""The `kiportal` command line. Commands are thin: parse, call a plain function, print.

Output for people goes to stdout (tables, summaries) and logs go to stderr; with
``--json`` stdout carries exactly one JSON object per result, for scripts and cron.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from assistant.users import ROLES
from corpus.models import page_kind_of, page_label
from ui import cli_access, cli_admin, cli_cluster, cli_eval, cli_oparl, cli_policy, cli_tools, loadtest
from ui.cli_access import as_user_option, scope_as
from ui.cli_admin import admin_for
from ui.cli_common import app_for, ask_password, ask_yes, cli_actor, emit, print_summary, progress_bar, shown

log = logging.getLogger("kiportal")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, envvar="KIPORTAL_HOME",
              help="Datenverzeichnis / data directory (default ./data, env KIPORTAL_HOME).")
@click.option("-v", "--verbose", count=True, help="Mehr Protokoll / more logging (-vv debug).")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, verbose: int) -> None:
    """kiportal – KI-Portal für Kommunen: Antworten aus den eigenen Dokumenten, mit Quellen.

    Alles läuft lokal; keine Daten verlassen den Rechner.
    """
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr,
    )
    ctx.obj = {"data_dir": data_dir}


# -- config --------------------------------------------------------------
@cli.group()
def config() -> None:
    """Einstellungen / settings."""


@config.command("show")
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Zeigt die wirksamen Einstellungen (Geheimnisse maskiert) / show merged settings."""
    from assistant.settings import masked_dump

    click.echo(json.dumps(masked_dump(app_for(ctx).settings), ensure_ascii=False, indent=2))


# -- models --------------------------------------------------------------
@cli.group()
def models() -> None:
    """Modelle vorbereiten / prepare models."""


@models.command("prepare")
@click.option("--no-llm", is_flag=True, help="Nur das Embedding-Modell / embedding model only.")
@click.option("--force", is_flag=True, help="Neu bauen / rebuild.")
@click.pass_context
def models_prepare(ctx: click.Context, no_llm: bool, force: bool) -> None:
    """Baut die Modelle aus den installierten Paketen in den Modellordner (einmalig; models_path, sonst
    <Datenverzeichnis>/models – im Cluster auf jeder Maschine oder einmal in den geteilten Ordner)."""
    from assistant.model_setup import prepare_models

    for line in prepare_models(app_for(ctx), llm=not no_llm, force=force):
        click.echo(line)


# -- ingest / sync -------------------------------------------------------
@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--collection", "-c", default=None, help="Sammlung / collection.")
@click.option("--force", is_flag=True, help="Auch unveränderte Dateien neu indexieren / re-index unchanged files.")
@click.option("--json", "as_json", is_flag=True, help="Zusammenfassung als JSON / summary as JSON.")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], collection: str | None, force: bool, as_json: bool) -> None:
    """Dateien oder Ordner indexieren (neue hinzufügen, geänderte aktualisieren)."""
    app = app_for(ctx)
    cb, close = progress_bar(not as_json and sys.stderr.isatty())
    try:
        # a file the operator names is read where it is: a symlink named on purpose is followed here,
        # once (the pipeline itself follows none, ingest.safe_files)
        named = [p.resolve() if p.is_file() else p for p in paths]
        summary = app.ingestor.ingest(named, collection=collection, force=force, progress=cb)
    finally:
        close()
    emit(summary.as_dict(), as_json, print_summary)


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--collection", "-c", default=None, help="Sammlung / collection.")
@click.option("--json", "as_json", is_flag=True, help="Zusammenfassung als JSON.")
@click.pass_context
def sync(ctx: click.Context, directory: Path, collection: str | None, as_json: bool) -> None:
    """Ordner abgleichen: wie ingest, entfernt zusätzlich Dokumente gelöschter Dateien."""
    app = app_for(ctx)
    cb, close = progress_bar(not as_json and sys.stderr.isatty())
    try:
        summary = app.ingestor.ingest([directory], collection=collection, prune_under=[directory], progress=cb)
    finally:
        close()
    emit(summary.as_dict(), as_json, print_summary)


# -- docs ----------------------------------------------------------------
@cli.group()
def docs() -> None:
    """Dokumente verwalten / manage documents."""


def _doc_json(rec, ocr_threshold: float | None = None) -> dict:
    d = rec.as_dict()
    d["pages"] = rec.pages
    d["chunks"] = rec.chunk_count
    if ocr_threshold is not None:  # pages read by OCR below the confidence setting: for a person to check
        d["ocr_check_pages"] = rec.low_confidence_pages(ocr_threshold)
    return d


@docs.command("list")
@click.option("--collection", "-c", default=None)
@click.option("--status", default=None, type=click.Choice(["indexed", "failed", "needs_ocr", "pending"]))
@click.option("--json", "as_json", is_flag=True, help="Ein JSON-Objekt pro Dokument / one object per document.")
@as_user_option
@click.pass_context
def docs_list(ctx: click.Context, collection: str | None, status: str | None, as_json: bool, as_user: str | None) -> None:
    """Alle Dokumente im Katalog (mit --as nur die Sammlungen, die dieser Benutzer lesen darf)."""
    app = app_for(ctx)
    scope = scope_as(ctx, as_user, "docs list")
    recs = [r for r in app.catalog.documents(collection=collection, status=status) if scope.allows(r.collection)]
    if as_json:
        for rec in recs:
            click.echo(json.dumps(_doc_json(rec, app.settings.ocr.min_confidence), ensure_ascii=False))
        return
    for rec in recs:
        click.echo(f"{rec.doc_id}  {rec.status:9}  {rec.collection:12}  {str(rec.pages or '-'):>4} S.  "
                   f"{rec.chunk_count:>5} Abschn.  {shown(rec.source)}")
    click.echo(f"{len(recs)} Dokumente")


@docs.command("show")
@click.argument("doc_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def docs_show(ctx: click.Context, doc_id: str, as_json: bool) -> None:
    """Details eines Dokuments."""
    app = app_for(ctx)
    rec = app.catalog.get(doc_id)
    if rec is None:
        raise click.ClickException(f"Dokument nicht gefunden / not found: {doc_id}")
    threshold = app.settings.ocr.min_confidence
    emit(_doc_json(rec, threshold), as_json, lambda d: _print_doc(d, threshold))


def _print_doc(d: dict, threshold: float) -> None:
    for k, v in d.items():
        if k not in ("ocr_pages", "ocr_check_pages"):
            click.echo(f"{k}: {shown(v)}")  # titles and errors come from files
    if d["ocr_pages"]:
        pages = d["ocr_pages"]
        mean = sum(pages.values()) / len(pages)
        click.echo(f"Texterkennung: {len(pages)} Seite(n) per OCR gelesen, Sicherheit im Mittel {mean:.0f} %")
        check = d["ocr_check_pages"]
        if check:
            listed = ", ".join(f"S. {p} ({pages[p]:.0f} %)" for p in check)
            click.echo(f"Bitte prüfen (Sicherheit unter {threshold:g} %): {listed}")


@docs.command("delete")
@click.argument("doc_id")
@click.pass_context
def docs_delete(ctx: click.Context, doc_id: str) -> None:
    """Dokument aus allen Indizes entfernen (eine hochgeladene Kopie ebenfalls; protokolliert)."""
    from assistant.admin import AdminError

    try:
        result = admin_for(ctx).delete_document(doc_id, cli_actor())
    except (AdminError, KeyError):
        raise click.ClickException(f"Dokument nicht gefunden / not found: {doc_id}") from None
    click.echo(f"gelöscht: {doc_id} ({result['chunks']} Abschnitte)")


# -- search --------------------------------------------------------------
def hit_json(hit) -> dict:
    c = hit.chunk
    return {"doc_id": c.doc_id, "source": c.source, "title": c.title, "page": c.page,
            "section": c.section, "score": round(hit.score, 6), "text": c.text}


@cli.command()
@click.argument("query", required=False)
@click.option("-k", default=None, type=int, help="Anzahl Treffer / number of hits.")
@click.option("--collection", "-c", multiple=True, help="Nur diese Sammlung(en).")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense"]), default="hybrid")
@click.option("--batch", type=click.File("r", encoding="utf-8"), default=None, help="Eine Frage pro Zeile / one question per line.")
@click.option("--json", "as_json", is_flag=True)
@as_user_option
@click.pass_context
def search(ctx, query, k, collection, mode, batch, as_json, as_user) -> None:
    """Textstellen suchen (hybrid: BM25 + Vektoren). Ohne --as in allen Sammlungen (Betreiber-Sicht)."""
    if not query and batch is None:
        raise click.UsageError("Frage oder --batch angeben / give a query or --batch")
    retriever = app_for(ctx).retriever
    scope = scope_as(ctx, as_user, "search")
    queries = [q.strip() for q in batch if q.strip()] if batch else [query]
    for q in queries:
        res = retriever.search(q, k=k, collections=scope.restrict(list(collection) or None), mode=mode)
        data = {"query": q, "hits": [hit_json(h) for h in res.hits]}
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False))
            continue
        click.echo(f"Suche: {q}  ({res.ms:.0f} ms)")
        for n, h in enumerate(data["hits"], 1):
            where = page_label(h["page"], page_kind_of(h["source"])) or "–"
            click.echo(f"[{n}] {h['title']} ({Path(h['source']).name}, {where})  {h['score']:.4f}")
            click.echo("    " + h["text"][:240].replace("\n", " "))


# -- doctor --------------------------------------------------------------
@cli.command()
@click.option("--repair/--no-repair", default=True, help="Gefundene Abweichungen reparieren.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def doctor(ctx: click.Context, repair: bool, as_json: bool) -> None:
    """Prüft die geteilten Speicher (App-Datenbank, Chroma-Server), ob Katalog, Chroma und BM25 übereinstimmen
    und das Datenverzeichnis privat ist (Exit 0 nur dann)."""
    from assistant.cluster import NodeRegistry, check_app_db, check_vector_store
    from assistant.jobs import queue_depth
    from assistant.datadir import make_private, permission_problems

    app = app_for(ctx)
    stores = [check_app_db(lambda: app.app_db), check_vector_store(app.settings)]
    if not all(st["ok"] for st in stores):  # nothing to compare against: say which store fails
        emit({"shared_stores": stores}, as_json, lambda d: click.echo(json.dumps(d, ensure_ascii=False, indent=2)))
        for st in stores:
            if not st["ok"]:
                log.error("%s: %s", st["store"], st.get("error", "nicht in Ordnung"))
        ctx.exit(1)
    report = app.kb.check(repair=repair)
    open_paths = permission_problems(app.settings.home)
    if open_paths and repair:
        make_private(app.settings.home)
        open_paths = permission_problems(app.settings.home)
    data = {**report.as_dict(), "data_dir_private": not open_paths, "data_dir_open_paths": open_paths[:50],
            "shared_stores": stores}
    if app.settings.cluster:  # what `kiportal status` lists: who is running, what is waiting
        data.update(nodes=NodeRegistry(app.app_db).nodes(), queue=queue_depth(app.app_db))
    emit(data, as_json, lambda d: click.echo(json.dumps(d, ensure_ascii=False, indent=2)))
    if open_paths:
        log.error("Datenverzeichnis nicht privat (Ordner 0700, Dateien 0600 erwartet): %s", ", ".join(open_paths[:5]))
        ctx.exit(1)
    if not report.ok and not report.repaired:
        ctx.exit(1)
    if report.repaired and not app.kb.check(repair=False).ok:
        ctx.exit(1)


# -- portal and users ------------------------------------------------------
@cli.command()
@click.option("--host", default=None, help="Adresse / bind address (default: server.host).")
@click.option("--port", default=None, type=int, help="Port (default: server.port).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Startet das Web-Portal (Chat mit Quellen; Verwaltung und KI-Kompass je nach Rolle)."""
    from ui.context import PortalContext
    from ui.portal import check_auth_mode, serve as run_portal

    app = app_for(ctx)
    try:  # login rules and, in cluster mode, the shared auth.secret (assistant.cluster)
        check_auth_mode(app.settings, host or app.settings.server.host)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    s = app.settings
    click.echo(f"KI-Portal: http://{host or s.server.host}:{port or s.server.port}/ "
               f"(Anmeldung: {s.auth.mode}) – beenden mit Strg+C", err=True)
    run_portal(PortalContext(app), host, port)


@cli.command()
@click.option("--concurrency", "-c", default=None, type=click.IntRange(1, 32),
              help="Aufträge gleichzeitig / jobs at once (default: jobs.worker_concurrency).")
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None) -> None:
    """Arbeitet Aufträge im Cluster-Betrieb ab (Upload, Neuindexierung, Abgleich, OParl), bis Strg+C/SIGTERM.

    Braucht app_db_url auf PostgreSQL; läuft auf jedem Rechner mit Zugriff auf Datenbank, Chroma und Dateien.
    """
    from assistant.admin import AdminError
    from assistant.cluster import worker_problems

    app = app_for(ctx)
    problems = worker_problems(app.settings)  # cluster mode, and the same start-up rule as `kiportal serve`
    if problems:
        raise click.ClickException(problems[0])
    click.echo(f"kiportal worker: Aufträge aus {app.settings.app_db.split('@')[-1]} – beenden mit Strg+C", err=True)
    try:
        with app.heartbeat("worker"):  # listed by `kiportal status` on every replica
            app.run_worker(concurrency=concurrency)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None


@cli.group()
def users() -> None:
    """Portal-Benutzer verwalten / manage portal users."""


def _read_password(password_stdin: bool, confirm: bool = True) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return ask_password(confirm)


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="staff", show_default=True)
@click.option("--group", "-g", "groups", multiple=True,
              help="Gruppe (Amt): aus access.groups oder mit `kiportal groups add` angelegt; mehrfach möglich / group, repeatable.")
@click.option("--password-stdin", is_flag=True, help="Passwort aus der ersten Zeile von stdin lesen.")
@click.option("--subject", default=None, help="SSO: die Kennung (auth.subject_header), der das Konto gehört; ohne "
              "sie erhält es, wer sich zuerst mit dem Namen anmeldet / the SSO subject that owns the account.")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, groups: tuple[str, ...], password_stdin: bool,
              subject: str | None) -> None:
    """Benutzer anlegen (Passwort wird abgefragt, nie als Argument)."""
    from sqlalchemy.exc import IntegrityError

    from assistant.access import AccessError, check_groups, split_groups
    from assistant.sso_subjects import check_subject

    dep = app_for(ctx).departments
    try:
        if subject is not None:
            check_subject(subject)  # before the password prompt
        wanted = check_groups(split_groups(list(groups)), dep.known_groups)
        user = dep.add_user(name, _read_password(password_stdin), role, wanted, cli_actor(), subject=subject)
    except (AccessError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except IntegrityError:  # a subject signed in with the name at the same moment: nothing was created
        raise click.ClickException(f"„{name}“ wurde eben per SSO angemeldet; nichts angelegt, bitte erneut "
                                   f"versuchen / a sign-in with the name came in between, try again") from None
    click.echo(f"angelegt: {name} ({role}" + (f"; Gruppen: {', '.join(user.groups)}" if user.groups else "")
               + (f"; SSO-Kennung: {subject}" if subject else "") + ")")


@users.command("sso-assign")
@click.argument("name")
@click.argument("subject")
@click.pass_context
def users_sso_assign(ctx: click.Context, name: str, subject: str) -> None:
    """SSO: festlegen, welcher Kennung (auth.subject_header) ein noch ungebundener Name gehört, etwa
    einem vorbereiteten Konto vor der ersten Anmeldung. / Name the SSO subject that owns a name."""
    app = app_for(ctx)
    try:
        app.sso_subjects.assign(name, subject)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    app.audit.record("sso_assign", cli_actor(), name, {"subject": subject})
    click.echo(f"{name} gehört jetzt der SSO-Kennung {subject}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def users_list(ctx: click.Context, as_json: bool) -> None:
    """Alle Benutzer mit Rolle und letzter Anmeldung."""
    from assistant.user_admin import format_login

    rows = app_for(ctx).users.list()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    for r in rows:
        last = format_login(r["last_login"])
        click.echo(f"{r['name']:24} {r['role']:8} Gruppen: {', '.join(r['groups']) or '–':24} letzte Anmeldung: {last}")
    click.echo(f"{len(rows)} Benutzer")


FORCE_HELP = "auch die letzte Administration (das Portal hat dann keine mehr) / even the last admin"


def _last_admin_guard(app, name: str, role: str | None, force: bool) -> None:
    """The portal's rule in the CLI too: the last admin is neither removed nor demoted, unless forced."""
    from assistant.admin_rules import refused_role_change, refused_user_removal

    roles = {u["name"]: u["role"] for u in app.users.list()}
    why = refused_user_removal("", name, roles) if role is None else refused_role_change("", name, role, roles)
    if why and not force:
        raise click.ClickException(f"{why} (--force: trotzdem)")


@users.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@click.pass_context
def users_remove(ctx: click.Context, name: str, force: bool) -> None:
    """Benutzer löschen, mit seinen Chats und Werkzeug-Läufen (ein späteres Konto gleichen Namens sieht sie nicht)."""
    app = app_for(ctx)
    _last_admin_guard(app, name, None, force)
    try:
        left = app.users.remove(name)  # with its chats and tool runs: a later account of the name starts empty
    except KeyError:
        raise click.ClickException(f"Benutzer nicht gefunden / no such user: {name}") from None
    app.audit.record("user_remove", "cli", name, left)
    click.echo(f"gelöscht: {name} ({left['chats']} Chats, {left['tool_runs']} Werkzeug-Läufe gelöscht)")


@users.command("handover")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Ohne Rückfrage / without asking.")
@click.pass_context
def users_handover(ctx: click.Context, name: str, yes: bool) -> None:
    """SSO: Benutzername an eine andere Person übergeben (auth.subject_header). Das bisherige Konto wird
    mit Chats, Werkzeug-Läufen, Rolle und Gruppen gelöscht, seine SSO-Kennung künftig abgewiesen; wer
    sich als Nächstes mit dem Namen anmeldet, erhält ihn. / Hand an SSO name on to another person."""
    app = app_for(ctx)
    if not yes:
        ask_yes(f"„{name}“ übergeben und das bisherige Konto mit seinen Daten löschen?")
    if app.users.get(name) is not None:
        _last_admin_guard(app, name, None, False)
    left = app.sso_subjects.hand_over(name, app.users)
    app.audit.record("sso_handover", "cli", name, left)
    click.echo(f"übergeben: {name} ({left['chats']} Chats, {left['tool_runs']} Werkzeug-Läufe gelöscht)")


@users.command("sso-release")
@click.argument("name")
@click.pass_context
def users_sso_release(ctx: click.Context, name: str) -> None:
    """SSO: früher abgewiesene Kennungen eines Namens wieder zulassen (nach einer irrtümlichen Übergabe).
    / Let subjects refused for a name sign in again."""
    app = app_for(ctx)
    n = app.sso_subjects.forgive(name)
    app.audit.record("sso_release", "cli", name, {"subjects": n})
    click.echo(f"{n} Kennung(en) für {name} wieder zugelassen")


@users.command("passwd")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default=None, help="Rolle ebenfalls ändern.")
@click.option("--password-stdin", is_flag=True, help="Passwort aus der ersten Zeile von stdin lesen.")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@click.pass_context
def users_passwd(ctx: click.Context, name: str, role: str | None, password_stdin: bool, force: bool) -> None:
    """Passwort (und optional Rolle) eines Benutzers ändern."""
    app = app_for(ctx)
    if app.users.get(name) is None:
        raise click.ClickException(f"Benutzer nicht gefunden / no such user: {name}")
    if role:
        _last_admin_guard(app, name, role, force)
    try:
        app.users.set_password(name, _read_password(password_stdin))
        if role:
            app.users.set_role(name, role)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    app.audit.record("user_passwd", "cli", name, {"role": role} if role else {})
    click.echo(f"geändert: {name}" + (f" ({role})" if role else ""))


# commands that live in their own modules (heavier imports stay inside the commands)
for command in (cli_eval.eval_cmd, cli_eval.bench_cmd, cli_admin.collections, cli_admin.reindex, cli_admin.audit,
                cli_policy.ask, cli_policy.policy, loadtest.loadtest, cli_oparl.oparl, cli_tools.tool,
                cli_cluster.status):
    cli.add_command(command)
cli.add_command(cli_access.groups_cli)
users.add_command(cli_access.users_groups)
for command in (cli_access.collections_grant, cli_access.collections_revoke, cli_access.collections_show):
    cli_admin.collections.add_command(command)


def main() -> None:
    from corpus.db import LockLost

    try:
        cli(obj={})
    except LockLost as exc:  # cluster: the writer lock's connection broke mid-write; a sentence, no traceback
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
