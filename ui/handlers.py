"""What the chat tab does, as plain functions: testable without a browser or a server.

Why plain: gradio exposes every event as an HTTP endpoint, so the security-relevant
logic (who may ask, with which model, whose chats may be opened) must not depend on
the layout. Each public method takes the ``gr.Request`` and checks the user first;
:mod:`ui.portal` only maps the returned plain data onto components.

Everything shown in the chat is escaped here: answers, questions and snippets come
from documents and users and may contain HTML or Markdown meant to attack the page.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Iterator, Sequence

from assistant.questions import MAX_QUESTION_CHARS
from assistant.access import visible_citations
from assistant.chats import ChatNotFound, ChatStore, qa_pairs, stored_notices
from assistant.citations import parse_citations
from assistant.escaping import md_esc
from assistant.grounding import is_warning
from assistant.model_choice import default_model, model_choices, model_label
from assistant.policy.ampel import allowed_classifications, quoted_classes
from assistant.policy.pii import ZONE_ACTIONS
from assistant.policy.zones import CLASSIFICATIONS
from assistant.users import ROLES, User
from corpus.models import ocr_label, page_label
from ui.context import PortalContext
from corpus.ligatures import close_gaps
from ui.docview import doc_link, opens_as_text, quoted_units, text_link
from ui.source_view import SourceItem, attach_quotes, merge_sources, notice_html
from ui.source_view import sources_html as source_list_html
from ui.security import START_PASSWORD, PermissionDenied
from ui.texts import t

log = logging.getLogger(__name__)



class UserError(ValueError):
    """A problem the person can fix (shown as a message, not logged as a failure)."""


#: the answer bubble between the sources and the model's first word: the local model reads the found
#: passages for seconds first (7 to 19 s on two cores), and "Antwort wird geschrieben …" said something
#: untrue all that time (a browser review)
ANSWER_READING = "Das Modell liest die gefundenen Textstellen …"
#: the same moment without a model ("Nur Textstellen"): the answer is quoted from the passages
ANSWER_QUOTING = "Die Antwort wird aus den gefundenen Textstellen zusammengestellt …"


def reading_note(seconds: float | None) -> str:
    """:data:`ANSWER_READING` with the wait the model's last answers foretell
    (:class:`assistant.reading_time.ReadingSpeed`): „(etwa 20 s)“ in steps of 5 s, whole minutes from
    90 s; none before the model has answered once, nor under 5 s, where the first word is there before
    the note is read."""
    if seconds is None or seconds < 5:
        return ANSWER_READING
    wait = f"etwa {5 * round(seconds / 5)} s" if seconds < 90 else f"etwa {round(seconds / 60)} min"
    return f"Das Modell liest die gefundenen Textstellen ({wait}) …"


@dataclass
class ChatView:
    """What the chat area shows: chatbot messages with their stored ids (None while unsaved)."""

    chat_id: str | None
    messages: list[dict] = field(default_factory=list)
    message_ids: list[str | None] = field(default_factory=list)
    warning: str | None = None
    pending: str | None = None
    done: bool = False
    answer_id: str | None = None


@dataclass
class SessionView:
    user: User
    user_label: str
    show_admin: bool
    show_trainer: bool
    models: list[tuple[str, str]]
    default_model: str | None
    collections: list[str]
    chats: list[tuple[str, str]]
    must_change: bool = False  # on an admin's start password: the page offers only „Mein Konto“




def role_label(role: str) -> str:
    return t(f"role_{role}") if role in ROLES else role


def model_detail(settings, key: str | None) -> str:
    """The line under the chat's model options: what the option's label (zone, name, operator,
    location) does not say, namely which documents the model may read (``policy.zone_access``) and
    what becomes of personal data in a question (``assistant.policy.pii``). It repeated the label
    (a browser review)."""
    p = settings.llm.models.get(key or "")
    if p is None:
        return ""
    try:
        allowed = allowed_classifications(p.zone, settings.policy.zone_access)
    except ValueError:  # a zone without an access rule sees nothing (the policy refuses it too)
        allowed = frozenset()
    classes = [c for c in CLASSIFICATIONS if c in allowed]
    if len(classes) == len(CLASSIFICATIONS):
        docs = t("model_docs_all")
    elif classes:
        docs = t("model_docs_some", classes=quoted_classes(classes))
    else:
        docs = t("model_docs_none")
    return t("model_detail", docs=docs, pii=t(f"model_pii_{ZONE_ACTIONS.get(p.zone, 'block')}"))


class ChatHandlers:
    """The chat tab's server side for one portal (one :class:`PortalContext`)."""

    def __init__(self, ctx: PortalContext) -> None:
        self.ctx = ctx
        self.settings = ctx.app.settings
        self.chats = ChatStore(ctx.db)
        self.signer = ctx.app.link_signer

    # -- who ------------------------------------------------------------------------
    def user(self, request, role: str = "staff") -> User:
        return self.ctx.require(request, role)

    def session(self, request) -> SessionView:
        """Everything the page needs on load for this user (tab visibility is cosmetic)."""
        user = self.ctx.require(request, "staff", start_password_ok=True)
        if self.settings.auth.mode == "none":
            label = t("signed_in_local")
        else:
            label = t("signed_in", name=md_esc(user.name), role=role_label(user.role))
        if user.must_change:  # nothing of the portal until the start password is replaced
            return SessionView(user, f"{label}  \n**{START_PASSWORD}**", False, False, [], None, [], [],
                               must_change=True)
        return SessionView(user, label, user.has("admin"), user.has("trainer"), self.model_choices(user),
                           default_model(self.settings, user.role),
                           self.collection_choices(user), self._chat_choices(user))

    # -- models and collections ----------------------------------------------------------
    def model_choices(self, user: User) -> list[tuple[str, str]]:
        """(label, key) of the models the user's role may choose, label with zone and operator."""
        return model_choices(self.settings, user.role)

    def all_model_choices(self) -> list[tuple[str, str]]:
        return [(model_label(key, p), key) for key, p in self.settings.llm.models.items()]

    def model_description(self, key: str | None) -> str:
        return model_detail(self.settings, key)

    def resolve_model(self, user: User, key: str | None) -> str:
        allowed = [k for _, k in self.model_choices(user)]
        if not allowed:
            raise UserError(t("no_models"))
        if not key:
            return default_model(self.settings, user.role)
        if key not in allowed:
            log.warning("user %s (%s) asked with model %r outside their role", user.name, user.role, key)
            raise PermissionDenied(t("model_not_allowed"))
        return key

    def collection_choices(self, user: User | None = None) -> list[str]:
        """Collections with documents that ``user`` may read (all of them without a user: the
        layout before the page load narrows it; handlers check the scope either way)."""
        scope = self.ctx.scope(user) if user is not None else None
        return [c["name"] for c in self.ctx.app.catalog.collections()
                if c.get("documents") and (scope is None or scope.allows(c["name"]))]

    def resolve_collections(self, user: User, names: Sequence[str] | str | None) -> list[str] | None:
        """The chosen collections, each one the user may read. An unreadable one gets the same
        message as one that does not exist, so a crafted name reveals nothing."""
        if not names:
            return None
        if isinstance(names, str):
            names = [names]
        scope = self.ctx.scope(user)
        known = {c["name"] for c in self.ctx.app.catalog.collections()}
        for name in names:
            if name not in known or not scope.allows(name):
                raise UserError(t("unknown_collection", name=name))
        return list(names)

    # -- chats -----------------------------------------------------------------------------
    def _chat_choices(self, user: User) -> list[tuple[str, str]]:
        out = []
        for c in self.chats.list_chats(user.name):
            when = time.strftime("%d.%m. %H:%M", time.localtime(c["updated_at"]))
            out.append((f"{c['title'] or t('export_title')} · {when}", c["id"]))
        return out

    def list_chats(self, request) -> list[tuple[str, str]]:
        return self._chat_choices(self.user(request))

    def open_chat(self, request, chat_id: str) -> ChatView:
        user = self.user(request)
        try:
            chat = self.chats.get_chat(user.name, chat_id)
        except ChatNotFound:
            raise UserError(t("chat_not_found")) from None
        msgs, ids = self._render_messages(user, chat["messages"])
        return ChatView(chat["id"], msgs, ids, done=True)

    def readable_citations(self, user: User, citations: Sequence[dict]) -> list[dict]:
        """The stored citations ``user`` may still read: a citation to a collection no longer
        readable (revoked, or the document moved) is left out; the answer text stays."""
        return visible_citations(self.ctx.scope(user), citations, self.ctx.app.catalog)

    def delete_chat(self, request, chat_id: str | None) -> None:
        user = self.user(request)
        if not chat_id:
            raise UserError(t("no_chat"))
        try:
            self.chats.delete_chat(user.name, chat_id)
        except ChatNotFound:
            raise UserError(t("chat_not_found")) from None
        self.ctx.audit.record("chat_delete", user.name, chat_id)

    def export_chat(self, request, chat_id: str | None, fmt: str = "md") -> tuple[str, str | bytes]:
        """(file name, content) of the chat: Markdown text, or a Word document's bytes for ``fmt="docx"``."""
        user = self.user(request)
        if not chat_id:
            raise UserError(t("no_chat"))
        try:
            export = self.chats.export_docx if fmt == "docx" else self.chats.export_markdown
            content = export(user.name, chat_id, citations=lambda cs: self.ctx.sources_for_export(user, cs))
            chat = self.chats.get_chat(user.name, chat_id)
        except ChatNotFound:
            raise UserError(t("chat_not_found")) from None
        stem = re.sub(r"[^\w-]+", "-", chat["title"] or "chat", flags=re.UNICODE).strip("-")[:50] or "chat"
        day = time.strftime("%Y-%m-%d", time.localtime(chat["created_at"]))
        return f"{day}-{stem}.{'docx' if fmt == 'docx' else 'md'}", content

    # -- rendering ---------------------------------------------------------------------------
    def _render_messages(self, user: User, stored: Sequence[dict]) -> tuple[list[dict], list[str | None]]:
        msgs, ids = [], []
        scope = self.ctx.scope(user)
        for m in stored:
            if m["role"] == "user":
                msgs.append({"role": "user", "content": md_esc(m["content"])})
            else:
                meta = m.get("meta") or {}
                citations = visible_citations(scope, m.get("citations") or [], self.ctx.app.catalog)
                msgs.append({"role": "assistant", "content": self.render_answer(
                    user, m["content"], citations, stored_notices(meta))})
            ids.append(m["id"])
        return msgs, ids

    def render_sources(self, user: User, citations: Sequence[dict], answer: str = "") -> str:
        """The sources as one HTML block (:mod:`ui.source_view`: one entry per page, the quoted
        sentence unless ``answer`` shows it already, the longer excerpt on demand; every value
        escaped, links signed for ``user``)."""
        catalog = self.ctx.app.catalog
        records = catalog.records(str(c.get("doc_id") or "") for c in citations)

        def where(item: SourceItem) -> str:
            rec = records.get(item.doc_id)
            place = page_label(item.page, item.citations[0].get("page_kind") or (rec.page_kind if rec else None))
            ocr = ocr_label(rec.ocr_confidence(item.page)) if rec is not None else ""
            return f"{place} ({ocr})".strip() if ocr else place

        def place(item: SourceItem) -> tuple[Any, int | None, list[int]] | None:
            rec = records.get(item.doc_id)
            if rec is None or rec.status != "indexed":
                return None
            cited = next((c for c in item.citations if c.get("marks")), item.citations[0])
            if cited.get("version") and cited["version"] != rec.sha256[:16]:
                return rec, None, []  # re-indexed since: its passages' numbers name other text now
            return rec, cited.get("chunk"), list(cited.get("marks") or ())

        def link(item: SourceItem) -> str | None:
            found = place(item)
            return doc_link(self.signer, found[0], user.name, item.page, found[1], found[2]) if found else None

        def marked_link(item: SourceItem) -> str | None:
            found = place(item)
            if found is None or opens_as_text(found[0]) or not found[2]:
                return None  # offered where it marks something: while streaming and on refusals it would not
            return text_link(self.signer, found[0], user.name, item.page, found[1], found[2])

        items = merge_sources(citations)
        for item in items:  # a stored chat names its sources by today's readable title too
            rec = records.get(item.doc_id)
            if rec is not None:
                item.title = rec.shown_title
        return source_list_html(items, heading=t("sources"), where=where, link=link, text_link=marked_link,
                                text_label=t("source_text_view"), answer=answer)

    def render_answer(self, user: User, answer: str, citations: Sequence[dict], notices: Sequence[str] = (),
                      sources_html: str | None = None) -> str:
        parts = [md_esc(answer.strip()) if answer.strip() else ""]
        for notice in dict.fromkeys(notices):  # dedupe, keep order
            parts.append(notice_html(notice, is_warning(notice)))
        src = sources_html if sources_html is not None else self.render_sources(user, citations, answer)
        if src:
            parts.append(src)
        return "\n\n".join(p for p in parts if p)

    def _enrich(self, citations: Sequence[Any], quotes: Sequence[Any] = ()) -> list[dict]:
        """Citations as stored: plus the page kind (Seite/Folie), the document's version and, with the
        answer's ``quotes``, the quote and the pieces of the cited passage it is made of (``marks``,
        :func:`ui.docview.quoted_units`), which the text view marks.

        The chain names the cited passage (``chunk``, ``chunk_id``; guessed from the snippet, an
        overlapping neighbour won and nothing was marked, a review). This runs before the first word
        is shown, so it reads the cited documents' records in one query and the cited passages only."""
        out = [asdict(c) if is_dataclass(c) else dict(c) for c in citations]
        catalog = self.ctx.app.catalog
        records = catalog.records(d["doc_id"] for d in out)
        for d in out:
            rec = records.get(d["doc_id"])
            d["page_kind"] = rec.page_kind if rec else None
            d["format"] = rec.format if rec else ""
            d["collection"] = rec.collection if rec else d.get("collection")
            if rec is not None:
                d["version"] = rec.sha256[:16]  # marks count pieces of this version's text (render_sources)
        attach_quotes(out, quotes)
        quoted = [d for d in out if d.get("quote") and d.get("chunk_id") and records.get(d["doc_id"])]
        if quoted:
            chunks = catalog.chunks_by_ids([d["chunk_id"] for d in quoted])
            gaps = self.ctx.app.split_documents.gaps([records[d["doc_id"]] for d in quoted])
            for d in quoted:
                chunk = chunks.get(d["chunk_id"])
                if chunk is not None:  # the passage as the text view shows it (corpus.ligatures.readable_chunks)
                    text = close_gaps(chunk.text) if d["doc_id"] in gaps else chunk.text
                    d["marks"] = quoted_units(text, d["quote"])
        return out

    # -- asking ---------------------------------------------------------------------------------
    def ask(self, request, question: str, chat_id: str | None = None, model: str | None = None,
            collections: Sequence[str] | None = None, confirmed: bool = False) -> Iterator[ChatView]:
        """Stream the answer as successive views; store question and answer when done.

        A yellow-zone warning (personal data) stores nothing: the view carries the warning and
        the pending question, and the UI re-sends it with ``confirmed=True`` on request.
        """
        user = self.user(request)
        question = (question or "").strip()
        if not question:
            raise UserError(t("empty_question"))
        if len(question) > MAX_QUESTION_CHARS:
            raise UserError(t("question_too_long", n=MAX_QUESTION_CHARS))
        key = self.resolve_model(user, model)
        colls = self.resolve_collections(user, collections)
        scope = self.ctx.scope(user)
        t0 = time.perf_counter()

        prior: list[dict] = []
        if chat_id:
            try:
                prior = self.chats.get_chat(user.name, chat_id)["messages"]
            except ChatNotFound:
                raise UserError(t("chat_not_found")) from None
        history = qa_pairs(prior)
        base_msgs, base_ids = self._render_messages(user, prior)
        user_msg = {"role": "user", "content": md_esc(question)}

        def view(content: str) -> ChatView:
            return ChatView(chat_id, base_msgs + [user_msg, {"role": "assistant", "content": content}],
                            base_ids + [None, None])

        progress = t("answer_pending")
        text, sources_html, first_token_ms, result = "", "", None, None

        def shown() -> str:
            """The answer so far under its sources; until it has a word, what is being done instead."""
            if text.strip():
                return self.render_answer(user, text, [], (), sources_html)
            return "\n\n".join(p for p in (f"*{progress}*", self.render_answer(user, "", [], (), sources_html)) if p)

        yield view(shown())
        try:
            for ev in self.ctx.app.assistant.stream(question, history, model=key, collections=colls,
                                                    confirmed=confirmed, scope=scope):
                kind = ev["type"]
                if kind == "sources":
                    sources_html = self.render_sources(user, self._enrich(ev["citations"]))
                    if ev["citations"]:  # (without any, the refusal follows at once)
                        progress = self.progress_after_sources(key, ev.get("reading_s"))
                    yield view(shown())
                    continue
                if kind == "token":
                    if first_token_ms is None:
                        first_token_ms = round((time.perf_counter() - t0) * 1000, 1)
                    text += ev["text"]
                elif kind == "reset":
                    text = ev["text"]
                elif kind == "done":
                    result = ev["result"]
                    break
                else:
                    continue
                yield view(shown())
        except (UserError, PermissionDenied):
            raise
        except Exception:
            log.exception("answer failed for model %s", key)
            raise UserError(t("answer_failed")) from None
        if result is None:
            raise UserError(t("answer_failed"))

        latency_ms = round((time.perf_counter() - t0) * 1000, 1)
        policy = result.policy or {}
        if policy.get("action") == "warn" and not confirmed:
            self.ctx.audit.record("policy_warn", self.ctx.audit.usage_actor(user.name), key,
                                  {"zone": result.zone, "pii": [p.get("kind") for p in policy.get("pii", [])]})
            warning = "\n\n".join([t("warn_heading"), *[md_esc(m) for m in policy.get("messages_de") or []]])
            yield ChatView(chat_id, base_msgs, base_ids, warning=warning, pending=question, done=True)
            return

        if chat_id is None:
            chat_id = self.chats.create_chat(user.name)
        user_id = self.chats.add_message(user.name, chat_id, "user", question,
                                         meta={"model": key, "collections": colls, "confirmed": confirmed})
        citations = self._enrich(result.citations, result.quotes)
        cited = set(parse_citations(result.answer))
        meta = {
            "latency_ms": latency_ms,
            "first_token_ms": first_token_ms,
            "refused": bool(result.refused),
            "model": key,
            "model_label": result.model,
            "zone": result.zone,
            "mode": result.mode,
            "doc_ids": list(dict.fromkeys(c["doc_id"] for c in citations if c["n"] in cited)),
            "source_doc_ids": list(dict.fromkeys(c["doc_id"] for c in citations)),
            "policy": policy.get("action", ""),
            "confirmed": confirmed,
            "collections": colls,
            "notices": list(result.notices),
            "timings": dict(result.timings),
            "fallback": result.fallback,
        }
        answer_id = self.chats.add_message(user.name, chat_id, "assistant", result.answer, citations, meta)
        self.ctx.audit.record_question(user.name, question, {
            "refused": meta["refused"], "latency_ms": latency_ms, "model": key, "zone": result.zone,
            "policy": meta["policy"], "confirmed": confirmed})
        final = {"role": "assistant", "content": self.render_answer(user, result.answer, citations, result.notices)}
        yield ChatView(chat_id, base_msgs + [user_msg, final], base_ids + [user_id, answer_id], done=True,
                       answer_id=answer_id)

    def progress_after_sources(self, key: str, reading_s: float | None = None) -> str:
        """What the answer bubble says between the sources and the first word of the answer: the
        model reads the passages (seconds with the local model; ``reading_s`` as foretold by the chain),
        or, without a model, they are quoted."""
        profile = self.settings.llm.models.get(key)
        return ANSWER_QUOTING if profile is None or profile.mode == "extractive" else reading_note(reading_s)

    # -- feedback -------------------------------------------------------------------------------
    def rate(self, request, message_id: str | None, rating: int, comment: str = "") -> str:
        return self._feedback(self.user(request), message_id, rating, comment, "feedback")

    def comment(self, request, message_id: str | None, comment: str) -> str:
        """Add a comment to the user's existing rating of ``message_id``."""
        user = self.user(request)
        existing = self.chats.feedback_for(user.name, message_id) if message_id else None
        if existing is None:
            raise UserError(t("feedback_none"))
        return self._feedback(user, message_id, existing["rating"], comment, "feedback_comment")

    def _feedback(self, user, message_id: str | None, rating: int, comment: str, action: str) -> str:
        if not message_id:
            raise UserError(t("feedback_none"))
        try:
            fid = self.chats.add_feedback(user.name, message_id, 1 if rating > 0 else -1, comment)
        except ChatNotFound:
            raise UserError(t("chat_not_found")) from None
        self.ctx.audit.record(action, self.ctx.audit.usage_actor(user.name), message_id, {"rating": 1 if rating > 0 else -1})
        return fid

