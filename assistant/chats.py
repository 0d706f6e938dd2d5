"""Chat history and answer feedback, per user, in the app database.

Why a store of its own: chats must survive restarts and be reopened, deleted and
exported by their owner only, and the admin dashboard reads per-answer metrics
(latency, refusals, model, zone, cited documents) from ``messages.meta_json``.

Ownership is enforced here, not only in the UI: every read or change of a chat takes
the acting user and raises :class:`ChatNotFound` (a ``KeyError``) both for unknown
chats and for other users' chats, so an id reveals nothing about whether it exists.

Feedback rows copy question, answer and sources on purpose: they are an explicit
submission for quality review and stay readable after the chat is deleted.

``user`` is a reserved word in PostgreSQL, so the column is always written quoted.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from assistant.appdb import AppDB, new_id, now
from assistant.escaping import md_esc, md_text, xml_text
from corpus.models import page_label

log = logging.getLogger(__name__)

EXPORT_DISCLAIMER = "Antworten können falsch sein – maßgeblich sind die verlinkten Quellen."
#: how an export marks a notice of an answer (a fallback, a warning), so it does not read as part of the answer
NOTICE_LABEL = "Hinweis:"
#: the Word paragraph style of those notices (added to the document on first use)
NOTICE_STYLE = "Hinweis"


@dataclass
class _Turn:
    role: str
    text: str
    model: str = ""
    sources: list[tuple[Any, str, str]] = field(default_factory=list)  # (number, title and page, file name)
    notices: list[str] = field(default_factory=list)  # shown under the answer, in the chat's order


@dataclass
class _Export:
    title: str
    dates: str
    turns: list[_Turn]

TITLE_CHARS = 80

_MIGRATIONS = [
    [
        'CREATE TABLE chats (id TEXT PRIMARY KEY, "user" TEXT NOT NULL, title TEXT NOT NULL DEFAULT \'\', '
        "created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)",
        'CREATE INDEX chats_user ON chats("user", updated_at)',
        "CREATE TABLE messages (id TEXT PRIMARY KEY, chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE, "
        "seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, citations_json TEXT NOT NULL DEFAULT '[]', "
        "meta_json TEXT NOT NULL DEFAULT '{}', created_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX messages_chat ON messages(chat_id, seq)",
        "CREATE INDEX messages_created ON messages(created_at)",
        'CREATE TABLE feedback (id TEXT PRIMARY KEY, message_id TEXT NOT NULL, "user" TEXT NOT NULL, '
        "rating INTEGER NOT NULL, comment TEXT NOT NULL DEFAULT '', question TEXT NOT NULL DEFAULT '', "
        "answer TEXT NOT NULL DEFAULT '', sources_json TEXT NOT NULL DEFAULT '[]', created_at DOUBLE PRECISION NOT NULL)",
        'CREATE UNIQUE INDEX feedback_message_user ON feedback(message_id, "user")',
    ],
]

ROLES = ("user", "assistant")


class ChatNotFound(KeyError):
    """Unknown chat, or a chat of another user (deliberately indistinguishable)."""


def _jsonable(items: Iterable[Any] | None) -> list:
    out = []
    for item in items or []:
        out.append(asdict(item) if is_dataclass(item) else dict(item))
    return out


def qa_pairs(messages: Iterable[dict]) -> list[tuple[str, str]]:
    """(question, answer) pairs from stored messages, oldest first; an unanswered question is left out."""
    pairs: list[tuple[str, str]] = []
    question: str | None = None
    for m in messages:
        if m["role"] == "user":
            question = m["content"]
        elif question is not None:
            pairs.append((question, m["content"]))
            question = None
    return pairs


def stored_notices(meta: dict[str, Any]) -> list[str]:
    """The notices of a stored answer (``meta["notices"]``) as the chat shows them under it: in order,
    each once, empty ones left out. Chats stored before notices were kept have none."""
    notices = meta.get("notices")
    if not isinstance(notices, (list, tuple)):
        return []
    return list(dict.fromkeys(text for n in notices if n is not None and (text := str(n).strip())))


def _notice_style(doc: Any) -> Any:
    """The paragraph style of an answer's notices: italic, in the portal's notice colour, apart from the answer."""
    from docx.enum.style import WD_STYLE_TYPE
    from docx.shared import RGBColor

    if NOTICE_STYLE in [s.name for s in doc.styles]:
        return doc.styles[NOTICE_STYLE]
    style = doc.styles.add_style(NOTICE_STYLE, WD_STYLE_TYPE.PARAGRAPH)
    style.base_style = doc.styles["Normal"]
    style.font.italic = True
    style.font.color.rgb = RGBColor(0x5C, 0x3D, 0x00)
    return style


def _title_from(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


class ChatStore:
    """Chats, messages and feedback on the shared :class:`AppDB`."""

    def __init__(self, db: AppDB) -> None:
        self.db = db
        db.ensure_schema("chats", _MIGRATIONS)

    # -- chats -------------------------------------------------------------
    def create_chat(self, user: str, title: str = "") -> str:
        chat_id = new_id()
        t = now()
        self.db.execute('INSERT INTO chats(id, "user", title, created_at, updated_at) VALUES (:i, :u, :t, :c, :c)',
                        {"i": chat_id, "u": user, "t": _title_from(title) if title else "", "c": t})
        return chat_id

    def list_chats(self, user: str, limit: int = 200) -> list[dict]:
        """The user's chats, most recently used first, with their message count."""
        return self.db.query(
            'SELECT c.id, c.title, c.created_at, c.updated_at, COUNT(m.id) AS messages FROM chats c '
            'LEFT JOIN messages m ON m.chat_id = c.id WHERE c."user" = :u '
            "GROUP BY c.id, c.title, c.created_at, c.updated_at ORDER BY c.updated_at DESC LIMIT :l",
            {"u": user, "l": limit},
        )

    def _owned(self, user: str, chat_id: str) -> dict:
        row = self.db.one('SELECT id, "user" AS owner, title, created_at, updated_at FROM chats WHERE id = :i',
                          {"i": chat_id or ""})
        if row is None:
            raise ChatNotFound(chat_id)
        if row["owner"] != user:
            log.warning("user %s tried to access a chat of another user", user)
            raise ChatNotFound(chat_id)
        return row

    def get_chat(self, user: str, chat_id: str) -> dict:
        """The chat with its messages (citations and meta decoded); ownership checked."""
        row = self._owned(user, chat_id)
        chat = {k: row[k] for k in ("id", "title", "created_at", "updated_at")}
        chat["messages"] = self._messages(chat_id)
        return chat

    def delete_chat(self, user: str, chat_id: str) -> None:
        self._owned(user, chat_id)
        with self.db.begin() as conn:  # explicit: PRAGMA foreign_keys may be off on other engines
            from sqlalchemy import text

            conn.execute(text("DELETE FROM messages WHERE chat_id = :i"), {"i": chat_id})
            conn.execute(text("DELETE FROM chats WHERE id = :i"), {"i": chat_id})

    def delete_all_chats(self, user: str) -> int:
        """Delete every chat of ``user`` (an account being removed); returns how many."""
        from sqlalchemy import text

        with self.db.begin() as conn:
            conn.execute(text('DELETE FROM messages WHERE chat_id IN (SELECT id FROM chats WHERE "user" = :u)'), {"u": user})
            return conn.execute(text('DELETE FROM chats WHERE "user" = :u'), {"u": user}).rowcount or 0

    def rename_chat(self, user: str, chat_id: str, title: str) -> None:
        self._owned(user, chat_id)
        self.db.execute("UPDATE chats SET title = :t WHERE id = :i", {"t": _title_from(title), "i": chat_id})

    # -- messages ------------------------------------------------------------
    def _messages(self, chat_id: str) -> list[dict]:
        rows = self.db.query("SELECT id, chat_id, seq, role, content, citations_json, meta_json, created_at "
                             "FROM messages WHERE chat_id = :i ORDER BY seq", {"i": chat_id})
        for r in rows:
            r["citations"] = json.loads(r.pop("citations_json") or "[]")
            r["meta"] = json.loads(r.pop("meta_json") or "{}")
        return rows

    def add_message(self, user: str, chat_id: str, role: str, content: str,
                    citations: Sequence[Any] | None = None, meta: dict[str, Any] | None = None) -> str:
        """Append a message; the first question becomes the chat's title."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        chat = self._owned(user, chat_id)
        msg_id = new_id()
        t = now()
        with self.db.begin() as conn:
            from sqlalchemy import text

            seq = conn.execute(text("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE chat_id = :i"),
                               {"i": chat_id}).scalar_one()
            conn.execute(text(
                "INSERT INTO messages(id, chat_id, seq, role, content, citations_json, meta_json, created_at) "
                "VALUES (:id, :c, :s, :r, :x, :cj, :mj, :t)"),
                {"id": msg_id, "c": chat_id, "s": seq, "r": role, "x": content,
                 "cj": json.dumps(_jsonable(citations), ensure_ascii=False),
                 "mj": json.dumps(meta or {}, ensure_ascii=False, default=str), "t": t})
            if role == "user" and not chat["title"]:
                conn.execute(text("UPDATE chats SET updated_at = :t, title = :ti WHERE id = :i"),
                             {"t": t, "ti": _title_from(content), "i": chat_id})
            else:
                conn.execute(text("UPDATE chats SET updated_at = :t WHERE id = :i"), {"t": t, "i": chat_id})
        return msg_id

    def history(self, user: str, chat_id: str) -> list[tuple[str, str]]:
        """(question, answer) pairs for follow-up questions, oldest first."""
        return qa_pairs(self.get_chat(user, chat_id)["messages"])

    # -- export ----------------------------------------------------------------
    def export_markdown(self, user: str, chat_id: str,
                        citations: Callable[[list[dict]], list[dict]] | None = None) -> str:
        """The chat as Markdown with numbered sources per answer (for filing or mailing).

        ``citations`` picks the sources to list (the portal passes the ones the user may still read)."""
        e = self._export(user, chat_id, citations)
        lines = [f"# {md_esc(e.title, cell=True)}", "", e.dates, "", f"> {EXPORT_DISCLAIMER}", ""]
        for turn in e.turns:
            if turn.role == "user":
                lines += ["## Frage", "", md_text(turn.text), ""]
                continue
            lines += ["## Antwort", ""]
            if turn.model:
                lines += [f"*Modell: {md_esc(turn.model, cell=True)}*", ""]
            lines += [md_text(turn.text), ""]
            for notice in turn.notices:  # one line each, escaped: the text cannot end the emphasis early
                lines += [f"*{NOTICE_LABEL} {md_text(' '.join(notice.split()))}*", ""]
            if turn.sources:
                lines += ["**Quellen**", ""]
                lines += [f"{n}. {md_esc(label, cell=True)} ({md_esc(name, cell=True)})"
                          for n, label, name in turn.sources]
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def export_docx(self, user: str, chat_id: str,
                    citations: Callable[[list[dict]], list[dict]] | None = None) -> bytes:
        """The same export as a Word document (many offices file and forward .docx, not Markdown).

        Text goes in as text (python-docx writes it escaped); characters XML cannot hold are dropped."""
        from io import BytesIO

        from docx import Document

        e = self._export(user, chat_id, citations)
        doc = Document()
        doc.core_properties.title = xml_text(e.title)
        doc.add_heading(xml_text(e.title), level=1)
        doc.add_paragraph(e.dates)
        doc.add_paragraph(EXPORT_DISCLAIMER).runs[0].bold = True
        for turn in e.turns:
            doc.add_heading("Frage" if turn.role == "user" else "Antwort", level=2)
            if turn.model:
                doc.add_paragraph(f"Modell: {xml_text(turn.model)}").runs[0].italic = True
            for block in xml_text(turn.text).split("\n"):
                if block.strip():
                    doc.add_paragraph(block)
            for notice in turn.notices:
                para = doc.add_paragraph(style=_notice_style(doc))
                para.add_run(NOTICE_LABEL + " ").bold = True
                para.add_run(xml_text(notice))
            if turn.sources:
                doc.add_paragraph("Quellen").runs[0].bold = True
                for n, label, name in turn.sources:
                    doc.add_paragraph(f"[{n}] {xml_text(label)} ({xml_text(name)})", style="List Bullet")
        buf = BytesIO()
        doc.save(buf)
        return buf.getvalue()

    def _export(self, user: str, chat_id: str, citations) -> _Export:
        """What every export format shows: title, dates, and per message its text, model, notices and sources."""
        chat = self.get_chat(user, chat_id)
        dates = (f"Exportiert am {datetime.now().strftime('%d.%m.%Y %H:%M')} · "
                 f"begonnen am {datetime.fromtimestamp(chat['created_at']).strftime('%d.%m.%Y %H:%M')}")
        turns = []
        for m in chat["messages"]:
            if m["role"] == "user":
                turns.append(_Turn("user", m["content"].strip()))
                continue
            meta = m["meta"]
            model = meta.get("model_label") or meta.get("model")  # the name staff saw, not the settings key
            shown = citations(m["citations"]) if citations is not None else m["citations"]
            sources = []
            for c in shown or []:
                where = page_label(c.get("page"), c.get("page_kind"))
                name = c.get("source", "").replace("\\", "/").rsplit("/", 1)[-1]
                sources.append((c.get("n"), f"{c.get('title') or name}{', ' + where if where else ''}", name))
            turns.append(_Turn("assistant", m["content"].strip(), str(model) if model else "", sources,
                               stored_notices(meta)))
        return _Export(chat["title"] or "Chat", dates, turns)

    # -- feedback ----------------------------------------------------------------
    def add_feedback(self, user: str, message_id: str, rating: int, comment: str = "") -> str:
        """Thumbs up (+1) or down (-1) on an answer of the user's own chat; rating again replaces it.

        The question (the preceding user message), the answer and its sources are copied in.
        """
        if rating not in (1, -1):
            raise ValueError("rating must be +1 or -1")
        msg = self.db.one("SELECT id, chat_id, seq, role, content, citations_json FROM messages WHERE id = :i",
                          {"i": message_id or ""})
        if msg is None or msg["role"] != "assistant":
            raise ChatNotFound(message_id)
        self._owned(user, msg["chat_id"])
        q = self.db.one("SELECT content FROM messages WHERE chat_id = :c AND seq < :s AND role = 'user' "
                        "ORDER BY seq DESC LIMIT 1", {"c": msg["chat_id"], "s": msg["seq"]})
        params = {"m": message_id, "u": user, "r": rating, "c": (comment or "").strip()[:2000],
                  "q": q["content"] if q else "", "a": msg["content"], "s": msg["citations_json"], "t": now()}
        existing = self.db.one('SELECT id FROM feedback WHERE message_id = :m AND "user" = :u', params)
        if existing:
            self.db.execute('UPDATE feedback SET rating = :r, comment = CASE WHEN :c = \'\' THEN comment ELSE :c END, '
                            'created_at = :t WHERE id = :i', params | {"i": existing["id"]})
            return existing["id"]
        fid = new_id()
        self.db.execute('INSERT INTO feedback(id, message_id, "user", rating, comment, question, answer, sources_json, '
                        "created_at) VALUES (:i, :m, :u, :r, :c, :q, :a, :s, :t)", params | {"i": fid})
        return fid

    def feedback_for(self, user: str, message_id: str) -> dict | None:
        row = self.db.one('SELECT id, rating, comment FROM feedback WHERE message_id = :m AND "user" = :u',
                          {"m": message_id, "u": user})
        return row

    def list_feedback(self, *, since: float | None = None, limit: int = 500) -> list[dict]:
        """All feedback, newest first (for reviewers; callers check the role)."""
        sql, args = 'SELECT id, message_id, "user" AS user_name, rating, comment, question, answer, sources_json, ' \
                    "created_at FROM feedback WHERE 1=1", {"l": limit}
        if since:
            sql += " AND created_at >= :s"
            args["s"] = since
        rows = self.db.query(sql + " ORDER BY created_at DESC LIMIT :l", args)
        for r in rows:
            r["sources"] = json.loads(r.pop("sources_json") or "[]")
        return rows

