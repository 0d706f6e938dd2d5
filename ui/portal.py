"""The web portal: the gradio interface plus the document routes on one server.

Why it is assembled by hand (FastAPI app + ``gr.mount_gradio_app`` + uvicorn) instead of
``demo.launch()``: the cited documents are served by routes next to the interface, under
the same login, and the server must bind exactly where the settings say, without share
links, telemetry, run history in the browser or anything fetched from the internet.

Security lives in :mod:`ui.handlers` and :mod:`ui.docview` (every handler checks the
user); hiding the admin and trainer tabs here is only for a clean interface.
"""
from __future__ import annotations

import contextlib
import gzip
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

from assistant.wiring import quiet_libraries

quiet_libraries()  # before gradio is imported anywhere below

import gradio as gr  # noqa: E402

from ui import account_tab, admin_tab, chat_tab, presentation, tools_tab, trainer_tab  # noqa: E402
from ui.chat_tab import shown_as_error  # noqa: E402
from ui.source_view import CSS as SOURCE_CSS  # noqa: E402
from ui.context import PortalContext  # noqa: E402
from ui.docview import register_routes  # noqa: E402
from ui.handlers import ChatHandlers  # noqa: E402
from ui.login import LoginThrottle, make_auth  # noqa: E402,F401  (LoginThrottle: part of this module's API)
from ui.security import PermissionDenied, is_loopback  # noqa: E402
from ui.errors import mask_all  # noqa: E402
from ui.header_auth import check_header_settings  # noqa: E402
from assistant.cluster import check_cluster_settings  # noqa: E402
from ui.http_guard import install_guard, prepare_server  # noqa: E402
from ui.texts import t  # noqa: E402

log = logging.getLogger(__name__)

# Tabs built by other modules: (module, label key, tab id, least role that sees the tab)
EXTRA_TABS = (
    (presentation, "tab_training", "training", "staff"),
    (admin_tab, "tab_admin", "admin", "admin"),
    (trainer_tab, "tab_trainer", "trainer", "trainer"),
    (tools_tab, "tab_tools", "tools", "staff"),
    (account_tab, "tab_account", "account", "staff"),
)

FONT_STACK = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO_STACK = ["ui-monospace", "SFMono-Regular", "Consolas", "Liberation Mono", "monospace"]

CSS = """
#kp-header { align-items: center; }
#kp-header h2 { margin: 0; color: #0b3d5c; font-size: 1.45rem; }
#kp-header h2 + p { margin: .1rem 0 0 0; font-size: .92rem; }
#kp-disclaimer { background: #fff4d6; border-left: 5px solid #9a6700; padding: .35rem .9rem; border-radius: 4px; }
#kp-disclaimer p { margin: 0; color: #3d2b00; font-weight: 600; }
#kp-user { text-align: right; }
#kp-logout { max-width: 9rem; margin-left: auto; }
#kp-history { max-height: 340px; overflow-y: auto; }
#kp-model-detail p { font-size: .9em; margin: .2rem 0 0 0; }
#kp-warning { border: 2px solid #9a6700; background: #fff8e6; padding: .6rem; }
.kp-sources { margin-top: .6rem; padding-top: .4rem; border-top: 1px solid #c8ccd2; font-size: .93em; }
.kp-sources-title { margin: 0 0 .2rem 0; }
.kp-sources-list { margin: 0; padding-left: 0; list-style: none; }
.kp-sources-list li { margin-bottom: .45rem; }
.kp-src-link { font-weight: 600; color: #0b4f8a !important; text-decoration: underline; }
.kp-src-text { font-size: .88em; color: #0b4f8a !important; text-decoration: underline; white-space: nowrap; margin-left: .3em; }
.kp-notice { color: #5c3d00; margin: .3rem 0; }
.kp-tool-notice { background: #fff4d6; border-left: 5px solid #9a6700; padding: .35rem .9rem; border-radius: 4px; }
.kp-warning { font-weight: 600; border-left: 3px solid #b35c00; padding-left: .4rem; }
/* tables in the text font (gradio sets them in monospace, whose wide letters broke headers such as
   "Abschnitte" mid-word in the admin's narrow columns); the rows too, which gradio draws outside the
   <table> (it sizes the columns on a hidden copy of them in the table, so in the text font, and
   monospace rows then wrapped in the columns sized for them) */
table th, table td, table th *, table td *, .virtual-row, .virtual-row * { font-family: var(--font) !important; }
table th .header { font-size: .92em; }
/* gradio's "Nach unten" button sat in the middle of the chat's bottom edge, over the sources' text */
#kp-chat .scroll-down-button-container { left: auto; right: 14px; transform: none; }
/* a laptop's 768 px (about 650 px of page): the header's tagline gives its room to the chat, which
   grows by the same (--kp-chat-offset: what stands above and below the chat box) */
#kp-chat { --kp-chat-offset: 440px; }
@media (max-height: 820px) {
  #kp-chat { --kp-chat-offset: 385px; }
  #kp-header h2 + p { display: none; }
}
/* a phone: the chat and its input first (both in the first screen), the chat list and settings below
   them; the question gets the whole width with "Senden" under it (beside it, the box was squeezed to a
   third of the screen) */
@media (max-width: 720px) {
  #kp-chat { --kp-chat-offset: 400px; }
  #kp-chat-main { order: -1; }
  #kp-ask-row { flex-wrap: wrap; }
  #kp-ask-row > * { flex: 1 1 100% !important; min-width: 100% !important; }
  /* the header took a third of a 390 x 844 screen (title, user line, "Abmelden" and the disclaimer
     one under the other, with gradio's gaps): the title on one line, the user line with "Abmelden"
     beside it, the disclaimer in two lines, smaller gaps (a browser review). Rules in a media query
     reach only what is inside gradio's .contain (it prefixes them so), not the page's margins. */
  .column:has(> #kp-header) { gap: 8px; }
  #kp-header { gap: 2px 8px; }
  #kp-header h2 { font-size: 1.08rem; line-height: 1.3; }
  #kp-header h2 + p { display: none; }
  #kp-user-col { flex-flow: row nowrap !important; align-items: center; gap: 8px; }
  #kp-user { text-align: left; flex: 1 1 0 !important; width: auto !important; min-width: 0; }
  #kp-user p { font-size: .82rem; line-height: 1.3; margin: 0; }
  #kp-logout { flex: 0 0 auto; width: auto !important; min-width: 0 !important; margin: 0 0 0 auto; padding: 4px 12px; }
  #kp-disclaimer { padding: .2rem .6rem; border-left-width: 4px; }
  #kp-disclaimer p { font-size: .8rem; line-height: 1.35; }
  /* the four tabs of staff in one row (with gradio's 16 px each side, "Mein Konto" took a second one) */
  .tab-container > button[role=tab] { padding: 0 8px; }
  .tab-wrapper { margin-bottom: 8px; }
  /* a table wider than the phone (the groups of Verwaltung › Benutzer: four columns in 300 px): gradio
     breaks a header anywhere, so a column shrank to a few letters a line ("Sammlungen (Leserecht)" in
     ten lines); a header now breaks only between words, each column is at least its longest word wide,
     and the table scrolls sideways in its own box (a visual review) */
  th .header.wrap { overflow-wrap: normal; word-break: normal; }
}
#kp-chat button.kp-copied { color: #1a7f37 !important; }
a:focus-visible, button:focus-visible, input:focus-visible, textarea:focus-visible {
  outline: 3px solid #0b57d0 !important; outline-offset: 2px; }
""" + SOURCE_CSS

# Runs once in the browser: the page's language for screen readers and hyphenation (gradio's
# template says "en"), German for the two status texts gradio's status tracker writes in
# English without translation ("queue: 2/5 |", "processing |"), and for its icon buttons' labels.
JS = r"""() => {
  document.documentElement.lang = 'de';
  const german = (text) => text
    .replace(/^queue: (\d+)\/(\d*) \|$/, (_m, pos, size) =>
      size ? `Warteschlange: Platz ${pos} von ${size} |` : `Warteschlange: Platz ${pos} |`)
    .replace(/^processing \|$/, 'wird bearbeitet |');
  // gradio titles its message boxes by their kind in English, whatever title the server sends
  const titles = { Error: 'Fehler', Warning: 'Hinweis', Info: 'Information', Success: 'Erledigt' };
  const fix = (node) => {
    let text = german(node.nodeValue);
    if (node.parentElement?.classList.contains('toast-title')) {
      text = text.replace(/^(\s*)(Error|Warning|Info|Success)\b/, (_m, space, kind) => space + titles[kind]);
    }
    if (text !== node.nodeValue) node.nodeValue = text;
  };
  const fixTree = (root) => {
    if (root.nodeType === Node.TEXT_NODE) return fix(root);
    if (!root.querySelectorAll || !/queue: |processing \||Error|Warning|Info|Success/.test(root.textContent || '')) return;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) fix(walker.currentNode);
  };
  // gradio's icon buttons carry English labels (tooltips, screen readers) that its translations miss:
  // most are written into its components in English ("Fullscreen", "Copy", "Scroll down"), not
  // translated at all; the others are here for a gradio whose keys differ from GRADIO_DE's
  const labels = {
    'Copy message': 'Nachricht kopieren', 'Copied message': 'Nachricht kopiert',
    'Copy conversation': 'Unterhaltung kopieren', 'Copied conversation': 'Unterhaltung kopiert',
    'Scroll down': 'Nach unten', 'More tabs': 'Weitere Reiter', 'Close': 'Schließen', 'Clear': 'Leeren',
    'Like': 'Hilfreich', 'Dislike': 'Nicht hilfreich', 'Feedback': 'Rückmeldung', 'Download': 'Herunterladen',
    'View full screen': 'Vollbild', 'Exit full screen': 'Vollbild beenden', 'Upload file': 'Datei hochladen',
    'Upload a file': 'Datei hochladen', 'Submit': 'Senden', 'Stop': 'Stopp',
    'Fullscreen': 'Vollbild', 'Exit fullscreen mode': 'Vollbild beenden', 'Copy': 'Kopieren', 'Copied': 'Kopiert',
    'Copy table data': 'Tabelle kopieren', 'Copied to clipboard': 'Kopiert', 'Share': 'Teilen',
    'chatbot conversation': 'Chatverlauf', 'Table actions': 'Tabellenaktionen', 'Empty value': 'Leerer Wert',
    'Click to upload or drop files': 'Zum Hochladen klicken oder Dateien hierher ziehen',
    'Reset to default value': 'Auf Standardwert zurücksetzen', 'Dataframe': 'Tabelle',
  };
  const patterns = [[/^number input for (.+)$/, 'Zahl für $1'], [/^range slider for (.+)$/, 'Schieberegler für $1']];
  const fixLabels = (el) => {
    for (const name of ['aria-label', 'title']) {
      const value = el.getAttribute && el.getAttribute(name);
      if (!value) continue;
      let german = labels[value];
      for (const [re, to] of german ? [] : patterns) if (re.test(value)) german = value.replace(re, to);
      if (german) el.setAttribute(name, german);
    }
  };
  const labelTree = (root) => {
    if (!root.querySelectorAll) return;
    fixLabels(root);
    root.querySelectorAll('[aria-label], [title]').forEach(fixLabels);
  };
  labelTree(document.body);
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'characterData') fix(r.target);
      else if (r.type === 'attributes') fixLabels(r.target);
      r.addedNodes.forEach((n) => { fixTree(n); labelTree(n); });
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true,
                              attributeFilter: ['aria-label', 'title'] });
  // gradio's copy buttons copy a message's source: Markdown escapes ("info\@stadt.de") and the
  // sources list's HTML. Staff paste answers into letters and e-mails, so the chat's buttons copy
  // what the page shows (a closed "Längerer Auszug" stays out). Captured before gradio's handler.
  // the rendered text without the sources' "Längerer Auszug" excerpts (open or closed) and the links to
  // the marked text view: laid out off screen, since innerText needs a rendered node
  const shown = (row) => {
    const content = row?.querySelector('.message-content');
    if (!content) return '';
    const copy = content.cloneNode(true);
    copy.querySelectorAll('details, .kp-src-text').forEach((d) => d.remove());
    const box = document.createElement('div');
    box.style.cssText = 'position:fixed;left:-99999px;top:0;white-space:normal';
    box.appendChild(copy);
    document.body.appendChild(box);
    try { return copy.innerText.replace(/\n{3,}/g, '\n\n').trim(); } finally { box.remove(); }
  };
  const write = async (text) => {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const area = document.createElement('textarea');  // plain http on an intranet address
    area.value = text;
    area.style.position = 'fixed';
    area.style.left = '-9999px';
    document.body.appendChild(area);
    const focused = document.activeElement;
    area.select();
    let copied = false;
    try { copied = document.execCommand('copy'); } finally { area.remove(); focused?.focus?.(); }
    if (!copied) throw new Error('copy refused');  // no "kopiert" for a copy that did not happen
  };
  const copyLabels = { 'Nachricht kopieren': 'Nachricht kopiert', 'Copy message': 'Nachricht kopiert',
                       'Unterhaltung kopieren': 'Unterhaltung kopiert', 'Copy conversation': 'Unterhaltung kopiert' };
  document.addEventListener('click', (ev) => {
    const button = ev.target.closest && ev.target.closest('#kp-chat button');
    // the label as gradio set it: ours says "kopiert" for two seconds after a click
    const label = button && (button.dataset.kpLabel || button.getAttribute('aria-label') || '');
    if (!button || !copyLabels[label]) return;
    let text;
    if (/Unterhaltung|conversation/.test(label)) {
      text = [...document.querySelectorAll('#kp-chat .message-row')]
        .map((row) => `${row.classList.contains('user-row') ? 'Frage' : 'Antwort'}: ${shown(row)}`)
        .join('\n\n');
    } else {
      const row = button.closest('.message-buttons')?.previousElementSibling;
      if (!row || !row.classList.contains('message-row')) return;  // gradio changed: leave it its copy
      text = shown(row);
    }
    ev.stopImmediatePropagation();
    ev.preventDefault();
    write(text).then(() => {
      button.dataset.kpLabel = label;
      button.setAttribute('aria-label', copyLabels[label]);
      button.setAttribute('title', copyLabels[label]);
      button.classList.add('kp-copied');
      clearTimeout(button.kpCopiedTimer);
      button.kpCopiedTimer = setTimeout(() => {
        button.setAttribute('aria-label', label);
        button.setAttribute('title', label);
        button.classList.remove('kp-copied');
        delete button.dataset.kpLabel;
      }, 2000);
    }).catch(() => {});
  }, true);
  // gradio names each message by its source in English ("bot's message: … <div class=…"): without
  // that name a screen reader reads the rendered message itself
  new MutationObserver(() => document.querySelectorAll('#kp-chat [data-testid][aria-label]')
    .forEach((el) => { if (/^(bot|user)'s message:/.test(el.getAttribute('aria-label'))) el.removeAttribute('aria-label'); }))
    .observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-label'] });
  // A new question scrolls the chat to that question, and then the chat stays put while the answer
  // is written beneath it: gradio's autoscroll followed the end of the bubble, which is the sources
  // list, and pushed the answer itself out of the window.
  let rows = 0;
  new MutationObserver(() => {
    const wrap = document.querySelector('#kp-chat .bubble-wrap');
    if (!wrap) return;
    const all = wrap.querySelectorAll('.message-row');
    if (all.length === rows) return;
    const grew = all.length > rows;
    rows = all.length;
    const asked = [...all].filter((r) => r.classList.contains('user-row')).pop();
    if (!grew || !asked) return;
    const top = asked.getBoundingClientRect().top - wrap.getBoundingClientRect().top + wrap.scrollTop;
    wrap.scrollTo({ top: Math.max(0, top - 8) });
  }).observe(document.body, { subtree: true, childList: true });
}"""


# gradio's own controls ("Löschen", "Herunterladen", "Teilen", "Gefällt mir" …) speak the language of the
# browser: gradio 6 reads navigator.language once, before any of the portal's code runs, and has no
# setting for it (neither Blocks nor launch/mount: gr.I18n adds texts, the browser still picks the
# language). A staff browser set to English showed them in English. So the page pins the browser's
# language to German for gradio, in a script that runs before gradio's (an inline script in the head
# runs before the page's module scripts; ui.http_guard's CSP allows inline scripts, as gradio's page
# needs them).
LOCALE_SCRIPT = (b"<script>(() => { const pin = (name, value) => { try { Object.defineProperty(navigator, name, "
                 b"{ get: () => value, configurable: true }); } catch (e) {} }; pin('language', 'de-DE'); "
                 b"pin('languages', ['de-DE', 'de']); })();</script>")

# what gradio's German translation lacks, by gradio's keys (flat keys: they win over gradio's own texts)
GRADIO_DE = {
    "chatbot.copy_message": "Nachricht kopieren",
    "chatbot.copied_message": "Nachricht kopiert",
    "chatbot.complete": "Fertig",
    "common.download_all": "Alle herunterladen",
    "common.progress": "Fortschritt",
    "common.record": "Aufnehmen",
    "common.stop_recording": "Aufnahme beenden",
    "common.run": "Ausführen",
    "dataframe.filter": "Filtern",
    "dataframe.clear_filter": "Filter aufheben",
    "status.queue_position": "Warteschlange: Platz {position} von {size}",
}


def _is_page(scope) -> bool:
    """gradio's page: GET of the mount's root, with or without a proxy's root path."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path in ("", "/") or (bool(root) and path.rstrip("/") == root.rstrip("/"))


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header admits gzip ("gzip", "*", not "gzip;q=0")."""
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and q[2:].strip() in ("0", "0.", "0.0", "0.00", "0.000"))
    return False


class GermanPage:
    """ASGI wrapper that puts :data:`LOCALE_SCRIPT` into gradio's page, before its first script."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if not _is_page(scope):
            return await self.app(scope, receive, send)
        # the page uncompressed from gradio (it compresses with brotli when the browser offers it), and
        # gzipped here after the script went in (uncompressed it is about 675 KB, a probe)
        offered = b",".join(v for k, v in scope.get("headers", []) if k.lower() == b"accept-encoding")
        gzip_ok = accepts_gzip(offered.decode("latin-1"))
        scope = dict(scope, headers=[(k, v) for k, v in scope.get("headers", []) if k.lower() != b"accept-encoding"])
        start: dict = {}
        parts: list[bytes] = []

        async def rewrite(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body" or not start:
                return await send(message)
            parts.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(parts)
            headers = [(k, v) for k, v in start.get("headers", [])]
            html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
            at = body.find(b"<script")
            if html and at >= 0:
                body = body[:at] + LOCALE_SCRIPT + body[at:]
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                if gzip_ok and not any(k.lower() == b"content-encoding" for k, _ in headers):
                    body = gzip.compress(body, compresslevel=6, mtime=0)
                    headers += [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
                headers.append((b"content-length", str(len(body)).encode()))
            await send(dict(start, headers=headers))
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)

def theme() -> gr.themes.Theme:
    """Default theme with system fonts only: nothing is fetched from font servers.

    Darker help texts, placeholders and primary buttons than gradio's: its light grey on white
    (2.6:1, the Ampel's zone explanation among them) and white on its blue (3.7:1) fall short of
    WCAG AA's 4.5:1 for text of this size (found by a browser review)."""
    return gr.themes.Default(primary_hue="blue", secondary_hue="slate", neutral_hue="slate",
                             font=FONT_STACK, font_mono=MONO_STACK).set(
        block_info_text_color="*neutral_600",
        input_placeholder_color="*neutral_500",
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white",
    )


def build_portal(ctx: PortalContext, handlers: ChatHandlers | None = None) -> gr.Blocks:
    """The interface. Every event handler checks the user on the server."""
    h = handlers or ChatHandlers(ctx)
    password_mode = ctx.app.settings.auth.mode == "password"

    with gr.Blocks(title=t("app_title"), analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        with gr.Row(elem_id="kp-header", equal_height=True):
            with gr.Column(scale=4):
                gr.Markdown(f"{t('header')}\n{t('subheader')}")
            with gr.Column(scale=2, min_width=220, elem_id="kp-user-col"):
                user_md = gr.Markdown("", elem_id="kp-user")
                if password_mode:
                    gr.Button(t("logout"), link="logout", size="sm", variant="secondary", elem_id="kp-logout")
        gr.Markdown(t("disclaimer"), elem_id="kp-disclaimer")

        # tabs that do not fit wrap into a second row: in gradio's "•••" menu a phone hid four of six
        with gr.Tabs(overflow_behavior="wrap") as tabs:
            with gr.Tab(t("tab_chat"), id="chat"):
                chat = chat_tab.build(ctx, h)

            tab_blocks = []
            for module, label_key, tab_id, role in EXTRA_TABS:
                if module is account_tab and not password_mode:
                    continue  # with SSO (or no login) there is no password of this portal to change
                with gr.Tab(t(label_key), id=tab_id, visible=False) as tab:
                    module.build(ctx)
                tab_blocks.append((tab, role, tab_id))

        # -- events -----------------------------------------------------------------
        def on_load(request: gr.Request):
            s = h.session(request)
            if s.must_change:  # on an admin's start password: „Mein Konto“ only, opened
                tab_updates = [gr.update(visible=tab_id == "account") for _, _, tab_id in tab_blocks]
                return (s.user_label, gr.update(choices=[], value=None), gr.update(choices=[], value=[]),
                        gr.update(choices=[], value=None), "", *tab_updates, gr.Tabs(selected="account"))
            tab_updates = [gr.update(visible=s.user.has(role)) for _, role, _ in tab_blocks]
            # the detail line too: the model's change event does not fire when the value stays the same
            return (s.user_label, gr.update(choices=s.models, value=s.default_model),
                    gr.update(choices=s.collections, value=[]), gr.update(choices=s.chats, value=None),
                    h.model_description(s.default_model), *tab_updates, gr.update())

        demo.load(shown_as_error(on_load), outputs=[user_md, chat.model, chat.collections, chat.history, chat.model_detail,
                                                   *[tb for tb, _, _ in tab_blocks], tabs],
                  api_name="session", concurrency_limit=None, show_progress="hidden")
    return demo


# -- the server ----------------------------------------------------------------------------
@dataclass
class PortalServer:
    app: Any
    demo: gr.Blocks
    handlers: ChatHandlers


def check_auth_mode(settings, host: str) -> None:
    """The start-up rules: without login the portal may only listen on loopback (everyone reaching
    it would be admin); header mode names its proxies; a cluster replica has the shared secret."""
    if settings.auth.mode == "none" and not is_loopback(host):
        raise RuntimeError(
            f"Ohne Anmeldung (auth.mode = \"none\") darf das Portal nur auf 127.0.0.1 laufen, nicht auf {host}. "
            "Bitte auth.mode = \"password\" oder \"header\" einstellen. / auth.mode none is loopback only."
        )
    check_header_settings(settings.auth)
    check_cluster_settings(settings)


def shared_cookie_id(secret: bytes) -> str:
    """gradio names its login cookie ``access-token-<cookie_id>`` with an id drawn at random per
    process, so a replica would not even read the cookie another replica set. In cluster mode the
    id is derived from ``auth.secret`` instead: the same name on every replica (the session behind
    it is checked in the app database, :mod:`assistant.sessions`)."""
    import hashlib

    return hashlib.sha256(b"kiportal-cookie-id|" + secret).hexdigest()[:32]


def create_app(ctx: PortalContext, host: str | None = None, port: int | None = None) -> PortalServer:
    """The FastAPI app with the document routes and the mounted interface."""
    from fastapi import FastAPI
    from starlette.routing import Mount

    s = ctx.app.settings
    host = host or s.server.host
    port = port or s.server.port
    check_auth_mode(s, host)
    prepare_server(s)  # private data dir and gradio folder, before any component exists

    handlers = ChatHandlers(ctx)
    demo = build_portal(ctx, handlers)
    # api_open=False: gradio's /run/<name> would otherwise run a queued event directly, past the
    # queue, its concurrency limit and the per-user limit of the front door
    demo.queue(default_concurrency_limit=s.server.concurrency, max_size=s.server.queue_max_size, api_open=False)
    mask_all(demo)

    fastapi_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    holder: dict[str, Any] = {}

    def current_user(request):
        """The portal user of a plain request, by the same rules as the interface."""
        mode = s.auth.mode
        username = None
        if mode == "password":
            gapp = holder.get("gradio")
            if gapp is None:
                return None
            token = (request.cookies.get(f"access-token-{gapp.cookie_id}")
                     or request.cookies.get(f"access-token-unsecure-{gapp.cookie_id}"))
            username = gapp.tokens.get(token) if token else None
            if username is None:
                return None
        try:
            return ctx.require(gr.Request(request=request, username=username))
        except PermissionDenied:
            return None

    register_routes(fastapi_app, ctx, ctx.app.link_signer, current_user)
    auth = make_auth(ctx) if s.auth.mode == "password" else None
    gr.mount_gradio_app(
        fastapi_app, demo, path="/", server_name=host, server_port=port,
        footer_links=[], run_history=False, auth=auth, auth_message=t("login_message") if auth else None,
        show_error=False, enable_monitoring=False, pwa=False, mcp_server=False, ssr_mode=False,
        max_file_size=s.server.max_upload_mb * 1024 * 1024, theme=theme(), css=CSS, js=JS,
        i18n=gr.I18n(de=GRADIO_DE),
    )
    for route in fastapi_app.routes:
        if isinstance(route, Mount) and isinstance(route.app, gr.routes.App):
            holder["gradio"] = route.app
    if "gradio" not in holder:
        raise RuntimeError("gradio app not found after mounting")
    if s.cluster:
        holder["gradio"].cookie_id = shared_cookie_id(ctx.app.link_secret)
    fastapi_app.add_middleware(GermanPage)  # inside the guard: only a page the guard lets through
    install_guard(fastapi_app, holder["gradio"], demo, ctx)
    return PortalServer(fastapi_app, demo, handlers)


def serve(ctx: PortalContext, host: str | None = None, port: int | None = None) -> None:
    """Run the portal until interrupted (``kiportal serve``)."""
    import uvicorn

    s = ctx.app.settings
    host = host or s.server.host
    port = port or s.server.port
    server = create_app(ctx, host, port)
    log.info("KI-Portal on http://%s:%s (auth: %s)", host, port, s.auth.mode)
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    # proxy_headers off: in header mode the trusted-proxy check needs the proxy's own address
    with ctx.app.heartbeat("serve", f"{host}:{port}"):  # listed by `kiportal status` (cluster mode)
        uvicorn.run(server.app, host=host, port=port, proxy_headers=False, log_level="warning",
                    timeout_graceful_shutdown=5)


def _exit_after_shutdown(signum, frame) -> None:
    """SIGTERM (systemd's stop) ends the process normally once uvicorn has shut down.

    Why: uvicorn handles the signal itself and, after its graceful shutdown, raises it again for
    the handler that was there before; with the default one the process died of it, so neither
    the heartbeat's ``with`` (the node's entry in ``kiportal status``) nor the ``atexit`` cleanup of
    the private upload folder (:func:`ui.file_values.ensure_private_gradio_folder`) ran."""
    raise SystemExit(0)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def background_portal(ctx: PortalContext, host: str = "127.0.0.1", port: int | None = None, *,
                      start_timeout_s: float = 60.0) -> Iterator[tuple[str, PortalServer]]:
    """The portal in a background thread for as long as the block runs: ``(url, server)``.

    Used by the load test and the integration tests, so they talk to exactly what ``serve`` runs."""
    import uvicorn

    port = port or free_port(host)
    server = create_app(ctx, host, port)
    uv = uvicorn.Server(uvicorn.Config(server.app, host=host, port=port, log_level="warning",
                                       proxy_headers=False, lifespan="on", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=uv.run, name=f"kiportal-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            uv.should_exit = True
            raise RuntimeError("Portal startete nicht / portal did not start")
        time.sleep(0.05)
    try:
        with ctx.app.heartbeat("serve", f"{host}:{port}"):
            yield f"http://{host}:{port}/", server
    finally:
        uv.should_exit = True
        thread.join(timeout=15)
