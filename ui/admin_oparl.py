"""Verwaltung › Ratsinformation: OParl sources (add URL, collection, interval; sync now; remove).

A separate module so the admin tab gains one line. Like every admin handler, each one
checks the admin role on the server first (Gradio exposes it as an HTTP endpoint), the
work is :class:`assistant.oparl_admin.OParlAdmin`, and a sync is a background job shown
in the "Aufträge" tab. Values from the server (URLs, messages) are shown in a Dataframe
as text, never as Markdown or HTML.
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from assistant.admin import AdminError, fmt_time
from assistant.oparl_admin import run_status_de
from ui.context import PortalContext
from ui.security import resolve_user

HEADERS = ["Adresse", "Sammlung", "Intervall", "Letzter Lauf", "Ergebnis", "Meldung", "ID"]
class OParlUI:
    def __init__(self, ctx: PortalContext) -> None:
        self.ctx = ctx

    @property
    def oparl(self):
        return self.ctx.app.start_jobs().oparl

    def _user(self, request: gr.Request | None) -> str:
        return self.ctx.require(request, "admin").name

    def _table(self) -> pd.DataFrame:
        rows = [[s["url"], s["collection"], f"alle {s['interval_hours']:g} h" if s["interval_hours"] else "von Hand",
                 fmt_time(s["last_run_at"]), run_status_de(s["last_status"]), s["last_message"],
                 s["id"]] for s in self.oparl.sources()]
        return pd.DataFrame(rows, columns=HEADERS)

    def sources_table(self, request: gr.Request = None) -> pd.DataFrame:
        """Runs on tab select: quiet (empty) for non-admins."""
        user = resolve_user(request, self.ctx.app.settings, self.ctx.users)
        if user is None or not user.has("admin"):
            return pd.DataFrame([], columns=HEADERS)
        return self._table()

    def add_source(self, url: str, collection: str, interval_hours: float | None, request: gr.Request = None):
        user = self._user(request)
        try:
            src = self.oparl.add_source(url, collection, interval_hours or 0, user)
        except AdminError as exc:
            return str(exc), gr.skip()
        return f"OParl-Quelle eingetragen (Sammlung „{src['collection']}“). „Jetzt abgleichen“ startet den ersten Import.", \
            self._table()

    def select_source(self, evt: gr.SelectData, request: gr.Request = None) -> str:
        self._user(request)
        row = evt.row_value or []
        return str(row[HEADERS.index("ID")]) if len(row) > HEADERS.index("ID") else ""

    def sync_now(self, source_id: str, request: gr.Request = None):
        user = self._user(request)
        try:
            job = self.oparl.submit_sync((source_id or "").strip(), user)
        except AdminError as exc:
            return str(exc), gr.skip()
        return f"Abgleich gestartet (Auftrag {job[:8]}); der Fortschritt steht unter „Aufträge“.", self._table()

    def remove_source(self, source_id: str, confirm: bool, request: gr.Request = None):
        user = self._user(request)
        if not confirm:
            return "Bitte „Entfernen bestätigen“ ankreuzen.", gr.skip()
        try:
            self.oparl.remove_source((source_id or "").strip(), user)
        except AdminError as exc:
            return str(exc), gr.skip()
        return "Quelle entfernt. Bereits importierte Dokumente bleiben in ihrer Sammlung.", self._table()


def build_tab(ctx: PortalContext) -> gr.Tab:
    """The "Ratsinformation" tab, created inside the admin area's ``gr.Tabs``."""
    h = OParlUI(ctx)
    with gr.Tab("Ratsinformation", id="admin-oparl") as tab:
        gr.Markdown("Drucksachen und Sitzungsunterlagen aus dem Ratsinformationssystem (OParl 1.1) importieren. "
                    "Adresse: das OParl-System oder eine Körperschaft. Spätere Abgleiche laden nur Geändertes; "
                    "gelöschte Vorgänge verschwinden aus dem Portal. Die Einstufung der Sammlung "
                    "(z. B. „öffentlich“) wird unter „Sammlungen“ gesetzt.")
        table = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, elem_id="admin-oparl-table",
                             label="OParl-Quellen")
        with gr.Row():
            url = gr.Textbox(label="OParl-Adresse", placeholder="https://ris.beispielstadt.de/oparl/v1", scale=3,
                             elem_id="admin-oparl-url")
            coll = gr.Textbox(label="Sammlung", value="ratsinformation", scale=1, elem_id="admin-oparl-collection")
            interval = gr.Number(label="Intervall in Stunden (0 = nur von Hand)", value=24, minimum=0,
                                 maximum=24 * 31, scale=1, elem_id="admin-oparl-interval")
        btn_add = gr.Button("Quelle hinzufügen", elem_id="admin-oparl-add")
        with gr.Row():
            source_id = gr.Textbox(label="Ausgewählte Quelle (ID)", scale=2, elem_id="admin-oparl-id")
            btn_sync = gr.Button("Jetzt abgleichen", variant="primary", elem_id="admin-oparl-sync")
            confirm = gr.Checkbox(label="Entfernen bestätigen", value=False)
            btn_remove = gr.Button("Entfernen", variant="stop", size="sm")
        msg = gr.Textbox(label="Meldung", interactive=False, elem_id="admin-oparl-msg")

    quiet = {"show_progress": "hidden"}
    tab.select(h.sources_table, None, table, api_name=False, **quiet)
    table.select(h.select_source, None, source_id, api_name=False)
    btn_add.click(h.add_source, [url, coll, interval], [msg, table], api_name="admin_oparl_add")
    btn_sync.click(h.sync_now, source_id, [msg, table], api_name="admin_oparl_sync")
    btn_remove.click(h.remove_source, [source_id, confirm], [msg, table], api_name="admin_oparl_remove")
    return tab
