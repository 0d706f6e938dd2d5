"""Admin area of the portal: documents, uploads, jobs, collections, index health, audit, dashboard.

Every handler re-checks the admin role on the server (``ctx.require(request, "admin")``):
Gradio exposes each event as an HTTP endpoint, so hiding the tab protects nothing. The
few handlers that run without a click (page load, job polling) answer non-admins with
empty data instead of an error, so a staff user's page shows no error toasts — they
still never return admin data.

The handlers are methods of :class:`AdminUI` so tests can call them directly with a
``gr.Request``; the work itself is in :mod:`assistant.admin` (shared with the CLI).
Long work (uploads, re-indexing, folder sync) runs in :mod:`assistant.jobs`, so it
survives a page reload; the upload handler only waits for its job to show progress.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from assistant.access import EVERYONE, AccessError, Departments, exclusive_readers, readers_label
from assistant.admin import STATUS_LABELS, Admin, AdminError, fmt_time, human_bytes
from assistant.audit import format_time
from assistant.escaping import md_esc, one_line
from assistant.policy.zones import CLASSIFICATION_LABELS_DE, CLASSIFICATIONS
from assistant.tools.result import TOOL_LABELS_DE
from assistant.user_admin import UserAdmin, format_login, no_passwords_reason
from assistant.users import ROLES
from assistant.wording import counted
from corpus.text import without_direction_controls
from ui.context import PortalContext
from ui.docview import doc_link
from ui.exports import download_now_js, export_folder
from ui.file_values import UntrustedFile, received_files
from ui.handlers import role_label
from ui.security import resolve_user
from ui.source_view import shortened

log = logging.getLogger(__name__)

DOC_HEADERS = ["Titel", "Datei", "Format", "Seiten", "Abschnitte", "Sammlung", "Status", "Fehler", "Indexiert am",
               "ID", "Öffnen"]
JOB_HEADERS = ["Auftrag", "Sammlung", "Status", "Fortschritt", "Meldung", "Erstellt", "Beendet", "Von", "ID"]
def _exclusive_readers(selected: list[str] | None, evt: gr.SelectData) -> list[str]:
    """A click in a readers form (a form's own state, no data: the role is checked when it is sent)."""
    return exclusive_readers(selected or [], str(evt.value), bool(evt.selected))


USER_HEADERS = ["Benutzer", "Rolle", "Gruppen", "Letzte Anmeldung"]
GROUP_HEADERS = ["Gruppe", "Herkunft", "Benutzer", "Sammlungen (Leserecht)"]
GROUP_SOURCES = {"config": "fest eingestellt (Konfiguration)", "portal": "im Portal angelegt",
                 "unknown": "nicht eingerichtet (noch vergeben)"}
NO_GROUPS_INFO = "Noch keine Gruppen: unten unter „Gruppen (Ämter)“ anlegen."
COLL_HEADERS = ["Sammlung", "Einstufung", "Lesen dürfen", "Dokumente", "Abschnitte"]
AUDIT_HEADERS = ["Zeit", "Benutzer", "Aktion", "Ziel", "Details"]
FEEDBACK_HEADERS = ["Zeit", "Bewertung", "Frage", "Antwort", "Kommentar", "Quellen"]
OCR_HEADERS = ["Titel", "Datei", "Zu prüfende Seiten (Sicherheit)", "Per OCR gelesen", "ID", "Öffnen"]
JOB_KINDS = {"upload": "Hochladen", "reindex": "Neu indexieren", "sync": "Ordner abgleichen", "oparl": "OParl-Abgleich"}
JOB_STATUS = {"queued": "wartet", "running": "läuft", "done": "fertig", "failed": "fehlgeschlagen"}
SCOPES = {"Nur geänderte Dateien": "changed", "Eine Sammlung": "collection", "Ein Dokument": "doc", "Alles": "all"}
ALL_LABEL = "(alle)"
#: The audit log's date fields in German: gradio's DateTime takes no placeholder and writes the English
#: "YYYY-MM-DD" into its field (on every mount, so the page watches for it; the field keeps ours after).
AUDIT_DATE_JS = """() => {
  const german = () => document.querySelectorAll('#admin-audit-since input, #admin-audit-until input')
    .forEach((el) => { if (el.placeholder === 'YYYY-MM-DD') el.placeholder = 'JJJJ-MM-TT'; });
  german();
  new MutationObserver(german).observe(document.body, { subtree: true, childList: true });
}"""
UPLOAD_WAIT_S = 1800.0


def feedback_table(items) -> pd.DataFrame:
    """The rated answers as the review table (assistant.dashboard.feedback_items: no names). Cells are
    text, never Markdown or HTML: questions, answers and comments are people's and documents' words,
    without direction controls ("Links\u202egnp.exe" showed as "Linksexe.png", an attacker's probe)."""
    rows = [[format_time(f.at), "nicht hilfreich" if f.rating < 0 else "hilfreich",
             "(ausgeblendet: Datenschutzeinstellung)" if f.question is None else f.question, shortened(f.answer, 400, lines=True),
             f.comment, "; ".join(f.sources)] for f in items]
    return pd.DataFrame([[without_direction_controls(cell) for cell in row] for row in rows], columns=FEEDBACK_HEADERS)


#: The audit log's actions in German. The key stays beside the name: the filter, the CSV export and
#: `kiportal audit export` use it (a browser review found only raw keys: "user_add", "upload.rejected").
AUDIT_ACTION_LABELS = {
    "login": "Anmeldung", "login_failed": "Anmeldung fehlgeschlagen", "login_blocked": "Anmeldung zurückgehalten",
    "logout": "Abmeldung", "question": "Frage", "policy_warn": "Ampel-Warnung vor dem Senden",
    "feedback": "Bewertung", "feedback_comment": "Kommentar zur Bewertung", "chat_delete": "Chat gelöscht",
    "doc_view": "Dokument angesehen", "doc_refused": "Dokumentlink abgewiesen",
    "tool_export": "Werkzeug-Ergebnis exportiert", "export_download": "Export heruntergeladen",
    "export_refused": "Fremden Export abgewiesen", "upload": "Dokument hochgeladen",
    "upload.rejected": "Hochladen abgelehnt", "upload_refused": "Fremden Upload abgewiesen",
    "file_value_refused": "Dateiangabe abgewiesen", "tab_refused": "Fremden Browser-Tab abgewiesen",
    "replace": "Dokument ersetzt", "delete": "Dokument gelöscht", "reindex": "Neu indexiert",
    "sync": "Ordner abgeglichen", "repair": "Index repariert",
    "collection.create": "Sammlung angelegt", "collection.rename": "Sammlung umbenannt",
    "collection.delete": "Sammlung gelöscht", "collection.move": "Dokument verschoben",
    "collection.classify": "Sammlung eingestuft", "collection.readers": "Leserechte gesetzt",
    "collection.grant": "Leserecht erteilt", "collection.revoke": "Leserecht entzogen",
    "user_add": "Benutzer angelegt", "user_remove": "Benutzer entfernt", "user_passwd": "Passwort neu vergeben",
    "user_role": "Rolle geändert", "user_groups": "Gruppen geändert",
    "group.create": "Gruppe angelegt", "group.remove": "Gruppe entfernt",
    "password_changed": "Eigenes Passwort geändert", "password_change_failed": "Passwortänderung abgelehnt",
    "password_change_blocked": "Passwortänderung zurückgehalten",
    "header_auth_refused": "SSO-Anmeldung abgewiesen", "sso_subject_conflict": "SSO-Kennung passt nicht zum Namen",
    "sso_assign": "SSO-Kennung zugeordnet", "sso_handover": "SSO-Name übergeben",
    "sso_release": "SSO-Kennungen wieder zugelassen", "as_user": "Kommandozeile mit Rechten eines Benutzers",
    "training_start": "Schulung gestartet", "training_end": "Schulung beendet",
    "training_refused": "Fremde Schulungssitzung abgewiesen", "training_code_refused": "Teilnahmecode abgewiesen",
    "audit.export": "Protokoll exportiert", "audit.purge": "Protokoll bereinigt",
    "oparl.sync": "Ratsinformation abgeglichen", "oparl.source.add": "OParl-Quelle hinzugefügt",
    "oparl.source.remove": "OParl-Quelle entfernt",
}


def audit_action_label(action: str) -> str:
    """An action as the log shows it: the German name with the key in brackets; an unknown key as it is."""
    name = AUDIT_ACTION_LABELS.get(action)
    if name is None and action.startswith("tool_") and action[5:] in TOOL_LABELS_DE:
        name = f"Werkzeug {TOOL_LABELS_DE[action[5:]]}"
    return f"{name} ({action})" if name else action


def _detail_value(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, list):
        return ", ".join(_detail_value(v) for v in value) or "–"
    if isinstance(value, dict):
        return "(" + ", ".join(f"{one_line(str(k))}: {_detail_value(v)}" for k, v in value.items()) + ")"
    return one_line(str(value))


def audit_details(detail: str | None) -> str:
    """An entry's details as "Schlüssel: Wert", one after the other (" · ": the table shows a line break
    as a space), instead of JSON. Plain text for a text cell: details hold what users and documents
    wrote (names, file names, questions), so nothing of them may become markup; control and direction
    characters are written out as the log keeps them."""
    try:
        data = json.loads(detail or "{}")
    except ValueError:
        return one_line(detail or "")
    if not isinstance(data, dict):
        return _detail_value(data)
    return " · ".join(f"{one_line(str(key))}: {_detail_value(value)}" for key, value in data.items())


def _classification_choices() -> list[tuple[str, str]]:
    return [(CLASSIFICATION_LABELS_DE[c], c) for c in CLASSIFICATIONS]


def _role_choices() -> list[tuple[str, str]]:
    return [(role_label(r), r) for r in ROLES]


class AdminUI:
    """Server-side handlers of the admin area (each checks the role first)."""

    def __init__(self, ctx: PortalContext) -> None:
        self.ctx = ctx

    def _doc_url(self, rec, user: str, page: int | None = None) -> str:
        """The portal's document view needs a link signed for the viewing user (the App's one
        signer, as for the chat's source links), so the admin's "öffnen" behaves like a cited source."""
        return doc_link(self.ctx.app.link_signer, rec, user, page)

    @property
    def admin(self) -> Admin:
        return self.ctx.app.start_jobs()

    def _user(self, request: gr.Request | None) -> str:
        return self.ctx.require(request, "admin").name

    def _is_admin(self, request: gr.Request | None) -> bool:
        """For handlers that run without a click: decide quietly, never raise."""
        user = resolve_user(request, self.ctx.app.settings, self.ctx.users)
        return user is not None and user.has("admin")

    # -- shared lists ------------------------------------------------------------
    def _collection_names(self) -> list[str]:
        return [c["name"] for c in self.admin.collections()]

    def collection_dropdowns(self, request: gr.Request):
        """Fresh choices for every collection drop-down (after any collection change)."""
        names = self._collection_names() if self._is_admin(request) else []
        default = self.ctx.app.settings.default_collection
        upload_value = default if default in names else (names[0] if names else None)
        return (
            gr.Dropdown(choices=[ALL_LABEL, *names], value=ALL_LABEL),  # document filter
            gr.Dropdown(choices=names, value=upload_value),            # upload target
            gr.Dropdown(choices=names, value=None),                    # move target
            gr.Dropdown(choices=names, value=None),                    # reindex collection
            gr.Dropdown(choices=["", *names], value=""),               # sync collection
            gr.Dropdown(choices=names, value=None),                    # manage collection
        )

    # -- documents ---------------------------------------------------------------------
    def documents(self, text: str = "", collection: str | None = None, status: str | None = None,
                  request: gr.Request = None) -> pd.DataFrame:
        return self._documents_df(self._user(request), text, collection, status)

    def _documents_df(self, user: str, text: str = "", collection: str | None = None,
                      status: str | None = None) -> pd.DataFrame:
        coll = None if collection in (None, "", ALL_LABEL) else collection
        st = None if status in (None, "", ALL_LABEL) else status
        rows = []
        for r in self.admin.documents(text or "", coll, st):
            link = ""
            if r["status"] == "indexed":
                rec = self.ctx.app.catalog.get(r["doc_id"])
                link = f"[öffnen]({self._doc_url(rec, user)})" if rec else ""
            rows.append([r["title"], r["file"], r["format"], r["pages"] if r["pages"] is not None else "", r["chunks"],
                         r["collection"], STATUS_LABELS.get(r["status"], r["status"]), r["error"],
                         fmt_time(r["indexed_at"]), r["doc_id"], link])
        return pd.DataFrame(rows, columns=DOC_HEADERS)

    def ocr_review(self, request: gr.Request = None) -> pd.DataFrame:
        """Scanned pages read with low confidence (below ``ocr.min_confidence``), each linked to its page."""
        user = self._user(request)
        rows = []
        for r in self.admin.ocr_review():
            rec = self.ctx.app.catalog.get(r["doc_id"])
            pages = ", ".join(f"[S. {p} ({c:.0f} %)]({self._doc_url(rec, user, p)})" if rec else f"S. {p} ({c:.0f} %)"
                              for p, c in r["pages"])
            link = f"[öffnen]({self._doc_url(rec, user)})" if rec else ""
            rows.append([r["title"], r["file"], pages, r["ocr_pages"], r["doc_id"], link])
        return pd.DataFrame(rows, columns=OCR_HEADERS)

    def ocr_review_on_load(self, request: gr.Request = None) -> pd.DataFrame:
        user = resolve_user(request, self.ctx.app.settings, self.ctx.users)
        if user is None or not user.has("admin"):
            return pd.DataFrame([], columns=OCR_HEADERS)
        return self.ocr_review(request)

    def documents_on_load(self, request: gr.Request = None) -> pd.DataFrame:
        user = resolve_user(request, self.ctx.app.settings, self.ctx.users)
        if user is None or not user.has("admin"):
            return pd.DataFrame([], columns=DOC_HEADERS)
        return self._documents_df(user.name)

    def select_document(self, evt: gr.SelectData, request: gr.Request = None) -> tuple[str, str]:
        user = self._user(request)
        row = evt.row_value or []
        doc_id = str(row[DOC_HEADERS.index("ID")]) if len(row) > DOC_HEADERS.index("ID") else ""
        return doc_id, self._doc_details(doc_id, user)

    def document_details(self, doc_id: str, request: gr.Request = None) -> str:
        return self._doc_details(doc_id, self._user(request))

    def _doc_details(self, doc_id: str, user: str) -> str:
        doc_id = (doc_id or "").strip()
        if not doc_id:
            return "Kein Dokument ausgewählt."
        rec = self.ctx.app.catalog.get(doc_id)
        if rec is None:
            return "Dokument nicht gefunden."
        name = md_esc(rec.original_name or Path(rec.source).name)
        head = f"**{md_esc(rec.shown_title)}**"
        if rec.status == "indexed":
            head += f" — [Dokument öffnen]({self._doc_url(rec, user)})"
        lines = [head,
                 f"Datei: {name} · Format: {rec.format or '–'} · Seiten: {rec.pages or '–'} · "
                 f"Abschnitte: {rec.chunk_count} · Sammlung: {md_esc(rec.collection)} · "
                 f"Status: {STATUS_LABELS.get(rec.status, rec.status)} · indexiert: {fmt_time(rec.indexed_at) or '–'}"]
        if rec.ocr_pages:
            threshold = self.ctx.app.settings.ocr.min_confidence
            mean = sum(rec.ocr_pages.values()) / len(rec.ocr_pages)
            line = f"Per Texterkennung gelesen: {len(rec.ocr_pages)} Seite(n), Sicherheit im Mittel {mean:.0f} %"
            low = rec.low_confidence_pages(threshold)
            if low:
                line += (f" · bitte prüfen (unter {threshold:g} %): "
                         + ", ".join(f"[S. {p} ({rec.ocr_pages[p]:.0f} %)]({self._doc_url(rec, user, p)})" for p in low))
            lines.append(line)
        if rec.error:
            lines.append(f"Letzter Fehler: {md_esc(rec.error)}")
        if not self.admin.uploads.contains(rec.file(self.admin.settings.uploads_dir)):
            lines.append("Stammt aus einem Serverordner (wird dort gepflegt).")
        return "\n\n".join(lines)

    def delete_document(self, doc_id: str, confirm: bool, request: gr.Request = None):
        user = self._user(request)
        doc_id = (doc_id or "").strip()
        if not doc_id:
            return "Bitte zuerst ein Dokument auswählen.", gr.skip(), False
        if not confirm:
            return "Bitte das Löschen bestätigen (Häkchen setzen).", gr.skip(), False
        try:
            rec = self.admin.document(doc_id)
            out = self.admin.delete_document(doc_id, user)
        except AdminError as exc:
            return str(exc), gr.skip(), False
        msg = f"Gelöscht: {rec.original_name or rec.source} ({out['chunks']} Abschnitte aus allen Indizes entfernt"
        msg += ", Datei gelöscht)." if out["file_deleted"] else ")."
        return msg, self._documents_df(user), False

    def reindex_document(self, doc_id: str, request: gr.Request = None) -> str:
        user = self._user(request)
        try:
            job = self.admin.submit_reindex("doc", (doc_id or "").strip(), user)
        except AdminError as exc:
            return str(exc)
        return f"Neu-Indexierung gestartet (Auftrag {job[:8]}). Fortschritt unter „Aufträge“."

    def move_document(self, doc_id: str, target: str | None, request: gr.Request = None):
        user = self._user(request)
        if not (doc_id or "").strip() or not target:
            return "Bitte Dokument und Zielsammlung wählen.", gr.skip()
        try:
            self.admin.move_document(doc_id.strip(), target, user)
        except AdminError as exc:
            return str(exc), gr.skip()
        return f"Verschoben nach „{target}“.", self._documents_df(user)

    # -- uploads -----------------------------------------------------------------------
    def _received(self, files, user: str) -> list[str]:
        """Only files this admin uploaded through the portal, never a server path (ui.file_values)."""
        try:
            return received_files(files, user, self.ctx.audit)
        except UntrustedFile as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def upload(self, files, collection: str | None, request: gr.Request = None,
               progress: gr.Progress = gr.Progress()):
        user = self._user(request)
        paths = self._received(files, user)
        if not paths:
            return "Bitte mindestens eine Datei auswählen.", gr.skip(), None
        if not collection:
            return "Bitte eine Sammlung wählen (oder unter „Sammlungen“ anlegen).", gr.skip(), None
        try:
            job, rejected = self.admin.submit_upload([(p, Path(p).name) for p in paths], collection, user)
        except AdminError as exc:
            return str(exc), gr.skip(), None
        return self._wait_upload(job, rejected, progress), self._documents_df(user), None

    def replace_document(self, doc_id: str, file, request: gr.Request = None,
                         progress: gr.Progress = gr.Progress()):
        user = self._user(request)
        paths = self._received(file, user)
        if not (doc_id or "").strip():
            return "Bitte zuerst ein Dokument auswählen.", gr.skip(), None
        if len(paths) != 1:
            return "Bitte genau eine Datei als neue Version wählen.", gr.skip(), None
        try:
            job, rejected = self.admin.submit_upload([(paths[0], Path(paths[0]).name)], "", user,
                                                     replace_doc_id=doc_id.strip())
        except AdminError as exc:
            return str(exc), gr.skip(), None
        return self._wait_upload(job, rejected, progress), self._documents_df(user), None

    def _wait_upload(self, job_id: str | None, rejected: list[dict], progress) -> str:
        """Follow the upload job with the progress bar; the job itself does not depend on this
        request (a closed tab or reload does not stop it)."""
        if job_id is None:
            return "\n".join(r["reason"] for r in rejected)
        deadline = time.monotonic() + UPLOAD_WAIT_S
        job = None
        while time.monotonic() < deadline:
            job = self.admin.jobs.get(job_id)
            if job is None or job["status"] in ("done", "failed"):
                break
            progress(job["progress"], desc=job["message"] or JOB_STATUS[job["status"]])
            time.sleep(0.3)
        if job is None:
            return "Auftrag nicht gefunden."
        if job["status"] not in ("done", "failed"):
            return "Die Dateien werden weiter im Hintergrund verarbeitet; siehe „Aufträge“."
        return job["message"]

    # -- jobs ------------------------------------------------------------------------
    def reindex(self, scope_label: str, collection: str | None, doc_id: str, request: gr.Request = None) -> str:
        user = self._user(request)
        scope = SCOPES.get(scope_label, scope_label)
        target = collection if scope == "collection" else (doc_id or "").strip() if scope == "doc" else None
        try:
            job = self.admin.submit_reindex(scope, target, user)
        except AdminError as exc:
            return str(exc)
        return f"Auftrag {job[:8]} angelegt ({scope_label}). Die Suche bleibt währenddessen verfügbar."

    def sync(self, folder: str, collection: str | None, request: gr.Request = None) -> str:
        user = self._user(request)
        try:
            job = self.admin.submit_sync(folder, collection or None, user)
        except AdminError as exc:
            return str(exc)
        return f"Abgleich von {folder.strip()} gestartet (Auftrag {job[:8]})."

    def jobs_table(self, request: gr.Request = None) -> pd.DataFrame:
        """Polled by a timer: quiet for non-admins (empty table, no error toast)."""
        if not self._is_admin(request):
            return pd.DataFrame([], columns=JOB_HEADERS)
        rows = [[JOB_KINDS.get(j["kind"], j["kind"]), "alle" if j["collection"] == "*" else j["collection"],
                 JOB_STATUS.get(j["status"], j["status"]), f"{j['progress']:.0%}", j["message"],
                 fmt_time(j["created_at"]), fmt_time(j["finished_at"]), j["actor"], j["id"][:8]]
                for j in self.admin.jobs.list(limit=30)]
        return pd.DataFrame(rows, columns=JOB_HEADERS)

    # -- collections -----------------------------------------------------------------
    def collections_table(self, request: gr.Request = None) -> pd.DataFrame:
        self._user(request)
        return self._collections_df()

    def _collections_df(self) -> pd.DataFrame:
        rows = [[c["name"], CLASSIFICATION_LABELS_DE.get(c["classification"], c["classification"]),
                 readers_label(c["readers"]), c["documents"], c["chunks"]] for c in self.admin.collections()]
        return pd.DataFrame(rows, columns=COLL_HEADERS)

    def create_collection(self, name: str, classification: str, request: gr.Request = None,
                          readers: list[str] | None = None):
        """``readers`` (the third input in the tab) default to ``access.new_collection_readers``."""
        user = self._user(request)
        try:
            self.admin.create_collection(name, classification, user, readers=None if readers is None else list(readers))
        except AdminError as exc:
            return str(exc), gr.skip()
        return f"Sammlung „{name.strip()}“ angelegt.", self._collections_df()

    def rename_collection(self, old: str | None, new: str, request: gr.Request = None):
        user = self._user(request)
        try:
            self.admin.rename_collection(old or "", new, user)
        except AdminError as exc:
            return str(exc), gr.skip()
        return f"„{old}“ heißt jetzt „{new.strip()}“.", self._collections_df()

    def delete_collection(self, name: str | None, request: gr.Request = None):
        user = self._user(request)
        try:
            self.admin.delete_collection(name or "", user)
        except AdminError as exc:
            return str(exc), gr.skip()
        return f"Sammlung „{name}“ gelöscht.", self._collections_df()

    def classify_collection(self, name: str | None, classification: str, request: gr.Request = None):
        user = self._user(request)
        try:
            self.admin.classify_collection(name or "", classification, user)
        except AdminError as exc:
            return str(exc), gr.skip()
        return f"„{name}“ ist jetzt {CLASSIFICATION_LABELS_DE[classification]}.", self._collections_df()

    # -- departments: who may read what ------------------------------------------------------
    @property
    def departments(self) -> Departments:
        return self.ctx.app.departments

    def set_readers(self, name: str | None, readers: list[str] | None, request: gr.Request = None):
        user = self._user(request)
        try:
            after = self.departments.set_readers(name or "", list(readers or []), user)
        except AccessError as exc:
            return str(exc), gr.skip()
        return f"„{name}“ lesen jetzt: {readers_label(after)}.", self._collections_df()

    def show_readers(self, name: str | None, request: gr.Request = None):
        """Who may read the collection (Markdown), and its readers for the checkboxes.

        No collection chosen shows nothing and asks for no role: the page load empties the choice for
        every user, and the admin check raised for staff and trainers (an error at every login)."""
        if not name:
            return "", gr.update(value=[])
        self._user(request)
        try:
            shown = self.departments.show(name)
        except AccessError as exc:
            return md_esc(str(exc)), gr.update(value=[])
        people = ", ".join(f"{md_esc(u['name'])} ({u['role']})" for u in shown["users"]) or "niemand"
        return (f"**{md_esc(name)}** lesen: {md_esc(shown['readers_label'])}  \nBenutzer: {people}",
                gr.update(value=shown["readers"]))

    def user_choices(self, request: gr.Request = None):
        self._user(request)
        return gr.update(choices=[u["name"] for u in self.ctx.users.list()], value=None)

    def user_groups(self, name: str | None, request: gr.Request = None):
        self._user(request)
        found = self.ctx.users.get(name) if name else None
        return gr.update(value=list(found.groups) if found else [])

    def set_user_groups(self, name: str | None, groups: list[str] | None, request: gr.Request = None) -> str:
        user = self._user(request)
        try:
            after = self.departments.set_user_groups(name or "", list(groups or []), user)
        except AccessError as exc:
            return str(exc)
        return f"Gruppen für {name} gesetzt: {', '.join(after) or 'keine'}."

    # -- groups (Ämter): create, remove, and every choice of groups kept fresh ---------------------
    def _groups_df(self, groups: list[dict]) -> pd.DataFrame:
        rows = [[g["name"], GROUP_SOURCES.get(g["source"], g["source"]), ", ".join(g["users"]) or "–",
                 ", ".join(g["collections"]) or "–"] for g in groups]
        return pd.DataFrame(rows, columns=GROUP_HEADERS)

    def _group_updates(self) -> tuple:
        """The groups table and fresh choices for every form that offers groups: the group to remove,
        a new user's groups, a user's groups, a new collection's readers, a collection's readers."""
        groups = self.departments.groups()
        known = self.departments.known_groups
        removable = [g["name"] for g in groups if g["source"] == "portal"]
        return (self._groups_df(groups), gr.update(choices=removable, value=None),
                gr.update(choices=known, info=None if known else NO_GROUPS_INFO), gr.update(choices=known),
                gr.update(choices=[EVERYONE, *known]), gr.update(choices=[EVERYONE, *known]))

    def groups_table(self, request: gr.Request = None) -> pd.DataFrame:
        self._user(request)
        return self._groups_df(self.departments.groups())

    def groups_table_on_load(self, request: gr.Request = None) -> pd.DataFrame:
        """After a change of users' groups or collections' readers: quietly empty for non-admins."""
        if not self._is_admin(request):
            return pd.DataFrame([], columns=GROUP_HEADERS)
        return self._groups_df(self.departments.groups())

    def groups_on_load(self, request: gr.Request = None) -> tuple:
        """Page load and tab select: the groups and the choices (another replica may have created a
        group); quietly nothing for non-admins (the page keeps the configured groups it was built with)."""
        if not self._is_admin(request):
            return (pd.DataFrame([], columns=GROUP_HEADERS), *[gr.skip()] * 5)
        return self._group_updates()

    def create_group(self, name: str | None, request: gr.Request = None) -> tuple:
        actor = self._user(request)
        try:
            made = self.departments.create_group(name, actor)
        except AccessError as exc:
            return (f"Nicht angelegt: {exc}", *[gr.skip()] * 6, gr.skip())
        return (f"Gruppe „{made}“ angelegt. Sie steht jetzt bei den Benutzern und den Leserechten der "
                "Sammlungen zur Auswahl.", *self._group_updates(), "")

    def remove_group(self, name: str | None, request: gr.Request = None) -> tuple:
        actor = self._user(request)
        try:
            gone = self.departments.remove_group(name, actor)
        except AccessError as exc:
            return (f"Nicht entfernt: {exc}", *[gr.skip()] * 6)
        return (f"Gruppe „{gone}“ entfernt.", *self._group_updates())

    # -- users: table, create, role, new password, remove ----------------------------------------
    @functools.cached_property
    def user_admin(self) -> UserAdmin:
        """Built once: its parts (user store, departments, audit, auth mode) live as long as the portal."""
        return UserAdmin(self.ctx.users, self.departments, self.ctx.audit, self.ctx.app.settings.auth.mode)

    def _users_df(self, users: list[dict] | None = None) -> pd.DataFrame:
        rows = [[u["name"], role_label(u["role"]), ", ".join(u["groups"]) or "–", format_login(u["last_login"])]
                for u in (self.user_admin.list() if users is None else users)]
        return pd.DataFrame(rows, columns=USER_HEADERS)

    def _table_and_names(self) -> tuple[pd.DataFrame, list[str]]:
        """The table and the names for the drop-down from one read of the user store."""
        users = self.user_admin.list()
        return self._users_df(users), [u["name"] for u in users]

    def _user_names(self) -> list[str]:
        return [u["name"] for u in self.user_admin.list()]

    def users_table(self, request: gr.Request = None) -> pd.DataFrame:
        self._user(request)
        return self._users_df()

    def users_on_load(self, request: gr.Request = None) -> pd.DataFrame:
        """Page load and tab select: the table for admins, quietly empty for everyone else."""
        if not self._is_admin(request):
            return pd.DataFrame([], columns=USER_HEADERS)
        return self._users_df()

    def select_user(self, evt: gr.SelectData, request: gr.Request = None):
        """A click in the user table chooses that user in the form below it."""
        self._user(request)
        row = evt.row_value or []
        name = str(row[0]) if row else ""
        return gr.update(value=name) if name in self._user_names() else gr.skip()

    def user_role(self, name: str | None, request: gr.Request = None):
        """The chosen user's role for the role drop-down."""
        self._user(request)
        found = self.ctx.users.get(name) if name else None
        return gr.update(value=found.role if found else None)

    def add_user(self, name: str, role: str | None, groups: list[str] | None, request: gr.Request = None):
        """Create a user with a generated password, shown once in the message (never stored in clear)."""
        actor = self._user(request)
        try:
            user, password = self.user_admin.create(name, role, groups, actor)
        except AdminError as exc:
            return f"Nicht angelegt: {exc}", gr.skip(), gr.skip(), gr.skip()
        groups_text = ", ".join(user.groups) or "keine"
        msg = (f"Benutzer „{user.name}“ angelegt ({role_label(user.role)}; Gruppen: {groups_text}).\n"
               f"Startpasswort: {password}\n"
               "Nur jetzt sichtbar: bitte sicher an die Person weitergeben (nicht per unverschlüsselter E-Mail).")
        table, names = self._table_and_names()
        return msg, table, gr.update(choices=names), ""

    def set_user_role(self, name: str | None, role: str | None, request: gr.Request = None):
        actor = self._user(request)
        try:
            before, after = self.user_admin.set_role(name, role, actor)
        except AdminError as exc:
            return f"Rolle nicht geändert: {exc}", gr.skip()
        if before == after:
            return f"{name}: Rolle bleibt {role_label(after)}.", gr.skip()
        return (f"{name}: Rolle jetzt {role_label(after)} (vorher {role_label(before)}). "
                "Laufende Sitzungen dieser Person sind beendet."), self._users_df()

    def reset_user_password(self, name: str | None, request: gr.Request = None) -> str:
        actor = self._user(request)
        try:
            user, password = self.user_admin.reset_password(name, actor)
        except AdminError as exc:
            return f"Kein neues Passwort: {exc}"
        return (f"Neues Passwort für „{user.name}“: {password}\n"
                "Nur jetzt sichtbar: bitte sicher weitergeben. Das alte Passwort gilt nicht mehr, "
                "laufende Sitzungen dieser Person sind beendet.")

    def remove_user(self, name: str | None, confirm: bool, request: gr.Request = None):
        actor = self._user(request)
        if not (name or "").strip():
            return "Bitte zuerst einen Benutzer auswählen.", gr.skip(), gr.skip(), False
        if not confirm:
            return "Bitte das Löschen bestätigen (Häkchen setzen).", gr.skip(), gr.skip(), False
        try:
            user = self.user_admin.remove(name, actor)
        except AdminError as exc:
            return f"Nicht gelöscht: {exc}", gr.skip(), gr.skip(), False
        table, names = self._table_and_names()
        return f"Benutzer „{user.name}“ gelöscht.", table, gr.update(choices=names, value=None), False

    # -- health ------------------------------------------------------------------------
    def health(self, request: gr.Request = None):
        self._user(request)
        return self._health(False, "")

    def repair(self, request: gr.Request = None):
        user = self._user(request)
        try:
            return self._health(True, user)
        except AdminError as exc:
            return str(exc), gr.skip(), gr.skip()

    def _health(self, repair: bool, user: str):
        h = self.admin.health(repair=repair, actor=user)
        r = h["report"]
        state = "✓ Katalog, Vektorindex und Stichwortindex stimmen überein." if r["ok"] else \
            "⚠ Abweichungen gefunden – „Reparieren“ behebt sie."
        lines = [state,
                 f"Dokumente: {h['documents']} · Abschnitte im Katalog: {r['catalog_chunks']} · "
                 f"im Vektorindex: {r['vector_chunks']} · im Stichwortindex: {r['keyword_chunks']}",
                 f"Fehlende Vektoren: {r['missing_in_vectors']} · verwaiste Vektoren: {r['orphans_in_vectors']} · "
                 f"Stichwortindex veraltet: {'ja' if r['keyword_stale'] else 'nein'}",
                 "Status: " + ", ".join(f"{STATUS_LABELS.get(k, k)} {v}" for k, v in sorted(h["by_status"].items()))]
        if r["repaired"]:
            lines.append("Repariert: " + "; ".join(r["repaired"]))
        disk = pd.DataFrame([[k, human_bytes(v)] for k, v in h["disk"].items()], columns=["Bereich", "Größe"])
        return "\n\n".join(lines), self._collections_df(), disk

    # -- audit ------------------------------------------------------------------------
    @staticmethod
    def _audit_filters(action, actor, since, until, text) -> dict:
        def ts(v):
            if v in (None, ""):
                return None
            if isinstance(v, (int, float)):
                return float(v)
            return dt.datetime.fromisoformat(str(v)).timestamp()

        u = ts(until)
        return {"action": None if action in (None, "", ALL_LABEL) else action, "actor": (actor or "").strip() or None,
                "since": ts(since), "until": u + 86400 if u is not None else None, "text": (text or "").strip() or None}

    def audit_table(self, action=None, actor="", since=None, until=None, text="", request: gr.Request = None):
        self._user(request)
        f = self._audit_filters(action, actor, since, until, text)
        audit = self.admin.audit
        rows = [[format_time(e["at"]), one_line(e["actor"] or ""), audit_action_label(e["action"]),
                 one_line(e["target"] or ""), audit_details(e["detail"])]
                for e in audit.entries(limit=500, **f)]
        n = audit.count(**f)
        note = counted(n, "Eintrag", "Einträge") + (" (die neuesten 500 angezeigt)" if n > 500 else "")
        # the German name shown (in its order), the key as the value: the filter works on the keys
        named = sorted(((audit_action_label(a), a) for a in audit.actions()), key=lambda c: c[0].casefold())
        choices = [(ALL_LABEL, ALL_LABEL), *named]
        return pd.DataFrame(rows, columns=AUDIT_HEADERS), note, gr.Dropdown(choices=choices)

    def audit_export(self, action=None, actor="", since=None, until=None, text="", request: gr.Request = None) -> str:
        user = self._user(request)
        f = self._audit_filters(action, actor, since, until, text)
        out = export_folder(owner=user) / f"protokoll-{dt.date.today().isoformat()}.csv"
        with open(out, "w", encoding="utf-8", newline="") as fh:
            n = self.admin.audit.write_csv(fh, **f)
        self.admin.audit.record("audit.export", user, out.name, {"rows": n, **{k: v for k, v in f.items() if v}})
        return str(out)

    # -- dashboard ---------------------------------------------------------------------
    def dashboard(self, days: float = 30, request: gr.Request = None):
        self._user(request)
        from assistant import dashboard as d

        app = self.ctx.app
        u = d.usage(self.admin.audit.db, self.admin.audit, days=int(days or 30), catalog=app.catalog,
                    log_questions=app.settings.privacy.log_questions)
        refused = sum(u.refused)
        lines = [f"**{u.total}** Fragen in {len(u.days)} Tagen, davon **{refused}** abgelehnt"
                 + (f" ({refused / u.total:.0%})" if u.total else "") + "."]
        if u.feedback_ratio is not None:
            lines.append(f"Bewertungen: {u.feedback_up} hilfreich, {u.feedback_down} nicht hilfreich "
                         f"({u.feedback_ratio:.0%} hilfreich).")
        if u.questions_hidden:
            lines.append("Fragetexte werden laut Datenschutzeinstellung nicht gespeichert.")
        refused_df = pd.DataFrame([[format_time(a), q] for a, q in u.refused_questions],
                                  columns=["Zeit", "Abgelehnte Frage (fehlt in den Dokumenten?)"])
        return (d.plot_questions(u), d.plot_latency(u), d.plot_feedback(u), d.plot_top_docs(u),
                "\n\n".join(lines), refused_df, feedback_table(u.feedback))




# -- layout ------------------------------------------------------------------------------
def build(ctx: PortalContext) -> None:
    """Create the admin components inside the caller's current gr.Blocks/gr.Tab context."""
    h = AdminUI(ctx)
    # start the job runner now (marks jobs of a dead process as failed, recovers uploads,
    # runs the audit retention purge and schedules it daily), not on the first admin click
    ctx.app.start_jobs()
    status_choices = [(ALL_LABEL, ALL_LABEL), *[(v, k) for k, v in STATUS_LABELS.items()]]
    # the page is built once for everyone: the configured groups; an admin's page load adds the created ones
    known_groups = sorted(ctx.app.settings.access.groups)
    reader_choices = [EVERYONE, *known_groups]
    group_map = bool(ctx.app.settings.access.group_map)

    with gr.Tabs(elem_id="admin-tabs", overflow_behavior="wrap"):
        # -- documents ----------------------------------------------------------------
        with gr.Tab("Dokumente", id="admin-docs") as tab_docs:
            with gr.Row():
                doc_search = gr.Textbox(label="Suche (Titel, Datei, ID)", scale=3, elem_id="admin-doc-search")
                doc_coll = gr.Dropdown(label="Sammlung", choices=[ALL_LABEL], value=ALL_LABEL, scale=1)
                doc_status = gr.Dropdown(label="Status", choices=status_choices, value=ALL_LABEL, scale=1)
                doc_refresh = gr.Button("Aktualisieren", scale=0, elem_id="admin-doc-refresh")
            doc_table = gr.Dataframe(
                headers=DOC_HEADERS, datatype=["str"] * 10 + ["markdown"], interactive=False, wrap=True,
                max_height=420, elem_id="admin-doc-table", label="Dokumente",
                column_widths=["18%", "14%", "6%", "6%", "8%", "8%", "8%", "8%", "10%", "8%", "6%"])
            with gr.Row():
                doc_id = gr.Textbox(label="Ausgewähltes Dokument (ID)", elem_id="admin-doc-id", scale=2)
                move_target = gr.Dropdown(label="Verschieben nach", choices=[], scale=1)
            doc_info = gr.Markdown("Zeile anklicken, um ein Dokument auszuwählen.", elem_id="admin-doc-info")
            with gr.Row():
                btn_reindex_doc = gr.Button("Neu indexieren", size="sm")
                btn_move = gr.Button("Verschieben", size="sm")
                confirm_delete = gr.Checkbox(label="Löschen bestätigen", value=False, elem_id="admin-confirm-delete")
                btn_delete = gr.Button("Löschen", variant="stop", size="sm", elem_id="admin-delete")
            with gr.Accordion("Neue Version hochladen (ersetzt das Dokument)", open=False):
                replace_file = gr.File(label="Neue Version", file_count="single", elem_id="admin-replace-file")
                btn_replace = gr.Button("Ersetzen", size="sm")
            doc_msg = gr.Textbox(label="Meldung", interactive=False, lines=2, elem_id="admin-doc-msg")
            with gr.Accordion("Texterkennung prüfen (unsicher gelesene Scan-Seiten)", open=False):
                gr.Markdown("Seiten, die per Texterkennung (OCR) gelesen wurden und deren mittlere Wortsicherheit "
                            f"unter {ctx.app.settings.ocr.min_confidence:g} % liegt (Einstellung "
                            "`ocr.min_confidence`). Bitte mit dem Original vergleichen; ein besserer Scan ersetzt "
                            "das Dokument über „Neue Version hochladen“.")
                ocr_table = gr.Dataframe(headers=OCR_HEADERS, datatype=["str", "str", "markdown", "str", "str", "markdown"],
                                         interactive=False, wrap=True, elem_id="admin-ocr-table", label="Zu prüfen")

        # -- upload ---------------------------------------------------------------------
        with gr.Tab("Hochladen", id="admin-upload"):
            gr.Markdown("Mehrere Dateien auf einmal (PDF, Word, PowerPoint, Excel, ODT, HTML, Markdown, Text, RTF; "
                        "Scans als PNG, JPEG oder TIFF werden per Texterkennung gelesen). "
                        "Jede Datei wird vor dem Speichern geprüft; abgelehnte Dateien ändern nichts.")
            up_coll = gr.Dropdown(label="Sammlung", choices=[], elem_id="admin-upload-collection")
            up_files = gr.File(label="Dateien", file_count="multiple", elem_id="admin-upload-files")
            btn_upload = gr.Button("Hochladen und indexieren", variant="primary", elem_id="admin-upload-btn")
            up_msg = gr.Textbox(label="Ergebnis", interactive=False, lines=4, elem_id="admin-upload-msg")

        # -- jobs ---------------------------------------------------------------------------
        with gr.Tab("Aufträge", id="admin-jobs") as tab_jobs:
            with gr.Row():
                ri_scope = gr.Radio(list(SCOPES), value="Nur geänderte Dateien", label="Neu indexieren")
                ri_coll = gr.Dropdown(label="Sammlung", choices=[])
                ri_doc = gr.Textbox(label="Dokument-ID")
            btn_reindex = gr.Button("Neu indexieren starten", elem_id="admin-reindex-btn")
            with gr.Row():
                sync_folder = gr.Textbox(label="Ordner auf dem Server abgleichen", placeholder="/srv/dokumente/bauamt",
                                         scale=3)
                sync_coll = gr.Dropdown(label="Sammlung (leer: bisherige/Standard)", choices=[""], value="", scale=1)
            btn_sync = gr.Button("Abgleich starten")
            job_msg = gr.Textbox(label="Meldung", interactive=False, elem_id="admin-job-msg")
            job_table = gr.Dataframe(headers=JOB_HEADERS, interactive=False, wrap=True, elem_id="admin-job-table",
                                     label="Aufträge (aktualisiert sich selbst)", max_height=480,
                                     column_widths=["10%", "9%", "8%", "11%", "26%", "9%", "9%", "7%", "11%"])
            job_timer = gr.Timer(2.0, active=False)

        # -- council information system (OParl): its own module -------------------------------
        from ui.admin_oparl import build_tab as build_oparl_tab

        build_oparl_tab(ctx)

        # -- collections ----------------------------------------------------------------
        with gr.Tab("Sammlungen", id="admin-collections") as tab_colls:
            coll_table = gr.Dataframe(headers=COLL_HEADERS, interactive=False, elem_id="admin-coll-table")
            with gr.Row():
                new_name = gr.Textbox(label="Neue Sammlung", elem_id="admin-new-collection")
                new_cls = gr.Dropdown(label="Einstufung", choices=_classification_choices(),
                                      value=ctx.app.settings.policy.default_classification
                                      if ctx.app.settings.policy.default_classification in CLASSIFICATIONS else "intern")
                new_readers = gr.CheckboxGroup(label="Lesen dürfen", choices=reader_choices,
                                               value=ctx.app.catalog.new_collection_readers,
                                               elem_id="admin-new-readers")
                btn_create = gr.Button("Anlegen", elem_id="admin-create-collection")
            with gr.Row():
                manage_coll = gr.Dropdown(label="Sammlung", choices=[])
                rename_to = gr.Textbox(label="Neuer Name")
                btn_rename = gr.Button("Umbenennen")
            with gr.Row():
                cls_to = gr.Dropdown(label="Neue Einstufung", choices=_classification_choices(), value="intern")
                btn_classify = gr.Button("Einstufen")
                btn_del_coll = gr.Button("Löschen (nur leere)", variant="stop")
            with gr.Row():
                readers_to = gr.CheckboxGroup(label="Lesen dürfen („alle“ oder Gruppen)", choices=reader_choices,
                                              elem_id="admin-readers")
                btn_readers = gr.Button("Leserechte setzen", elem_id="admin-set-readers")
            readers_md = gr.Markdown(elem_id="admin-readers-info")
            coll_msg = gr.Textbox(label="Meldung", interactive=False, elem_id="admin-coll-msg")

        # -- users and their groups (the tab id is the groups' tab's: links and tests use it) ----------
        with gr.Tab("Benutzer", id="admin-groups") as tab_groups:
            no_passwords = no_passwords_reason(ctx.app.settings.auth.mode)
            gr.Markdown("Wer das Portal nutzt, mit Rolle und Gruppen. Gruppen (Ämter, Fachbereiche) entscheiden, "
                        "welche Sammlungen jemand lesen darf; neue Gruppen legen Sie unten unter „Gruppen (Ämter)“ "
                        "an, dazu kommen die der Einstellung `access.groups`."
                        + (" Die Gruppen der Benutzer kommen aus der Kopfzeile des SSO-Proxys (Einstellung "
                           "`access.group_map`, nur Gruppen aus `access.groups`)." if group_map else "")
                        + (f"\n\n**{no_passwords}** Rollen und Gruppen lassen sich hier trotzdem setzen."
                           if no_passwords else ""), elem_id="admin-users-info")
            with gr.Row():
                users_table = gr.Dataframe(headers=USER_HEADERS, interactive=False, wrap=True, max_height=360,
                                           elem_id="admin-user-table", label="Benutzer (Zeile anklicken zum Auswählen)")
            users_refresh = gr.Button("Aktualisieren", size="sm", scale=0, elem_id="admin-users-refresh")
            with gr.Accordion("Neuen Benutzer anlegen", open=no_passwords is None, elem_id="admin-add-user-box"):
                if no_passwords is None:
                    gr.Markdown("Das Portal erzeugt ein zufälliges Startpasswort und zeigt es einmal an; "
                                "gespeichert wird nur sein Hash.")
                else:
                    gr.Markdown(f"Nicht möglich: {no_passwords}")
                with gr.Row():
                    new_user = gr.Textbox(label="Benutzername", placeholder="z. B. m.muster",
                                          elem_id="admin-new-user", interactive=no_passwords is None)
                    new_user_role = gr.Dropdown(label="Rolle", choices=_role_choices(), value="staff",
                                                elem_id="admin-new-user-role", interactive=no_passwords is None)
                    new_user_groups = gr.CheckboxGroup(label="Gruppen", choices=known_groups,
                                                       elem_id="admin-new-user-groups",
                                                       info=None if known_groups else NO_GROUPS_INFO,
                                                       interactive=no_passwords is None)
                btn_add_user = gr.Button("Benutzer anlegen", variant="primary", elem_id="admin-add-user",
                                         interactive=no_passwords is None)
                add_user_msg = gr.Textbox(label="Ergebnis", interactive=False, lines=3, buttons=["copy"],
                                          elem_id="admin-add-user-msg")
            gr.Markdown("**Benutzer bearbeiten**")
            with gr.Row():
                group_user = gr.Dropdown(label="Benutzer", choices=[], elem_id="admin-group-user")
                group_set = gr.CheckboxGroup(label="Gruppen", choices=known_groups, elem_id="admin-group-set")
                btn_groups = gr.Button("Gruppen setzen", elem_id="admin-set-groups")
            with gr.Row():
                role_to = gr.Dropdown(label="Rolle", choices=_role_choices(), value=None, elem_id="admin-user-role")
                btn_role = gr.Button("Rolle setzen", elem_id="admin-set-user-role")
                btn_passwd = gr.Button("Neues Passwort erzeugen", elem_id="admin-user-passwd",
                                       interactive=no_passwords is None)
            with gr.Row():
                confirm_remove_user = gr.Checkbox(label="Löschen bestätigen", value=False,
                                                  elem_id="admin-confirm-remove-user")
                btn_remove_user = gr.Button("Benutzer löschen", variant="stop", elem_id="admin-remove-user")
            group_msg = gr.Textbox(label="Meldung", interactive=False, lines=2, buttons=["copy"],
                                   elem_id="admin-group-msg")
            with gr.Accordion("Gruppen (Ämter)", open=True, elem_id="admin-groups-box"):
                gr.Markdown("Gruppen aus der Einstellung `access.groups` lassen sich nur dort entfernen. Eine hier "
                            "angelegte Gruppe lässt sich entfernen, sobald kein Benutzer und keine Sammlung sie mehr "
                            "hat. Namen: Kleinbuchstaben, Ziffern, . _ - (z. B. „ordnungsamt“)."
                            + (" Mit `access.group_map` erhalten Benutzer nur Gruppen aus `access.groups`."
                               if group_map else ""))
                groups_table = gr.Dataframe(headers=GROUP_HEADERS, interactive=False, wrap=True, max_height=300,
                                            elem_id="admin-groups-table", label="Gruppen")
                with gr.Row():
                    new_group = gr.Textbox(label="Neue Gruppe", placeholder="z. B. ordnungsamt",
                                           elem_id="admin-new-group")
                    btn_add_group = gr.Button("Gruppe anlegen", elem_id="admin-add-group")
                with gr.Row():
                    # custom values: the handler checks the name (and the role first, also for a call without
                    # this page's choices)
                    remove_group_name = gr.Dropdown(label="Im Portal angelegte Gruppe", choices=[],
                                                    allow_custom_value=True, elem_id="admin-remove-group-name")
                    btn_remove_group = gr.Button("Gruppe entfernen", variant="stop", elem_id="admin-remove-group")
                groups_msg = gr.Textbox(label="Meldung zu den Gruppen", interactive=False, lines=2, elem_id="admin-groups-msg")

        # -- health -------------------------------------------------------------------------
        with gr.Tab("Index-Zustand", id="admin-health") as tab_health:
            with gr.Row():
                btn_check = gr.Button("Prüfen")
                btn_repair = gr.Button("Reparieren", variant="stop")
            health_md = gr.Markdown()
            health_colls = gr.Dataframe(headers=COLL_HEADERS, interactive=False, label="Sammlungen")
            health_disk = gr.Dataframe(headers=["Bereich", "Größe"], interactive=False, label="Speicherplatz")

        # -- audit ----------------------------------------------------------------------------
        with gr.Tab("Protokoll", id="admin-audit") as tab_audit:
            with gr.Row():
                au_action = gr.Dropdown(label="Aktion", choices=[ALL_LABEL], value=ALL_LABEL, allow_custom_value=True,
                                        elem_id="admin-audit-action")
                au_actor = gr.Textbox(label="Benutzer")
                # gradio's date field says "YYYY-MM-DD" whatever the language: AUDIT_DATE_JS
                au_since = gr.DateTime(label="von", include_time=False, type="timestamp", elem_id="admin-audit-since")
                au_until = gr.DateTime(label="bis", include_time=False, type="timestamp", elem_id="admin-audit-until")
                au_text = gr.Textbox(label="Text")
            with gr.Row():
                btn_audit = gr.Button("Anzeigen")
                btn_export = gr.Button("Als CSV exportieren")
            au_note = gr.Markdown(elem_id="admin-audit-note")
            # fixed shares: a long name or target pushed the details out of the window, to be scrolled to
            au_table = gr.Dataframe(headers=AUDIT_HEADERS, interactive=False, wrap=True, max_height=500,
                                    buttons=["fullscreen"],  # copies as CSV through "Als CSV exportieren" (guarded)
                                    column_widths=["13%", "14%", "20%", "18%", "35%"], elem_id="admin-audit-table")
            au_file = gr.File(label="Export", interactive=False, elem_id="kp-audit-export-file")

        # -- dashboard -----------------------------------------------------------------------
        with gr.Tab("Nutzung", id="admin-usage") as tab_usage:
            with gr.Row():
                dash_days = gr.Slider(7, 365, value=30, step=1, label="Zeitraum (Tage)")
                btn_dash = gr.Button("Aktualisieren", scale=0)
            dash_md = gr.Markdown()
            with gr.Row():
                plot_q = gr.Plot(label="Fragen pro Tag", elem_id="admin-plot-questions")
                plot_lat = gr.Plot(label="Antwortzeit")
            with gr.Row():
                plot_fb = gr.Plot(label="Bewertungen")
                plot_docs = gr.Plot(label="Meistzitierte Dokumente")
            # people's words in these two tables: no "copy table" (its CSV kept "=HYPERLINK(…)" as a
            # formula for a spreadsheet, an attacker's probe); the audit log's export guards its cells
            dash_refused = gr.Dataframe(headers=["Zeit", "Abgelehnte Frage"], interactive=False, wrap=True,
                                        buttons=["fullscreen"])
            gr.Markdown("#### Bewertete Antworten\nDie nicht hilfreichen zuerst: Frage, Antwort, Kommentar und "
                        "Quellen zeigen, was zu verbessern ist (ohne Namen).")
            dash_feedback = gr.Dataframe(headers=FEEDBACK_HEADERS, interactive=False, wrap=True, max_height=500,
                                         elem_id="admin-feedback-table", buttons=["fullscreen"])

    # -- events --------------------------------------------------------------------------------
    coll_dropdowns = [doc_coll, up_coll, move_target, ri_coll, sync_coll, manage_coll]
    doc_filters = [doc_search, doc_coll, doc_status]
    quiet = {"show_progress": "hidden"}

    root = gr.context.Context.root_block
    if root is not None:  # fill tables on page load (quietly empty for non-admins)
        root.load(h.documents_on_load, outputs=doc_table, api_name="admin_documents_on_load", **quiet)
        root.load(h.collection_dropdowns, outputs=coll_dropdowns, api_name="admin_collection_choices", **quiet)

    tab_docs.select(h.documents, doc_filters, doc_table, api_name=False, **quiet)
    doc_refresh.click(h.documents, doc_filters, doc_table, api_name="admin_documents")
    root.load(h.ocr_review_on_load, outputs=ocr_table, api_name="admin_ocr_review_on_load", **quiet)
    doc_refresh.click(h.ocr_review, None, ocr_table, api_name="admin_ocr_review")
    doc_search.submit(h.documents, doc_filters, doc_table, api_name=False)
    doc_coll.change(h.documents, doc_filters, doc_table, api_name=False, **quiet)
    doc_status.change(h.documents, doc_filters, doc_table, api_name=False, **quiet)
    doc_table.select(h.select_document, None, [doc_id, doc_info], api_name=False)
    doc_id.submit(h.document_details, doc_id, doc_info, api_name="admin_document_details")
    btn_reindex_doc.click(h.reindex_document, doc_id, doc_msg, api_name="admin_reindex_document")
    btn_move.click(h.move_document, [doc_id, move_target], [doc_msg, doc_table], api_name="admin_move_document")
    btn_delete.click(h.delete_document, [doc_id, confirm_delete], [doc_msg, doc_table, confirm_delete],
                     api_name="admin_delete_document")
    btn_replace.click(h.replace_document, [doc_id, replace_file], [doc_msg, doc_table, replace_file],
                      api_name="admin_replace_document", concurrency_limit=None)

    btn_upload.click(h.upload, [up_files, up_coll], [up_msg, doc_table, up_files], api_name="admin_upload",
                     concurrency_limit=None)

    btn_reindex.click(h.reindex, [ri_scope, ri_coll, ri_doc], job_msg, api_name="admin_reindex").then(
        h.jobs_table, None, job_table, api_name=False, **quiet)
    btn_sync.click(h.sync, [sync_folder, sync_coll], job_msg, api_name="admin_sync").then(
        h.jobs_table, None, job_table, api_name=False, **quiet)
    job_timer.tick(h.jobs_table, None, job_table, api_name=False, **quiet)
    tab_jobs.select(lambda: gr.Timer(active=True), None, job_timer, api_name=False, **quiet).then(
        h.jobs_table, None, job_table, api_name=False, **quiet)
    for other in (tab_docs, tab_colls, tab_groups, tab_health, tab_audit, tab_usage):
        other.select(lambda: gr.Timer(active=False), None, job_timer, api_name=False, **quiet)

    tab_colls.select(h.collections_table, None, coll_table, api_name=False, **quiet)
    manage_coll.change(h.show_readers, manage_coll, [readers_md, readers_to], api_name=False, **quiet)
    for readers_box in (new_readers, readers_to):  # "alle" or groups, never both
        readers_box.select(_exclusive_readers, readers_box, readers_box, api_name=False, **quiet)
    btn_readers.click(h.set_readers, [manage_coll, readers_to], [coll_msg, coll_table],
                      api_name="admin_set_readers").then(h.show_readers, manage_coll, [readers_md, readers_to],
                                                         api_name=False, **quiet)
    tab_groups.select(h.user_choices, None, group_user, api_name=False, **quiet)
    group_user.change(h.user_groups, group_user, group_set, api_name=False, **quiet)
    btn_groups.click(h.set_user_groups, [group_user, group_set], group_msg, api_name="admin_set_user_groups").then(
        h.users_on_load, None, users_table, api_name=False, **quiet).then(
        h.groups_table_on_load, None, groups_table, api_name=False, **quiet)
    # users: the table on page load and tab select (quietly empty for non-admins); a one-time password is
    # only in the message of the click that made it, and the messages are emptied when the tab is opened
    if root is not None:
        root.load(h.users_on_load, outputs=users_table, api_name="admin_users_on_load", **quiet)
    tab_groups.select(h.users_on_load, None, users_table, api_name=False, **quiet)
    tab_groups.select(lambda: ("", ""), None, [add_user_msg, group_msg], api_name=False, **quiet)
    users_refresh.click(h.users_table, None, users_table, api_name="admin_users")
    # groups: every form that offers groups gets fresh choices on page load (in a cluster another replica
    # may have created one) and after a group is created or removed here; opening the tab refreshes the
    # table only (a form whose choices are being replaced is locked for the moment, and a tick in it then
    # would wait)
    group_outputs = [groups_table, remove_group_name, new_user_groups, group_set, new_readers, readers_to]
    if root is not None:
        root.load(h.groups_on_load, outputs=group_outputs, api_name="admin_group_choices", **quiet)
    tab_groups.select(h.groups_table_on_load, None, groups_table, api_name=False, **quiet)
    btn_add_group.click(h.create_group, new_group, [groups_msg, *group_outputs, new_group],
                        api_name="admin_create_group")
    new_group.submit(h.create_group, new_group, [groups_msg, *group_outputs, new_group], api_name=False)
    btn_remove_group.click(h.remove_group, remove_group_name, [groups_msg, *group_outputs],
                           api_name="admin_remove_group")
    users_refresh.click(h.groups_table, None, groups_table, api_name="admin_groups")
    users_table.select(h.select_user, None, group_user, api_name=False, **quiet)
    group_user.change(h.user_role, group_user, role_to, api_name=False, **quiet)
    btn_add_user.click(h.add_user, [new_user, new_user_role, new_user_groups],
                       [add_user_msg, users_table, group_user, new_user], api_name="admin_add_user").then(
        h.groups_table_on_load, None, groups_table, api_name=False, **quiet)
    btn_role.click(h.set_user_role, [group_user, role_to], [group_msg, users_table], api_name="admin_set_user_role")
    btn_passwd.click(h.reset_user_password, group_user, group_msg, api_name="admin_reset_user_password")
    btn_remove_user.click(h.remove_user, [group_user, confirm_remove_user],
                          [group_msg, users_table, group_user, confirm_remove_user], api_name="admin_remove_user").then(
        h.groups_table_on_load, None, groups_table, api_name=False, **quiet)
    for btn, fn, inputs, name in (
        (btn_create, h.create_collection, [new_name, new_cls, new_readers], "admin_create_collection"),
        (btn_rename, h.rename_collection, [manage_coll, rename_to], "admin_rename_collection"),
        (btn_classify, h.classify_collection, [manage_coll, cls_to], "admin_classify_collection"),
        (btn_del_coll, h.delete_collection, [manage_coll], "admin_delete_collection"),
    ):
        btn.click(fn, inputs, [coll_msg, coll_table], api_name=name).then(
            h.collection_dropdowns, None, coll_dropdowns, api_name=False, **quiet)

    tab_health.select(h.health, None, [health_md, health_colls, health_disk], api_name=False)
    btn_check.click(h.health, None, [health_md, health_colls, health_disk], api_name="admin_health")
    btn_repair.click(h.repair, None, [health_md, health_colls, health_disk], api_name="admin_repair")

    audit_inputs = [au_action, au_actor, au_since, au_until, au_text]
    tab_audit.select(h.audit_table, audit_inputs, [au_table, au_note, au_action], api_name=False, **quiet)
    btn_audit.click(h.audit_table, audit_inputs, [au_table, au_note, au_action], api_name="admin_audit")
    btn_export.click(h.audit_export, audit_inputs, au_file, api_name="admin_audit_export").success(
        None, js=download_now_js("kp-audit-export-file"))
    if root is not None:
        root.load(None, js=AUDIT_DATE_JS)

    dash_outputs = [plot_q, plot_lat, plot_fb, plot_docs, dash_md, dash_refused, dash_feedback]
    tab_usage.select(h.dashboard, dash_days, dash_outputs, api_name=False)
    btn_dash.click(h.dashboard, dash_days, dash_outputs, api_name="admin_dashboard")
