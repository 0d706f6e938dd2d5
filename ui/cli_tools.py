"""`kiportal tool …`: the Werkzeuge on the command line, with the portal's behaviour (parity).

Same service (:attr:`assistant.wiring.App.tools`), same Ampel, same history and audit log:
a run is saved for the acting system user (``cli:<name>``) and can be listed and exported
like in the portal. Tokens stream to stdout; progress goes to stderr. With ``--json``
stdout carries exactly one object: ``output``, ``citations``, ``status`` and the tool's
figures (for ``einfach``: ``readability_before``, ``readability_after``, ``facts_changed``).

Exit codes: 0 done; 1 error; 3 the Ampel stopped the request (blocked, or personal data
for a yellow model without ``--confirm``) – nothing was sent to the model.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from assistant.wording import counted
from ui.cli_common import app_for as _app
from ui.cli_common import cli_actor, shown

EXIT_POLICY = 3


def _store(ctx: click.Context):
    from assistant.tools.history import ToolRunStore

    return ToolRunStore(_app(ctx).app_db)


def _check_model(app, model: str | None) -> str:
    key = model or app.settings.llm.default
    if key not in app.settings.llm.models:
        raise click.BadParameter(f"Unbekanntes Modell: {key}. Vorhanden: {', '.join(app.settings.llm.models)}",
                                 param_hint="--model")
    return key


def _run(ctx: click.Context, events, *, as_json: bool, input_text: str):
    """Stream events to the terminal (or collect them for --json), save and audit the run."""
    from assistant.tools.history import audit_detail
    from assistant.tools.result import ToolError

    shown = ""
    result = None
    progress = sys.stderr.isatty() or not as_json
    try:
        for ev in events:
            kind = ev["type"]
            if kind == "done":
                result = ev["result"]
            elif as_json:
                continue
            elif kind == "progress":
                if progress:
                    click.echo(f"… {ev['label']}", err=True)
            elif kind == "token":
                click.echo(ev["text"], nl=False)
                sys.stdout.flush()
                shown += ev["text"]
            elif kind == "reset":
                if ev["text"].strip() and ev["text"].strip() != shown.strip():
                    if shown.strip():
                        click.echo("\n— überarbeitete Fassung —")
                    click.echo(ev["text"], nl=False)
                    shown = ev["text"]
    except ToolError as exc:
        raise click.ClickException(str(exc)) from None
    assert result is not None
    actor = cli_actor()
    run_id = None
    if result.status == "ok":
        run_id = _store(ctx).save(actor, result, input_text)
    _app(ctx).audit.record(f"tool_{result.tool}", actor, run_id or "", audit_detail(result))
    if as_json:
        click.echo(json.dumps(result.as_dict() | {"run_id": run_id}, ensure_ascii=False, default=str))
    else:
        if shown.strip() != result.output.strip():
            if shown.strip():
                click.echo("\n— Ergebnis —")
            click.echo(result.output, nl=False)
        click.echo("")
        _print_details(result)
        if run_id:
            click.echo(f"Gespeichert im Verlauf: {run_id} (Export: kiportal tool export {run_id})", err=True)
    if result.status in ("blocked", "warn"):
        if not as_json and result.status == "warn":
            click.echo("Mit --confirm senden, wenn die Personendaten an dieses Modell dürfen.", err=True)
        ctx.exit(EXIT_POLICY)
    return result


def _print_details(result) -> None:
    for notice in result.notices:
        click.echo(f"Hinweis: {notice}")
    d = result.details
    if "readability_before" in d:
        b, a = d["readability_before"], d["readability_after"]
        click.echo(f"Lesbarkeit – Flesch (Amstad): {b['flesch_amstad']} → {a['flesch_amstad']}; "
                   f"Wiener Sachtextformel: {b['wiener_sachtextformel']} → {a['wiener_sachtextformel']}")
        rc = d["rule_check"]
        click.echo(f"Regelprüfung: {counted(len(rc['violations']), 'Verstoß', 'Verstöße')} in "
                   f"{counted(rc['sentences'], 'Satz', 'Sätzen')} (vor der Überarbeitung {d['violations_before_revision']}, "
                   f"{counted(d['revisions'], 'Überarbeitung', 'Überarbeitungen')})")
        for v in rc["violations"][:20]:
            click.echo(f"  - Satz {v['sentence'] + 1}: {v['label']} ({v['detail']})")
        if d["facts_changed"]:
            click.echo("Geänderte oder fehlende Angaben:")
            for f in d["facts_changed"]:
                click.echo(f"  - {f['label']}: „{f['expected']}“ → " + (f"„{f['found']}“" if f["found"] else "fehlt"))
        else:
            click.echo("Angaben: alle Zahlen, Daten, Beträge, Fristen und Namen des Ausgangstextes sind erhalten.")
    if "citations_total" in d and d.get("citations_total"):
        click.echo(f"Fundstellen geprüft: {d['citations_valid']} von {d['citations_total']} Stichpunkten belegt; "
                   f"{counted(d['batches'], 'Teil', 'Teile')} gelesen" + (" (Schnellverfahren)" if d.get("fast") else ""))
    if result.tool == "entwurf" and result.citations:
        click.echo("Quellen:")
        for c in result.citations:
            where = f", S. {c['page']}" if c.get("page") else ""
            click.echo(f"  [{c['n']}] {shown(c['title'])}{where}")


@click.group("tool")
def tool() -> None:
    """Werkzeuge: Einfache/Leichte Sprache, Zusammenfassung eines Dokuments, Entwürfe (Ampel wie im Chat)."""


@tool.command("einfach")
@click.argument("file", required=False, type=click.Path(path_type=Path, allow_dash=True))
@click.option("--leicht", is_flag=True, help="Leichte Sprache statt Einfacher Sprache.")
@click.option("--doc", "doc_id", default=None, help="Statt einer Datei: ein Dokument der Wissensbasis (DOC_ID).")
@click.option("--seiten", default=None, help="Seitenbereich des Dokuments, z. B. 3-5 (mit --doc).")
@click.option("--model", "-m", default=None, help="Modell-Schlüssel (Standard: llm.default).")
@click.option("--confirm", is_flag=True, help="Personendaten an ein Modell der Zone Gelb bestätigen.")
@click.option("--json", "as_json", is_flag=True,
              help="Ein JSON-Objekt: output, citations, readability_before/after, facts_changed, rule_check.")
@click.pass_context
def einfach(ctx, file, leicht, doc_id, seiten, model, confirm, as_json) -> None:
    """Text in Einfache (oder --leicht Leichte) Sprache übertragen: FILE, - (stdin) oder --doc.

    Nach dem Entwurf prüft der Code die Regeln (Satzlänge, lange Wörter, Passiv, Genitiv, Konjunktiv,
    große Zahlen) und überarbeitet die betroffenen Sätze höchstens tools.max_revisions-mal; dazu
    Lesbarkeit vorher/nachher und welche Zahlen, Daten, Beträge, Fristen, Namen fehlen oder anders sind.
    Eine Datei wird in höchstens tools.file_read_seconds gelesen (Texterkennung eingeschlossen); einen
    langen Scan besser aufnehmen (kiportal ingest) und mit --doc wählen."""
    from assistant.tools.result import ToolError
    from ui.tool_input import parse_pages, read_file_text

    app = _app(ctx)
    key = _check_model(app, model)
    if bool(file) == bool(doc_id):
        raise click.UsageError("Genau eines angeben: FILE, - (stdin) oder --doc DOC_ID")
    try:
        pages = parse_pages(seiten)
        text, label = None, ""
        if file is not None and str(file) == "-":
            text = sys.stdin.read()
        elif file is not None:
            if not file.is_file():
                raise click.BadParameter(f"Datei nicht gefunden: {file}", param_hint="FILE")
            if file.suffix.lower() in (".txt", ".md") and file.stat().st_size < 1_000_000:
                text, label = file.read_text(encoding="utf-8", errors="replace"), file.name
            else:
                label, text = read_file_text(app.settings, file)
        events = app.tools.simplify(text=text, doc_id=doc_id, pages=pages, leicht=leicht, model=key,
                                    confirmed=confirm, source_label=label)
    except ToolError as exc:
        raise click.ClickException(str(exc)) from None
    _run(ctx, events, as_json=as_json, input_text=text or f"doc:{doc_id} {seiten or ''}")


@tool.command("zusammenfassung")
@click.argument("doc_id")
@click.option("--laenge", type=click.Choice(["kurz", "mittel", "ausfuehrlich"]), default="mittel", show_default=True,
              help="Länge: kurz (5), mittel (10) oder ausfuehrlich (20 Stichpunkte).")
@click.option("--seiten", default=None, help="Nur diesen Seitenbereich, z. B. 10-20.")
@click.option("--schnell/--gruendlich", "fast", default=None,
              help="Schnellverfahren (nur die zentralen Sätze lesen) erzwingen oder abschalten "
                   "(Standard: tools.summary_preselect).")
@click.option("--model", "-m", default=None, help="Modell-Schlüssel (Standard: llm.default).")
@click.option("--json", "as_json", is_flag=True, help="Ein JSON-Objekt: output, citations, points, citations_valid.")
@click.pass_context
def zusammenfassung(ctx, doc_id, laenge, seiten, fast, model, as_json) -> None:
    """Ein ganzes Dokument zusammenfassen (Map-Reduce über alle Abschnitte), jeder Punkt mit Seite."""
    from assistant.tools.result import ToolError
    from ui.tool_input import parse_pages

    app = _app(ctx)
    key = _check_model(app, model)
    try:
        events = app.tools.summarize(doc_id, length=laenge, model=key, pages=parse_pages(seiten), fast=fast)
    except ToolError as exc:
        raise click.ClickException(str(exc)) from None
    _run(ctx, events, as_json=as_json, input_text=f"doc:{doc_id} {laenge} {seiten or ''}".strip())


@tool.command("entwurf")
@click.argument("anweisung")
@click.option("--art", type=click.Choice(["email", "buergerbrief", "vermerk"]), required=True,
              help="E-Mail, Bürgerbrief (Sie-Form, Einfache Sprache) oder interner Vermerk.")
@click.option("--collection", "-c", multiple=True,
              help="Textstellen aus dieser Sammlung einbeziehen (zitiert als [n]); mehrfach möglich.")
@click.option("--dokumente", "use_docs", is_flag=True, help="Textstellen aus der ganzen Wissensbasis einbeziehen.")
@click.option("--model", "-m", default=None, help="Modell-Schlüssel (Standard: llm.default).")
@click.option("--confirm", is_flag=True, help="Personendaten an ein Modell der Zone Gelb bestätigen.")
@click.option("--json", "as_json", is_flag=True, help="Ein JSON-Objekt: output, citations, invented_replaced, placeholders.")
@click.pass_context
def entwurf(ctx, anweisung, art, collection, use_docs, model, confirm, as_json) -> None:
    """Entwurf aus einer kurzen ANWEISUNG; fehlende Angaben als Platzhalter wie [Aktenzeichen]."""
    from assistant.tools.result import ToolError

    app = _app(ctx)
    key = _check_model(app, model)
    try:
        events = app.tools.draft(art, anweisung, model=key, use_documents=use_docs or bool(collection),
                                 collections=list(collection) or None, confirmed=confirm)
    except ToolError as exc:
        raise click.ClickException(str(exc)) from None
    _run(ctx, events, as_json=as_json, input_text=anweisung)


@tool.command("verlauf")
@click.option("--tool", "tool_name", type=click.Choice(["einfach", "zusammenfassung", "entwurf"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Ein JSON-Objekt pro Lauf.")
@click.pass_context
def verlauf(ctx, tool_name, as_json) -> None:
    """Die eigenen Werkzeug-Läufe (neueste zuerst)."""
    from datetime import datetime

    rows = _store(ctx).list_runs(cli_actor(), tool_name)
    for r in rows:
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
        else:
            when = datetime.fromtimestamp(r["created_at"]).strftime("%d.%m.%Y %H:%M")
            click.echo(f"{r['id']}  {when}  {r['tool']:15} {r['title']}")


@tool.command("export")
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(["md", "docx"]), default="md", show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Zieldatei (Standard: Markdown auf stdout, DOCX als <Datum>-<Werkzeug>-<Titel>.docx).")
@click.pass_context
def export(ctx, run_id, fmt, out) -> None:
    """Einen Lauf aus dem Verlauf als Markdown oder Word-Datei (DOCX) exportieren."""
    from assistant.tools.export import file_stem, to_docx, to_markdown
    from assistant.tools.history import RunNotFound

    try:
        run = _store(ctx).get(cli_actor(), run_id)
    except RunNotFound:
        raise click.ClickException(f"Lauf nicht gefunden / run not found: {run_id}") from None
    if fmt == "md":
        text = to_markdown(run)
        if out is None:
            click.echo(text, nl=False)
            return
        out.write_text(text, encoding="utf-8")
    else:
        out = out or Path(f"{file_stem(run)}.docx")
        out.write_bytes(to_docx(run))
    click.echo(f"geschrieben: {out}", err=True)
