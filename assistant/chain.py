"""The answer chain: rewrite → retrieve → policy → evidence → prompt → stream → check citations.

``Assistant.stream`` yields events so that a UI can show the sources as soon as retrieval
is done and the answer token by token; ``Assistant.answer`` collects them into one
:class:`AnswerResult`. False refusals and invented answers are the two errors to
minimise: the model reads only selected evidence, an answer must cite a given source
(or be attributable to one), and when the model refuses although retrieval is confident,
the evidence itself is given as an extractive answer.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from langchain_core.output_parsers import StrOutputParser

from assistant.access import FULL, Scope
from assistant.answer_checks import (NOTICE_NO_ANSWER, RECITE_COVERAGE, Source, check_answer, retrieval_confident,
                                     shows_answer)
from assistant.quotes import (LIST_SENTENCES, Quote, asked_parts, asks_list, best_quote, cited_sentence, claims_in_quote,
                              ASKED_KINDS, asked_kind, holds_asked_kind,
                              covers, first_sentence, has_claims, is_yes_no, later_sentences, quote_line, restates_question,
                              supporting_quote, two_clauses)
from assistant.citations import REFUSAL, is_refusal, numbers, parse_citations
from assistant.evidence import Evidence, content_stems, coverage, embedding_similarity, select_evidence
from assistant.grounding import unmentioned_terms, warning
from assistant.llm.backends import token_counter
from assistant.wording import counted
from assistant.questions import checked_question
from assistant.reading_time import ReadingSpeed
from assistant.prompting import NO_DOCS_PROMPT, REWRITE_PROMPT, answer_messages, history_text, render, source_label
from assistant.rerank import rerank
from assistant.retrieval import HybridRetriever
from assistant.model_choice import model_profile
from assistant.settings import ModelProfile, Settings
from corpus.knowledge_base import index_text
from corpus.ligatures import SplitDocuments, close_gaps, join_known_gaps
from corpus.models import Hit, page_kind_of, page_label
from corpus.text import stopwords

log = logging.getLogger(__name__)

FOLLOW_UP = re.compile(r"^(und|aber|also|oder|auch)\b|\b(das|dies|diese[rsmn]?|dort|da|es|sie|er|ihn|ihm|davon|dazu|darüber|damit|dafür|denen|deren)\b",
                       re.IGNORECASE)
"""Words that may lean on the conversation; a follow-up's words asked anew are the others (:func:`follow_up_focus`)."""

#: opens by continuing the conversation: "Und wie viele …?", "Aber gilt …?"
_CONTINUES = re.compile(r"^\W*(und|aber|also|oder|auch|außerdem|sonst)\b", re.IGNORECASE)
#: points back at something said before, whatever else the question names
_POINTS_BACK = re.compile(r"\b(dort|dorthin|dortigen?|da|davon|dazu|darüber|damit|dafür|daran|darauf|dabei|darin|danach|"
                          r"dagegen|dies|diese[rsmn]?|denen|deren|dessen|dasselbe|derselben?|dieselben?)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_][\w-]*")
#: capitalised inside a sentence, these are the polite form ("Können Sie …?"), not a name or a noun
_POLITE = {"Sie", "Ihnen", "Ihr", "Ihre", "Ihrem", "Ihren", "Ihrer", "Ihres"}


def _leans_back(words: list[str], cased: bool) -> bool:
    """A pronoun that stands for something said before: "das"/"es" alone ("Was kostet das?",
    "Wie lange dauert es?"), "er", "ihn", "ihm", a lower-case "sie"/"ihnen". Not "das" before a
    noun (an article: "das Erklärvideo"), not the "es" of "gibt es" (a browser review: "Was kostet das
    Erklärvideo …?" and "Wie wird das Wetter morgen in Köln?" after another topic were answered with
    the topic before). ``cased``: the question capitalises its nouns; typed all in lower case, "das"
    before any word but a stopword is taken for an article."""
    for i, word in enumerate(words):
        low = word.lower()
        after = words[i + 1] if i + 1 < len(words) else ""
        before = words[i - 1].lower() if i else ""
        if low == "das" and (not after or (not after[:1].isupper() if cased else after.lower() in stopwords())):
            return True
        if low == "es" and before not in ("gibt", "geht", "handelt") and after.lower() != "gibt":
            return True
        if low in ("er", "ihn", "ihm") or (cased and word in ("sie", "ihnen")):
            return True
    return False


def _names_something(words: list[str], cased: bool) -> bool:
    """A noun or a name of its own (German capitalises them): "Ab wann?" or "Wer ist zuständig?" name
    nothing and ask about what was said before. Typed all in lower case, two content words do."""
    if cased:
        return any(w[:1].isupper() and w not in _POLITE for w in words[1:])
    return len(content_stems(" ".join(words))) >= 2


def is_follow_up(question: str, history: Sequence[tuple[str, str]]) -> bool:
    """A question that leans on the conversation: it opens with "und/aber …", points back ("dort",
    "davon", "diese …"), stands on a pronoun ("Wie lange gilt es?") or names nothing of its own.
    The first question of a chat never is; a question that names its own topic is not either, however
    short ("Was kostet der Bewohnerparkausweis?" after a question about the library)."""
    if not history:
        return False
    words = _WORD.findall(question)
    cased = any(w[:1].isupper() for w in words)  # whoever capitalises the first word capitalises nouns too
    return (bool(_CONTINUES.search(question)) or bool(_POINTS_BACK.search(question)) or _leans_back(words, cased)
            or not _names_something(words, cased))


def search_query(question: str, standalone: str, history: Sequence[tuple[str, str]]) -> str:
    """What retrieval searches for: the standalone question, or for a follow-up whose rewrite took no
    word from the conversation, the previous question with it.

    The 1.5B model often rewrites a follow-up by dropping its "Und" and nothing more ("Und wie viele
    Personen dürfen pro Termin teilnehmen?" after a question about the KI-Kompass course stayed
    without "KI-Kompass"), so the search missed the document the conversation is about (found by a
    browser review). The model still answers the rewritten question; only the search widens."""
    if not is_follow_up(question, history):
        return standalone
    previous = history[-1][0]
    from_conversation = set(content_stems(previous)) - set(content_stems(question))
    if set(content_stems(standalone)) & from_conversation:
        return standalone
    return joined_question(previous, standalone)


def joined_question(previous: str, question: str) -> str:
    """A follow-up no model rewrote: the previous question with the follow-up behind it."""
    return f"{previous} {question}"


def follow_up_focus(question: str, standalone: str, history: Sequence[tuple[str, str]]) -> list[str]:
    """The words a follow-up asks anew, when no model rewrote it (the standalone question is then the
    previous question with the follow-up behind it, :meth:`Assistant.rewrite`). Chosen by the words
    of both, the evidence kept the previous answer's sentence and the quote repeated it: "Und wie
    viele davon sind Parkplatzsensoren?" was answered "304 Sensoren" again (a browser review)."""
    if not history or standalone != joined_question(history[-1][0], question):
        return []
    before = set(content_stems(history[-1][0]))
    asked = content_stems(FOLLOW_UP.sub(" ", question))  # "davon", "dort", "Und …" point back: nothing new
    return [s for s in dict.fromkeys(asked) if s not in before]


@dataclass
class Citation:
    n: int
    doc_id: str
    source: str
    title: str
    page: int | None
    snippet: str
    score: float
    section: str | None = None
    #: the collection at answer time (decides who may see the citation once the document is gone)
    collection: str | None = None
    #: the cited passage (its ordinal in the document and its id): the text view opens and marks it
    chunk: int | None = None
    chunk_id: str | None = None


@dataclass
class PassageTrace:
    """Everything a trainer needs to see why a passage was (not) used."""

    doc_id: str
    source: str
    title: str
    page: int | None
    text: str
    fused_score: float
    bm25_rank: int | None
    dense_rank: int | None
    dense_score: float | None
    in_prompt: bool
    n: int | None = None
    removed_reason: str | None = None
    late_rank: int | None = None  # place by late interaction (assistant.late_interaction), None when not re-ranked


@dataclass
class AnswerResult:
    question: str
    answer: str = ""
    citations: list[Citation] = field(default_factory=list)
    refused: bool = False
    mode: str = ""
    model: str = ""
    zone: str = "green"
    standalone_question: str = ""
    search_query: str = ""  # what retrieval searched for (a follow-up may add the previous question)
    timings: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    passages: list[PassageTrace] = field(default_factory=list)
    prompt: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    fallback: str | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    raw_answer: str = ""
    #: how likely the model was to begin with the refusal sentence (local model only, else None)
    refusal_probability: float | None = None
    #: question terms that no cited document mentions (a warning, shown as a notice)
    unmentioned_terms: list[str] = field(default_factory=list)
    #: the verbatim sentence(s) the answer rests on, with source and page
    quotes: list[Quote] = field(default_factory=list)
    #: a follow-up's words asked anew (follow_up_focus); they choose the evidence's and quote's sentences first
    focus: list[str] = field(default_factory=list)

    def as_dict(self, trace: bool = False) -> dict:
        d = asdict(self)
        if not trace:
            for key in ("passages", "prompt", "raw_answer"):
                d.pop(key)
        return d


def citation_for(ev: Evidence, title: str | None = None, *, joined: bool = False) -> Citation:
    """``title``: the name people read (the catalog's readable title); the passage's indexed one otherwise.
    ``joined``: the document's font splits ligatures, so the snippet is shown with the words joined."""
    c = ev.hit.chunk
    return Citation(n=ev.n, doc_id=c.doc_id, source=c.source, title=title or c.title, page=c.page,
                    snippet=(close_gaps(ev.text) if joined else ev.text)[:400], score=round(ev.hit.score, 6),
                    section=c.section, collection=c.collection, chunk=c.ordinal, chunk_id=c.chunk_id)


@dataclass(frozen=True)
class _Retrieved:
    """One request's retrieval: the passages the model may see (None = blocked), all hits, why removed."""

    allowed: list[Hit] | None
    hits: list[Hit]
    removed: dict[str, str]
    t0: float


#: why the best quote may not stand in for the model (completed by the two notices below)
QUOTE_UNMENTIONED = "das Dokument der passendsten Textstelle erwähnt {terms} nicht"
QUOTE_WRONG_KIND = "die passendste Textstelle nennt nicht, wonach gefragt ist ({kind})"
NOTICE_UNFOUNDED_QUOTE = "Die Aussage des Modells stand so in keiner Quelle, und {why}: keine Antwort."
NOTICE_NO_ANSWER_NO_QUOTE = "Das Modell fand keine Antwort, und {why}: keine Antwort."
NOTICE_QUOTE_NOT_ANSWER = "Eine Textstelle passt zur Frage, aber {why}: keine Antwort."
#: the model found nothing and no passage stands in for it (NOTICE_NO_ANSWER says "here is the closest passage")
NOTICE_NO_ANSWER_REFUSED = "Das Modell fand keine Antwort, und keine Textstelle beantwortet die Frage sicher."
NOTICE_RESTATED_VERDICT = ("Das Modell antwortete nur mit Ja oder Nein und den Worten der Frage; "
                           "ob es zutrifft, entscheidet die zitierte Textstelle.")


class Assistant:
    """Answers questions from the knowledge base. ``models`` maps a profile key to a chat model
    (``None`` = extractive); it is called lazily so an unused model is never loaded."""

    def __init__(
        self,
        retriever: HybridRetriever,
        settings: Settings,
        model_for: Callable[[str], Any],
        *,
        policy: Callable[..., Any] | None = None,
        split_docs: SplitDocuments | None = None,
    ) -> None:
        """``split_docs``: documents whose font splits ligatures, so what people read is joined
        ("Betroff ene" -> "Betroffene"); the App shares one with the tools."""
        self.retriever = retriever
        self.settings = settings
        self.model_for = model_for
        self.policy = policy
        self._split_docs = split_docs or SplitDocuments(retriever.kb.catalog)
        self.reading = ReadingSpeed()  # each model's prompt tokens per second: the wait the chat announces

    # -- helpers -------------------------------------------------------------
    def profile(self, key: str | None) -> tuple[str, ModelProfile]:
        return model_profile(self.settings, key)

    def rewrite(self, question: str, history: Sequence[tuple[str, str]], model) -> str:
        """A standalone question for retrieval. Only follow-ups are rewritten (saves a model call)."""
        if not is_follow_up(question, history):
            return question
        last_user = history[-1][0]
        if model is None:
            return joined_question(last_user, question)
        try:
            out = (REWRITE_PROMPT | model | StrOutputParser()).invoke(
                {"history": history_text(history), "question": question}, config={"max_tokens": 60}
            ).strip().strip('"„“')
        except Exception as exc:  # rewriting is an optimisation: never fail the answer for it
            log.warning("rewrite failed: %s", exc)
            return joined_question(last_user, question)
        return out if 3 < len(out) < 400 else joined_question(last_user, question)

    # -- the chain -------------------------------------------------------------
    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        *,
        model: str | None = None,
        collections: Sequence[str] | None = None,
        k: int | None = None,
        use_documents: bool = True,
        confirmed: bool = False,
        budget_tokens: int | None = None,
        scope: Scope = FULL,
    ) -> Iterator[dict]:
        """Yield events: ``sources`` (after retrieval), ``token`` (answer text), ``reset`` (the shown
        answer was replaced), ``notice`` and finally ``done`` with the :class:`AnswerResult`.

        The steps: Ampel on the question → standalone question → retrieval and Ampel on the
        passages → evidence within the budget (sources shown) → refusal before the model →
        the model's answer (or the evidence's) → the answer checks.

        ``scope``: the collections the asking user may read; the chosen ``collections`` are cut
        to it and retrieval searches only there, so nothing else reaches the model or the result."""
        collections = scope.restrict(collections)
        question = checked_question(question)
        t_start = time.perf_counter()
        key, profile = self.profile(model)
        res = AnswerResult(question=question, mode=profile.mode, model=profile.label or key, zone=profile.zone)
        llm = self._load_model(key, profile, res)
        if self._question_blocked(res, profile, confirmed):
            yield self._done(res, t_start)
            return
        if not use_documents:
            yield from self._no_documents(question, llm, res, t_start)
            return
        standalone = self._standalone(question, history, llm, res)
        n_pass = k or self.settings.llm.passages
        res.search_query = search_query(question, standalone, history)
        found = self._retrieve(res.search_query, question, profile, res, collections, n_pass, reads=llm is not None)
        if found.allowed is None:  # the Ampel blocked the request
            yield {"type": "sources", "citations": [], "passages": res.passages}
            yield self._done(res, t_start)
            return
        count = token_counter(llm)
        evidence, messages, gaps = self._prepare(standalone if history else question, standalone, found, res, count,
                                                 budget_tokens, n_pass)
        n_prompt = count(res.prompt) if llm is not None else 0
        reading_s = self.reading.estimate_s(key, n_prompt) if llm is not None else None
        # reading_s: how long the model will read before its first word, as far as its last answers tell
        yield {"type": "sources", "citations": res.citations, "passages": res.passages, "reading_s": reading_s}
        q_stems = content_stems(standalone)
        if self._refuse_before_model(res, evidence, standalone):
            yield self._done(res, t_start, gaps)
            return
        if llm is None:
            yield from self._answer_extractively(res, evidence, q_stems, profile)
            yield self._done(res, t_start, gaps)
            return
        res.prompt_tokens = n_prompt
        raw = yield from self._generate(llm, messages, res, t_start)
        if "prompt_eval_ms" in res.timings:
            self.reading.record(key, res.prompt_tokens, res.timings["prompt_eval_ms"] / 1000)
        if raw is None:  # the model failed mid-way: the evidence answers instead
            self._extractive(res, evidence, res.standalone_question)
            yield {"type": "reset", "text": res.answer}
            yield self._done(res, t_start, gaps)
            return
        res.raw_answer = raw
        res.completion_tokens = count(raw) if raw else 0
        self._finish(res, raw, evidence, q_stems)
        if res.answer != raw:
            yield {"type": "reset", "text": res.answer}
        yield self._done(res, t_start, gaps)

    def _done(self, res: AnswerResult, t_start: float, gaps: dict[str, dict[str, str]] | None = None) -> dict:
        """The final event; total time is taken here so every path measures it the same way. Every
        path's quotes are named like their citation (the title people read; quotes are scored with the
        passage's indexed one), and where a source's font splits ligatures (``gaps``, from
        :meth:`_prepare`) its quotes, and an answer citing it, are shown with the words joined (the
        checks above ran on the text as indexed)."""
        res.timings["total_ms"] = _ms(t_start)
        names = {c.n: c.title for c in res.citations}
        split = {c.n: gaps[c.doc_id] for c in res.citations if gaps and c.doc_id in gaps}
        quotes = []
        for q in res.quotes:
            text = close_gaps(q.text) if q.n in split else q.text
            if text != q.text:
                res.answer = res.answer.replace(q.text, text)
            quotes.append(replace(q, title=names.get(q.n, q.title), text=text))
        res.quotes = quotes
        # the rest of the answer (the model's sentence, a refusal's passages) may hold text of other
        # sources too: only the gaps the cited split documents really have are joined
        cited = [split[n] for n in dict.fromkeys(parse_citations(res.answer)) if n in split]
        if cited:
            res.answer = join_known_gaps(res.answer, {k: v for pairs in cited for k, v in pairs.items()})
        return {"type": "done", "result": res}

    def answer(self, question: str, history: Sequence[tuple[str, str]] = (), **kwargs) -> AnswerResult:
        result = None
        for event in self.stream(question, history, **kwargs):
            if event["type"] == "done":
                result = event["result"]
        assert result is not None
        return result

    # -- steps -----------------------------------------------------------------
    def _standalone(self, question: str, history, llm, res: AnswerResult) -> str:
        t = time.perf_counter()
        res.standalone_question = standalone = self.rewrite(question, history, llm)
        res.focus = follow_up_focus(question, standalone, history)
        res.timings["rewrite_ms"] = _ms(t)
        return standalone

    def _retrieve(self, standalone: str, question: str, profile: ModelProfile, res: AnswerResult,
                  collections: Sequence[str] | None, n_pass: int, *, reads: bool) -> _Retrieved:
        """Hybrid retrieval, then the Ampel on the passages (``allowed`` is None when it blocks the request).
        ``reads``: a model will read the passages (not the quote-only mode, nor a model that failed to load)."""
        t_ret = time.perf_counter()
        wide = self.settings.retrieval.rerank_candidates
        shown = max(n_pass + 2, self.retriever.k)
        # late interaction costs ~0.5 s: worth it before a model reads for seconds, not for the instant quotes
        result = self.retriever.search(standalone, k=max(wide, shown), collections=collections, wait_for_index=False,
                                       late=reads)
        hits = rerank(standalone, result.hits)[:shown] if wide else result.hits
        res.timings["retrieve_ms"] = _ms(t_ret)
        allowed, removed = self._apply_policy(hits, question, profile, res)
        if allowed is None:
            res.passages = [self._trace(h, {}, removed) for h in hits]
        return _Retrieved(allowed, hits, removed, t_ret)

    def _prepare(self, prompt_question: str, standalone: str, found: _Retrieved, res: AnswerResult, count,
                 budget_tokens: int | None, n_pass: int) -> tuple[list[Evidence], list, dict[str, dict[str, str]]]:
        """Evidence within the token budget, the citations shown before the model starts, the prompt,
        and the ligature gaps of the sources whose font splits them (for :meth:`_done`)."""
        budget = budget_tokens or self.settings.llm.prompt_budget_tokens
        weight = self.settings.llm.sentence_similarity
        evidence, dropped = select_evidence(standalone, found.allowed, budget_tokens=budget, count=count,
                                            max_passages=n_pass, similarity_weight=weight,
                                            similarity=embedding_similarity(self.retriever.kb.embedder, standalone) if weight else None,
                                            focus=res.focus)
        in_prompt = {ev.hit.chunk.chunk_id: ev.n for ev in evidence}
        res.passages = [self._trace(h, in_prompt, found.removed) for h in found.hits]
        # people read a document's readable title (a PDF's cover headline, ingest.loaders.pdf_title);
        # the prompt, the quote scoring and the index keep the passages' indexed one
        records = self.retriever.kb.catalog.records(ev.hit.chunk.doc_id for ev in evidence)
        gaps = self._split_docs.gaps(records.values())
        res.citations = [citation_for(ev, records[d].shown_title if d in records else None, joined=d in gaps)
                         for ev in evidence for d in [ev.hit.chunk.doc_id]]
        if dropped and len(evidence) < n_pass:
            res.notices.append(f"{counted(len(dropped), 'weitere Textstelle passte', 'weitere Textstellen passten')} "
                               "nicht mehr in das Kontextfenster.")
        messages = answer_messages(prompt_question, evidence)
        res.prompt = render(messages)
        res.timings["prepare_ms"] = _ms(found.t0)
        return evidence, messages, gaps

    def _answer_extractively(self, res: AnswerResult, evidence: Sequence[Evidence], q_stems, profile: ModelProfile
                             ) -> Iterator[dict]:
        self._extractive(res, evidence, res.standalone_question)
        if profile.mode != "extractive" and res.fallback:
            res.mode = "extractive"
        for i in range(0, len(res.answer), 24):
            yield {"type": "token", "text": res.answer[i : i + 24]}

    # -- pieces ----------------------------------------------------------------
    def _load_model(self, key: str, profile: ModelProfile, res: AnswerResult):
        """The chat model, or None (extractive mode, or the model cannot be loaded: noted in ``res``)."""
        if profile.mode == "extractive":
            return None
        try:
            return self.model_for(key)
        except Exception as exc:
            res.fallback = f"Modell nicht verfügbar: {exc}"
            res.notices.append("Das Sprachmodell ist nicht verfügbar; die Antwort besteht nur aus Textstellen.")
            return None

    def _question_blocked(self, res: AnswerResult, profile: ModelProfile, confirmed: bool) -> bool:
        """The Ampel on the question: personal data to a yellow/red model is blocked or needs confirmation."""
        if self.policy is None:
            return False
        decision = self.policy(question=res.question, zone=profile.zone, passages=None, confirmed=confirmed)
        res.policy = decision
        if decision.get("action") == "block" or (decision.get("action") == "warn" and not confirmed):
            _block(res, decision)
            res.notices.extend(decision.get("messages_de") or [])
            return True
        return False

    def _apply_policy(self, hits: Sequence[Hit], question: str, profile: ModelProfile,
                      res: AnswerResult) -> tuple[list[Hit] | None, dict[str, str]]:
        """Passages the chosen model may not see never reach it; ``None`` when the request is blocked."""
        removed: dict[str, str] = {}
        if self.policy is None or not hits:
            return list(hits), removed
        decision = self.policy(question=question, zone=profile.zone, passages=list(hits), confirmed=True)
        allowed_ids = {h.chunk.chunk_id for h in decision.get("allowed", hits)}
        for h in hits:
            if h.chunk.chunk_id not in allowed_ids:
                removed[h.chunk.chunk_id] = "Ampel"
        res.notices.extend(decision.get("messages_de") or [])
        res.policy = {key: v for key, v in decision.items() if key != "allowed"}
        if decision.get("action") == "block":
            _block(res, decision)
            return None, removed
        return [h for h in hits if h.chunk.chunk_id in allowed_ids], removed

    def _refuse_before_model(self, res: AnswerResult, evidence: Sequence[Evidence], standalone: str) -> bool:
        """Refuse without a model call when nothing was found, the best passage matches only weakly,
        or the question names a number that no given passage, its title or file name contains (near
        misses: "… im Jahr 2019?")."""
        if not evidence:
            res.refused, res.answer = True, REFUSAL
            return True
        notice = None
        min_score = self.settings.llm.refusal_min_score
        if min_score and max((ev.hit.dense_score or 0.0) for ev in evidence) < min_score:
            notice = "Die gefundenen Textstellen passen nur schwach zur Frage."
        else:
            missing = sorted(numbers(standalone) - numbers(self._where_found(evidence)))
            if missing:
                notice = f"Die Angabe {', '.join(missing)} aus der Frage steht in keiner gefundenen Textstelle."
        if notice is None:
            return False
        res.refused, res.answer = True, self._refusal_with_passages(evidence)
        res.notices.append(notice)
        return True

    @staticmethod
    def _where_found(evidence: Sequence[Evidence]) -> str:
        """All a reader sees of the given passages: the whole passage with its title and section (as
        indexed; the model's condensed text may leave out the sentence with the asked year) and
        its file name (a newsletter's month and year often stand only there)."""
        return " ".join(f"{Path(ev.hit.chunk.source).name}\n{index_text(ev.hit.chunk)}" for ev in evidence)

    def _generate(self, llm, messages, res: AnswerResult, t_start: float) -> Iterator[dict]:
        """Stream the model's tokens; returns the raw answer, or None when the model failed."""
        t_gen = time.perf_counter()
        parts: list[str] = []
        try:
            for chunk in llm.stream(messages):
                text = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
                p_refusal = chunk.response_metadata.get("refusal_probability")
                if p_refusal is not None and res.refusal_probability is None:
                    res.refusal_probability = float(p_refusal)
                if not text:
                    continue
                if not parts:
                    res.timings["first_token_ms"] = _ms(t_start)
                    res.timings["prompt_eval_ms"] = _ms(t_gen)
                parts.append(text)
                yield {"type": "token", "text": text}
        except Exception as exc:
            log.warning("generation failed (%s): %s", type(exc).__name__, exc)
            res.fallback = f"{type(exc).__name__}: {exc}"[:300]
            res.mode = "extractive"
            res.notices.append("Das Sprachmodell ist nicht erreichbar; die Antwort besteht nur aus Textstellen.")
            return None
        finally:
            res.timings["generate_ms"] = _ms(t_gen)
        return "".join(parts).strip()

    @staticmethod
    def _trace(h: Hit, in_prompt: dict[str, int], removed: dict[str, str]) -> PassageTrace:
        c = h.chunk
        return PassageTrace(doc_id=c.doc_id, source=c.source, title=c.title, page=c.page, text=c.text,
                            fused_score=round(h.score, 6), bm25_rank=h.bm25_rank, dense_rank=h.dense_rank,
                            dense_score=None if h.dense_score is None else round(h.dense_score, 4),
                            in_prompt=c.chunk_id in in_prompt, n=in_prompt.get(c.chunk_id),
                            removed_reason=removed.get(c.chunk_id), late_rank=h.late_rank)

    def _extractive(self, res: AnswerResult, evidence: Sequence[Evidence], question: str) -> None:
        """The best quote of the evidence as the answer, with its citation (or a refusal when no
        sentence matches the question). One quote, not several: a heading glued to an unrelated line,
        or an instruction planted in a document, must not ride along. ``res.focus``: a follow-up's new
        words.

        A quote that does not hold the kind of thing asked (a figure for "Wie viele …?" or "Was kostet
        …?", a date for "Seit wann …?") is no answer either (``llm.extractive_checks_kind``): "Nur
        Textstellen" answered every near miss of the tuning sets with the closest sentence (a browser
        review: a title line for a phone number). Chosen on blind_dev and shared_dev: near misses
        refused 0.00 -> 0.33 and 0.00 -> 0.50, key facts unchanged (docs/results.md, session 49)."""
        quote = best_quote(question, evidence, res.focus)
        if quote is not None and self.settings.llm.extractive_checks_kind and not holds_asked_kind(question, quote.text):
            res.notices.append(NOTICE_QUOTE_NOT_ANSWER.format(why=QUOTE_WRONG_KIND.format(
                kind=ASKED_KINDS[asked_kind(question)])))
            quote = None
        if quote is None:
            res.answer, res.refused, res.quotes = self._refusal_with_passages(evidence), True, []
        else:
            res.answer, res.refused, res.quotes = f"Laut den Dokumenten: {quote_line(quote)}", False, [quote]

    @staticmethod
    def _refusal_with_passages(evidence: Sequence[Evidence]) -> str:
        """The refusal and the closest passages, by number and place: the sources under the answer
        name each document by the title people read (the indexed title of a PDF can be a label such
        as "Herausgeber:", :mod:`ingest.loaders.pdf_title`)."""
        lines = [REFUSAL, "", "Am nächsten kommen diese Textstellen:"]
        for ev in evidence[:3]:
            c = ev.hit.chunk
            place = page_label(c.page, page_kind_of(c.source))
            lines.append(f"[{ev.n}] {place}: „{ev.text[:160]}…“" if place else f"[{ev.n}] „{ev.text[:160]}…“")
        return "\n".join(lines)

    def _finish(self, res: AnswerResult, raw: str, evidence: Sequence[Evidence], q_stems) -> None:
        """Apply the answer checks (:mod:`assistant.answer_checks`) to the model's answer, then back it
        with a verbatim quote: the model's first sentence is kept only when its numbers, dates, names
        and negations stand in the quote; otherwise the quote alone is the answer."""
        question = res.standalone_question or res.question
        sources = [Source(ev.n, ev.text, source_label(ev)) for ev in evidence]
        verdict = check_answer(raw, sources, [res.question, res.standalone_question], q_stems,
                               refusal_probability=res.refusal_probability,
                               refusal_limit=self.settings.llm.refusal_max_probability,
                               yes_no=is_yes_no(question))
        shown = shows_answer(evidence, q_stems)
        if verdict.action == "fallback":  # the model refused or wrote nothing usable
            notice = verdict.notices[0]
            confident = shown or retrieval_confident(evidence, q_stems)
            if not confident and self.settings.llm.quote_when_model_finds_none:
                quote = best_quote(question, evidence)
                why = self._why_quote_cannot_answer(question, evidence, quote) if quote is not None else None
                confident = quote is not None and why is None
                if why:  # say why the closest passages are no answer (the trainer's view shows it too)
                    notice = NOTICE_NO_ANSWER_NO_QUOTE.format(why=why)
            self._no_model_answer(res, evidence, confident, notice)
            return
        if verdict.action == "refuse":  # the model's doubt decides, unless a shown passage holds the whole question
            self._no_model_answer(res, evidence, shown, verdict.notices[0])
            return
        res.notices.extend(verdict.notices)
        sentence = first_sentence(verdict.answer)
        quote = self._backing(sentence, question, evidence, verdict.cited)
        rest: list[str] = []
        items: list[str] = []
        if asked_parts(question) > 1:  # a sentence for each part; or both parts joined in one sentence
            clauses = two_clauses(sentence)
            if quote is None and clauses:
                first = self._backing(clauses[0], question, evidence, verdict.cited)
                sentence, quote = (clauses[0], first) if first else (sentence, None)
                rest = [clauses[1]]
            else:
                rest = later_sentences(verdict.answer, 1)
        elif asks_list(question) and quote is not None:  # a list written one item per sentence
            items = later_sentences(verdict.answer, LIST_SENTENCES - 1)
        if quote is None:
            quote = best_quote(question, evidence)
            if quote is None:
                self._no_model_answer(res, evidence, False, "Die Antwort des Modells stand so in keiner Quelle.")
                return
            why = self._why_quote_cannot_answer(question, evidence, quote) if self.settings.llm.refuse_unfounded_quotes else None
            if why:  # the quote would be a guess
                self._no_model_answer(res, evidence, False, NOTICE_UNFOUNDED_QUOTE.format(why=why))
                return
            res.answer = quote_line(quote)
            res.notices.append("Die Aussage des Modells stand so nicht in den Quellen; die Antwort ist die passendste Textstelle.")
        elif is_yes_no(question) and restates_question(sentence, question):  # a bare verdict: the rule decides
            res.answer = quote_line(quote)
            res.notices.append(NOTICE_RESTATED_VERDICT)
        else:
            res.answer = cited_sentence(sentence, quote)
            if quote.recited:
                res.notices.append(f"Die Quellenangabe wurde auf Quelle [{quote.n}] berichtigt: dort steht die Aussage des Modells.")
        res.refused = False
        res.quotes = [quote]
        for part in rest:
            self._add_part(res, part, verdict.cited, question, evidence)
        for item in items:  # the list goes on only while each item stands in the first quote's document
            if not self._add_part(res, item, verdict.cited, question, evidence, list_of=quote):
                break
        res.citations.sort(key=lambda c: (c.n != quote.n, c.n))  # the quoted source first
        if self.settings.llm.warn_unmentioned_terms:
            res.unmentioned_terms = self._unmentioned(question, evidence, [quote.n])
            if res.unmentioned_terms:
                res.notices.append(warning(res.unmentioned_terms))

    def _why_quote_cannot_answer(self, question: str, evidence: Sequence[Evidence], quote: Quote) -> str | None:
        """Why the best quote may not stand in for the model's answer (a German clause), or None when
        it may. One rule for both cases where it would: the model's claim stood in no source, or the
        model refused or wrote nothing usable although a quote matches the question.

        The quote's document must mention every name and noun of the question (else it is a guess
        from a document that does not know what was asked: a near miss), and the quote must hold the
        kind of thing asked: a figure for "Wie viele …?" or "Was kostet …?", a date for "Seit wann
        …?" (:func:`assistant.quotes.holds_asked_kind`). Near misses of the tuning sets were
        quoted without the second condition (a paragraph "(1) Bund und Länder stellen … eine
        Beratung bereit" for "Wie viele Stellen …?")."""
        unknown = self._unmentioned(question, evidence, [quote.n])
        if unknown:
            return QUOTE_UNMENTIONED.format(terms=", ".join(f"„{t}“" for t in unknown))
        if not holds_asked_kind(question, quote.text):  # only a question that asks for a kind can fail this
            return QUOTE_WRONG_KIND.format(kind=ASKED_KINDS[asked_kind(question)])
        return None

    @staticmethod
    def _backing(sentence: str, question: str, evidence: Sequence[Evidence], cited: Sequence[int]) -> Quote | None:
        """The quote that holds every number, date, name and negation of the model's sentence (for a
        yes/no question preferably the quote that decides it, with its exception), or None.

        From the sources the sentence cites, else from another given source that holds them all
        and covers at least half the question (the model wrote "… Sensoren … Luftqualität … [3]" from
        source [2]: the wrong number, as :func:`assistant.answer_checks.number_holder` mends for figures);
        the answer is then cited to the quote's source."""
        if is_yes_no(question):
            deciding = best_quote(question, evidence)
            if deciding is not None and claims_in_quote(sentence, deciding, question):
                return deciding
        quote = supporting_quote(sentence, question, evidence, cited)
        if quote is not None and claims_in_quote(sentence, quote, question):
            return quote
        q_stems = content_stems(question)
        others = [ev for ev in evidence if ev.n not in set(cited) and coverage(q_stems, ev.text) >= RECITE_COVERAGE]
        quote = supporting_quote(sentence, question, others, [ev.n for ev in others]) if others and has_claims(sentence, question) else None
        return replace(quote, recited=True) if quote is not None and claims_in_quote(sentence, quote, question) else None

    @classmethod
    def _add_part(cls, res: AnswerResult, sentence: str, cited: Sequence[int], question: str,
                  evidence: Sequence[Evidence], list_of: Quote | None = None) -> bool:
        """The answer to a question's second part, under the same rule as the first: kept when each of
        its claims stands in a quote, which is shown beneath it. A further item of a list (``list_of``:
        the first item's quote) must also come from that quote's document and have most of its words
        in its own quote, since an item like "Das Projekt evaluieren." names no figure to check.
        Returns whether the sentence was kept."""
        if is_refusal(sentence):
            return False
        quote = cls._backing(sentence, question, evidence, cited)
        if quote is None or list_of is not None and (quote.source != list_of.source or not covers(sentence, quote)):
            return False
        shown = quote.text in {q.text for q in res.quotes}  # both parts stand in one quote: show it once
        res.answer = f"{res.answer}\n\n{cited_sentence(sentence, quote, show_quote=not shown)}"
        if not shown:
            res.quotes.append(quote)
        return True

    def _unmentioned(self, question: str, evidence: Sequence[Evidence], cited: Sequence[int]) -> list[str]:
        """Question terms that none of the cited documents mentions anywhere (whole text, title,
        file name): the passage alone would flag correct answers whose document names its subject
        on another page."""
        catalog = self.retriever.kb.catalog
        texts: list[str] = []
        for doc_id in dict.fromkeys(ev.hit.chunk.doc_id for ev in evidence if ev.n in cited):
            chunks = list(catalog.iter_chunks(doc_id))
            if chunks:
                texts.append(f"{chunks[0].title}\n{Path(chunks[0].source).name}")
            texts.extend(c.text for c in chunks)
        return unmentioned_terms(question, texts) if texts else []

    def _no_model_answer(self, res: AnswerResult, evidence: Sequence[Evidence], confident: bool, notice: str) -> None:
        """The model gave nothing usable: answer from the evidence when retrieval is confident, else refuse."""
        if confident:
            self._extractive(res, evidence, res.standalone_question or res.question)
        else:
            res.answer, res.refused = self._refusal_with_passages(evidence), True
        if res.refused and notice == NOTICE_NO_ANSWER:  # no passage is the answer: don't promise one
            notice = NOTICE_NO_ANSWER_REFUSED
        res.notices.append(notice)

    def _no_documents(self, question: str, llm, res: AnswerResult, t_start: float) -> Iterator[dict]:
        """Comparison for trainers: the same model without documents (shows invented answers)."""
        res.standalone_question = question
        yield {"type": "sources", "citations": [], "passages": []}
        if llm is None:
            res.answer = "Ohne Dokumente und ohne Sprachmodell gibt es keine Antwort."
            res.refused = True
        else:
            messages = NO_DOCS_PROMPT.format_messages(question=question)
            res.prompt = render(messages)
            count = token_counter(llm)
            res.prompt_tokens = count(res.prompt)  # the trainer's comparison sets them side by side
            raw = yield from self._generate(llm, messages, res, t_start)  # the same error handling as with documents
            if raw is None:
                res.answer, res.refused = "Das Sprachmodell ist nicht erreichbar; ohne Dokumente gibt es keine Antwort.", True
                res.notices[-1] = "Das Sprachmodell ist nicht erreichbar."
            else:
                res.answer = raw
                res.completion_tokens = count(raw) if raw else 0
        yield self._done(res, t_start)


def _block(res: AnswerResult, decision: dict) -> None:
    """The Ampel refused the request: its German messages are the answer."""
    res.refused = True
    res.answer = " ".join(decision.get("messages_de") or ["Anfrage blockiert."])




def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)
