"""The chat tab: layout and events. The work is in :class:`ui.handlers.ChatHandlers`.

Every event calls one handler method, which checks the user on the server first
(gradio exposes each event as an HTTP endpoint); this module only maps the plain data
the handlers return onto components.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterator

import gradio as gr

from assistant.escaping import md_esc
from corpus.text import without_direction_controls
from ui.context import PortalContext
from ui.exports import download_now_js, write_export
from ui.handlers import ChatHandlers, ChatView, UserError
from ui.streams import StreamSwitches, unchanged
from ui.texts import t


def shown_as_error(fn: Callable) -> Callable:
    """Turn the handlers' UserError into a visible gr.Error (PermissionDenied already is one), for the
    events whose callers need the failure (the HTTP endpoints of opening, deleting and exporting a chat):
    one error box. Their events show no progress (``quiet`` in :func:`build`): gradio marked every output
    of a failed event "Fehler", the chat list (an input of its own) and the chat among them."""

    @functools.wraps(fn)  # gradio reads the signature (gr.Request, gr.LikeData) through __wrapped__
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    return wrapper


def refusal_text(message: str) -> str:
    """A refused action as the status line under the chat says it."""
    return f"**{t('notice')}:** {md_esc(message)}"


def notice_on_refusal(fn: Callable, outputs: list, status: object) -> Callable:
    """Say the handlers' UserError in ``status`` (one of ``outputs``) and leave the other outputs as
    they are: the event succeeds. A raised gr.Error marked its outputs "Fehler", the comment box and
    the question box among them, each to be closed by hand, and piled up an error box per click (a
    browser review); a comment sent without a rating now stays in its box to be sent after one.
    PermissionDenied (no or another user) still fails the call."""
    at = outputs.index(status)

    @functools.wraps(fn)  # gradio reads the signature (gr.Request, gr.LikeData) through __wrapped__
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            return tuple(refusal_text(str(exc)) if i == at else gr.update() for i in range(len(outputs)))

    return wrapper


#: the thumbs under every answer of the chat (gradio shows them under every assistant message)
FEEDBACK = ["Like", "Dislike"]


def thumbs_off(frames: Iterator[tuple]) -> Iterator[tuple]:
    """An answer's updates (the chatbot first), with one after the first that only takes the thumbs
    away: they stood under "Suche in den Dokumenten …" before any answer existed (a browser review), and
    gradio shows them under every assistant message or under none. The page's ``rateable`` brings them
    back once the answer is complete or left.

    An update of its own, after the question is shown: sent with the messages, or before them, the
    change drew the chat anew, and the portal's script that scrolls a new question to the top of the
    chat measured it at a moment it was shorter and stopped the question further down. The updates with
    the messages stay plain lists (what /ask returns)."""
    first = True
    for frame in frames:
        yield frame
        if first:
            first = False
            yield (gr.update(feedback_options=[]), *unchanged(len(frame) - 1))


MAX_EXAMPLES = 3


def chat_examples(questions: list[str]) -> list[dict] | None:
    """The empty chat's example questions (``portal.example_questions``) as gradio's example buttons:
    a click puts one into the question box. One line each, without direction controls: gradio shows
    them as plain text. The demo's question stood in every installation's empty chat as text to
    retype, where a city's own documents cannot answer it (a review)."""
    shown = [" ".join(without_direction_controls(q).split()) for q in questions]
    return [{"text": q} for q in shown if q][:MAX_EXAMPLES] or None


def example_text(examples: list[dict] | None, index: object) -> str:
    """The clicked example's question, looked up by its place among the configured ones: the value a
    client sends with the click is never echoed back (any text could be sent)."""
    if examples and isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(examples):
        return examples[index]["text"]
    return ""


@dataclass
class ChatTab:
    """The chat components the page load fills for the signed-in user."""

    model: gr.Radio
    model_detail: gr.Markdown
    collections: gr.CheckboxGroup
    history: gr.Radio


def build(ctx: PortalContext, h: ChatHandlers) -> ChatTab:
    """Create the chat components and their events in the caller's current gr.Tab."""
    examples = chat_examples(ctx.app.settings.portal.example_questions)
    chat_id = gr.State(None)
    message_ids = gr.State([])
    pending = gr.State("")
    rated = gr.State(None)

    with gr.Row():
        with gr.Column(scale=1, min_width=270, elem_id="kp-chat-side"):
            new_btn = gr.Button(t("new_chat"), variant="secondary")
            history = gr.Radio(choices=[], value=None, label=t("history_label"), info=t("history_info"),
                               elem_id="kp-history")
            delete_btn = gr.Button(t("delete_chat"), size="sm", variant="secondary")
            with gr.Row():
                export_btn = gr.Button(t("export_chat"), size="sm", variant="secondary", elem_id="kp-export-md")
                export_docx_btn = gr.Button(t("export_chat_docx"), size="sm", variant="secondary",
                                            elem_id="kp-export-docx")
            with gr.Row(visible=False) as delete_confirm:
                gr.Markdown("Diesen Chat wirklich löschen?")
                delete_yes = gr.Button("Ja, löschen", size="sm", variant="stop")
                delete_no = gr.Button("Abbrechen", size="sm")
            export_file = gr.File(label=t("export_file"), visible=False, interactive=False, elem_id="kp-export-file")
            gr.Markdown(t("settings_heading"))
            # all models until the page load narrows them to the user's role: API clients that
            # skip /session can still name one (the handler checks the role either way). Options, not
            # a drop-down: its one-line input cut a long label („Grün · Nur Textstellen (ohne…“ on a
            # phone); an option's label wraps, so the chosen model and the others read in full
            model = gr.Radio(choices=h.all_model_choices(), value=ctx.app.settings.llm.default,
                             label=t("model_label"), info=t("model_info"), interactive=True,
                             elem_id="kp-model")
            model_md = gr.Markdown("", elem_id="kp-model-detail")
            # empty until the page load fills in the user's readable collections: the page
            # configuration is the same for everyone and must not name other departments' collections
            collections = gr.CheckboxGroup(choices=[], value=[], label=t("collections_label"),
                                           info=t("collections_info"), elem_id="kp-collections")
        with gr.Column(scale=3, min_width=320, elem_id="kp-chat-main"):
            chatbot = gr.Chatbot(
                # the input stays in a laptop's window (768 px) with the header above; 560 px at 1000 px
                value=[], label=t("chat_label"), show_label=False,
                height="max(300px, calc(100vh - var(--kp-chat-offset, 440px)))",  # ui.portal.CSS sets the offset
                elem_id="kp-chat",
                sanitize_html=True, render_markdown=True, latex_delimiters=[],
                feedback_options=("Like", "Dislike"), buttons=["copy", "copy_all"],
                placeholder=t("chat_placeholder"), examples=examples,
                autoscroll=False,  # the portal's script scrolls to the question
            )
            # right under the chat, where the thumbs are: below the input it fell out of a laptop's window
            status = gr.Markdown("", elem_id="kp-status")
            with gr.Group(visible=False, elem_id="kp-warning") as warn_box:
                warn_md = gr.Markdown("")
                with gr.Row():
                    confirm_btn = gr.Button(t("confirm_send"), variant="stop")
                    edit_btn = gr.Button(t("edit_question"), variant="secondary")
            with gr.Row(equal_height=True, elem_id="kp-ask-row"):
                question = gr.Textbox(label=t("input_label"), placeholder=t("input_placeholder"),
                                      lines=1, max_lines=8, scale=6, autofocus=True, elem_id="kp-question")
                send_btn = gr.Button(t("send"), variant="primary", scale=1, min_width=110,
                                     elem_id="kp-send")
                # takes the place of "Senden" while an answer is on its way
                stop_btn = gr.Button(t("stop"), variant="stop", scale=1, min_width=110,
                                     elem_id="kp-stop", visible=False)
            with gr.Accordion(t("feedback_heading").lstrip("# "), open=False, elem_id="kp-feedback"):
                gr.Markdown(t("feedback_hint"))
                comment = gr.Textbox(label=t("feedback_comment"),
                                     placeholder=t("feedback_comment_placeholder"), lines=2)
                comment_btn = gr.Button(t("feedback_save"), size="sm")

    # -- events -----------------------------------------------------------------
    def describe_model(key: str | None, request: gr.Request):
        h.user(request)
        return h.model_description(key)

    def use_example(evt: gr.SelectData, request: gr.Request) -> str:
        # the clicked example into the question box (sending stays the user's step, with its checks)
        h.user(request)
        return example_text(examples, evt.index)

    chatbot.example_select(shown_as_error(use_example), None, [question], api_visibility="private", queue=False,
                           show_progress="hidden")
    model.change(shown_as_error(describe_model), inputs=[model], outputs=[model_md], api_visibility="private",
                 queue=False, show_progress="hidden")

    switches = StreamSwitches()
    answer_outputs = [chatbot, chat_id, message_ids, warn_box, warn_md, pending, question, history, status,
                      send_btn, stop_btn]

    def stream_answer(q: str, cid: str | None, model_key: str | None, colls: list[str] | None,
                      confirmed: bool, request: gr.Request):
        h.user(request)
        if not (q or "").strip():
            # a hint, not an error: nothing went wrong, and the chat keeps no red "Fehler" badge
            gr.Warning(t("empty_question"), title=t("notice"), duration=5)
            return
        first = True

        def render(view: ChatView) -> tuple:
            nonlocal first
            hist = gr.update()
            if view.done and view.warning is None:
                hist = gr.update(choices=h.list_chats(request), value=view.chat_id)
            # the box is emptied once, as the question leaves: what the user types meanwhile stays
            box = (view.pending or "") if first or view.warning else gr.update()
            first = False
            busy = not view.done
            return (view.messages, view.chat_id, view.message_ids, gr.update(visible=bool(view.warning)),
                    view.warning or "", view.pending or "", box, hist, "",
                    gr.update(visible=not busy), gr.update(visible=busy))

        try:
            # ends at once when the user leaves this chat (Stopp, new, another, deleted), even while
            # retrieval or the model's prompt reading still runs (ui.streams)
            yield from thumbs_off(switches.stream(
                request.session_hash, h.ask(request, q, cid or None, model_key, colls or None, confirmed=confirmed),
                render, len(answer_outputs), note=q.strip()))
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def ask(q, cid, model_key, colls, request: gr.Request):
        yield from stream_answer(q, cid, model_key, colls, False, request)

    def ask_confirmed(q, cid, model_key, colls, request: gr.Request):
        yield from stream_answer(q, cid, model_key, colls, True, request)

    def idle(request: gr.Request):
        """After an answer, also one that failed or was stopped: "Senden" is back."""
        h.user(request)
        return gr.update(visible=True), gr.update(visible=False)

    def rateable(request: gr.Request):
        """The thumbs back, once the chat shows no answer on its way: after a complete answer (not after
        a failed one, whose unfinished bubble stays), or when the user leaves it (Stopp, new, opened,
        deleted)."""
        h.user(request)
        return gr.update(feedback_options=FEEDBACK)

    answer_kwargs = dict(outputs=answer_outputs, show_progress="full", show_progress_on=[chatbot],
                         concurrency_id="answer", trigger_mode="once")
    idle_kwargs = dict(outputs=[send_btn, stop_btn], api_visibility="private", queue=False,
                       show_progress="hidden")
    rateable_kwargs = dict(outputs=[chatbot], api_visibility="private", queue=False, show_progress="hidden")
    for answered in (
        send_btn.click(ask, inputs=[question, chat_id, model, collections], api_name="ask", **answer_kwargs),
        question.submit(ask, inputs=[question, chat_id, model, collections], api_visibility="private",
                        **answer_kwargs),
        # private: the confirmation is bound to the warned question held in the session
        confirm_btn.click(ask_confirmed, inputs=[pending, chat_id, model, collections], api_name="ask_confirmed",
                          api_visibility="private", **answer_kwargs),
    ):
        answered.then(idle, **idle_kwargs)
        answered.success(rateable, **rateable_kwargs)

    def stop(cid: str | None, typed: str, request: gr.Request):
        """"Stopp": the answer on its way is dropped (nothing of it is stored), the chat shows what
        is stored, and the question is back in the box to be changed or sent again, unless the
        user has typed a new one meanwhile."""
        h.user(request)
        q = switches.switch(request.session_hash)
        messages, ids = [], []
        if cid:
            view = h.open_chat(request, cid)
            messages, ids = view.messages, view.message_ids
        return (messages, ids, typed if (typed or "").strip() else q, t("answer_stopped"),
                gr.update(visible=True), gr.update(visible=False))

    # the chat's own events show no progress and no marks: gradio's chatbot shows "Fehler" on every failed
    # event it is an output of, whatever show_progress says; the status line takes them, unseen
    quiet = dict(show_progress="hidden", show_progress_on=[status])
    stop_outputs = [chatbot, message_ids, question, status, send_btn, stop_btn]
    stop_btn.click(notice_on_refusal(stop, stop_outputs, status), inputs=[chat_id, question], outputs=stop_outputs,
                   api_visibility="private", concurrency_limit=None, **quiet).then(rateable, **rateable_kwargs)

    def edit_question(p: str, request: gr.Request):
        h.user(request)
        return gr.update(visible=False), "", p

    edit_btn.click(shown_as_error(edit_question), inputs=[pending], outputs=[warn_box, pending, question],
                   api_visibility="private", queue=False, show_progress="hidden")

    def new_chat(request: gr.Request):
        h.user(request)
        switches.switch(request.session_hash)
        return [], None, [], gr.update(value=None), gr.update(visible=False), "", gr.update(visible=False), ""

    new_outputs = [chatbot, chat_id, message_ids, history, warn_box, pending, export_file, status]
    # leaving the chat (new, another, deleted) stops an answer still streaming (see ui.streams.StreamSwitches)
    new_btn.click(shown_as_error(new_chat), outputs=new_outputs, api_name="new_chat", concurrency_limit=None,
                  **quiet).then(rateable, **rateable_kwargs)
    # the chatbot's own trash button only empties the view: treat it as "Neuer Chat" (the chat stays saved)
    chatbot.clear(shown_as_error(new_chat), outputs=new_outputs, api_visibility="private", concurrency_limit=None,
                  **quiet).then(rateable, **rateable_kwargs)

    def open_chat(cid: str | None, request: gr.Request):
        if not cid:
            return gr.update(), gr.update(), gr.update(), gr.update(), ""
        view = h.open_chat(request, cid)
        switches.switch(request.session_hash)
        return view.messages, view.chat_id, view.message_ids, gr.update(visible=False), ""

    # on a phone the chat list sits below the chat: the browser shows the chat that is opened, not the list
    history.input(shown_as_error(open_chat), inputs=[history], outputs=[chatbot, chat_id, message_ids, export_file, status],
                  api_name="open_chat", concurrency_limit=None, **quiet,
                  js="(cid) => { if (window.innerWidth <= 720) "
                     "document.querySelector('#kp-chat')?.scrollIntoView({block: 'start'}); return cid; }"
                  ).success(rateable, **rateable_kwargs)

    def show_confirm(request: gr.Request):
        h.user(request)
        return gr.update(visible=True)

    def hide_confirm(request: gr.Request):
        h.user(request)
        return gr.update(visible=False)

    delete_btn.click(shown_as_error(show_confirm), outputs=[delete_confirm], queue=False, api_visibility="private")
    delete_no.click(shown_as_error(hide_confirm), outputs=[delete_confirm], queue=False, api_visibility="private")

    def delete_chat(cid: str | None, request: gr.Request):
        h.delete_chat(request, cid)
        switches.switch(request.session_hash)
        return ([], None, [], gr.update(choices=h.list_chats(request), value=None), gr.update(visible=False),
                gr.update(visible=False), t("chat_deleted"))

    deleted = delete_yes.click(shown_as_error(delete_chat), inputs=[chat_id],
                               outputs=[chatbot, chat_id, message_ids, history, delete_confirm, export_file, status],
                               api_name="delete_chat", concurrency_limit=None, **quiet)
    deleted.success(rateable, **rateable_kwargs)
    # refused (no chat open, or gone meanwhile): its one error box says why, and the question is closed
    # (it stayed open for "Ja, löschen" to be clicked again, and each click piled up another box)
    deleted.failure(shown_as_error(hide_confirm), outputs=[delete_confirm], queue=False, api_visibility="private",
                    show_progress="hidden")

    def export_chat(fmt: str):
        """One callback per format: the owner's chat, written to a download-once file of theirs."""
        def fn(cid: str | None, request: gr.Request):
            name, content = h.export_chat(request, cid, fmt=fmt)
            return gr.update(value=str(write_export(name, content, owner=h.user(request).name)), visible=True)
        return shown_as_error(fn)

    export_btn.click(export_chat("md"), inputs=[chat_id], outputs=[export_file], api_name="export_chat",
                     concurrency_limit=None, show_progress="hidden").success(None, js=download_now_js("kp-export-file"))
    export_docx_btn.click(export_chat("docx"), inputs=[chat_id], outputs=[export_file],
                          api_name="export_chat_docx", concurrency_limit=None, show_progress="hidden").success(
        None, js=download_now_js("kp-export-file"))

    def like(ids: list, data: gr.LikeData, request: gr.Request):
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        mid = ids[index] if isinstance(index, int) and 0 <= index < len(ids or []) else None
        if data.liked not in (True, False) or mid is None:
            return gr.update(), gr.update()
        h.rate(request, mid, 1 if data.liked else -1)
        return mid, t("feedback_saved")

    chatbot.like(notice_on_refusal(like, [rated, status], status), inputs=[message_ids], outputs=[rated, status],
                 api_visibility="private", concurrency_limit=None, show_progress="hidden")

    def save_comment(mid: str | None, text: str, request: gr.Request):
        h.comment(request, mid, text)
        return "", t("feedback_comment_saved")

    # a comment before a rating is refused in the status line under the chat; the comment stays to be sent
    comment_btn.click(notice_on_refusal(save_comment, [comment, status], status), inputs=[rated, comment],
                      outputs=[comment, status], api_name="feedback_comment", concurrency_limit=None,
                      show_progress="hidden")
    return ChatTab(model, model_md, collections, history)
