"""Trainer tab „KI-Kompass“: opens the box in front of a group.

What a trainer can do here, and why it exists:

* **Blick unter die Haube** – ask a question and see the rewritten question, every passage
  with BM25 rank, dense rank and fused score, why a passage did (not) reach the prompt,
  the exact prompt, model and zone, tokens and timings. Demystifies RAG.
* **Vergleich** – the same question twice with one thing changed: with vs. without
  documents (invented answers), two models/zones, k, or the token budget.
* **Ampel-Vorschau** – what the policy would do for a model or zone, without calling a model.
* **Schulungsplan & Sitzung** – run the exercises of a YAML plan, start a session with a
  join code, release quiz questions, see anonymous results, end with a handout.

Security: gradio exposes every event handler as an HTTP endpoint, so each handler here
begins with ``ctx.require(request, "trainer")``; hiding the tab protects nothing. A session id
comes from the client too (the dropdown accepts any value), so every handler that takes one
resolves it through :meth:`TrainerUI._session`, which refuses another trainer's session
(:func:`assistant.training.sessions.may_run_session`); only the checked :class:`Session`
reaches the store. All dynamic HTML comes from the escaping renderers in
:mod:`assistant.training.inspect`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from assistant.escaping import esc
from assistant.model_choice import default_model, may_use, model_choices
from assistant.policy.zones import zone_choices, zone_label
from assistant.training import compare as cmp_mod
from assistant.training.inspect import build_view, render_answer_html, render_html
from assistant.training.plans import PlanError, discover, plan_dirs, unknown_models
from assistant.training.preview import mask_question, policy_preview, render_policy_html
from assistant.training.sessions import NOT_YOUR_SESSION, Session, SessionError, may_run_session, sources_of
from ui import presentation
from ui.context import PortalContext
from ui.exports import export_folder
from ui.security import resolve_user

log = logging.getLogger(__name__)



def _err(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def _plan_choices(plans: dict) -> list[tuple[str, str]]:
    """(label, plan id) by title: the id is the value, not for the trainer to read ("(ki-kompass-starter)"
    stood after every title, a browser review); a title two plans share names the plan's file too."""
    titles = [p.title for _, p in plans.values()]
    return [(p.title if titles.count(p.title) == 1 else f"{p.title} ({path.name})", pid)
            for pid, (path, p) in plans.items()]


def _quiz_choices(plan) -> list[tuple[str, str]]:
    """(label, quiz item id): the question as the room reads it, without the plan's internal id ("m1-q1:");
    a question two modules share names its module too."""
    items = [(m, q) for m in plan.modules for q in m.quiz]
    questions = [q.question for _, q in items]
    return [(q.question if questions.count(q.question) == 1 else f"{m.title}: {q.question}", q.id) for m, q in items]


def _comparison_html(cmp) -> str:
    rows = "".join(f"<tr><th style=\"text-align:left;padding:4px\">{esc(a)}</th><td style=\"padding:4px\">{esc(b)}</td>"
                   f"<td style=\"padding:4px\">{esc(c)}</td></tr>" for a, b, c in cmp.summary_rows())
    cols = []
    for side in cmp.sides:
        err = f"<p style=\"color:#b3261e\">Fehler: {esc(side.error)}</p>" if side.error else ""
        cols.append(f"<div style=\"min-width:0\"><h3>{esc(side.variant.label)}</h3>{err}"
                    f"{render_answer_html(side.result)}{render_html(side.view, title='Blick unter die Haube')}</div>")
    return (f"<div class=\"kiportal-compare\"><h3>{esc(cmp_mod.KINDS_DE.get(cmp.kind, 'Vergleich'))}: "
            f"{esc(cmp.question)}</h3><table style=\"border-collapse:collapse\">{rows}</table>"
            f"<div style=\"display:grid;grid-template-columns:1fr 1fr;gap:1em\">{''.join(cols)}</div></div>")


def _results_html(results, participants: int) -> str:
    parts = [f"<p>Teilnehmende mit mindestens einer Antwort: <b>{int(participants)}</b> – anonym, ohne Namen.</p>"]
    for r in results:
        total = max(1, r.answers)
        share = "–" if r.share_correct is None else f"{r.share_correct:.0%}".replace("%", " %")
        rows = "".join(
            f"<tr><td style=\"padding:3px 8px\">{esc(opt)}{' ✓' if i in r.correct else ''}</td>"
            f"<td style=\"padding:3px 8px;width:45%\"><span style=\"display:inline-block;height:1em;background:#0b57d0;"
            f"width:{round(100 * r.counts[i] / total)}%\"></span> {r.counts[i]}</td></tr>"
            for i, opt in enumerate(r.options))
        parts.append(f"<h4>{esc(r.question)}</h4><table style=\"width:100%\">{rows}</table>"
                     f"<p>{presentation.answers_label(r.answers)} · Anteil richtig: <b>{esc(share)}</b></p>")
    return "<div class=\"kiportal-quiz-results\">" + "".join(parts) + "</div>"


def _plan_html(plan, path: Path, unknown: list[str]) -> str:
    parts = [f"<h3>{esc(plan.title)}</h3><p>{esc(plan.audience)} · {plan.duration_minutes} Minuten · "
             f"Datei {esc(path.name)}</p>"]
    if plan.description:
        parts.append(f"<p>{esc(plan.description)}</p>")
    if unknown:
        parts.append(f"<p style=\"color:#9a6b00\">Modelle, die es hier nicht gibt (das Standardmodell wird genommen): "
                     f"{esc(', '.join(unknown))}</p>")
    for m in plan.modules:
        parts.append(f"<h4>{esc(m.title)}</h4><p><b>Lernziel:</b> {esc(m.goal)}</p><ul>")
        for e in m.exercises:
            extra = ""
            if e.zone:
                extra = f" <em>(Ampel-Vorschau {esc(zone_label(e.zone))})</em>"
            elif e.compare:
                extra = f" <em>(Vergleich: {esc(cmp_mod.KINDS_DE[e.compare.kind])})</em>"
            discuss = "".join(f"<li>{esc(d)}</li>" for d in e.discuss)
            parts.append(f"<li><b>Übung:</b> {esc(e.question)}{extra}<br><b>Beobachten:</b> {esc(e.observe)}"
                         + (f"<ul>{discuss}</ul>" if discuss else "") + "</li>")
        for q in m.quiz:
            parts.append(f"<li><b>Quiz:</b> {esc(q.question)}</li>")
        parts.append("</ul>")
    return "<div class=\"kiportal-plan\">" + "".join(parts) + "</div>"


class TrainerUI:
    """Server-side handlers of the trainer tab (each checks the trainer role first).

    Methods, not closures, so tests can call them directly with a ``gr.Request``; the
    layout in :func:`build` only wires them to components.
    """

    def __init__(self, ctx: PortalContext) -> None:
        self.ctx = ctx
        self.settings = ctx.app.settings

    def _plans(self):
        return discover(plan_dirs(self.settings.home))

    def _collections(self, user) -> list[str]:
        """The collections the trainer may read (their department's and everyone's)."""
        try:
            scope = self.ctx.scope(user)
            return [c["name"] for c in self.ctx.app.catalog.collections() if scope.allows(c["name"])]
        except Exception as exc:  # an empty or unreachable catalog must not break the tab
            log.warning("collections not available: %s", exc)
            return []

    def _check_model(self, user, key: str | None) -> str:
        s = self.settings
        key = key or default_model(s, user.role)
        if key not in s.llm.models or not may_use(user.role, s.llm.models[key]):
            raise gr.Error("Dieses Modell steht Ihrer Rolle nicht zur Verfügung.", print_exception=False)
        return key

    def _set_display(self, sess: Session | None, display: dict) -> str:
        """Show ``display`` on the session's projector (a session checked by :meth:`_session`)."""
        if sess is not None:
            self.ctx.app.training_store.set_display(sess.id, display)
        return presentation.render_display(display)

    def ask(self, q: str, model_key: str, colls: list[str], k_: float, budget_: float, docs: bool, session_id: str | None,
            confirmed: bool, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        sess = self._chosen_session(user, session_id)
        key = self._check_model(user, model_key)
        if not (q or "").strip():
            raise gr.Error("Bitte eine Frage eingeben.", print_exception=False)
        try:
            result = self.ctx.app.assistant.answer(q, model=key, collections=colls or None, k=int(k_),
                                                   budget_tokens=int(budget_), use_documents=bool(docs),
                                                   confirmed=bool(confirmed), scope=self.ctx.scope(user))
        except ValueError as exc:
            raise _err(exc) from None
        view = build_view(result, self.settings.llm.models[key], k=int(k_), use_documents=bool(docs))
        if sess is not None:
            self.ctx.app.training_store.log(sess.id, "question", mask_question(result.question),
                                            mask_question(result.answer, of=result.question),
                                            detail={"model": result.model, "zone": result.zone,
                                                    "sources": sources_of(result)})
        slide = self._set_display(sess, presentation.display_for_answer(result))
        return render_answer_html(result), render_html(view), slide

    def kind_changed(self, kind: str, request: gr.Request):
        self.ctx.require(request, "trainer")
        is_models, is_num = kind == "models", kind in ("k", "budget")
        defaults = {"k": (2, 6), "budget": (150, 1500)}.get(kind, (None, None))
        return (gr.update(visible=is_models), gr.update(visible=is_models),
                gr.update(visible=is_num, value=defaults[0]), gr.update(visible=is_num, value=defaults[1]))

    def _run_compare(self, user, q, kind, model_key, lm, rm, lv, rv, colls):
        if kind == "models":
            lm, rm = self._check_model(user, lm), self._check_model(user, rm)
        key = self._check_model(user, model_key)
        try:
            pair = cmp_mod.variants(kind, self.settings, model=key, left=lm if kind == "models" else lv,
                                    right=rm if kind == "models" else rv)
            return cmp_mod.run_comparison(self.ctx.app.assistant, q, pair, self.settings, kind=kind,
                                          collections=colls or None, scope=self.ctx.scope(user))
        except ValueError as exc:
            raise _err(exc) from None

    def _log_comparison(self, sess: Session | None, cmp, exercise_id=""):
        if sess is not None:
            self.ctx.app.training_store.log(sess.id, "comparison", mask_question(cmp.question), exercise_id=exercise_id,
                                            detail={
                "kind": cmp.kind, "sides": [{"label": x.variant.label, "answer": mask_question(x.result.answer, of=cmp.question),
                                             "model": x.result.model,
                                             "zone": x.result.zone, "sources": sources_of(x.result)} for x in cmp.sides]})

    def compare(self, q, kind, model_key, lm, rm, lv, rv, colls, session_id, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        sess = self._chosen_session(user, session_id)
        cmp = self._run_compare(user, q, kind, model_key, lm, rm, lv, rv, colls)
        self._log_comparison(sess, cmp)
        slide = self._set_display(sess, presentation.display_for_comparison(cmp))
        return _comparison_html(cmp), slide

    def _policy(self, user, q, zone_or_model, model_key, colls):
        if zone_or_model == "model":
            key = self._check_model(user, model_key)
            return policy_preview(self.ctx.app, q, model=key, collections=colls or None, scope=self.ctx.scope(user))
        return policy_preview(self.ctx.app, q, zone=zone_or_model, collections=colls or None,
                              scope=self.ctx.scope(user))

    def _log_policy(self, sess: Session | None, pre, exercise_id=""):
        if sess is not None:
            self.ctx.app.training_store.log(sess.id, "policy", pre["masked_question"], exercise_id=exercise_id,
                                    detail={k_: pre[k_] for k_ in ("zone", "action", "action_label", "messages_de", "pii")})

    def policy(self, q, zone_or_model, model_key, colls, session_id, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        sess = self._chosen_session(user, session_id)
        try:
            pre = self._policy(user, q, zone_or_model, model_key, colls)
        except ValueError as exc:
            raise _err(exc) from None
        self._log_policy(sess, pre)
        slide = self._set_display(sess, presentation.display_for_policy(pre))
        return render_policy_html(pre), slide

    def _session_choices(self, user):
        """The running sessions ``user`` may run: their own, and for an admin everyone's (named by
        trainer, so an admin can end a session a colleague left running and sees whose it is)."""
        return [(f"{x.code} – {x.plan.title}" + ("" if x.trainer == user.name else f" (von {x.trainer})"), x.id)
                for x in self.ctx.app.training_store.active_sessions()
                if may_run_session(user.role, user.name, x.trainer)]

    def load_plans(self, current: str | None, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        plans, errors = self._plans()
        choices = _plan_choices(plans)
        value = current if current in plans else (next(iter(plans)) if plans else None)
        err_md = "\n\n".join(f"⚠ {esc(e)}".replace("\n", "  \n") for e in errors)
        sessions = self._session_choices(user)
        return (gr.update(choices=choices, value=value), err_md, gr.update(choices=sessions),
                gr.update(choices=self._collections(user)))

    def collection_choices(self, request: gr.Request):
        """The trainer's readable collections on page load (quietly none for other roles: every page
        load of staff ran it, and a refusal logged "denied trainer-only action" each time, a false
        alarm in the server log found by a browser review)."""
        user = resolve_user(request, self.ctx.app.settings, self.ctx.users)
        if user is None or not user.has("trainer"):
            return gr.update(choices=[])
        return gr.update(choices=self._collections(user))

    def _get_plan(self, plan_id: str | None):
        plans, _ = self._plans()
        if not plan_id or plan_id not in plans:
            raise gr.Error("Bitte zuerst einen Schulungsplan wählen („Pläne laden“).", print_exception=False)
        return plans[plan_id]

    def show_plan(self, plan_id: str | None, request: gr.Request):
        self.ctx.require(request, "trainer")
        if not plan_id:
            return "", gr.update(choices=[], value=None), gr.update(choices=[], value=None)
        path, p = self._get_plan(plan_id)
        ex_choices = [(f"{m.title}: {e.question}", e.id) for m, e in p.exercises()]
        q_choices = _quiz_choices(p)
        return (_plan_html(p, path, unknown_models(p, set(self.settings.llm.models))),
                gr.update(choices=ex_choices, value=ex_choices[0][1] if ex_choices else None),
                gr.update(choices=q_choices, value=q_choices[0][1] if q_choices else None))

    def run_exercise(self, plan_id, exercise_id, model_key, colls, session_id, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        sess = self._chosen_session(user, session_id)
        _, p = self._get_plan(plan_id)
        try:
            module, ex = p.exercise(exercise_id or "")
        except KeyError:
            raise gr.Error("Bitte eine Übung wählen.", print_exception=False) from None
        title = module.title
        note = ""
        key = model_key
        if ex.model:
            if ex.model in self.settings.llm.models and may_use(user.role, self.settings.llm.models[ex.model]):
                key = ex.model
            else:
                note = (f"<p style=\"color:#9a6b00\">Das Modell „{esc(ex.model)}“ gibt es hier nicht; "
                        "es wird das gewählte Modell verwendet.</p>")
        head = (f"<h3>{esc(title)}</h3><p><b>Frage:</b> {esc(ex.question)}</p><p><b>Beobachten:</b> {esc(ex.observe)}</p>"
                + ("<p><b>Diskussion:</b></p><ul>" + "".join(f"<li>{esc(d)}</li>" for d in ex.discuss) + "</ul>"
                   if ex.discuss else "") + note)
        try:
            if ex.zone:
                pre = policy_preview(self.ctx.app, ex.question, zone=ex.zone, collections=colls or None,
                                     scope=self.ctx.scope(user))
                self._log_policy(sess, pre, ex.id)
                slide = self._set_display(sess, presentation.display_for_policy(pre, title=title))
                return head + render_policy_html(pre), slide
            if ex.compare:
                c = ex.compare
                lm = c.left if c.kind == "models" else None
                rm = c.right if c.kind == "models" else None
                if c.kind == "models":
                    known = {k_ for _, k_ in model_choices(self.settings, user.role)}
                    lm = lm if lm in known else key
                    rm = rm if rm in known else key
                result = self._run_compare(user, ex.question, c.kind, key, lm, rm, c.left, c.right, colls)
                self._log_comparison(sess, result, ex.id)
                slide = self._set_display(sess, presentation.display_for_comparison(result, title=title,
                                                                                observe=ex.observe))
                return head + _comparison_html(result), slide
            key = self._check_model(user, key)
            res = self.ctx.app.assistant.answer(ex.question, model=key, collections=colls or None,
                                                scope=self.ctx.scope(user))
        except ValueError as exc:
            raise _err(exc) from None
        if sess is not None:
            self.ctx.app.training_store.log(sess.id, "exercise", res.question, res.answer, exercise_id=ex.id,
                                            detail={"model": res.model, "zone": res.zone, "sources": sources_of(res)})
        view = build_view(res, self.settings.llm.models[key], k=self.settings.llm.passages)
        slide = self._set_display(sess, presentation.display_for_answer(res, title=title, observe=ex.observe))
        return head + render_answer_html(res) + render_html(view), slide

    def _session_md(self, sess) -> str:
        return (f"### Sitzung läuft – Teilnahmecode: `{sess.code}`\nTeilnehmende öffnen im Portal den Tab "
                f"„Schulung“ und geben den Code ein. Plan: {esc(sess.plan.title)}")

    def start(self, plan_id, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        _, p = self._get_plan(plan_id)
        store = self.ctx.app.training_store
        sess = store.start(p, user.name)
        self.ctx.audit.record("training_start", user.name, sess.code, {"plan": p.id})
        slide = self._set_display(sess, {"kind": "welcome", "title": p.title, "code": sess.code})
        return gr.update(choices=self._session_choices(user), value=sess.id), self._session_md(sess), slide

    def _session(self, user, session_id: str | None):
        """The session ``session_id`` names, if ``user`` may run it (the one door for a session id
        from the client); another trainer's session is refused and audited."""
        store = self.ctx.app.training_store
        sess = store.get(str(session_id)) if session_id else None
        if sess is None:
            raise gr.Error("Bitte zuerst eine Sitzung starten oder wählen.", print_exception=False)
        if not may_run_session(user.role, user.name, sess.trainer):
            log.warning("refused %s access to training session %s of %s", user.name, sess.code, sess.trainer)
            self.ctx.audit.record("training_refused", user.name, sess.code, {"trainer": sess.trainer})
            raise gr.Error(NOT_YOUR_SESSION, print_exception=False)
        return store, sess

    def _chosen_session(self, user, session_id: str | None) -> Session | None:
        """The session chosen for a demonstration (None: none chosen), checked like :meth:`_session`
        before anything runs, so a refused call neither answers nor writes."""
        return self._session(user, session_id)[1] if session_id else None

    def pick_session(self, session_id, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        if not session_id:
            return "", presentation.render_display(None)
        store, sess = self._session(user, session_id)
        return self._session_md(sess), presentation.render_for(self.ctx, user, sess.display, sess.code)

    def open_quiz(self, session_id, item_id, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        store, sess = self._session(user, session_id)
        try:
            store.open_item(sess.id, item_id)
            item = sess.plan.quiz_item(item_id)
        except (SessionError, KeyError) as exc:
            raise _err(exc) from None
        slide = self._set_display(sess, presentation.display_for_quiz(item, code=sess.code))
        return (f"<p>Freigegeben: <b>{esc(item.question)}</b> – Teilnehmende können jetzt unter „Schulung“ "
                f"antworten (Code {esc(sess.code)}).</p>"), slide

    def quiz_results(self, session_id, item_id, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        store, sess = self._session(user, session_id)
        try:
            results = store.results(sess.id, item_id or None)
        except SessionError as exc:
            raise _err(exc) from None
        slide = presentation.render_for(self.ctx, user, sess.display, sess.code)
        if item_id and results and sess.active:
            slide = self._set_display(sess, presentation.display_for_result(results[0]))
        return _results_html(results, store.participants(sess.id)), slide

    def end(self, session_id, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        store, sess = self._session(user, session_id)
        try:
            if sess.active:
                store.set_display(sess.id, {"kind": "ended", "title": sess.plan.title})
                store.end(sess.id)
            md, html_text = store.handout(sess.id, readable=self.ctx.source_filter(user))
        except SessionError as exc:
            raise _err(exc) from None
        self.ctx.audit.record("training_end", user.name, sess.code, {"plan": sess.plan.id})
        folder = export_folder(owner=user.name)
        stem = f"handout-{sess.plan.id}-{sess.code}"
        md_path, html_path = folder / f"{stem}.md", folder / f"{stem}.html"
        md_path.write_text(md, encoding="utf-8")
        html_path.write_text(html_text, encoding="utf-8")
        return (gr.update(value=[str(md_path), str(html_path)], visible=True),
                f"Sitzung {sess.code} beendet. Das Handout steht zum Herunterladen bereit.",
                gr.update(choices=self._session_choices(user), value=None))

    def projector(self, session_id, request: gr.Request):
        user = self.ctx.require(request, "trainer")
        if not session_id:
            return presentation.render_display(None)
        _, sess = self._session(user, session_id)
        return presentation.render_for(self.ctx, user, sess.display, sess.code)


# -- layout ------------------------------------------------------------------------------
def build(ctx: PortalContext) -> None:
    """Create the trainer components in the current gr.Blocks/gr.Tab context."""
    h = TrainerUI(ctx)
    s = ctx.app.settings
    models = model_choices(s, "trainer")
    default = default_model(s, "trainer")
    keys = [key for _, key in models]
    colls: list[str] = []  # filled per trainer on page load: the page config is the same for everyone
    # choices known at build time; the dropdowns accept other values (plans and sessions change while
    # the server runs) and every handler validates them
    plan_choices = _plan_choices(h._plans()[0])

    gr.Markdown("## KI-Kompass – Trainermodus\nZeigen, was hinter einer Antwort steckt: gefundene Textstellen, "
                "Prompt, Modell und Ampel-Zone. Alle Funktionen nur für die Rolle *Trainer/in*.")
    with gr.Row():
        # options, not a drop-down, as in the chat: its one-line input cut a long label („Grün · Nur
        # Textstellen (ohne…“, on a phone „Grün · Testmo…“); an option's label wraps, so the chosen
        # model and the others read in full. At least 320 px: on a phone it takes a row of its own
        model = gr.Radio(choices=models, value=default, label="KI-Modell (mit Ampel-Zone, Betreiber, Standort)",
                         scale=3, min_width=320, elem_id="kp-tr-model")
        collections = gr.Dropdown(choices=colls, value=[], multiselect=True, label="Sammlungen (leer = alle)", scale=2,
                                  allow_custom_value=True)
        session = gr.Dropdown(choices=[], value=None, label="Laufende Sitzung (Fragen kommen ins Handout)", scale=2,
                              elem_id="kp-tr-session", allow_custom_value=True)

    with gr.Tabs(overflow_behavior="wrap"):
        # -- Blick unter die Haube ------------------------------------------------------
        with gr.Tab("Blick unter die Haube", id="tr-inspect"):
            with gr.Row():
                question = gr.Textbox(label="Frage", lines=2, scale=4, elem_id="kp-tr-question",
                                      placeholder="z. B. Wie lange werden meine Chats im KI-Portal gespeichert?")
                ask_btn = gr.Button("Fragen & unter die Haube schauen", variant="primary", scale=1,
                                    elem_id="kp-tr-ask")
            with gr.Row():
                k = gr.Slider(1, 10, value=s.llm.passages, step=1, label="Textstellen für das Modell (k)")
                budget = gr.Slider(100, 4000, value=s.llm.prompt_budget_tokens, step=50,
                                   label="Token-Budget für Quellen")
                use_docs = gr.Checkbox(value=True, label="Mit Dokumenten")
                confirm = gr.Checkbox(value=False, label="Personendaten für Zone Gelb bestätigen",
                                      info="Ohne Bestätigung stoppt die Ampel Fragen mit Personendaten an gelbe Modelle.")
            answer_html = gr.HTML("", elem_id="kp-tr-answer")
            inspect_html = gr.HTML("", elem_id="kp-tr-inspect")

        # -- Vergleich --------------------------------------------------------------------
        with gr.Tab("Vergleich", id="tr-compare"):
            with gr.Row():  # at least 320 px each: on a phone one under the other (beside each other the
                # kinds' labels broke after every word)
                c_question = gr.Textbox(label="Frage", lines=2, scale=4, min_width=320, elem_id="kp-tr-c-question")
                c_kind = gr.Radio(choices=[(v, k_) for k_, v in cmp_mod.KINDS_DE.items()], value="documents",
                                  label="Was wird verglichen?", scale=3, min_width=320, elem_id="kp-tr-c-kind")
            with gr.Row():
                # options as above: side by side on a laptop (each half the width, a label in one or two
                # lines), one under the other on a phone (beside each other, a drop-down showed „Grün · Nur
                # Text“)
                c_left_model = gr.Radio(choices=models, value=default, label="Modell links", visible=False,
                                        min_width=320, elem_id="kp-tr-c-left-model")
                c_right_model = gr.Radio(choices=models, value="extraktiv" if "extraktiv" in keys else default,
                                         label="Modell rechts", visible=False, min_width=320,
                                         elem_id="kp-tr-c-right-model")
                c_left = gr.Number(value=2, label="Wert links", precision=0, visible=False)
                c_right = gr.Number(value=6, label="Wert rechts", precision=0, visible=False)
            c_btn = gr.Button("Vergleichen", variant="primary", elem_id="kp-tr-compare")
            c_html = gr.HTML("", elem_id="kp-tr-compare-result")

        # -- Ampel ------------------------------------------------------------------------
        with gr.Tab("Ampel-Vorschau", id="tr-policy"):
            gr.Markdown("Was würde die Ampel tun? Es wird **kein** Modell aufgerufen – gefahrlos auch mit echten Fällen.")
            with gr.Row():
                p_question = gr.Textbox(label="Frage", lines=2, scale=4, elem_id="kp-tr-p-question",
                                        placeholder="z. B. Darf dieser Bescheid an Frau … in das rote Modell?")
                p_zone = gr.Radio(choices=[("Gewähltes Modell", "model")] + zone_choices(), value="red",
                                  label="Prüfen für", scale=3)
            p_btn = gr.Button("Ampel prüfen", variant="primary", elem_id="kp-tr-policy")
            p_html = gr.HTML("", elem_id="kp-tr-policy-result")

        # -- Plan & Sitzung ---------------------------------------------------------------
        with gr.Tab("Schulungsplan & Sitzung", id="tr-plan"):
            with gr.Row():
                plan = gr.Dropdown(choices=plan_choices, value=None, label="Schulungsplan", scale=3, elem_id="kp-tr-plan",
                                   allow_custom_value=True)
                plans_btn = gr.Button("Pläne laden", scale=1, elem_id="kp-tr-plans")
                start_btn = gr.Button("Sitzung starten", variant="primary", scale=1, elem_id="kp-tr-start")
            plan_errors = gr.Markdown("", elem_id="kp-tr-plan-errors")
            session_info = gr.Markdown("", elem_id="kp-tr-session-info")
            with gr.Accordion("Planübersicht", open=False):
                plan_html = gr.HTML("", elem_id="kp-tr-plan-html")
            with gr.Row():
                exercise = gr.Dropdown(choices=[], value=None, label="Übung", scale=4, elem_id="kp-tr-exercise",
                                       allow_custom_value=True)
                ex_btn = gr.Button("Übung vorführen", variant="primary", scale=1, elem_id="kp-tr-run")
            ex_html = gr.HTML("", elem_id="kp-tr-exercise-result")
            with gr.Row():
                quiz = gr.Dropdown(choices=[], value=None, label="Quizfrage", scale=4, elem_id="kp-tr-quiz",
                                   allow_custom_value=True)
                open_btn = gr.Button("Freigeben", scale=1, elem_id="kp-tr-quiz-open")
                results_btn = gr.Button("Ergebnis zeigen", scale=1, elem_id="kp-tr-quiz-results")
            quiz_html = gr.HTML("", elem_id="kp-tr-quiz-result")
            with gr.Row():
                end_btn = gr.Button("Sitzung beenden & Handout erstellen", variant="stop", elem_id="kp-tr-end")
            handout = gr.File(label="Handout (Markdown und HTML)", file_count="multiple", interactive=False,
                              visible=False, elem_id="kp-tr-handout")

        # -- projector ----------------------------------------------------------------------
        with gr.Tab("Projektoransicht", id="tr-projector"):
            gr.Markdown("Große Schrift für den Beamer: zeigt, was zuletzt in der gewählten Sitzung vorgeführt wurde. "
                        "Für einen zweiten Bildschirm: dort im Tab „Schulung“ mit dem Code teilnehmen.")
            with gr.Row():
                proj_btn = gr.Button("Aktualisieren", elem_id="kp-tr-proj-refresh")
                proj_full = gr.Button("Vollbild")
            proj_html = gr.HTML(presentation.render_display(None), css_template=presentation.PROJECTOR_CSS,
                                elem_id="kp-tr-projector")

    # -- events: each handler checks the role first ------------------------------------------
    ask_btn.click(h.ask, inputs=[question, model, collections, k, budget, use_docs, session, confirm],
                  outputs=[answer_html, inspect_html, proj_html], api_name="trainer_inspect", concurrency_id="answer")
    c_kind.change(h.kind_changed, inputs=[c_kind], outputs=[c_left_model, c_right_model, c_left, c_right],
                  api_visibility="private", concurrency_limit=None)
    c_btn.click(h.compare, inputs=[c_question, c_kind, model, c_left_model, c_right_model, c_left, c_right, collections,
                                   session], outputs=[c_html, proj_html], api_name="trainer_compare", concurrency_id="answer")
    p_btn.click(h.policy, inputs=[p_question, p_zone, model, collections, session], outputs=[p_html, proj_html],
                api_name="trainer_policy", concurrency_limit=None)
    # -- plans and sessions ----------------------------------------------------------------
    plans_btn.click(h.load_plans, inputs=[plan], outputs=[plan, plan_errors, session, collections],
                    api_name="trainer_plans", concurrency_limit=None)
    plan.change(h.show_plan, inputs=[plan], outputs=[plan_html, exercise, quiz], api_name="trainer_plan",
                concurrency_limit=None)
    ex_btn.click(h.run_exercise, inputs=[plan, exercise, model, collections, session], outputs=[ex_html, proj_html],
                 api_name="trainer_exercise", concurrency_id="answer")
    start_btn.click(h.start, inputs=[plan], outputs=[session, session_info, proj_html],
                    api_name="trainer_session_start", concurrency_limit=None)
    session.change(h.pick_session, inputs=[session], outputs=[session_info, proj_html], api_visibility="private",
                   concurrency_limit=None)
    open_btn.click(h.open_quiz, inputs=[session, quiz], outputs=[quiz_html, proj_html], api_name="trainer_quiz_open",
                   concurrency_limit=None)
    results_btn.click(h.quiz_results, inputs=[session, quiz], outputs=[quiz_html, proj_html],
                      api_name="trainer_quiz_results", concurrency_limit=None)
    end_btn.click(h.end, inputs=[session], outputs=[handout, session_info, session], api_name="trainer_session_end",
                  concurrency_limit=None)
    proj_btn.click(h.projector, inputs=[session], outputs=[proj_html], api_name="trainer_projector",
                   concurrency_limit=None)
    root = gr.context.Context.root_block
    if root is not None:  # the trainer's readable collections, on page load
        root.load(h.collection_choices, outputs=[collections], api_name="trainer_collection_choices",
                  show_progress="hidden", concurrency_limit=None)
    proj_full.click(None, js="() => { const el = document.querySelector('#kp-tr-projector'); "
                             "if (el && el.requestFullscreen) el.requestFullscreen(); }")


__all__ = ["build", "PlanError", "TrainerUI"]
