"""Projector view and participant area of a training session ("Schulung").

Why one module: both follow a session by its join code. The trainer's tab writes what the
room should see (the current exercise with answer and sources, a comparison, an Ampel
preview, the open quiz question or its anonymous result) into the session's ``display``;
this view renders it in large type, polling every few seconds, so a second browser window
on the projector (or a participant's own screen) follows the trainer without any push
channel. Participants answer the open quiz question here; the trainer never sees who.

Everything shown is escaped (:func:`assistant.training.inspect.esc`): answers quote
document text, and document text is data.

``build(ctx)`` creates the "Schulung" tab content for every logged-in user (role staff);
every handler checks the role on the server.
"""
from __future__ import annotations

import logging

import gradio as gr

from assistant.escaping import esc, md_esc
from assistant.policy.zones import ZONE_COLORS, zone_label
from assistant.training.preview import mask_question
from assistant.training.sessions import SessionError, TrainingStore, mask_display
from assistant.wording import counted
from corpus.models import page_kind_of, page_label
from ui.context import PortalContext
from ui.join_codes import JoinCodeGuard

log = logging.getLogger(__name__)

POLL_SECONDS = 3.0

# Scoped to the gr.HTML component (css_template), so the portal's global CSS stays untouched.
PROJECTOR_CSS = """
.kp-slide { font-size: 1.9rem; line-height: 1.35; padding: 1.2rem 1.6rem; background: #fff; color: #111; }
.kp-slide h1 { font-size: 2.6rem; margin: 0 0 .6rem 0; color: #0b3d5c; }
.kp-slide h2 { font-size: 2.1rem; margin: .8rem 0 .4rem 0; }
.kp-slide .kp-q { font-weight: 700; font-size: 2.2rem; margin: .4rem 0 1rem 0; }
.kp-slide .kp-a { white-space: pre-wrap; border-left: .4rem solid #0b57d0; padding-left: 1rem; margin: .6rem 0; }
.kp-slide .kp-src { font-size: 1.4rem; color: #333; }
.kp-slide .kp-code { font-size: 5rem; letter-spacing: .5rem; font-family: ui-monospace, monospace; font-weight: 800; }
.kp-slide .kp-cols { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5rem; }
.kp-slide .kp-bar { background: #0b57d0; height: 1.4rem; display: inline-block; vertical-align: middle; }
.kp-slide .kp-ok { color: #1b7f3b; font-weight: 800; }
.kp-slide table { border-collapse: collapse; width: 100%; }
.kp-slide td { padding: .2rem .6rem; vertical-align: middle; }
"""


# -- rendering ----------------------------------------------------------------------------
def answers_label(n: int) -> str:
    """A quiz result's count: "1 Antwort", "3 Antworten" (it said "1 Antworten", a browser review)."""
    return counted(n, "Antwort", "Antworten")


def _sources_html(sources: list[dict]) -> str:
    if not sources:
        return ""
    items = []
    for s in sources:
        page = s.get("page")
        where = ""
        if page is not None:
            where = ", " + page_label(int(page), page_kind_of(str(s.get("source", ""))))
        items.append(f"<li>[{int(s.get('n') or 0)}] {esc(s.get('title'))} ({esc(s.get('source'))}{esc(where)})</li>")
    return "<div class=\"kp-src\">Quellen:<ul>" + "".join(items) + "</ul></div>"


def _zone(z: str | None) -> str:
    if not z:
        return ""
    return f" <span style=\"color:{ZONE_COLORS.get(z, '#444')}\">{esc(zone_label(z))}</span>"


def _answer_block(block: dict) -> str:
    names = [x for x in (block.get("label"), block.get("model")) if x]
    head = f"<h2>{' – '.join(esc(x) for x in names)}{_zone(block.get('zone'))}</h2>" if names else ""
    return head + f"<div class=\"kp-a\">{esc(block.get('answer') or '–')}</div>" + _sources_html(block.get("sources") or [])


def render_display(display: dict | None, code: str = "") -> str:
    """The projector slide for a session's ``display`` (see :func:`display_for_*`)."""
    d = display or {}
    kind = d.get("kind")
    title = f"<h1>{esc(d.get('title'))}</h1>" if d.get("title") else ""
    if not kind:
        body = "<h1>KI-Kompass</h1><p>Gleich geht es los.</p>"
        if code:
            body += f"<p>Teilnahmecode:</p><p class=\"kp-code\">{esc(code)}</p>"
    elif kind == "welcome":
        body = (f"{title}<p>Melden Sie sich im KI-Portal an, öffnen Sie „Schulung“ und geben Sie diesen Code ein:</p>"
                f"<p class=\"kp-code\">{esc(d.get('code') or code)}</p>")
    elif kind == "answer":
        body = title + f"<div class=\"kp-q\">{esc(d.get('question'))}</div>" + _answer_block(d)
        if d.get("observe"):
            body += f"<p><b>Worauf achten?</b> {esc(d['observe'])}</p>"
    elif kind == "comparison":
        cols = "".join(f"<div>{_answer_block(s)}</div>" for s in d.get("sides", []))
        body = title + f"<div class=\"kp-q\">{esc(d.get('question'))}</div><div class=\"kp-cols\">{cols}</div>"
        if d.get("observe"):
            body += f"<p><b>Worauf achten?</b> {esc(d['observe'])}</p>"
    elif kind == "policy":
        pii = "".join(f"<li>{esc(p.get('label'))}: <code>{esc(p.get('masked'))}</code></li>" for p in d.get("pii", []))
        body = (title + f"<div class=\"kp-q\">{esc(d.get('question'))}</div>"
                f"<h2>Ampel für Zone{_zone(d.get('zone'))}: {esc(d.get('action_label'))}</h2>"
                + (f"<p>Erkannte Personendaten (maskiert):</p><ul>{pii}</ul>" if pii else "")
                + "".join(f"<p>{esc(m)}</p>" for m in d.get("messages", [])))
    elif kind == "quiz_open":
        opts = "".join(f"<li>{esc(o)}</li>" for o in d.get("options", []))
        body = (title + f"<div class=\"kp-q\">{esc(d.get('question'))}</div><ol type=\"A\">{opts}</ol>"
                f"<p>Antworten Sie im KI-Portal unter „Schulung“ (Code <b>{esc(d.get('code') or code)}</b>). "
                "Die Auswertung ist anonym.</p>")
    elif kind == "quiz_result":
        total = max(1, int(d.get("answers") or 0))
        rows = []
        for i, opt in enumerate(d.get("options", [])):
            n = int((d.get("counts") or [0] * 99)[i])
            ok = " <span class=\"kp-ok\">✓</span>" if i in (d.get("correct") or []) else ""
            rows.append(f"<tr><td>{esc(opt)}{ok}</td><td style=\"width:40%\"><span class=\"kp-bar\" "
                        f"style=\"width:{round(100 * n / total)}%\"></span> {n}</td></tr>")
        share = d.get("share_correct")
        share_txt = "–" if share is None else f"{share:.0%}".replace("%", " %")
        body = (title + f"<div class=\"kp-q\">{esc(d.get('question'))}</div><table>{''.join(rows)}</table>"
                f"<p>{answers_label(int(d.get('answers') or 0))} · richtig: {esc(share_txt)}</p>"
                + (f"<p><b>Erklärung:</b> {esc(d.get('explanation'))}</p>" if d.get("explanation") else ""))
    elif kind == "ended":
        body = f"{title}<p>Die Schulung ist beendet. Vielen Dank!</p>"
    else:
        body = f"{title}<p>{esc(d.get('text') or '')}</p>"
    return f"<div class=\"kp-slide\">{body}</div>"


def display_for_answer(result, *, title: str = "", observe: str = "") -> dict:
    from assistant.training.sessions import sources_of

    return {"kind": "answer", "title": title, "question": mask_question(result.question),
            "answer": mask_question(result.answer, of=result.question),
            "sources": sources_of(result), "model": result.model, "zone": result.zone, "observe": observe}


def display_for_comparison(cmp, *, title: str = "", observe: str = "") -> dict:
    from assistant.training.sessions import sources_of

    return {"kind": "comparison", "title": title, "question": mask_question(cmp.question), "observe": observe,
            "sides": [{"label": s.variant.label, "answer": mask_question(s.result.answer, of=cmp.question),
                       "sources": sources_of(s.result),
                       "model": s.result.model, "zone": s.result.zone} for s in cmp.sides]}


def display_for_policy(preview: dict, *, title: str = "") -> dict:
    return {"kind": "policy", "title": title, "question": preview.get("masked_question", ""), "zone": preview["zone"],
            "action_label": preview["action_label"], "pii": preview["pii"], "messages": preview["messages_de"]}


def display_for_quiz(item, *, code: str, title: str = "") -> dict:
    return {"kind": "quiz_open", "title": title, "question": item.question, "options": list(item.options), "code": code}


def display_for_result(res, *, title: str = "") -> dict:
    return {"kind": "quiz_result", "title": title, **res.as_dict()}


def render_for(ctx: PortalContext, user, display: dict | None, code: str = "") -> str:
    """The slide as ``user`` may see it: answers resting on a document the viewer may not read
    are replaced by a notice (the room is not all one department)."""
    return render_display(mask_display(display, ctx.source_filter(user)), code)


# -- the "Schulung" tab -------------------------------------------------------------------
def _store(ctx: PortalContext) -> TrainingStore:
    return ctx.app.training_store


def _current_item(ctx: PortalContext, code: str, user: str):
    """The session's current item and this participant's answer to it; errors as German messages."""
    store = _store(ctx)
    try:
        session, item = store.current_item(code)
        mine = store.my_choice(code, item.id, user) if item else None
    except SessionError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    return session, item, mine


def _item_updates(session, item, mine: list[int] | None) -> tuple:
    """Question markdown, radio, checkboxes, send button, shown item id."""
    if item is None:
        return (f"**{md_esc(session.plan.title)}** – Sie sind dabei. Gerade ist keine Quizfrage freigegeben; "
                "warten Sie auf die Trainerin oder den Trainer.",
                gr.update(visible=False, value=None), gr.update(visible=False, value=[]), gr.update(visible=False), "")
    choices = [(opt, str(i)) for i, opt in enumerate(item.options)]
    hint = " *(mehrere Antworten möglich)*" if item.multiple else ""
    done = " – ✓ Ihre Antwort ist gespeichert; Sie können sie noch ändern." if mine is not None else ""
    text = f"**Quizfrage:** {md_esc(item.question)}{hint}{done}"
    if item.multiple:
        return (text, gr.update(visible=False, value=None),
                gr.update(visible=True, choices=choices, value=[str(i) for i in (mine or [])]),
                gr.update(visible=True), item.id)
    return (text, gr.update(visible=True, choices=choices, value=str(mine[0]) if mine else None),
            gr.update(visible=False, value=[]), gr.update(visible=True), item.id)


def build(ctx: PortalContext) -> None:
    """Participant area (join with code, answer the open quiz question) and the projector view."""
    gr.Markdown("## Schulung KI-Kompass\nGeben Sie den Teilnahmecode ein, den die Trainerin oder der Trainer zeigt. "
                "Ihre Quiz-Antworten werden **ohne Namen** ausgewertet.")
    joined = gr.State("")
    shown_item = gr.State("")
    with gr.Row(equal_height=True):
        code_in = gr.Textbox(label="Teilnahmecode", placeholder="z. B. K7M3QX", max_lines=1, scale=3,
                             elem_id="kp-join-code")
        join_btn = gr.Button("Teilnehmen", variant="primary", scale=1, elem_id="kp-join")
    quiz_md = gr.Markdown("", elem_id="kp-quiz-question")
    radio = gr.Radio(choices=[], label="Ihre Antwort", visible=False, elem_id="kp-quiz-radio")
    checks = gr.CheckboxGroup(choices=[], label="Ihre Antworten", visible=False, elem_id="kp-quiz-checks")
    with gr.Row():
        send_btn = gr.Button("Antwort senden", variant="primary", visible=False, elem_id="kp-quiz-send")
        refresh_btn = gr.Button("Aktuelle Frage abrufen", variant="secondary", elem_id="kp-quiz-refresh")
    quiz_status = gr.Markdown("", elem_id="kp-quiz-status")
    with gr.Accordion("Projektoransicht (große Schrift)", open=False):
        gr.Markdown("Zeigt, was die Trainerin oder der Trainer gerade vorführt. Für den Beamer: hier teilnehmen, "
                    "Accordion öffnen und „Vollbild“ wählen.")
        follow = gr.Checkbox(label="Automatisch aktualisieren", value=True)
        full_btn = gr.Button("Vollbild", size="sm")
        projector = gr.HTML(render_display(None), css_template=PROJECTOR_CSS, elem_id="kp-projector")
    timer = gr.Timer(POLL_SECONDS, active=False)
    # the one door that takes a code from the client: the other events read ``joined``, a State that
    # gradio keeps on the server (a value a client sends for it is not used)
    guard = JoinCodeGuard(_store(ctx), ctx.app.login_failures, ctx.audit)

    def join(code: str, request: gr.Request):
        user = ctx.require(request, "staff")
        try:
            guard.session(code, user.name)
        except SessionError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        session, item, mine = _current_item(ctx, code, user.name)
        log.info("participant joined training session %s", session.id)
        return (session.code, *_item_updates(session, item, mine), "",
                render_for(ctx, user, session.display, session.code), gr.update(active=True))

    join_outputs = [joined, quiz_md, radio, checks, send_btn, shown_item, quiz_status, projector, timer]
    join_btn.click(join, inputs=[code_in], outputs=join_outputs, api_name="training_join", concurrency_limit=None)
    code_in.submit(join, inputs=[code_in], outputs=join_outputs, api_visibility="private", concurrency_limit=None)

    def refresh(code: str, request: gr.Request):
        user = ctx.require(request, "staff")
        if not code:
            raise gr.Error("Bitte zuerst mit dem Teilnahmecode teilnehmen.", print_exception=False)
        session, item, mine = _current_item(ctx, code, user.name)
        return (*_item_updates(session, item, mine), "")

    refresh_btn.click(refresh, inputs=[joined], outputs=[quiz_md, radio, checks, send_btn, shown_item, quiz_status],
                      api_name="training_current", concurrency_limit=None)

    def send(code: str, item_id: str, one: str | None, many: list[str] | None, request: gr.Request):
        user = ctx.require(request, "staff")
        choice = [int(x) for x in (many or [])] if many else ([int(one)] if one not in (None, "") else [])
        try:
            _store(ctx).answer(code, item_id, user.name, choice)
        except SessionError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except ValueError:
            raise gr.Error("Ungültige Antwort.", print_exception=False) from None
        return "✓ Danke, Ihre Antwort ist gespeichert (anonym). Sie können sie ändern, solange die Frage offen ist."

    send_btn.click(send, inputs=[joined, shown_item, radio, checks], outputs=[quiz_status], api_name="training_answer",
                   concurrency_limit=None)

    def poll(code: str, item_id: str, follow_on: bool, request: gr.Request):
        """Timer tick: new quiz item or projector content; unchanged parts are left alone."""
        user = ctx.require(request, "staff")
        if not code:
            return (gr.update(),) * 6 + (gr.update(active=False),)
        store = _store(ctx)
        try:
            session, item = store.current_item(code)
        except SessionError as exc:
            return (str(exc), gr.update(visible=False), gr.update(visible=False), gr.update(visible=False), "",
                    render_display({"kind": "ended", "title": ""}), gr.update(active=False))
        slide = render_for(ctx, user, session.display, session.code) if follow_on else gr.update()
        if (item.id if item else "") == (item_id or ""):
            return (gr.update(),) * 5 + (slide, gr.update())
        mine = store.my_choice(code, item.id, user.name) if item else None
        return (*_item_updates(session, item, mine), slide, gr.update())

    timer.tick(poll, inputs=[joined, shown_item, follow],
               outputs=[quiz_md, radio, checks, send_btn, shown_item, projector, timer],
               api_visibility="private", concurrency_limit=None, show_progress="hidden")
    full_btn.click(None, js="() => { const el = document.querySelector('#kp-projector'); "
                            "if (el && el.requestFullscreen) el.requestFullscreen(); }")
