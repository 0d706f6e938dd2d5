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
import functools
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from assistant.wiring import quiet_libraries

quiet_libraries()  # before gradio is imported anywhere below

import gradio as gr  # noqa: E402

from ui import admin_tab, presentation, trainer_tab  # noqa: E402
from ui.context import PortalContext  # noqa: E402
from ui.exports import write_export  # noqa: E402
from ui.docview import register_routes  # noqa: E402
from ui.handlers import ChatHandlers, ChatView, UserError  # noqa: E402
from ui.security import PermissionDenied, is_loopback  # noqa: E402
from ui.texts import t  # noqa: E402

log = logging.getLogger(__name__)

# Tabs built by other modules: (module, label key, tab id, least role that sees the tab)
EXTRA_TABS = (
    (presentation, "tab_training", "training", "staff"),
    (admin_tab, "tab_admin", "admin", "admin"),
    (trainer_tab, "tab_trainer", "trainer", "trainer"),
)

FONT_STACK = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO_STACK = ["ui-monospace", "SFMono-Regular", "Consolas", "Liberation Mono", "monospace"]

CSS = """
#kp-header { align-items: center; }
#kp-header h2 { margin: 0; color: #0b3d5c; }
#kp-disclaimer { background: #fff4d6; border-left: 5px solid #9a6700; padding: .5rem .9rem; border-radius: 4px; }
#kp-disclaimer p { margin: 0; color: #3d2b00; font-weight: 600; }
#kp-user { text-align: right; }
#kp-logout { max-width: 9rem; margin-left: auto; }
#kp-history { max-height: 340px; overflow-y: auto; }
#kp-model-detail p { font-size: .9em; margin: .2rem 0 0 0; }
#kp-warning { border: 2px solid #9a6700; background: #fff8e6; padding: .6rem; }
.kp-sources { margin-top: .6rem; padding-top: .4rem; border-top: 1px solid #c8ccd2; font-size: .93em; }
.kp-sources-title { margin: 0 0 .2rem 0; }
.kp-sources-list { margin: 0; padding-left: 1.2rem; }
.kp-sources-list li { margin-bottom: .45rem; }
.kp-src-link { font-weight: 600; color: #0b4f8a !important; text-decoration: underline; }
.kp-score { color: #4a4f57; font-size: .88em; }
.kp-snippet { color: #30343a; font-style: italic; }
.kp-notice { color: #5c3d00; margin: .3rem 0; }
.kp-warning { font-weight: 600; border-left: 3px solid #b35c00; padding-left: .4rem; }
a:focus-visible, button:focus-visible, input:focus-visible, textarea:focus-visible {
  outline: 3px solid #0b57d0 !important; outline-offset: 2px; }
"""

# Runs once in the browser: the page's language for screen readers and hyphenation (gradio's
# template says "en"), and German for the two status texts gradio's status tracker writes in
# English without translation ("queue: 2/5 |", "processing |").
JS = r"""() => {
  document.documentElement.lang = 'de';
  const german = (text) => text
    .replace(/^queue: (\d+)\/(\d*) \|$/, (_m, pos, size) =>
      size ? `Warteschlange: Platz ${pos} von ${size} |` : `Warteschlange: Platz ${pos} |`)
    .replace(/^processing \|$/, 'wird bearbeitet |');
  const fix = (node) => {
    const text = german(node.nodeValue);
    if (text !== node.nodeValue) node.nodeValue = text;
  };
  const fixTree = (root) => {
    if (root.nodeType === Node.TEXT_NODE) return fix(root);
    if (!root.querySelectorAll || !/queue: |processing \|/.test(root.textContent || '')) return;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) fix(walker.currentNode);
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'characterData') fix(r.target);
      r.addedNodes.forEach(fixTree);
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


def theme() -> gr.themes.Theme:
    """Default theme with system fonts only: nothing is fetched from font servers."""
    return gr.themes.Default(primary_hue="blue", secondary_hue="slate", neutral_hue="slate",
                             font=FONT_STACK, font_mono=MONO_STACK)


def _gr(fn: Callable) -> Callable:
    """Turn the handlers' UserError into a visible gr.Error (PermissionDenied already is one)."""

    @functools.wraps(fn)  # gradio reads the signature (gr.Request, gr.LikeData) through __wrapped__
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    return wrapper


def build_portal(ctx: PortalContext, handlers: ChatHandlers | None = None) -> gr.Blocks:
    """The interface. Every event handler checks the user on the server."""
    h = handlers or ChatHandlers(ctx)
    password_mode = ctx.app.settings.auth.mode == "password"

    with gr.Blocks(title=t("app_title"), analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        chat_id = gr.State(None)
        message_ids = gr.State([])
        pending = gr.State("")
        rated = gr.State(None)

        with gr.Row(elem_id="kp-header", equal_height=True):
            with gr.Column(scale=4):
                gr.Markdown(f"{t('header')}\n{t('subheader')}")
            with gr.Column(scale=2, min_width=220):
                user_md = gr.Markdown("", elem_id="kp-user")
                if password_mode:
                    gr.Button(t("logout"), link="logout", size="sm", variant="secondary", elem_id="kp-logout")
        gr.Markdown(t("disclaimer"), elem_id="kp-disclaimer")

        with gr.Tabs():
            with gr.Tab(t("tab_chat"), id="chat"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=270):
                        new_btn = gr.Button(t("new_chat"), variant="secondary")
                        history = gr.Radio(choices=[], value=None, label=t("history_label"), info=t("history_info"),
                                           elem_id="kp-history")
                        with gr.Row():
                            delete_btn = gr.Button(t("delete_chat"), size="sm", variant="secondary")
                            export_btn = gr.Button(t("export_chat"), size="sm", variant="secondary")
                        with gr.Row(visible=False) as delete_confirm:
                            gr.Markdown("Diesen Chat wirklich löschen?")
                            delete_yes = gr.Button("Ja, löschen", size="sm", variant="stop")
                            delete_no = gr.Button("Abbrechen", size="sm")
                        export_file = gr.File(label=t("export_file"), visible=False, interactive=False)
                        gr.Markdown(t("settings_heading"))
                        # all models until the page load narrows them to the user's role: API clients that
                        # skip /session can still name one (the handler checks the role either way)
                        model = gr.Dropdown(choices=h.all_model_choices(), value=ctx.app.settings.llm.default,
                                            label=t("model_label"), info=t("model_info"), interactive=True)
                        model_md = gr.Markdown("", elem_id="kp-model-detail")
                        collections = gr.CheckboxGroup(choices=h.collection_choices(), value=[],
                                                       label=t("collections_label"),
                                                       info=t("collections_info"))
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            value=[], label=t("chat_label"), show_label=False, height=560, elem_id="kp-chat",
                            sanitize_html=True, render_markdown=True, latex_delimiters=[],
                            feedback_options=("Like", "Dislike"), buttons=["copy", "copy_all"],
                            placeholder=t("chat_placeholder"), autoscroll=True,
                        )
                        with gr.Group(visible=False, elem_id="kp-warning") as warn_box:
                            warn_md = gr.Markdown("")
                            with gr.Row():
                                confirm_btn = gr.Button(t("confirm_send"), variant="stop")
                                edit_btn = gr.Button(t("edit_question"), variant="secondary")
                        with gr.Row(equal_height=True):
                            question = gr.Textbox(label=t("input_label"), placeholder=t("input_placeholder"),
                                                  lines=1, max_lines=8, scale=6, autofocus=True, elem_id="kp-question")
                            send_btn = gr.Button(t("send"), variant="primary", scale=1, min_width=110,
                                                 elem_id="kp-send")
                        with gr.Accordion(t("feedback_heading").lstrip("# "), open=False, elem_id="kp-feedback"):
                            gr.Markdown(t("feedback_hint"))
                            comment = gr.Textbox(label=t("feedback_comment"),
                                                 placeholder=t("feedback_comment_placeholder"), lines=2)
                            comment_btn = gr.Button(t("feedback_save"), size="sm")
                        status = gr.Markdown("", elem_id="kp-status")

            tab_blocks = []
            for module, label_key, tab_id, role in EXTRA_TABS:
                with gr.Tab(t(label_key), id=tab_id, visible=False) as tab:
                    module.build(ctx)
                tab_blocks.append((tab, role))

        # -- events -----------------------------------------------------------------
        def on_load(request: gr.Request):
            s = h.session(request)
            tab_updates = [gr.update(visible=s.user.has(role)) for _, role in tab_blocks]
            return (s.user_label, gr.update(choices=s.models, value=s.default_model),
                    gr.update(choices=s.collections, value=[]), gr.update(choices=s.chats, value=None),
                    *tab_updates)

        demo.load(_gr(on_load), outputs=[user_md, model, collections, history, *[tb for tb, _ in tab_blocks]],
                  api_name="session", concurrency_limit=None, show_progress="hidden")

        def describe_model(key: str | None, request: gr.Request):
            h.user(request)
            return h.model_description(key)

        model.change(_gr(describe_model), inputs=[model], outputs=[model_md], api_visibility="private",
                     queue=False, show_progress="hidden")

        answer_outputs = [chatbot, chat_id, message_ids, warn_box, warn_md, pending, question, history, status]

        def stream_answer(q: str, cid: str | None, model_key: str | None, colls: list[str] | None,
                          confirmed: bool, request: gr.Request):
            try:
                view: ChatView | None = None
                for view in h.ask(request, q, cid or None, model_key, colls or None, confirmed=confirmed):
                    hist = gr.update()
                    if view.done and view.warning is None:
                        hist = gr.update(choices=h.list_chats(request), value=view.chat_id)
                    yield (view.messages, view.chat_id, view.message_ids, gr.update(visible=bool(view.warning)),
                           view.warning or "", view.pending or "", view.pending or "", hist, "")
            except UserError as exc:
                raise gr.Error(str(exc), print_exception=False) from None

        def ask(q, cid, model_key, colls, request: gr.Request):
            yield from stream_answer(q, cid, model_key, colls, False, request)

        def ask_confirmed(q, cid, model_key, colls, request: gr.Request):
            yield from stream_answer(q, cid, model_key, colls, True, request)

        answer_kwargs = dict(outputs=answer_outputs, show_progress="full", show_progress_on=[chatbot],
                             concurrency_id="answer", trigger_mode="once")
        send_btn.click(ask, inputs=[question, chat_id, model, collections], api_name="ask", **answer_kwargs)
        question.submit(ask, inputs=[question, chat_id, model, collections], api_visibility="private",
                        **answer_kwargs)
        # private: the confirmation is bound to the warned question held in the session
        confirm_btn.click(ask_confirmed, inputs=[pending, chat_id, model, collections], api_name="ask_confirmed",
                          api_visibility="private", **answer_kwargs)

        def edit_question(p: str, request: gr.Request):
            h.user(request)
            return gr.update(visible=False), "", p

        edit_btn.click(_gr(edit_question), inputs=[pending], outputs=[warn_box, pending, question],
                       api_visibility="private", queue=False)

        def new_chat(request: gr.Request):
            h.user(request)
            return [], None, [], gr.update(value=None), gr.update(visible=False), "", gr.update(visible=False), ""

        new_outputs = [chatbot, chat_id, message_ids, history, warn_box, pending, export_file, status]
        new_btn.click(_gr(new_chat), outputs=new_outputs, api_name="new_chat", concurrency_limit=None,
                      show_progress="hidden")
        # the chatbot's own trash button only empties the view: treat it as "Neuer Chat" (the chat stays saved)
        chatbot.clear(_gr(new_chat), outputs=new_outputs, api_visibility="private", concurrency_limit=None,
                      show_progress="hidden")

        def open_chat(cid: str | None, request: gr.Request):
            if not cid:
                return gr.update(), gr.update(), gr.update(), gr.update(), ""
            view = h.open_chat(request, cid)
            return view.messages, view.chat_id, view.message_ids, gr.update(visible=False), ""

        history.input(_gr(open_chat), inputs=[history], outputs=[chatbot, chat_id, message_ids, export_file, status],
                      api_name="open_chat", concurrency_limit=None)

        def show_confirm(request: gr.Request):
            h.user(request)
            return gr.update(visible=True)

        def hide_confirm(request: gr.Request):
            h.user(request)
            return gr.update(visible=False)

        delete_btn.click(_gr(show_confirm), outputs=[delete_confirm], queue=False, api_visibility="private")
        delete_no.click(_gr(hide_confirm), outputs=[delete_confirm], queue=False, api_visibility="private")

        def delete_chat(cid: str | None, request: gr.Request):
            h.delete_chat(request, cid)
            return ([], None, [], gr.update(choices=h.list_chats(request), value=None), gr.update(visible=False),
                    gr.update(visible=False), t("chat_deleted"))

        delete_yes.click(_gr(delete_chat), inputs=[chat_id],
                         outputs=[chatbot, chat_id, message_ids, history, delete_confirm, export_file, status],
                         api_name="delete_chat", concurrency_limit=None)

        def export_chat(cid: str | None, request: gr.Request):
            name, text = h.export_chat(request, cid)
            return gr.update(value=str(write_export(name, text)), visible=True)

        export_btn.click(_gr(export_chat), inputs=[chat_id], outputs=[export_file], api_name="export_chat",
                         concurrency_limit=None)

        def like(ids: list, data: gr.LikeData, request: gr.Request):
            index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
            mid = ids[index] if isinstance(index, int) and 0 <= index < len(ids or []) else None
            if data.liked not in (True, False) or mid is None:
                return gr.update(), gr.update()
            h.rate(request, mid, 1 if data.liked else -1)
            return mid, t("feedback_saved")

        chatbot.like(_gr(like), inputs=[message_ids], outputs=[rated, status], api_visibility="private",
                     concurrency_limit=None)

        def save_comment(mid: str | None, text: str, request: gr.Request):
            h.comment(request, mid, text)
            return "", t("feedback_comment_saved")

        comment_btn.click(_gr(save_comment), inputs=[rated, comment], outputs=[comment, status],
                          api_name="feedback_comment", concurrency_limit=None)
    return demo


# -- the server ----------------------------------------------------------------------------
class LoginThrottle:
    """Slows password guessing: after 5 failures a user name is locked for 5 minutes."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, name: str) -> bool:
        with self._lock:
            recent = [x for x in self._failures.get(name, []) if time.time() - x < self.window_s]
            self._failures[name] = recent
            return len(recent) >= self.max_failures

    def failed(self, name: str) -> None:
        with self._lock:
            self._failures.setdefault(name, []).append(time.time())

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


def make_auth(ctx: PortalContext, throttle: LoginThrottle | None = None) -> Callable:
    """gradio's ``auth=`` callable: Argon2 check off the event loop, every attempt audited."""
    import anyio

    throttle = throttle or LoginThrottle()

    async def auth(username: str, password: str) -> bool:
        name = (username or "").strip()[:64]
        if throttle.blocked(name):
            ctx.audit.record("login_blocked", name or "?", "", {})
            return False
        user = await anyio.to_thread.run_sync(ctx.users.verify, name, password or "")
        if user is None:
            throttle.failed(name)
            ctx.audit.record("login_failed", name or "?", "", {})
            log.warning("failed login for %r", name)
            return False
        throttle.succeeded(name)
        ctx.audit.record("login", user.name, "", {"role": user.role})
        return True

    return auth


@dataclass
class PortalServer:
    app: Any
    demo: gr.Blocks
    handlers: ChatHandlers


def check_auth_mode(settings, host: str) -> None:
    """Without login the portal may only listen on loopback: everyone reaching it would be admin."""
    if settings.auth.mode == "none" and not is_loopback(host):
        raise RuntimeError(
            f"Ohne Anmeldung (auth.mode = \"none\") darf das Portal nur auf 127.0.0.1 laufen, nicht auf {host}. "
            "Bitte auth.mode = \"password\" oder \"header\" einstellen. / auth.mode none is loopback only."
        )


def create_app(ctx: PortalContext, host: str | None = None, port: int | None = None) -> PortalServer:
    """The FastAPI app with the document routes and the mounted interface."""
    from fastapi import FastAPI
    from starlette.routing import Mount

    s = ctx.app.settings
    host = host or s.server.host
    port = port or s.server.port
    check_auth_mode(s, host)

    handlers = ChatHandlers(ctx)
    demo = build_portal(ctx, handlers)
    demo.queue(default_concurrency_limit=s.server.concurrency)

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
        show_error=True, enable_monitoring=False, pwa=False, mcp_server=False, ssr_mode=False,
        theme=theme(), css=CSS, js=JS,
    )
    for route in fastapi_app.routes:
        if isinstance(route, Mount) and isinstance(route.app, gr.routes.App):
            holder["gradio"] = route.app
    if "gradio" not in holder:
        raise RuntimeError("gradio app not found after mounting")
    return PortalServer(fastapi_app, demo, handlers)


def serve(ctx: PortalContext, host: str | None = None, port: int | None = None) -> None:
    """Run the portal until interrupted (``kiportal serve``)."""
    import uvicorn

    s = ctx.app.settings
    host = host or s.server.host
    port = port or s.server.port
    server = create_app(ctx, host, port)
    log.info("KI-Portal on http://%s:%s (auth: %s)", host, port, s.auth.mode)
    # proxy_headers off: in header mode the trusted-proxy check needs the proxy's own address
    uvicorn.run(server.app, host=host, port=port, proxy_headers=False, log_level="warning",
                timeout_graceful_shutdown=5)


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
        yield f"http://{host}:{port}/", server
    finally:
        uv.should_exit = True
        thread.join(timeout=15)
