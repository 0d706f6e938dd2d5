"""`kiportal ask` and `kiportal policy check`: the answer chain and the Ampel from the terminal.

`ask` goes through exactly the chain the portal uses, policy step included, so a script
cannot bypass the Ampel by using the CLI. `policy check` shows what the Ampel would do for
a question and a model (allowed / warned / blocked, masked personal data, which document
classifications would be removed) after running retrieval only – no model is called, so
it is safe to try with questions that must not leave the house.

Kept out of ui/cli.py so the chain (LangChain) is imported only when one of these runs;
ui/cli.py adds the commands with ``cli.add_command``.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import PurePath

import click

from assistant.access import FULL
from assistant.policy.zones import ZONES
from assistant.users import ROLES
from corpus.models import ocr_label, page_kind_of, page_label
from ui.cli_access import as_user_option, scope_as
from ui.cli_common import app_for, shown

log = logging.getLogger("kiportal.ask")


def _check_model(app, model: str | None) -> str:
    key = model or app.settings.llm.default
    if key not in app.settings.llm.models:
        raise click.BadParameter(f"Unbekanntes Modell: {key}. Vorhanden: {', '.join(app.settings.llm.models)}",
                                 param_hint="--model")
    return key


def _model_line(app, key: str) -> str:
    from assistant.model_choice import model_label

    return "Modell: " + model_label(key, app.settings.llm.models[key])


def _where(source: str, page: int | None) -> str:
    if page is None:
        return PurePath(source).name
    return f"{PurePath(source).name}, {page_label(page, page_kind_of(source))}"


def _print_sources(result, catalog=None) -> None:
    if not result.citations:
        return
    click.echo("Quellen:")
    for c in result.citations:
        rec = catalog.get(c.doc_id) if catalog is not None else None
        ocr = ocr_label(rec.ocr_confidence(c.page)) if rec is not None else ""
        click.echo(f"  [{c.n}] {shown(c.title)} ({shown(_where(c.source, c.page))}{'; ' + ocr if ocr else ''})")


def _ask_one(app, question: str, *, model: str, collections: list[str] | None, k: int | None, confirm: bool,
             use_documents: bool, as_json: bool, trace: bool, scope=FULL) -> None:
    assistant = app.assistant
    kwargs = dict(model=model, collections=collections, k=k, confirmed=confirm, use_documents=use_documents,
                  scope=scope)
    if as_json:
        result = assistant.answer(question, **kwargs)
        click.echo(json.dumps(result.as_dict(trace=trace), ensure_ascii=False, default=str))
        return
    click.echo(f"Frage: {question}")
    started = False
    result = None
    for event in assistant.stream(question, **kwargs):
        kind = event["type"]
        if kind == "token":
            click.echo(event["text"], nl=False)
            sys.stdout.flush()
            started = True
        elif kind == "reset":
            # the chain replaced the streamed text (invalid citations, refusal, fallback)
            if started:
                click.echo("\n— korrigierte Antwort —")
            click.echo(event["text"], nl=False)
            started = True
        elif kind == "done":
            result = event["result"]
    assert result is not None
    if not started:
        click.echo(result.answer, nl=False)
    click.echo("")
    for notice in result.notices:
        if notice not in result.answer:
            click.echo(f"Hinweis: {notice}")
    _print_sources(result, app.catalog)
    if trace:
        from assistant.training.inspect import build_view, render_markdown

        view = build_view(result, app.settings.llm.models.get(model), k=k or app.settings.llm.passages,
                          use_documents=use_documents)
        click.echo("")
        click.echo(render_markdown(view))


def _print_preview(p: dict) -> None:
    from assistant.policy.zones import zone_label

    who = p.get("model_label") or f"ein Modell der Zone {p['zone_label']}"
    extra = f" · {p['operator']} · {p['location']}" if p.get("operator") else ""
    click.echo(f"Ampel-Vorschau für {who} – Zone {zone_label(p['zone'])}{extra}")
    click.echo(f"Ergebnis: {p['action_label']} (es wurde kein Modell aufgerufen)")
    if p["pii"]:
        click.echo("Personendaten in der Frage (maskiert):")
        for d in p["pii"]:
            click.echo(f"  - {d['label']}: {d['masked']}")
    else:
        click.echo("Keine Personendaten in der Frage erkannt.")
    for m in p["messages_de"]:
        click.echo(f"Hinweis: {m}")
    click.echo(f"Diese Zone darf sehen: {', '.join(p['allowed_classifications']) or '–'}")
    if p["passages"]:
        click.echo(f"Gefundene Textstellen: {len(p['passages'])}, davon entfernt: {p['removed']}")
        for x in p["passages"]:
            mark = "✓" if x["allowed"] else "✗"
            cls = x["classification"] + (" (ohne gültige Einstufung)" if x["classification_missing"] else "")
            click.echo(f"  {mark} {cls:16} {x['title']} ({_where(x['source'], x['page'])})")
    else:
        click.echo("Keine Textstellen gefunden.")


@click.command("ask")
@click.argument("question", required=False)
@click.option("--model", "-m", default=None, help="Modell-Schlüssel (Standard: llm.default) / model key.")
@click.option("--collection", "-c", multiple=True, help="Nur diese Sammlung(en) / only these collections.")
@click.option("-k", default=None, type=click.IntRange(1, 20), help="Textstellen für das Modell / passages for the model.")
@click.option("--batch", type=click.File("r", encoding="utf-8"), default=None,
              help="Eine Frage pro Zeile; Modelle werden einmal geladen / one question per line.")


@click.option("--json", "as_json", is_flag=True, help="Ein JSON-Objekt pro Frage (AnswerResult) / one object per question.")
@click.option("--trace", is_flag=True, help="Blick unter die Haube: Textstellen, Ränge, Prompt, Zeiten.")
@click.option("--confirm", is_flag=True,
              help="Personendaten an ein Modell der Zone Gelb bestätigen / confirm personal data for a yellow model.")


@click.option("--no-documents", is_flag=True, help="Ohne Dokumente fragen (zeigt erfundene Antworten).")
@as_user_option
@click.pass_context
def ask(ctx, question, model, collection, k, batch, as_json, trace, confirm, no_documents, as_user) -> None:
    """Frage an die Dokumente stellen; Antwort mit Quellen (gleiche Ampel wie im Portal).
    Ohne --as aus allen Sammlungen (Betreiber-Sicht)."""
    if not question and batch is None:
        raise click.UsageError("Frage oder --batch angeben / give a question or --batch")
    app = app_for(ctx)
    key = _check_model(app, model)
    scope = scope_as(ctx, as_user, "ask")
    questions = [q.strip() for q in batch if q.strip()] if batch else [question]
    if not as_json:
        click.echo(_model_line(app, key))
    for q in questions:
        try:
            _ask_one(app, q, model=key, collections=list(collection) or None, k=k, confirm=confirm,
                     use_documents=not no_documents, as_json=as_json, trace=trace, scope=scope)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None


@click.group("policy")
def policy() -> None:
    """Ampel: was darf in welches Modell? / data policy."""


@policy.command("models")
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="Nur Modelle, die diese Rolle wählen darf / only models this role may choose.")


@click.option("--json", "as_json", is_flag=True, help="Ein JSON-Objekt pro Modell / one object per model.")
@click.pass_context
def policy_models(ctx, role, as_json) -> None:
    """Alle Modelle mit Ampel-Zone, Betreiber, Standort und Rollen (grüne zuerst)."""
    from assistant.model_choice import may_use
    from assistant.policy.zones import ZONE_LABELS_DE, ZONE_ORDER, zone_label

    s = app_for(ctx).settings
    items = sorted(s.llm.models.items(), key=lambda kp: (ZONE_ORDER.get(kp[1].zone, 3), kp[0] != s.llm.default))
    for key, p in items:
        if role and not may_use(role, p):
            continue
        data = {"key": key, "label": p.label or key, "mode": p.mode, "zone": p.zone, "zone_label": ZONE_LABELS_DE[p.zone],
                "operator": p.operator, "location": p.location, "roles": list(p.roles),
                "default": key == s.llm.default,
                "may_see": sorted(s.policy.zone_access.get(p.zone, []))}
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False))
        else:
            star = "*" if data["default"] else " "
            click.echo(f"{star} {key:12} {zone_label(p.zone):8} {data['label']} · {p.operator} · {p.location} "
                       f"(Rollen: {', '.join(p.roles)}; darf sehen: {', '.join(data['may_see'])})")


@policy.command("check")
@click.argument("question")
@click.option("--model", "-m", default=None, help="Modell-Schlüssel (Standard: llm.default) / model key.")
@click.option("--zone", type=click.Choice(ZONES), default=None,
              help="Statt eines Modells eine Zone prüfen / check a zone instead of a model.")


@click.option("--collection", "-c", multiple=True, help="Nur diese Sammlung(en).")
@click.option("--json", "as_json", is_flag=True, help="Ergebnis als ein JSON-Objekt.")
@as_user_option
@click.pass_context
def policy_check(ctx, question, model, zone, collection, as_json, as_user) -> None:
    """Zeigt, was die Ampel täte (erlaubt/Warnung/blockiert), ohne ein Modell aufzurufen."""
    from assistant.training.preview import policy_preview

    app = app_for(ctx)
    if model is not None or zone is None:
        model = _check_model(app, model)
    try:
        preview = policy_preview(app, question, model=model if zone is None else None, zone=zone,
                                 collections=list(collection) or None, scope=scope_as(ctx, as_user, "policy check"))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(preview, ensure_ascii=False))
    else:
        _print_preview(preview)
