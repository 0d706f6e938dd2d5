"""Training sessions: join codes, anonymous quiz answers, the session log and the handout.

Anonymity is a design constraint, not a display choice: the quiz exists so that people dare
to answer wrongly. So no table holds a participant's name. A participant is stored as an
HMAC of (installation secret, per-session salt, user name), which keeps one answer per
person and item (answers can be changed while the item is open) without identifying
anyone; the salt is wiped when the session ends, so afterwards not even someone with the
secret and a list of user names can link answers to people. Results are counts per option
and the share correct – nothing per participant ever leaves this module.

The plan is stored with the session (JSON snapshot): results and handout stay correct even
if the YAML file is edited or deleted later. Tables follow the portable rules of
:mod:`assistant.appdb` (TEXT ids, epoch seconds as DOUBLE PRECISION, 0/1 integers).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any, Callable, Sequence

from sqlalchemy.exc import IntegrityError

from assistant.appdb import AppDB, new_id, now
from assistant.escaping import esc, md_esc
from assistant.policy.zones import ZONE_LABELS_DE
from assistant.training.plans import Plan, QuizItem
from assistant.wording import counted
from corpus.models import page_kind_of, page_label

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read off a projector
CODE_LENGTH = 6

_MIGRATIONS = [
    [
        "CREATE TABLE training_sessions (id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, plan_id TEXT NOT NULL, "
        "plan_title TEXT NOT NULL, plan_json TEXT NOT NULL, trainer TEXT NOT NULL, salt TEXT NOT NULL, "
        "created_at DOUBLE PRECISION NOT NULL, ended_at DOUBLE PRECISION, current_item TEXT, "
        "display TEXT NOT NULL DEFAULT '{}')",
        "CREATE TABLE training_answers (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, item_id TEXT NOT NULL, "
        "participant TEXT NOT NULL, choice TEXT NOT NULL, correct INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL, "
        "UNIQUE (session_id, item_id, participant))",
        "CREATE INDEX training_answers_session ON training_answers(session_id, item_id)",
        "CREATE TABLE training_log (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, "
        "kind TEXT NOT NULL, exercise_id TEXT NOT NULL DEFAULT '', question TEXT NOT NULL, "
        "answer TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '{}')",
        "CREATE INDEX training_log_session ON training_log(session_id, at)",
    ],
]


class SessionError(ValueError):
    """Something a person did wrong (unknown code, ended session, invalid choice); German message."""


class UnknownCode(SessionError):
    """No session has this join code (ended ones included): a typo, or a guess (ui.join_codes counts them)."""


NOT_YOUR_SESSION = "Diese Schulungssitzung gehört einer anderen Trainerin oder einem anderen Trainer."


def may_run_session(role: str, name: str, trainer: str) -> bool:
    """May the user ``name`` with ``role`` run a session that ``trainer`` started: show answers on its
    projector and participants' screens, log to its handout, open quizzes, read results, end it?

    Its own trainer may, and an admin (who may have to end a session a colleague left running).
    Another trainer may not: the session id comes from the client (the dropdown accepts any value,
    and every gradio function is an HTTP endpoint), so knowing it proves nothing. Whether the user
    is a trainer at all is checked first, at the handler; this only decides whose session it is."""
    if role == "admin":
        return True
    return role == "trainer" and bool(name) and name == trainer


@dataclass(frozen=True)
class Session:
    id: str
    code: str
    plan: Plan
    trainer: str
    created_at: float
    ended_at: float | None
    current_item: str | None
    display: dict

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class ItemResult:
    """Anonymous result of one quiz item: no names, no pseudonyms, only counts."""

    item_id: str
    question: str
    options: list[str]
    correct: list[int]
    counts: list[int]
    answers: int
    correct_answers: int
    explanation: str

    @property
    def share_correct(self) -> float | None:
        return self.correct_answers / self.answers if self.answers else None

    def as_dict(self) -> dict:
        return {"item_id": self.item_id, "question": self.question, "options": self.options,
                "correct": self.correct, "counts": self.counts, "answers": self.answers,
                "correct_answers": self.correct_answers, "share_correct": self.share_correct,
                "explanation": self.explanation}


def sources_of(result) -> list[dict]:
    """The cited sources of an AnswerResult as plain dicts (for the log, handout and projector)."""
    return [{"n": c.n, "title": c.title, "source": PurePath(c.source).name, "page": c.page,
             "doc_id": c.doc_id, "collection": getattr(c, "collection", None)}
            for c in getattr(result, "citations", [])]


HIDDEN_ANSWER = "Diese Antwort beruht auf Dokumenten, die Sie nicht lesen dürfen; sie wird Ihnen nicht angezeigt."


def _hide_block(block: dict, readable: Callable[[dict], bool]) -> dict:
    """An answer block with its answer and sources blanked when any source is not ``readable``."""
    if all(readable(src) for src in block.get("sources") or []):
        return block
    return dict(block, answer=HIDDEN_ANSWER, sources=[])


def mask_display(display: dict | None, readable: Callable[[dict], bool]) -> dict | None:
    """What one viewer may see of a projector display (or a log entry's detail): answers that
    rest on a source the viewer may not read are replaced by a notice, question and layout stay.
    The room sees the trainer's answers, and not everyone in the room is in the trainer's department."""
    if not display:
        return display
    if display.get("kind") == "answer" or "sources" in display:
        display = _hide_block(display, readable)
    if display.get("sides"):
        display = dict(display, sides=[_hide_block(side, readable) for side in display["sides"]])
    return display


class TrainingStore:
    def __init__(self, db: AppDB, *, secret: str = "") -> None:
        self.db = db
        self._secret = secret.encode()
        db.ensure_schema("training", _MIGRATIONS)

    # -- sessions ------------------------------------------------------------------------
    def start(self, plan: Plan, trainer: str) -> Session:
        """A new session with a fresh join code (retried on the rare collision)."""
        plan_json = plan.model_dump_json()
        for _ in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            sid = new_id()
            try:
                self.db.execute(
                    "INSERT INTO training_sessions(id, code, plan_id, plan_title, plan_json, trainer, salt, created_at) "
                    "VALUES (:i, :c, :p, :t, :j, :tr, :s, :at)",
                    {"i": sid, "c": code, "p": plan.id, "t": plan.title, "j": plan_json, "tr": trainer,
                     "s": secrets.token_hex(16), "at": now()})
            except IntegrityError:
                continue
            log.info("training session %s started from plan %s", sid, plan.id)
            return self.get(sid)  # type: ignore[return-value]
        raise RuntimeError("no free join code")

    @staticmethod
    def _row_session(row: dict) -> Session:
        return Session(id=row["id"], code=row["code"], plan=Plan.model_validate_json(row["plan_json"]),
                       trainer=row["trainer"], created_at=row["created_at"], ended_at=row["ended_at"],
                       current_item=row["current_item"], display=json.loads(row["display"] or "{}"))

    def get(self, session_id: str) -> Session | None:
        row = self.db.one("SELECT * FROM training_sessions WHERE id=:i", {"i": session_id})
        return self._row_session(row) if row else None

    @staticmethod
    def normalize_code(code: str) -> str:
        return "".join(ch for ch in (code or "").upper() if ch.isalnum())

    def by_code(self, code: str, *, active: bool = True) -> Session:
        """The session for a join code; German :class:`SessionError` if unknown or ended."""
        code = self.normalize_code(code)
        row = self.db.one("SELECT * FROM training_sessions WHERE code=:c", {"c": code}) if code else None
        if row is None:
            raise UnknownCode("Unbekannter Teilnahmecode. Bitte prüfen Sie die Schreibweise.")
        session = self._row_session(row)
        if active and not session.active:
            raise SessionError("Diese Schulungssitzung ist bereits beendet.")
        return session

    def active_sessions(self, trainer: str | None = None) -> list[Session]:
        sql, args = "SELECT * FROM training_sessions WHERE ended_at IS NULL", {}
        if trainer:
            sql += " AND trainer=:t"
            args["t"] = trainer
        return [self._row_session(r) for r in self.db.query(sql + " ORDER BY created_at DESC", args)]

    def open_item(self, session_id: str, item_id: str | None) -> None:
        """Show a quiz item to participants (``None`` closes it)."""
        session = self._require_active(session_id)
        if item_id is not None:
            self._item(session, item_id)
        self.db.execute("UPDATE training_sessions SET current_item=:q WHERE id=:i", {"q": item_id, "i": session_id})

    def set_display(self, session_id: str, display: dict) -> None:
        """What the projector view shows (the last exercise, comparison or quiz result)."""
        self.db.execute("UPDATE training_sessions SET display=:d WHERE id=:i",
                        {"d": json.dumps(display, ensure_ascii=False, default=str), "i": session_id})

    def end(self, session_id: str) -> Session:
        """End the session: no more answers, and the salt is wiped so pseudonyms become unlinkable."""
        self._require_active(session_id)
        self.db.execute("UPDATE training_sessions SET ended_at=:t, current_item=NULL, salt='' WHERE id=:i",
                        {"t": now(), "i": session_id})
        log.info("training session %s ended", session_id)
        return self.get(session_id)  # type: ignore[return-value]

    def release_trainer(self, trainer: str) -> int:
        """A removed trainer's sessions: the running ones are ended, and all are handed to
        "<name> (gelöscht)", a name no account can have (assistant.users.valid_user_name), so a
        new account with the old name does not run or read them; admins still can. Returns how many."""
        for session in self.active_sessions(trainer):
            self.end(session.id)
        return self.db.execute("UPDATE training_sessions SET trainer=:n WHERE trainer=:t",
                               {"n": f"{trainer} (gelöscht)", "t": trainer})

    def _require_active(self, session_id: str) -> Session:
        session = self.get(session_id)
        if session is None:
            raise SessionError("Unbekannte Schulungssitzung.")
        if not session.active:
            raise SessionError("Diese Schulungssitzung ist bereits beendet.")
        return session

    @staticmethod
    def _item(session: Session, item_id: str) -> QuizItem:
        try:
            return session.plan.quiz_item(item_id)
        except KeyError:
            raise SessionError(f"Die Quizfrage {item_id} gehört nicht zu diesem Plan.") from None

    # -- participants --------------------------------------------------------------------
    def _pseudonym(self, session_id: str, user: str) -> str:
        row = self.db.one("SELECT salt FROM training_sessions WHERE id=:i", {"i": session_id})
        salt = (row or {}).get("salt") or ""
        if not salt:
            raise SessionError("Diese Schulungssitzung ist bereits beendet.")
        return hmac.new(self._secret, f"{salt}:{user}".encode(), hashlib.sha256).hexdigest()[:32]

    def current_item(self, code: str) -> tuple[Session, QuizItem | None]:
        session = self.by_code(code)
        return session, (self._item(session, session.current_item) if session.current_item else None)

    def answer(self, code: str, item_id: str, user: str, choice: Sequence[int]) -> bool:
        """Record (or change) a participant's answer to the open item; returns whether it is correct."""
        session = self.by_code(code)
        if session.current_item != item_id:
            raise SessionError("Diese Frage ist gerade nicht freigegeben.")
        item = self._item(session, item_id)
        picked = sorted({int(c) for c in choice})
        if not picked:
            raise SessionError("Bitte wählen Sie eine Antwort.")
        if any(not 0 <= c < len(item.options) for c in picked):
            raise SessionError("Ungültige Antwort.")
        if not item.multiple and len(picked) != 1:
            raise SessionError("Bitte wählen Sie genau eine Antwort.")
        who = self._pseudonym(session.id, user)
        correct = item.is_correct(picked)
        args = {"s": session.id, "q": item_id, "p": who, "c": json.dumps(picked), "ok": int(correct), "t": now()}
        for _ in range(2):
            if self.db.execute("UPDATE training_answers SET choice=:c, correct=:ok, at=:t "
                               "WHERE session_id=:s AND item_id=:q AND participant=:p", args):
                break
            try:
                self.db.execute("INSERT INTO training_answers(id, session_id, item_id, participant, choice, correct, at) "
                                "VALUES (:i, :s, :q, :p, :c, :ok, :t)", args | {"i": new_id()})
                break
            except IntegrityError:  # a double click raced us: the row exists now, update it
                continue
        return correct

    def my_choice(self, code: str, item_id: str, user: str) -> list[int] | None:
        """The participant's own current answer (shown back to them only)."""
        session = self.by_code(code)
        row = self.db.one("SELECT choice FROM training_answers WHERE session_id=:s AND item_id=:q AND participant=:p",
                          {"s": session.id, "q": item_id, "p": self._pseudonym(session.id, user)})
        return json.loads(row["choice"]) if row else None

    # -- results -------------------------------------------------------------------------
    def results(self, session_id: str, item_id: str | None = None) -> list[ItemResult]:
        """Counts per option and share correct, for every quiz item of the plan (or one)."""
        session = self.get(session_id)
        if session is None:
            raise SessionError("Unbekannte Schulungssitzung.")
        items = [self._item(session, item_id)] if item_id else session.plan.quiz_items()
        rows = self.db.query("SELECT item_id, choice, correct FROM training_answers WHERE session_id=:s",
                             {"s": session_id})
        out = []
        for item in items:
            counts = [0] * len(item.options)
            n = ok = 0
            for r in rows:
                if r["item_id"] != item.id:
                    continue
                n += 1
                ok += int(r["correct"])
                for c in json.loads(r["choice"]):
                    if 0 <= c < len(counts):
                        counts[c] += 1
            out.append(ItemResult(item.id, item.question, list(item.options), item.correct_indexes, counts, n, ok,
                                  item.explanation))
        return out

    def participants(self, session_id: str) -> int:
        """How many people answered at least once (a number, never who)."""
        row = self.db.one("SELECT COUNT(DISTINCT participant) AS n FROM training_answers WHERE session_id=:s",
                          {"s": session_id})
        return int(row["n"]) if row else 0

    # -- log -----------------------------------------------------------------------------
    def log(self, session_id: str, kind: str, question: str, answer: str = "", *, exercise_id: str = "",
            detail: dict[str, Any] | None = None) -> None:
        """Remember what the trainer showed (exercise, comparison, Ampel preview) for the handout."""
        self.db.execute(
            "INSERT INTO training_log(id, session_id, at, kind, exercise_id, question, answer, detail) "
            "VALUES (:i, :s, :t, :k, :e, :q, :a, :d)",
            {"i": new_id(), "s": session_id, "t": now(), "k": kind, "e": exercise_id or "", "q": question[:2000],
             "a": answer[:8000], "d": json.dumps(detail or {}, ensure_ascii=False, default=str)})

    def entries(self, session_id: str) -> list[dict]:
        rows = self.db.query("SELECT at, kind, exercise_id, question, answer, detail FROM training_log "
                             "WHERE session_id=:s ORDER BY at", {"s": session_id})
        for r in rows:
            r["detail"] = json.loads(r["detail"] or "{}")
        return rows

    # -- handout -------------------------------------------------------------------------
    def handout(self, session_id: str, readable: Callable[[dict], bool] | None = None) -> tuple[str, str]:
        """(Markdown, HTML) handout: the questions asked with answers and sources, and the quiz results.

        ``readable`` decides per source whether the one downloading may read it (else that answer is hidden)."""
        session = self.get(session_id)
        if session is None:
            raise SessionError("Unbekannte Schulungssitzung.")
        entries = self.entries(session_id)
        if readable is not None:
            entries = [_mask_entry(e, readable) for e in entries]
        data = _handout_data(session, entries, self.results(session_id), self.participants(session_id))
        return handout_markdown(data), handout_html(data)


def _mask_entry(entry: dict, readable: Callable[[dict], bool]) -> dict:
    detail = entry.get("detail") or {}
    if entry.get("kind") == "comparison":
        return dict(entry, detail=mask_display(detail, readable))
    if all(readable(src) for src in detail.get("sources") or []):
        return entry
    return dict(entry, answer=HIDDEN_ANSWER, detail=dict(detail, sources=[]))


# -- handout rendering (pure functions over plain data) -----------------------------------
def _handout_data(session: Session, entries: list[dict], results: list[ItemResult], participants: int) -> dict:
    plan = session.plan
    when = datetime.fromtimestamp(session.created_at).strftime("%d.%m.%Y")
    return {"plan": plan, "date": when, "entries": entries, "results": [r for r in results if r.answers],
            "participants": participants}


def _where(src: dict) -> str:
    page = src.get("page")
    if page is None:
        return ""
    return ", " + page_label(page, page_kind_of(str(src.get("source", ""))))


def _entry_blocks(entry: dict) -> list[dict]:
    """One entry as one or two answer blocks (a comparison has two sides)."""
    d = entry["detail"]
    if entry["kind"] == "comparison":
        return [{"label": s.get("label", ""), "answer": s.get("answer", ""), "sources": s.get("sources", []),
                 "model": s.get("model", ""), "zone": s.get("zone", "")} for s in d.get("sides", [])]
    if entry["kind"] == "policy":
        text = d.get("action_label", "") + (" – " + " ".join(d.get("messages_de", [])) if d.get("messages_de") else "")
        return [{"label": f"Ampel-Vorschau Zone {ZONE_LABELS_DE.get(d.get('zone', ''), d.get('zone', ''))}", "answer": text,
                 "sources": [], "model": "", "zone": d.get("zone", "")}]
    return [{"label": "", "answer": entry["answer"], "sources": d.get("sources", []), "model": d.get("model", ""),
             "zone": d.get("zone", "")}]


def handout_markdown(data: dict) -> str:
    plan: Plan = data["plan"]
    lines = [f"# Handout: {md_esc(plan.title)}", "",
             f"Schulung vom {data['date']} · Zielgruppe: {md_esc(plan.audience)} · Dauer: {plan.duration_minutes} Minuten", ""]
    if plan.description:
        lines += [md_esc(plan.description), ""]
    lines += ["## Lernziele", ""]
    lines += [f"- **{md_esc(m.title)}:** {md_esc(m.goal, cell=True)}" for m in plan.modules]
    lines += ["", "## Fragen aus der Sitzung", ""]
    if not data["entries"]:
        lines.append("In dieser Sitzung wurden keine Fragen gestellt.")
    for i, entry in enumerate(data["entries"], 1):
        lines += [f"### {i}. {md_esc(entry['question'], cell=True)}", ""]
        for block in _entry_blocks(entry):
            if block["label"]:
                lines.append(f"**{md_esc(block['label'], cell=True)}**"
                             + (f" ({md_esc(block['model'], cell=True)}, Zone {md_esc(ZONE_LABELS_DE.get(block['zone'], block['zone']))})"
                                if block["model"] else ""))
                lines.append("")
            lines += ["> " + line for line in md_esc(block["answer"] or "–").splitlines() or ["–"]]
            if block["sources"]:
                lines += ["", "Quellen:"]
                lines += [f"- \\[{int(s.get('n') or 0)}\\] {md_esc(s.get('title'), cell=True)} "
                          f"({md_esc(s.get('source'), cell=True)}{md_esc(_where(s))})" for s in block["sources"]]
            lines.append("")
    lines += ["## Quiz-Ergebnisse", "", f"Teilnehmende mit mindestens einer Antwort: {data['participants']} "
              "(anonym ausgewertet, ohne Namen).", ""]
    if not data["results"]:
        lines.append("Es wurden keine Quizfragen beantwortet.")
    for r in data["results"]:
        share = f"{r.share_correct:.0%}".replace("%", " %") if r.share_correct is not None else "–"
        lines += [f"### {md_esc(r.question, cell=True)}", "",
                  f"{counted(r.answers, 'Antwort', 'Antworten')}, davon richtig: {share}", "",
                  "| Antwort | Anzahl | richtig |", "|---|---|---|"]
        for i, opt in enumerate(r.options):
            lines.append(f"| {md_esc(opt, cell=True)} | {r.counts[i]} | {'✓' if i in r.correct else ''} |")
        if r.explanation:
            lines += ["", f"*Erklärung:* {md_esc(r.explanation, cell=True)}"]
        lines.append("")
    lines += ["---", "Erstellt mit dem KI-Portal (Trainermodus KI-Kompass). Antworten sind vor der Weitergabe fachlich zu prüfen."]
    return "\n".join(lines) + "\n"


_HANDOUT_CSS = ("body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;line-height:1.5;color:#222}"
                "blockquote{border-left:4px solid #9bb;margin:0.5em 0;padding:0.2em 1em;background:#f5f9f9;white-space:pre-wrap}"
                "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px}.ok{color:#1b7f3b;font-weight:bold}")


def handout_html(data: dict) -> str:
    plan: Plan = data["plan"]
    p = [f"<!DOCTYPE html><html lang=\"de\"><head><meta charset=\"utf-8\"><title>Handout: {esc(plan.title)}</title>",
         f"<style>{_HANDOUT_CSS}</style></head><body>",
         f"<h1>Handout: {esc(plan.title)}</h1>",
         f"<p>Schulung vom {esc(data['date'])} · Zielgruppe: {esc(plan.audience)} · Dauer: {plan.duration_minutes} Minuten</p>"]
    if plan.description:
        p.append(f"<p>{esc(plan.description)}</p>")
    p.append("<h2>Lernziele</h2><ul>" + "".join(f"<li><b>{esc(m.title)}:</b> {esc(m.goal)}</li>" for m in plan.modules) + "</ul>")
    p.append("<h2>Fragen aus der Sitzung</h2>")
    if not data["entries"]:
        p.append("<p>In dieser Sitzung wurden keine Fragen gestellt.</p>")
    for i, entry in enumerate(data["entries"], 1):
        p.append(f"<h3>{i}. {esc(entry['question'])}</h3>")
        for block in _entry_blocks(entry):
            if block["label"]:
                extra = f" ({esc(block['model'])}, Zone {esc(ZONE_LABELS_DE.get(block['zone'], block['zone']))})" if block["model"] else ""
                p.append(f"<p><b>{esc(block['label'])}</b>{extra}</p>")
            p.append(f"<blockquote>{esc(block['answer'] or '–')}</blockquote>")
            if block["sources"]:
                p.append("<p>Quellen:</p><ul>" + "".join(
                    f"<li>[{int(s.get('n') or 0)}] {esc(s.get('title'))} ({esc(s.get('source'))}{esc(_where(s))})</li>"
                    for s in block["sources"]) + "</ul>")
    p.append("<h2>Quiz-Ergebnisse</h2>")
    p.append(f"<p>Teilnehmende mit mindestens einer Antwort: {int(data['participants'])} (anonym ausgewertet, ohne Namen).</p>")
    if not data["results"]:
        p.append("<p>Es wurden keine Quizfragen beantwortet.</p>")
    for r in data["results"]:
        share = f"{r.share_correct:.0%}".replace("%", " %") if r.share_correct is not None else "–"
        rows = "".join(f"<tr><td>{esc(opt)}</td><td>{r.counts[i]}</td><td class=\"ok\">{'✓' if i in r.correct else ''}</td></tr>"
                       for i, opt in enumerate(r.options))
        p.append(f"<h3>{esc(r.question)}</h3>"
                 f"<p>{counted(r.answers, 'Antwort', 'Antworten')}, davon richtig: {esc(share)}</p>"
                 f"<table><tr><th>Antwort</th><th>Anzahl</th><th>richtig</th></tr>{rows}</table>")
        if r.explanation:
            p.append(f"<p><em>Erklärung:</em> {esc(r.explanation)}</p>")
    p.append("<hr><p>Erstellt mit dem KI-Portal (Trainermodus KI-Kompass). Antworten sind vor der Weitergabe fachlich zu prüfen.</p>")
    p.append("</body></html>")
    return "\n".join(p)
