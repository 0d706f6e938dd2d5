"""Usage statistics: from chat messages when present, else from the audit log; privacy
mode respected; missing tables tolerated; plots render headless."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from assistant import dashboard as d
from assistant.appdb import AppDB, new_id
from assistant.audit import AuditLog
from corpus.catalog import DocumentRecord

# the chat component's schema (assistant/chats.py), created here so this test does not depend on it
CHAT_TABLES = [
    'CREATE TABLE chats (id TEXT PRIMARY KEY, "user" TEXT NOT NULL, title TEXT NOT NULL DEFAULT \'\', '
    "created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE messages (id TEXT PRIMARY KEY, chat_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, "
    "content TEXT NOT NULL, citations_json TEXT NOT NULL DEFAULT '[]', meta_json TEXT NOT NULL DEFAULT '{}', "
    "created_at DOUBLE PRECISION NOT NULL)",
    'CREATE TABLE feedback (id TEXT PRIMARY KEY, message_id TEXT NOT NULL, "user" TEXT NOT NULL, '
    "rating INTEGER NOT NULL, comment TEXT NOT NULL DEFAULT '', question TEXT NOT NULL DEFAULT '', "
    "answer TEXT NOT NULL DEFAULT '', sources_json TEXT NOT NULL DEFAULT '[]', created_at DOUBLE PRECISION NOT NULL)",
]

NOW = dt.datetime(2025, 6, 15, 12, 0).timestamp()
DAY = 86400


@pytest.fixture
def db(tmp_path):
    return AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")


def _chat_tables(db):
    for stmt in CHAT_TABLES:
        db.execute(stmt)


def _answer(db, chat, seq, at, question, *, latency, refused=False, doc_ids=()):
    db.execute("INSERT INTO messages(id, chat_id, seq, role, content, created_at) VALUES (:i,:c,:s,'user',:q,:t)",
               {"i": new_id(), "c": chat, "s": seq, "q": question, "t": at - 1})
    mid = new_id()
    db.execute("INSERT INTO messages(id, chat_id, seq, role, content, citations_json, meta_json, created_at) "
               "VALUES (:i,:c,:s,'assistant','Antwort',:cj,:m,:t)",
               {"i": mid, "c": chat, "s": seq + 1, "t": at,
                "cj": json.dumps([{"doc_id": x, "n": 1} for x in doc_ids]),
                "m": json.dumps({"latency_ms": latency, "refused": refused, "doc_ids": list(doc_ids)})})
    return mid


def test_empty_installation(db):
    audit = AuditLog(db)
    u = d.usage(db, audit, days=7, now=NOW)
    assert u.source == "none" and u.total == 0 and len(u.days) == 7 and u.days[-1] == dt.date(2025, 6, 15)
    assert u.feedback_ratio is None and u.top_docs == [] and u.refused_questions == []
    for plot in (d.plot_questions, d.plot_latency, d.plot_feedback, d.plot_top_docs):
        assert d.figure_png(plot(u))[:8] == b"\x89PNG\r\n\x1a\n"


def test_from_messages_and_feedback(db):
    _chat_tables(db)
    audit = AuditLog(db, log_questions="pseudonymised")
    m1 = _answer(db, "c1", 0, NOW - 2 * DAY, "Wie hoch ist die Hundesteuer?", latency=1000, doc_ids=["d1", "d2"])
    _answer(db, "c1", 2, NOW - 2 * DAY + 60, "Und für zwei Hunde?", latency=3000, doc_ids=["d1"])
    _answer(db, "c2", 0, NOW - 1 * DAY, "Wann ist das Freibad offen?", latency=2000, refused=True)
    for n, lat in enumerate([500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 10000]):
        _answer(db, f"c3{n}", 0, NOW - 100 + n, f"Frage {n}", latency=lat, doc_ids=["d2"])
    _answer(db, "old", 0, NOW - 40 * DAY, "Ganz alte Frage", latency=1, refused=True)
    for rating in (1, 1, 1, -1):
        db.execute('INSERT INTO feedback(id, message_id, "user", rating, created_at) VALUES (:i,:m,:u,:r,:t)',
                   {"i": new_id(), "m": m1, "u": new_id(), "r": rating, "t": NOW - DAY})

    class Cat:
        def get(self, doc_id):
            title = {"d1": "Hundesteuersatzung", "d2": "Gebührenordnung"}.get(doc_id)
            return DocumentRecord(doc_id, "", "", "a", "indexed", title=title) if title else None

    u = d.usage(db, audit, days=30, catalog=Cat(), now=NOW)
    assert u.source == "messages" and u.total == 13
    assert u.questions[-3:] == [2, 1, 10] and u.refused[-2] == 1
    assert u.p50_ms[-3] == 1000 and u.p95_ms[-3] == 3000
    assert u.p50_ms[-1] == 900 and u.p95_ms[-1] == 10000  # nearest rank
    assert (u.feedback_up, u.feedback_down, u.feedback_ratio) == (3, 1, 0.75)
    assert u.top_docs[0] == ("d2", "Gebührenordnung", 11) and u.top_docs[1] == ("d1", "Hundesteuersatzung", 2)
    assert [q for _, q in u.refused_questions] == ["Wann ist das Freibad offen?"]
    hidden = d.usage(db, audit, days=30, now=NOW, log_questions="off")
    assert hidden.refused_questions == [] and hidden.questions_hidden and hidden.total == 13
    json.dumps(u.as_dict())
    for plot in (d.plot_questions, d.plot_latency, d.plot_feedback, d.plot_top_docs):
        assert d.figure_png(plot(u))[:4] == b"\x89PNG"


def test_falls_back_to_audit_questions(db):
    audit = AuditLog(db, log_questions="full")
    audit.record_question("anna", "Was kostet ein Anwohnerparkausweis?", {"refused": False, "latency_ms": 1200})
    audit.record_question("ben", "Wo finde ich den Bebauungsplan 12?", {"refused": True, "latency_ms": 800})
    u = d.usage(db, audit, days=3)
    assert u.source == "audit" and u.total == 2 and u.refused[-1] == 1
    assert [q for _, q in u.refused_questions] == ["Wo finde ich den Bebauungsplan 12?"]
    assert u.p50_ms[-1] == 800


def test_odd_values_do_not_break_it(db):
    _chat_tables(db)
    db.execute("INSERT INTO messages(id, chat_id, seq, role, content, meta_json, created_at) "
               "VALUES ('a','c',1,'assistant','x','kein json',:t)", {"t": NOW})
    db.execute("INSERT INTO messages(id, chat_id, seq, role, content, meta_json, created_at) "
               "VALUES ('b','c',3,'assistant','x',:m,:t)",
               {"t": NOW, "m": json.dumps({"latency_ms": "schnell", "refused": "true", "doc_ids": [None, 3, "d"]})})
    u = d.usage(db, AuditLog(db), days=1, now=NOW)
    assert u.total == 2 and u.refused == [1] and u.p50_ms == [None] and u.top_docs == []
    assert d._rating("up") == 1 and d._rating("👎") == -1 and d._rating(0) == -1 and d._rating("?") == 0


def test_nearest_rank_percentile():
    assert d.nearest_rank_percentile([], 50) is None
    assert d.nearest_rank_percentile([5], 95) == 5
    assert d.nearest_rank_percentile(list(range(1, 101)), 50) == 50 and d.nearest_rank_percentile(list(range(1, 101)), 95) == 95


def test_rated_answers_for_the_review_unhelpful_first_and_without_names(db):
    """The quality review lists what was rated (staff are told so under the thumbs): the unhelpful
    answers first, newest first among them; no person; question texts only where privacy keeps them."""
    _chat_tables(db)
    rows = [(1, "Wie hoch ist die Hundesteuer?", "", NOW - 3 * DAY),
            (-1, "Wann ist das Freibad offen?", "Falsche Uhrzeit", NOW - 2 * DAY),
            (-1, "Wer genehmigt Baumfällungen?", "", NOW - DAY),
            (1, "Ganz alt", "", NOW - 40 * DAY)]
    for rating, question, comment, at in rows:
        db.execute('INSERT INTO feedback(id, message_id, "user", rating, comment, question, answer, sources_json, '
                   "created_at) VALUES (:i, 'm', 'anna', :r, :c, :q, 'Die Antwort', :s, :t)",
                   {"i": new_id(), "r": rating, "c": comment, "q": question, "t": at,
                    "s": json.dumps([{"title": "Baumschutzsatzung", "page": 3}, {"title": "Ohne Seite"}, {"n": 2},
                                     {"title": "Vortrag", "page": 4, "page_kind": "slide"}, {"title": "Kaputt", "page": True}])})
    u = d.usage(db, AuditLog(db), days=30, now=NOW)
    assert [(f.rating, f.question) for f in u.feedback] == [
        (-1, "Wer genehmigt Baumfällungen?"), (-1, "Wann ist das Freibad offen?"), (1, "Wie hoch ist die Hundesteuer?")]
    assert u.feedback[1].comment == "Falsche Uhrzeit" and u.feedback[1].answer == "Die Antwort"
    assert u.feedback[0].sources == ["Baumschutzsatzung, Seite 3", "Ohne Seite", "Vortrag, Folie 4", "Kaputt"]
    assert "anna" not in json.dumps(u.as_dict())
    hidden = d.usage(db, AuditLog(db), days=30, now=NOW, log_questions="off")
    assert [f.question for f in hidden.feedback] == [None, None, None] and hidden.feedback[1].comment == "Falsche Uhrzeit"


def test_rated_answers_without_a_feedback_table(db):
    assert d.feedback_items(db, 0.0, True) == []


def test_the_review_keeps_the_unhelpful_ratings_when_there_are_many(db):
    """The newest rows were read first and sorted after: one busy rater's helpful ratings pushed the
    others' unhelpful ones out of the review (an attacker's probe)."""
    _chat_tables(db)
    db.execute('INSERT INTO feedback(id, message_id, "user", rating, question, created_at) '
               "VALUES ('old', 'm', 'x', -1, 'Die alte schlechte', :t)", {"t": NOW - 5 * DAY})
    for n in range(5):
        db.execute('INSERT INTO feedback(id, message_id, "user", rating, question, created_at) '
                   "VALUES (:i, 'm', 'x', 1, 'gut', :t)", {"i": new_id(), "t": NOW - n})
    got = d.feedback_items(db, NOW - 30 * DAY, True, limit=3)
    assert [f.question for f in got] == ["Die alte schlechte", "gut", "gut"]


def test_counts_are_marked_in_whole_numbers_even_for_one_rating():
    """A browser review: one rating drew an axis of 0.0, 0.2 … 1.0 for counts."""
    day = dt.date(2026, 12, 1)
    u = d.Usage(days=[day], questions=[1], refused=[0], p50_ms=[900.0], p95_ms=[900.0], feedback_up=1,
                top_docs=[("doc", "Friedhofssatzung", 1)])
    for plot, axis in ((d.plot_feedback, "yaxis"), (d.plot_questions, "yaxis"), (d.plot_top_docs, "xaxis")):
        fig = plot(u)
        d.figure_png(fig)  # lays the figure out, as the portal does
        ticks = getattr(fig.axes[0], axis).get_majorticklocs()
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), (plot.__name__, list(ticks))
