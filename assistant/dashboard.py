"""Usage statistics for the admin dashboard, and their plots (matplotlib, no pyplot state).

What an administration wants to know: is the portal used (questions per day), is it
fast enough (answer latency p50/p95), are people satisfied (feedback ratio), which
documents carry the answers (most cited), and — most actionable — which questions it
had to refuse, because those show what the document collection is missing.

Sources, read defensively because the chat tables belong to another component and may
not exist yet (fresh installation, tests):

* ``messages`` (assistant rows; ``meta_json`` has latency_ms, refused, doc_ids) when
  it has rows in the period — every answer is there regardless of the privacy mode;
* else the audit log's ``question`` entries (detail: refused, latency_ms, model);
* ``feedback`` for the ratings.

Question *texts* (refused list) are only shown if ``privacy.log_questions`` is not
``off``: the dashboard must not reveal what the privacy setting hides.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from io import BytesIO

from sqlalchemy import inspect

from assistant.appdb import AppDB
from assistant.audit import AuditLog
from corpus.models import page_label

log = logging.getLogger(__name__)

DAY = 86400.0
_POSITIVE = {"up", "+", "+1", "1", "good", "gut", "positive", "hilfreich", "like", "👍", "true", "yes", "ja"}
_NEGATIVE = {"down", "-", "-1", "0", "bad", "schlecht", "negative", "nicht hilfreich", "dislike", "👎", "false", "no", "nein"}


@dataclass
class AnswerEvent:
    at: float
    latency_ms: float | None
    refused: bool
    doc_ids: list[str] = field(default_factory=list)
    question: str | None = None


@dataclass
class FeedbackItem:
    """One rated answer for the quality review: what was asked, the rating, the comment, the sources.
    No person: the review needs what went wrong, not who noticed it."""

    at: float
    rating: int  # 1 helpful, -1 not helpful
    question: str | None  # None where the privacy setting keeps no question texts
    answer: str
    comment: str
    sources: list[str] = field(default_factory=list)  # titles (with page) the answer cited


@dataclass
class Usage:
    days: list[dt.date]
    questions: list[int]
    refused: list[int]
    p50_ms: list[float | None]
    p95_ms: list[float | None]
    feedback_up: int = 0
    feedback_down: int = 0
    top_docs: list[tuple[str, str, int]] = field(default_factory=list)  # doc_id, title, count
    refused_questions: list[tuple[float, str]] = field(default_factory=list)
    feedback: list[FeedbackItem] = field(default_factory=list)  # newest first, not helpful before helpful
    source: str = "none"
    questions_hidden: bool = False

    @property
    def total(self) -> int:
        return sum(self.questions)

    @property
    def feedback_ratio(self) -> float | None:
        n = self.feedback_up + self.feedback_down
        return self.feedback_up / n if n else None

    def as_dict(self) -> dict:
        return {
            "days": [d.isoformat() for d in self.days], "questions": self.questions, "refused": self.refused,
            "p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "feedback_up": self.feedback_up,
            "feedback_down": self.feedback_down, "feedback_ratio": self.feedback_ratio,
            "top_docs": [{"doc_id": d, "title": t, "count": n} for d, t, n in self.top_docs],
            "refused_questions": [{"at": a, "question": q} for a, q in self.refused_questions],
            "feedback": [vars(f) for f in self.feedback],
            "source": self.source, "total": self.total,
        }


# -- reading ------------------------------------------------------------------
def has_table(db: AppDB, name: str) -> bool:
    try:
        return inspect(db.engine).has_table(name)
    except Exception:  # a broken connection must not break the dashboard
        log.warning("could not inspect table %s", name, exc_info=True)
        return False


def _json(text) -> dict | list:
    if isinstance(text, (dict, list)):
        return text
    try:
        return json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}


def _truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "ja")
    return bool(v)


def _doc_ids(meta: dict, citations) -> list[str]:
    ids = meta.get("doc_ids") if isinstance(meta, dict) else None
    if not ids and isinstance(citations, list):
        ids = [c.get("doc_id") for c in citations if isinstance(c, dict)]
    return [i for i in dict.fromkeys(ids or []) if isinstance(i, str) and i]


def _latency(meta: dict) -> float | None:
    v = meta.get("latency_ms") if isinstance(meta, dict) else None
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def events_from_messages(db: AppDB, since: float, with_text: bool) -> list[AnswerEvent]:
    if not has_table(db, "messages"):
        return []
    try:
        rows = db.query("SELECT id, chat_id, content, citations_json, meta_json, created_at FROM messages "
                        "WHERE role='assistant' AND created_at>=:s ORDER BY created_at", {"s": since})
    except Exception:
        log.warning("messages table unreadable for the dashboard", exc_info=True)
        return []
    out = []
    for r in rows:
        meta = _json(r.get("meta_json"))
        meta = meta if isinstance(meta, dict) else {}
        ev = AnswerEvent(float(r["created_at"]), _latency(meta), _truthy(meta.get("refused")),
                         _doc_ids(meta, _json(r.get("citations_json"))))
        if ev.refused and with_text:
            ev.question = _question_before(db, r)
        out.append(ev)
    return out


def _question_before(db: AppDB, answer: dict) -> str | None:
    """The user message an answer replied to: the latest user message of the chat before it."""
    for sql in ("SELECT content FROM messages WHERE chat_id=:c AND role='user' AND "
                "seq < (SELECT seq FROM messages WHERE id=:i) ORDER BY seq DESC LIMIT 1",
                "SELECT content FROM messages WHERE chat_id=:c AND role='user' AND created_at<=:t "
                "ORDER BY created_at DESC LIMIT 1"):
        try:
            q = db.one(sql, {"c": answer["chat_id"], "i": answer["id"], "t": answer["created_at"]})
        except Exception:  # older schema without seq: fall back to time order
            continue
        return q["content"] if q else None
    return None


def events_from_audit(audit: AuditLog, since: float, with_text: bool) -> list[AnswerEvent]:
    out = []
    offset = 0
    while True:
        rows = audit.entries(action="question", since=since, limit=5000, offset=offset)
        for r in rows:
            d = _json(r.get("detail"))
            d = d if isinstance(d, dict) else {}
            out.append(AnswerEvent(float(r["at"]), _latency(d), _truthy(d.get("refused")), _doc_ids(d, d.get("citations")),
                                   r["target"] if with_text and r["target"] else None))
        if len(rows) < 5000:
            break
        offset += 5000
    out.sort(key=lambda e: e.at)
    return out


def _rating(v) -> int:
    """+1, -1 or 0 for whatever the feedback table stores (numbers, 'up'/'down', emojis)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return 1 if v > 0 else -1
    s = str(v).strip().lower()
    try:
        return 1 if float(s) > 0 else -1
    except ValueError:
        pass
    if s in _POSITIVE:
        return 1
    if s in _NEGATIVE:
        return -1
    return 0


def feedback_counts(db: AppDB, since: float) -> tuple[int, int]:
    if not has_table(db, "feedback"):
        return 0, 0
    try:
        rows = db.query("SELECT rating FROM feedback WHERE created_at>=:s", {"s": since})
    except Exception:
        log.warning("feedback table unreadable for the dashboard", exc_info=True)
        return 0, 0
    c = Counter(_rating(r["rating"]) for r in rows)
    return c[1], c[-1]


def _source_names(sources) -> list[str]:
    """"Title, Folie 3" for each cited source, the page named as its viewer names it (page_label)."""
    out = []
    for src in sources if isinstance(sources, list) else []:
        if isinstance(src, dict) and src.get("title"):
            page = src.get("page")
            place = page_label(page if isinstance(page, int) and not isinstance(page, bool) else None, src.get("page_kind"))
            out.append(f"{src['title']}, {place}" if place else str(src["title"]))
    return out


def feedback_items(db: AppDB, since: float, with_text: bool, limit: int = 200) -> list[FeedbackItem]:
    """Rated answers since ``since`` for the quality review, the unhelpful ones first (they say what
    to fix), newest first within each. ``with_text``: the privacy setting keeps question texts."""
    if not has_table(db, "feedback"):
        return []
    try:
        # the unhelpful first already in the query: one busy rater's helpful ones must not push them out
        rows = db.query("SELECT rating, comment, question, answer, sources_json, created_at FROM feedback "
                        "WHERE created_at>=:s ORDER BY CASE WHEN rating < 0 THEN 0 ELSE 1 END, created_at DESC "
                        "LIMIT :l", {"s": since, "l": limit})
    except Exception:
        log.warning("feedback table unreadable for the dashboard", exc_info=True)
        return []
    return [FeedbackItem(r["created_at"], _rating(r["rating"]), (r["question"] or "") if with_text else None,
                         r["answer"] or "", r["comment"] or "", _source_names(_json(r["sources_json"] or "[]")))
            for r in rows]


def nearest_rank_percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a p95 of 20 answers is one real answer)."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-q * len(v) // 100)) - 1))
    return v[k]


def usage(db: AppDB, audit: AuditLog, *, days: int = 30, catalog=None, top: int = 10,
          now: float | None = None, log_questions: str | None = None) -> Usage:
    """Usage of the last ``days`` days (including today), per local calendar day."""
    now = now or dt.datetime.now().timestamp()
    today = dt.date.fromtimestamp(now)
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time()).timestamp()
    mode = log_questions or audit.log_questions
    with_text = mode != "off"

    events = events_from_messages(db, since, with_text)
    source = "messages"
    if not events:
        events = events_from_audit(audit, since, with_text)
        source = "audit" if events else "none"

    day_list = [first + dt.timedelta(days=i) for i in range(days)]
    per_day: dict[dt.date, list[AnswerEvent]] = defaultdict(list)
    for e in events:
        per_day[dt.date.fromtimestamp(e.at)].append(e)
    lat = {d: [e.latency_ms for e in per_day[d] if e.latency_ms is not None] for d in day_list}

    cited: Counter[str] = Counter()
    for e in events:
        if not e.refused:
            cited.update(e.doc_ids)
    titles = {}
    if catalog is not None:
        for doc_id, _ in cited.most_common(top):
            rec = catalog.get(doc_id)
            titles[doc_id] = rec.shown_title if rec else f"{doc_id} (gelöscht)"
    up, down = feedback_counts(db, since)
    refused_q = [(e.at, e.question) for e in events if e.refused and e.question]
    return Usage(
        days=day_list,
        questions=[len(per_day[d]) for d in day_list],
        refused=[sum(e.refused for e in per_day[d]) for d in day_list],
        p50_ms=[nearest_rank_percentile(lat[d], 50) for d in day_list],
        p95_ms=[nearest_rank_percentile(lat[d], 95) for d in day_list],
        feedback_up=up, feedback_down=down,
        top_docs=[(d, titles.get(d, d), n) for d, n in cited.most_common(top)],
        refused_questions=sorted(refused_q, reverse=True)[:200],
        feedback=feedback_items(db, since, with_text),
        source=source, questions_hidden=not with_text,
    )


# -- plots -------------------------------------------------------------------------
def _figure(width: float = 7.5, height: float = 3.0):
    """A Figure without pyplot: no global state, safe in server threads, no display needed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def _count_axis(axis) -> None:
    """Whole numbers on an axis of counts: with one rating matplotlib marked 0.0, 0.2 … 1.0 (a browser review)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _date_axis(ax, days: list[dt.date]) -> None:
    step = max(1, len(days) // 8)
    ax.set_xticks(range(0, len(days), step), [d.strftime("%d.%m.") for d in days[::step]])


def _empty(ax, text: str = "noch keine Daten") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_axis_off()


def plot_questions(u: Usage):
    fig, ax = _figure()
    x = list(range(len(u.days)))
    answered = [q - r for q, r in zip(u.questions, u.refused)]
    ax.bar(x, answered, color="#2e7d32", label="beantwortet")
    ax.bar(x, u.refused, bottom=answered, color="#c62828", label="abgelehnt")
    ax.set_title("Fragen pro Tag")
    ax.set_ylabel("Anzahl")
    _count_axis(ax.yaxis)
    _date_axis(ax, u.days)
    ax.legend(loc="upper left", frameon=False)
    if not u.total:
        _empty(ax)
    return fig


def plot_latency(u: Usage):
    fig, ax = _figure()
    x = list(range(len(u.days)))
    p50 = [v / 1000 if v is not None else float("nan") for v in u.p50_ms]
    p95 = [v / 1000 if v is not None else float("nan") for v in u.p95_ms]
    ax.plot(x, p50, marker="o", label="Median (p50)", color="#1565c0")
    ax.plot(x, p95, marker="^", label="p95", color="#ef6c00")
    ax.set_title("Antwortzeit pro Tag")
    ax.set_ylabel("Sekunden")
    ax.set_ylim(bottom=0)
    _date_axis(ax, u.days)
    ax.legend(loc="upper left", frameon=False)
    if all(v is None for v in u.p50_ms):
        _empty(ax)
    return fig


def plot_feedback(u: Usage):
    fig, ax = _figure(4.0, 3.0)
    if u.feedback_up + u.feedback_down == 0:
        _empty(ax, "noch keine Bewertungen")
    else:
        ax.bar(["hilfreich", "nicht hilfreich"], [u.feedback_up, u.feedback_down], color=["#2e7d32", "#c62828"])
        ax.set_title(f"Bewertungen ({u.feedback_ratio:.0%} hilfreich)")
        _count_axis(ax.yaxis)
    return fig


def plot_top_docs(u: Usage):
    fig, ax = _figure(7.5, max(2.5, 0.35 * len(u.top_docs) + 1))
    if not u.top_docs:
        _empty(ax, "noch keine Zitate")
    else:
        labels = [(t[:45] + "…") if len(t) > 46 else t for _, t, _ in u.top_docs][::-1]
        ax.barh(labels, [n for _, _, n in u.top_docs][::-1], color="#455a64")
        ax.set_title("Am häufigsten zitierte Dokumente")
        ax.set_xlabel("Antworten mit Zitat")
        _count_axis(ax.xaxis)
    return fig


def figure_png(fig) -> bytes:
    buf = BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
