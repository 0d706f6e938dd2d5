"""Tab „Werkzeuge“: Einfache/Leichte Sprache, Zusammenfassung eines Dokuments, Entwürfe, Verlauf.

Thin: :class:`ToolHandlers` checks the user on the server first in every method (gradio
exposes each event as an HTTP endpoint; hiding the tab protects nothing), calls
:attr:`assistant.wiring.App.tools` and maps its events to plain views. Everything shown is
escaped here: model output and document text may contain HTML or Markdown meant to attack
the page, so output is rendered as escaped text in a ``pre-wrap`` block, never as Markdown.
Uploaded files reach the tool only through :func:`ui.tool_input.upload_path` (the portal's check that
this user uploaded the file here, :mod:`ui.file_values`); exports are downloadable by their owner only.

„Trotzdem senden“ after an Ampel warning (yellow zone, personal data) is bound on the server like the
chat's: the warning run leaves the fingerprint of the warned input in the tab's ``gr.State``
(:class:`WarnedInput`, which a client cannot set over HTTP), and a confirmed run goes out as confirmed
only for exactly that input, once (:func:`ui.tool_input.confirmation`); any other confirmed call sends
nothing, says so and is audited.
"""
from __future__ import annotations

import html
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Iterator

import gradio as gr

from assistant.escaping import esc, md_esc
from assistant.wording import counted
from assistant.access import citation_records, visible_citations
from assistant.tools.history import RunNotFound, ToolRunStore, audit_detail
from assistant.tools.result import TOOL_LABELS_DE, ToolError, ToolResult
from ui.context import PortalContext
from ui.docview import doc_link
from ui.exports import download_now_js
from ui.handlers import ChatHandlers, UserError
from ui.streams import StreamSwitches
from ui.tool_input import (
    CHANGED, CONFIRMED, NOT_WARNED, confirmation, input_fingerprint, parse_pages, read_file_text, upload_path,
)
from ui.source_view import NOTICE_MARK

log = logging.getLogger(__name__)

SOURCE_TEXT, SOURCE_FILE, SOURCE_DOC = "Text einfügen", "Datei hochladen", "Dokument der Wissensbasis"
LENGTH_CHOICES = [("kurz (5 Punkte)", "kurz"), ("mittel (10 Punkte)", "mittel"), ("ausführlich (20 Punkte)", "ausfuehrlich")]
DRAFT_CHOICES = [("E-Mail", "email"), ("Bürgerbrief", "buergerbrief"), ("Vermerk", "vermerk")]
LIMITS_DE = {
    "einfach": "**Was kann das Werkzeug, was nicht?** Es überträgt Verwaltungstext in kurze, klare Sätze. Danach prüft das "
               "Portal jeden Satz nach festen Regeln (Satzlänge, lange Wörter, Passiv, Genitiv, Konjunktiv, große "
               "Zahlen) und zeigt, wo ein Satz dagegen verstößt. Das Werkzeug kann "
               "Zahlen, Daten oder Namen verändern – die Liste „Geänderte oder fehlende Angaben“ zeigt jede Abweichung. "
               "Leichte Sprache ist immer ein Entwurf: Menschen aus der Ziel-Gruppe müssen ihn prüfen.",
    "zusammenfassung": "**Was kann das Werkzeug, was nicht?** Es liest das ganze Dokument Abschnitt für Abschnitt "
                       "(nicht nur einige Treffer) und nennt zu jedem Punkt die Stelle. Punkte, die sich keiner Stelle "
                       "zuordnen lassen, sind markiert. Es wertet nicht und ersetzt das Lesen wichtiger Stellen nicht.",
    "entwurf": "**Was kann das Werkzeug, was nicht?** Es schreibt einen ersten Entwurf aus Ihrer Anweisung, auf Wunsch mit "
               "Textstellen aus der Wissensbasis. Namen, Aktenzeichen, Daten und Beträge, die nicht in der Anweisung oder "
               "den Quellen stehen, ersetzt es durch Platzhalter wie [Aktenzeichen]. Prüfen und unterschreiben müssen Sie.",
}


@dataclass
class ToolView:
    """What one tool's output area shows."""

    output_html: str = ""
    details_html: str = ""
    progress: str = ""
    warning: str | None = None
    run_id: str | None = None
    done: bool = False
    warned: str | None = None  # with a warning: the fingerprint of the warned input (kept on the server)


@dataclass
class WarnedInput:
    """What a tool area's ``gr.State`` holds after an Ampel warning: the fingerprint of the warned input
    (:func:`ui.tool_input.input_fingerprint`). gradio keeps a State on the server, per browser tab, and
    ignores what a client sends for it, so „Trotzdem senden“ cannot name an input of its own."""

    fingerprint: str | None


_TAKING = threading.Lock()


def take_warned(held: Any) -> str | None:
    """The warned fingerprint, once: the state is emptied as it is read (of two confirmed runs sent at
    once, one gets it)."""
    if not isinstance(held, WarnedInput):
        return None
    with _TAKING:
        fingerprint, held.fingerprint = held.fingerprint, None
    return fingerprint


RUN_BUTTONS = {"einfach": "Übertragen", "entwurf": "Entwurf schreiben"}
CONFIRM_REFUSED_DE = {
    NOT_WARNED: "Es wurde nichts gesendet: Zu dieser Eingabe liegt keine Warnung vor, die sich bestätigen ließe "
                "(eine Bestätigung gilt einmal, für genau die Eingabe, zu der gewarnt wurde). Bitte „{button}“ wählen.",
    CHANGED: "Es wurde nichts gesendet: Eingabe oder Modell sind nicht mehr die, zu denen gewarnt wurde. "
             "„Trotzdem senden“ gilt nur für genau diese. Bitte „{button}“ wählen, um die jetzige Eingabe prüfen "
             "zu lassen.",
}


def notice(message: str) -> ToolView:
    """A plain-words message in the progress line, the output area emptied: how a tool says that an
    input is missing or a run failed. A raised gr.Error left red "Fehler" marks on every output that
    stayed after the message closed (a browser review); the admin area answers the same way."""
    return ToolView(progress=f"**Hinweis:** {md_esc(message)}", done=True)


def document_labels(records) -> list[tuple[str, str]]:
    """(label, doc id) for a document picker: title and pages ("7 S."; nothing for documents without
    pages, not "(– S.)"), and the file name where two documents share a title (a talk as PDF and as
    PPTX looked the same: a browser review)."""
    titles = [rec.shown_title for rec in records]
    out = []
    for rec, title in zip(records, titles):
        extras = [f"{rec.pages} S."] if rec.pages else []
        if titles.count(title) > 1:
            extras.append(PurePath(rec.source).name)
        out.append((f"{title} ({', '.join(extras)})" if extras else title, rec.doc_id))
    return out


def writing_choices(ctx: PortalContext, models: list[tuple[str, str]], default: str | None
                    ) -> tuple[list[tuple[str, str]], str | None]:
    """The models that write text (not a text-only profile, mode extractive) among ``models``, and
    the one to preselect: ``default`` if it writes, else the first. Einfache Sprache and Entwurf offer
    only these ("Nur Textstellen" was offered there, then refused)."""
    profiles = ctx.app.settings.llm.models
    writing = [(label, key) for label, key in models if key in profiles and profiles[key].mode != "extractive"]
    keys = [key for _, key in writing]
    return writing, default if default in keys else (keys[0] if keys else None)


NO_WRITING_MODEL = ("Für Sie ist kein Modell freigegeben, das Texte schreibt („Nur Textstellen“ zitiert nur); "
                    "dieses Werkzeug steht darum nicht zur Verfügung. Die Verwaltung kann eines freigeben.")


def writing_state(writing: list[tuple[str, str]]) -> tuple[str | None, bool]:
    """The model list's note and whether the run button works, for Einfache Sprache and Entwurf: with
    no model that writes (a deployment with extractive models only, or a role without a writing one)
    the list would be empty without a word why, and the button would only lead to a refusal."""
    return (None, True) if writing else (NO_WRITING_MODEL, False)


def writing_updates(writing: list[tuple[str, str]], default: str | None) -> tuple[dict, dict, dict]:
    """:func:`writing_state` as the page load's updates of the model list, the run button and the
    notice at the top of the tab (the list's note alone stood below the text box, out of a laptop's
    window: a browser review)."""
    info, usable = writing_state(writing)
    return (gr.update(choices=writing, value=default, info=info), gr.update(interactive=usable),
            gr.update(visible=not usable))


def _no_writer_notice(elem_id: str, visible: bool) -> gr.Markdown:
    return gr.Markdown(f"**{NO_WRITING_MODEL}**", visible=visible, elem_id=elem_id, elem_classes=["kp-tool-notice"])


def text_html(text: str) -> str:
    """Model output as escaped text; line breaks kept, nothing interpreted."""
    return f'<div class="kp-tool-output" style="white-space: pre-wrap">{esc(text or "")}</div>'


class ToolHandlers:
    """The server side of the tab for one portal."""

    def __init__(self, ctx: PortalContext, chat: ChatHandlers | None = None) -> None:
        self.ctx = ctx
        self.chat = chat or ChatHandlers(ctx)  # model choices by role, collections, signed document links
        self.store = ToolRunStore(ctx.db)

    def user(self, request):
        return self.ctx.require(request, "staff")

    def _model(self, user, key: str | None) -> str:
        try:
            return self.chat.resolve_model(user, key)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    # -- choices -------------------------------------------------------------------------------
    def document_choices(self, user) -> list[tuple[str, str]]:
        """The indexed documents of the collections ``user`` may read."""
        scope = self.ctx.scope(user)
        return document_labels([rec for rec in self.ctx.app.catalog.documents(status="indexed")
                                if scope.allows(rec.collection)])

    def _check_document(self, user, doc_id: str) -> None:
        """A document the user may not read is answered like one that does not exist."""
        rec = self.ctx.app.catalog.get(doc_id)
        if rec is None or not self.ctx.scope(user).allows(rec.collection):
            raise ToolError("Dokument nicht gefunden.")

    def choices(self, request) -> tuple[list, str | None, list, list, list]:
        """Models of the user's role, default, documents, collections, own history (page load)."""
        user = self.user(request)
        models = self.chat.model_choices(user)
        keys = [k for _, k in models]
        default = self.ctx.app.settings.llm.default if self.ctx.app.settings.llm.default in keys else (
            keys[0] if keys else None)
        return models, default, self.document_choices(user), self.chat.collection_choices(user), self.history(request)

    def history(self, request) -> list[tuple[str, str]]:
        user = self.user(request)
        out = []
        for r in self.store.list_runs(user.name):
            when = time.strftime("%d.%m. %H:%M", time.localtime(r["created_at"]))
            out.append((f"{TOOL_LABELS_DE.get(r['tool'], r['tool'])} · {r['title']} · {when}", r["id"]))
        return out

    # -- running -------------------------------------------------------------------------------
    def _confirm_refused(self, user, tool: str, key: str, warned: str | None, fingerprint: str) -> ToolView | None:
        """None when a run sent with „Trotzdem senden“ is the one the server warned about in this browser
        tab (``warned``: the fingerprint taken from the tab's state); else the refusal to show, audited.
        Nothing is sent then: neither the Ampel's nor anyone's confirmation stands for another input."""
        verdict = confirmation(warned, fingerprint)
        if verdict == CONFIRMED:
            return None
        profile = self.ctx.app.settings.llm.models.get(key)
        self.ctx.audit.record(f"tool_{tool}", self.ctx.audit.usage_actor(user.name), "",
                              {"tool": tool, "model": key, "zone": profile.zone if profile else "",
                               "status": "confirm_refused", "reason": verdict, "confirmed": True})
        return notice(CONFIRM_REFUSED_DE[verdict].format(button=RUN_BUTTONS[tool]))

    def _stream(self, user, events: Iterator[dict], input_text: str, fingerprint: str | None = None,
                confirmed: bool = False) -> Iterator[ToolView]:
        shown = ""
        result: ToolResult | None = None
        progress = ""
        yield ToolView(progress="*Wird vorbereitet …*")
        try:
            for ev in events:
                kind = ev["type"]
                if kind == "done":
                    result = ev["result"]
                    break
                if kind == "progress":
                    progress = f"{html.escape(ev['label'])} ({ev['done']}/{ev['total']})"
                elif kind == "token":
                    shown += ev["text"]
                elif kind == "reset":
                    shown = ev["text"]
                yield ToolView(text_html(shown), progress=progress)
        except ToolError as exc:
            yield notice(str(exc))
            return
        except Exception:
            log.exception("tool failed")
            yield notice("Das Werkzeug ist fehlgeschlagen. Bitte später erneut versuchen.")
            return
        if result is None:
            yield notice("Das Werkzeug lieferte kein Ergebnis.")
            return
        run_id = None
        if result.status == "ok":
            run_id = self.store.save(user.name, result, input_text)
        self.ctx.audit.record(f"tool_{result.tool}", self.ctx.audit.usage_actor(user.name), run_id or "",
                              audit_detail(result) | {"confirmed": confirmed})
        if result.status == "warn":
            warning = "\n\n".join(["**Achtung: Personendaten erkannt.** Es wurde nichts gesendet.",
                                   *[html.escape(m) for m in result.notices]])
            yield ToolView("", "", "", warning=warning, done=True, warned=fingerprint)
            return
        if result.status == "blocked":  # nothing was sent: only the Ampel's reasons
            yield ToolView("", self.details_html(user, {"notices": result.notices}), "", done=True)
            return
        yield ToolView(text_html(result.output), self.details_html(user, result.as_dict()), "", run_id=run_id, done=True)

    def simplify(self, request, source: str, text: str, file: Any, doc_id: str | None, pages: str, leicht: bool,
                 model: str | None, confirmed: bool = False, warned: str | None = None) -> Iterator[ToolView]:
        """``confirmed``: sent with „Trotzdem senden“; it goes out confirmed only if ``warned`` (the
        fingerprint the warning left in this tab's server-side state) is this input's."""
        user = self.user(request)
        key = self._model(user, model)
        try:
            label = ""
            if source == SOURCE_FILE:
                path = upload_path(file, user.name, self.ctx.audit)
                if path is None:
                    raise ToolError("Bitte eine Datei hochladen.")
                label, text = read_file_text(self.ctx.app.settings, path)
                doc_id = None
            elif source == SOURCE_DOC:
                if not doc_id:
                    raise ToolError("Bitte ein Dokument wählen.")
                self._check_document(user, doc_id)
                text = ""
            else:
                source, doc_id = SOURCE_TEXT, None
            span = parse_pages(pages) if doc_id else None
            # what goes to the model: the text (a file's once read), or the document's pages
            fingerprint = input_fingerprint("einfach", user.name, key, source=source, text=(text or "").strip(),
                                            doc=doc_id, pages=span, leicht=bool(leicht))
            if confirmed and (refused := self._confirm_refused(user, "einfach", key, warned, fingerprint)):
                yield refused
                return
            events = self.ctx.app.tools.simplify(text=text, doc_id=doc_id, pages=span, leicht=bool(leicht), model=key,
                                                 confirmed=confirmed, source_label=label)
        except ToolError as exc:
            yield notice(str(exc))
            return
        yield from self._stream(user, events, text or f"doc:{doc_id} {pages or ''}", fingerprint, confirmed)

    def summarize(self, request, doc_id: str | None, length: str, fast: bool, model: str | None) -> Iterator[ToolView]:
        user = self.user(request)
        key = self._model(user, model)
        try:
            if not doc_id:
                raise ToolError("Bitte ein Dokument wählen.")
            self._check_document(user, doc_id)
            events = self.ctx.app.tools.summarize(doc_id, length=length or "mittel", model=key,
                                                  fast=True if fast else None)
        except ToolError as exc:
            yield notice(str(exc))
            return
        yield from self._stream(user, events, f"doc:{doc_id} {length}")

    def draft(self, request, kind: str, instruction: str, use_docs: bool, collections: list[str] | None,
              model: str | None, confirmed: bool = False, warned: str | None = None) -> Iterator[ToolView]:
        """``confirmed`` and ``warned`` as for :meth:`simplify`."""
        user = self.user(request)
        key = self._model(user, model)
        try:
            colls = self.ctx.scope(user).restrict(self.chat.resolve_collections(user, collections))
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        kind = kind or "email"
        # the collections count only where passages of the knowledge base go along
        fingerprint = input_fingerprint("entwurf", user.name, key, kind=kind, text=(instruction or "").strip(),
                                        use_docs=bool(use_docs),
                                        collections=sorted(colls) if use_docs and colls is not None else None)
        if confirmed and (refused := self._confirm_refused(user, "entwurf", key, warned, fingerprint)):
            yield refused
            return
        try:
            events = self.ctx.app.tools.draft(kind, instruction, model=key, use_documents=bool(use_docs),
                                              collections=colls, confirmed=confirmed)
        except ToolError as exc:
            yield notice(str(exc))
            return
        yield from self._stream(user, events, instruction, fingerprint, confirmed)

    # -- history and export ----------------------------------------------------------------------
    def open_run(self, request, run_id: str | None) -> ToolView:
        user = self.user(request)
        try:
            run = self.store.get(user.name, run_id or "")
        except RunNotFound:
            raise gr.Error("Lauf nicht gefunden.", print_exception=False) from None
        return ToolView(text_html(run["output"]), self.details_html(user, run["result"]), run_id=run["id"], done=True)

    def export(self, request, run_id: str | None, fmt: str) -> str:
        """Path of the written export file (Markdown or DOCX) of the user's own run."""
        from assistant.tools.export import file_stem, to_docx, to_markdown
        from ui.exports import export_folder

        user = self.user(request)
        try:
            run = self.store.get(user.name, run_id or "")
        except RunNotFound:
            raise gr.Error("Bitte zuerst ein Ergebnis erzeugen oder im Verlauf öffnen.", print_exception=False) from None
        # a private folder only this user can download from (ui.exports, ui.http_guard)
        path = export_folder(owner=user.name) / f"{file_stem(run)}.{'docx' if fmt == 'docx' else 'md'}"
        # the stored run keeps its text; its sources are listed as the portal shows them today
        result = dict(run["result"], citations=self.ctx.sources_for_export(user, run["result"].get("citations") or []))
        run = dict(run, result=result)
        data = to_docx(run) if fmt == "docx" else to_markdown(run).encode("utf-8")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        self.ctx.audit.record("tool_export", self.ctx.audit.usage_actor(user.name), run["id"], {"format": fmt})
        return str(path)

    def delete_run(self, request, run_id: str | None) -> None:
        user = self.user(request)
        try:
            self.store.delete(user.name, run_id or "")
        except RunNotFound:
            raise gr.Error("Lauf nicht gefunden.", print_exception=False) from None

    # -- rendering -------------------------------------------------------------------------------
    def details_html(self, user, r: dict) -> str:
        """Notices, readability, rule check, facts check and sources; every value escaped."""
        e = html.escape
        parts = []
        for notice in r.get("notices") or []:
            parts.append(f'<p class="kp-notice">{NOTICE_MARK}{e(notice)}</p>')
        if r.get("readability_before"):
            b, a = r["readability_before"], r["readability_after"]
            parts.append(
                '<table class="kp-readability"><tr><th>Lesbarkeit</th><th>vorher</th><th>nachher</th></tr>'
                f'<tr><td>Flesch nach Amstad (höher = leichter)</td><td>{e(str(b["flesch_amstad"]))}</td>'
                f'<td>{e(str(a["flesch_amstad"]))}</td></tr>'
                f'<tr><td>Wiener Sachtextformel (Schulstufe, niedriger = leichter)</td>'
                f'<td>{e(str(b["wiener_sachtextformel"]))}</td><td>{e(str(a["wiener_sachtextformel"]))}</td></tr></table>')
        facts = r.get("facts_changed")
        if facts:
            items = "".join(f"<li><strong>{e(f.get('label', f['kind']))}</strong>: „{e(f['expected'])}“ → "
                            + (f"„{e(f['found'])}“" if f.get("found") else "<em>fehlt</em>") + "</li>" for f in facts)
            parts.append(f'<div class="kp-facts kp-warning"><p>⚠ <strong>Geänderte oder fehlende Angaben – bitte prüfen'
                         f'</strong></p><ul>{items}</ul></div>')
        elif facts is not None:
            parts.append('<p class="kp-facts">✓ Alle Zahlen, Daten, Beträge, Fristen und Namen des Ausgangstextes '
                         'sind erhalten.</p>')
        rc = r.get("rule_check")
        if rc:
            items = "".join(f"<li>Satz {int(v['sentence']) + 1}: {e(v['label'])} ({e(v['detail'])})</li>"
                            for v in rc["violations"][:30])
            parts.append(f'<details class="kp-rules"><summary>Regelprüfung: {counted(len(rc["violations"]), "Verstoß", "Verstöße")} in '
                         f'{counted(int(rc["sentences"]), "Satz", "Sätzen")} (vor der Überarbeitung {int(r.get("violations_before_revision", 0))}, '
                         f'{counted(int(r.get("revisions", 0)), "Überarbeitung", "Überarbeitungen")})</summary><ul>{items}</ul></details>')
        if r.get("citations_total"):
            total = int(r["citations_total"])
            if r.get("extractive"):  # no model read anything: say what was done instead of "0 Teile gelesen"
                how = f"ohne Sprachmodell: {counted(total, 'zentraler Satz', 'zentrale Sätze')} des Dokuments"
                asked = int(r.get("asked_points") or 0)
                if asked > total:
                    how += f" (gewählt waren {asked}; mehr vollständige Sätze hat es nicht)"
            else:
                how = f"{counted(int(r.get('batches', 0)), 'Teil', 'Teile')} gelesen"
            parts.append(f'<p class="kp-citecheck">Fundstellen geprüft: {int(r["citations_valid"])} von '
                         f'{total} Punkten belegt; {e(how)}.</p>')
        sources = self._sources_html(user, r.get("citations") or [])
        if sources:
            parts.append(sources)
        return "\n".join(parts)

    def _sources_html(self, user, citations: list[dict]) -> str:
        catalog = self.ctx.app.catalog
        records = citation_records(citations, catalog)
        items = []
        # a reopened run keeps its text, but sources the user may no longer read are left out
        for c in visible_citations(self.ctx.scope(user), citations, catalog, records):
            rec = records.get(str(c.get("doc_id") or ""))
            where = c.get("label") or (f"S. {c['page']}" if c.get("page") else "")
            title = rec.shown_title if rec is not None else c.get("title") or ""  # today's readable title
            label = f"[{int(c.get('n', 0))}] {title}" + (f" – {where}" if where else "")
            if rec is not None and rec.status == "indexed":
                url = doc_link(self.chat.signer, rec, user.name, c.get("page"))
                items.append(f'<li><a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer" '
                             f'class="kp-src-link">{html.escape(label)}</a></li>')
            else:
                items.append(f"<li>{html.escape(label)}</li>")
        if not items:
            return ""
        return f'<div class="kp-sources"><p><strong>Quellen</strong></p><ul class="kp-sources-list">{"".join(items)}</ul></div>'


# -- layout ---------------------------------------------------------------------------------------
@dataclass
class _Area:
    progress: Any = None
    output: Any = None
    details: Any = None
    warn_box: Any = None
    warn_md: Any = None
    confirm: Any = None
    run_id: Any = None
    warned: Any = None
    export_md: Any = None
    export_docx: Any = None
    export_file: Any = None
    cancel: Any = None
    outputs: list = field(default_factory=list)


def _area(prefix: str, with_confirm: bool) -> _Area:
    a = _Area()
    a.progress = gr.Markdown("", elem_id=f"kp-{prefix}-progress")
    if prefix != "history":  # a run on the local model can take minutes: it can be called off
        a.cancel = gr.Button("Abbrechen", size="sm", variant="secondary", elem_id=f"kp-{prefix}-cancel",
                             interactive=False)  # usable while a run is on its way
    with gr.Group(visible=False, elem_id=f"kp-{prefix}-warning") as a.warn_box:
        a.warn_md = gr.Markdown("")
        if with_confirm:
            a.confirm = gr.Button("Trotzdem senden", variant="stop", elem_id=f"kp-{prefix}-confirm")
    a.output = gr.HTML("", elem_id=f"kp-{prefix}-output")
    a.details = gr.HTML("", elem_id=f"kp-{prefix}-details")
    a.run_id = gr.State(None)
    a.warned = gr.State(None)  # WarnedInput after a warning: what „Trotzdem senden“ may confirm
    with gr.Row():
        # usable once there is a result to export (a click before only ended in "no result yet")
        a.export_md = gr.Button("Als Markdown exportieren", size="sm", elem_id=f"kp-{prefix}-export-md",
                                interactive=False)
        a.export_docx = gr.Button("Als Word (DOCX) exportieren", size="sm", elem_id=f"kp-{prefix}-export-docx",
                                  interactive=False)
    a.export_file = gr.File(label="Export", visible=False, interactive=False, elem_id=f"kp-{prefix}-export-file")
    a.outputs = [a.output, a.details, a.progress, a.warn_box, a.warn_md, a.run_id, a.export_md, a.export_docx,
                 a.export_file, a.warned]
    return a


def _export_updates(ready: bool) -> tuple:
    """The export buttons usable only with a finished, stored result; an older export hidden."""
    return (gr.update(interactive=ready), gr.update(interactive=ready),
            gr.update() if ready else gr.update(visible=False))


def _cancel_usable(usable: bool):
    def update():
        return gr.update(interactive=usable)
    return update


def _view_updates(v: ToolView) -> tuple:
    """A view as the area's outputs; a finished run leaves in the state the input it warned about, or nothing."""
    warned = (WarnedInput(v.warned) if v.warned else None) if v.done else gr.update()
    return (v.output_html, v.details_html, v.progress, gr.update(visible=bool(v.warning)), v.warning or "",
            v.run_id if v.done else gr.update()) + _export_updates(bool(v.done and v.run_id)) + (warned,)


def build(ctx: PortalContext) -> None:
    """The tab's content (the portal wraps it in the „Werkzeuge“ tab, visible to every role)."""
    h = ToolHandlers(ctx)
    all_models = h.chat.all_model_choices()
    default = ctx.app.settings.llm.default
    writing_models, writing_default = writing_choices(ctx, all_models, default)
    no_writer, can_write = writing_state(writing_models)
    # each tool's model as options, not a drop-down (as in the chat): the drop-down's one-line input cut a long
    # label („Grün · Testmodell lokal · Stadtverwaltung (eigener Server), l“); an option's label wraps.
    # The options stand below the run button: above it (about 75 px an option) they pushed „Übertragen“,
    # „Zusammenfassen“ and „Entwurf schreiben“ out of a 1366 x 768 window (a browser review), and the
    # button's place no longer depends on how many models a city configures
    areas: dict[str, _Area] = {}
    with gr.Tabs(overflow_behavior="wrap"):
        with gr.Tab("Einfache Sprache", id="tools-einfach"):
            e_note = _no_writer_notice("kp-einfach-no-model", not can_write)
            gr.Markdown(LIMITS_DE["einfach"])
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    e_source = gr.Radio([SOURCE_TEXT, SOURCE_FILE, SOURCE_DOC], value=SOURCE_TEXT, label="Eingabe",
                                        elem_id="kp-einfach-source")
                    # five lines empty (it grows with a pasted text), a low drop area: „Übertragen“ in a laptop's window
                    e_text = gr.Textbox(label="Text", lines=5, max_lines=30, elem_id="kp-einfach-text",
                                        placeholder="Verwaltungstext hier einfügen …")
                    e_file = gr.File(label="Datei (PDF, DOCX, ODT, TXT …)", file_count="single", visible=False,
                                     height=150, elem_id="kp-einfach-file")
                    e_doc = gr.Dropdown(choices=[], label="Dokument", visible=False, elem_id="kp-einfach-doc",
                                        allow_custom_value=True)  # filled per user on load; the handler checks
                    e_pages = gr.Textbox(label="Seiten (z. B. 3-5, leer = alle)", visible=False,
                                         elem_id="kp-einfach-pages")
                    e_leicht = gr.Checkbox(label="Leichte Sprache (statt Einfacher Sprache)", value=False,
                                           elem_id="kp-einfach-leicht")
                    e_btn = gr.Button("Übertragen", variant="primary", interactive=can_write,
                                      elem_id="kp-einfach-run")
                    e_model = gr.Radio(choices=writing_models, value=writing_default, label="Modell",
                                       info=no_writer, elem_id="kp-einfach-model")
                with gr.Column(scale=3, min_width=420):
                    areas["einfach"] = _area("einfach", with_confirm=True)
        with gr.Tab("Zusammenfassung", id="tools-zusammenfassung"):
            gr.Markdown(LIMITS_DE["zusammenfassung"])
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    s_doc = gr.Dropdown(choices=[], label="Dokument", elem_id="kp-summary-doc", allow_custom_value=True)
                    s_length = gr.Radio(LENGTH_CHOICES, value="mittel", label="Länge", elem_id="kp-summary-length")
                    s_fast = gr.Checkbox(label="Schnellverfahren (nur die zentralen Sätze lesen lassen)", value=False,
                                         elem_id="kp-summary-fast")
                    s_btn = gr.Button("Zusammenfassen", variant="primary", elem_id="kp-summary-run")
                    s_model = gr.Radio(choices=all_models, value=default, label="Modell", elem_id="kp-summary-model")
                with gr.Column(scale=3, min_width=420):
                    areas["summary"] = _area("summary", with_confirm=False)
        with gr.Tab("Entwurf", id="tools-entwurf"):
            d_note = _no_writer_notice("kp-draft-no-model", not can_write)
            gr.Markdown(LIMITS_DE["entwurf"])
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    d_kind = gr.Radio(DRAFT_CHOICES, value="email", label="Art", elem_id="kp-draft-kind")
                    d_text = gr.Textbox(label="Anweisung", lines=4, elem_id="kp-draft-text",
                                        placeholder="z. B. Antwort auf eine Anfrage zu den Öffnungszeiten des Bürgerbüros")
                    d_docs = gr.Checkbox(label="Textstellen aus der Wissensbasis einbeziehen (mit Quellen)", value=False,
                                         elem_id="kp-draft-docs")
                    d_colls = gr.CheckboxGroup(choices=[], value=[], label="Nur diese Sammlungen", elem_id="kp-draft-colls")
                    d_btn = gr.Button("Entwurf schreiben", variant="primary", interactive=can_write,
                                      elem_id="kp-draft-run")
                    d_model = gr.Radio(choices=writing_models, value=writing_default, label="Modell",
                                       info=no_writer, elem_id="kp-draft-model")
                with gr.Column(scale=3, min_width=420):
                    areas["draft"] = _area("draft", with_confirm=True)
        with gr.Tab("Verlauf", id="tools-verlauf"):
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    hist = gr.Radio(choices=[], value=None, label="Meine Werkzeug-Ergebnisse", elem_id="kp-tools-history")
                    with gr.Row():
                        hist_refresh = gr.Button("Aktualisieren", size="sm", elem_id="kp-tools-history-refresh")
                        hist_delete = gr.Button("Löschen", size="sm", variant="stop", elem_id="kp-tools-history-delete")
                with gr.Column(scale=3, min_width=420):
                    areas["history"] = _area("history", with_confirm=False)

    # -- events -------------------------------------------------------------------------------------
    def on_load(request: gr.Request):
        try:
            models, dflt, docs, colls, runs = h.choices(request)
        except gr.Error:  # not signed in: nothing to fill (every action checks again)
            return (gr.update(),) * 11
        m = gr.update(choices=models, value=dflt)
        w, run, note = writing_updates(*writing_choices(ctx, models, dflt))
        return w, m, w, gr.update(choices=docs, value=None), gr.update(choices=docs, value=None), \
            gr.update(choices=colls, value=[]), gr.update(choices=runs, value=None), run, run, note, note

    root = gr.context.Context.root_block
    if root is not None:
        root.load(on_load, outputs=[e_model, s_model, d_model, e_doc, s_doc, d_colls, hist, e_btn, d_btn, e_note, d_note],
                  api_name="tools_choices", show_progress="hidden")

    def toggle_source(source: str):
        return (gr.update(visible=source == SOURCE_TEXT), gr.update(visible=source == SOURCE_FILE),
                gr.update(visible=source == SOURCE_DOC), gr.update(visible=source == SOURCE_DOC))

    e_source.change(toggle_source, [e_source], [e_text, e_file, e_doc, e_pages], queue=False, api_visibility="private",
                    show_progress="hidden")

    # "Abbrechen" counts a switch for the browser tab: the run stops at once and paints nothing over
    # the notice (ui.streams; gradio's own cancel may still deliver an update in flight)
    switches = StreamSwitches()
    width = len(_view_updates(ToolView()))

    def views(request: gr.Request, runs: Iterator[ToolView]):
        yield from switches.stream(request.session_hash, runs, _view_updates, width)

    def run_einfach(source, text, file, doc_id, pages, leicht, model, request: gr.Request):
        yield from views(request, h.simplify(request, source, text, file, doc_id, pages, leicht, model))

    def run_einfach_confirmed(source, text, file, doc_id, pages, leicht, model, warned, request: gr.Request):
        yield from views(request, h.simplify(request, source, text, file, doc_id, pages, leicht, model,
                                             confirmed=True, warned=take_warned(warned)))

    def run_summary(doc_id, length, fast, model, request: gr.Request):
        yield from views(request, h.summarize(request, doc_id, length, fast, model))

    def run_draft(kind, text, use_docs, colls, model, request: gr.Request):
        yield from views(request, h.draft(request, kind, text, use_docs, colls, model))

    def run_draft_confirmed(kind, text, use_docs, colls, model, warned, request: gr.Request):
        yield from views(request, h.draft(request, kind, text, use_docs, colls, model, confirmed=True,
                                          warned=take_warned(warned)))

    # a queue of their own: a long run (many parts) must not hold the chat's queue; the local model
    # takes both in turn, part by part (assistant.llm.fair_lock)
    stream = dict(concurrency_id="tools", trigger_mode="once", show_progress="minimal")
    quick = dict(queue=False, api_visibility="private", show_progress="hidden")

    def run_on(trigger, fn, inputs, area: _Area, **kwargs):
        """A run's event, with "Abbrechen" usable from the click until the run has ended (it was
        usable before any run, where it only said "Abgebrochen")."""
        trigger.click(_cancel_usable(True), None, [area.cancel], **quick)
        event = trigger.click(fn, inputs, area.outputs, **stream, **kwargs)
        event.then(_cancel_usable(False), None, [area.cancel], **quick)
        return event

    e_inputs = [e_source, e_text, e_file, e_doc, e_pages, e_leicht, e_model]
    a = areas["einfach"]
    runs = {"einfach": [
        run_on(e_btn, run_einfach, e_inputs, a, api_name="tool_einfach"),
        # private, and bound to the warned input held on the server (the area's state, not the request)
        run_on(a.confirm, run_einfach_confirmed, e_inputs + [a.warned], a, api_name="tool_einfach_confirmed",
               api_visibility="private")]}
    # a hint such as "Bitte ein Dokument wählen." stayed after a document was chosen (a browser review)
    s_doc.change(lambda: "", None, [areas["summary"].progress], **quick)
    runs["summary"] = [run_on(s_btn, run_summary, [s_doc, s_length, s_fast, s_model], areas["summary"],
                              api_name="tool_zusammenfassung")]
    d_inputs = [d_kind, d_text, d_docs, d_colls, d_model]
    a = areas["draft"]
    runs["draft"] = [
        run_on(d_btn, run_draft, d_inputs, a, api_name="tool_entwurf"),
        run_on(a.confirm, run_draft_confirmed, d_inputs + [a.warned], a, api_name="tool_entwurf_confirmed",
               api_visibility="private")]

    def cancelled(request: gr.Request):
        """The run is called off (gradio stops it in this browser tab only); a run is stored only
        when it finishes, so nothing of it is kept."""
        h.chat.user(request)
        switches.switch(request.session_hash)
        return "Abgebrochen – es wurde nichts gespeichert."

    for name, events in runs.items():
        cancel = areas[name].cancel
        cancel.click(cancelled, None, [areas[name].progress], cancels=events, api_visibility="private",
                     concurrency_limit=None, show_progress="hidden").then(
            _cancel_usable(False), None, [cancel], **quick)

    def export(fmt: str):
        def fn(run_id, request: gr.Request):
            return gr.update(value=h.export(request, run_id, fmt), visible=True)
        return fn

    for name, area in areas.items():
        download = download_now_js(f"kp-{name}-export-file")
        area.export_md.click(export("md"), [area.run_id], [area.export_file], api_name=f"tool_export_md_{name}",
                             concurrency_limit=None).success(None, js=download)
        area.export_docx.click(export("docx"), [area.run_id], [area.export_file], api_name=f"tool_export_docx_{name}",
                               concurrency_limit=None).success(None, js=download)

    def refresh(request: gr.Request):
        return gr.update(choices=h.history(request), value=None)

    def open_run(run_id, request: gr.Request):
        if not run_id:
            return (gr.update(),) * len(areas["history"].outputs)
        return _view_updates(h.open_run(request, run_id))

    def delete(run_id, request: gr.Request):
        if not run_id:
            h.user(request)
            return (gr.update(), gr.update(), gr.update(), gr.update(), "**Hinweis:** Bitte zuerst ein Ergebnis in der "
                    "Liste auswählen.") + (gr.update(),) * 3
        h.delete_run(request, run_id)
        return (gr.update(choices=h.history(request), value=None), "", "", None, "Gelöscht.") + _export_updates(False)

    past = areas["history"]
    hist_refresh.click(refresh, None, [hist], api_name="tool_history", concurrency_limit=None)
    hist.input(open_run, [hist], past.outputs, api_name="tool_open_run", concurrency_limit=None)
    hist_delete.click(delete, [hist], [hist, past.output, past.details, past.run_id, past.progress, past.export_md,
                                       past.export_docx, past.export_file],
                      api_name="tool_delete_run", concurrency_limit=None)
    for area in (areas["einfach"], areas["summary"], areas["draft"]):
        area.run_id.change(refresh, None, [hist], api_visibility="private", show_progress="hidden",
                           concurrency_limit=None)
