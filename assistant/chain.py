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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from langchain_core.output_parsers import StrOutputParser

from assistant.access import FULL, Scope
from assistant.citations import (
    REFUSAL, attribute, is_refusal, numbers, parse_citations, strip_invalid_citations, strip_refusal_tail,
)
from assistant.evidence import Evidence, content_stems, coverage, select_evidence
from assistant.grounding import unmentioned_terms, warning
from assistant.prompting import NO_DOCS_PROMPT, REWRITE_PROMPT, answer_messages, history_text, render, source_label
from assistant.retrieval import HybridRetriever
from assistant.settings import ModelProfile, Settings
from corpus.models import Hit

log = logging.getLogger(__name__)

FOLLOW_UP = re.compile(r"^(und|aber|also|oder|auch)\b|\b(das|dies|diese[rsmn]?|dort|da|es|sie|er|ihn|ihm|davon|dazu|darüber|damit|dafür|denen|deren)\b",
                       re.IGNORECASE)


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

    def as_dict(self, trace: bool = False) -> dict:
        d = asdict(self)
        if not trace:
            for key in ("passages", "prompt", "raw_answer"):
                d.pop(key)
        return d


def citation_for(ev: Evidence) -> Citation:
    c = ev.hit.chunk
    return Citation(n=ev.n, doc_id=c.doc_id, source=c.source, title=c.title, page=c.page,
                    snippet=ev.text[:400], score=round(ev.hit.score, 6), section=c.section, collection=c.collection)


class PolicyBlocked(Exception):
    pass


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
    ) -> None:
        self.retriever = retriever
        self.settings = settings
        self.model_for = model_for
        self.policy = policy

    # -- helpers -------------------------------------------------------------
    def profile(self, key: str | None) -> tuple[str, ModelProfile]:
        key = key or self.settings.llm.default
        try:
            return key, self.settings.llm.models[key]
        except KeyError:
            raise ValueError(f"Unbekanntes Modell / unknown model: {key}") from None

    @staticmethod
    def _count(model) -> Callable[[str], int]:
        counter = getattr(model, "count_tokens", None)
        if counter is None:
            return lambda t: max(1, len(t) // 4)
        return counter

    def rewrite(self, question: str, history: Sequence[tuple[str, str]], model) -> str:
        """A standalone question for retrieval. Only follow-ups are rewritten (saves a model call)."""
        if not history or not FOLLOW_UP.search(question) and len(question.split()) > 6:
            return question
        last_user = history[-1][0]
        if model is None:
            return f"{last_user} {question}"
        try:
            out = (REWRITE_PROMPT | model | StrOutputParser()).invoke(
                {"history": history_text(history), "question": question}, config={"max_tokens": 60}
            ).strip().strip('"„“')
        except Exception as exc:  # rewriting is an optimisation: never fail the answer for it
            log.warning("rewrite failed: %s", exc)
            return f"{last_user} {question}"
        return out if 3 < len(out) < 400 else f"{last_user} {question}"

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

        ``scope``: the collections the asking user may read; the chosen ``collections`` are cut
        to it and retrieval searches only there, so nothing else reaches the model or the result."""
        collections = scope.restrict(collections)
        question = question.strip()
        if not question:
            raise ValueError("Leere Frage / empty question")
        t_start = time.perf_counter()
        key, profile = self.profile(model)
        res = AnswerResult(question=question, mode=profile.mode, model=profile.label or key, zone=profile.zone)
        llm = self._load_model(key, profile, res)

        # 0. policy on the question itself (personal data to yellow/red models)
        if self._question_blocked(res, profile, confirmed):
            yield _done(res, t_start)
            return
        if not use_documents:
            yield from self._no_documents(question, llm, res, t_start)
            return

        # 1. standalone question, 2. retrieval, 3. Ampel on the passages
        t = time.perf_counter()
        res.standalone_question = standalone = self.rewrite(question, history, llm)
        res.timings["rewrite_ms"] = _ms(t)
        t_ret = time.perf_counter()
        n_pass = k or self.settings.llm.passages
        result = self.retriever.search(standalone, k=max(n_pass + 2, self.retriever.k), collections=collections,
                                       wait_for_index=False)
        res.timings["retrieve_ms"] = _ms(t_ret)
        hits, removed = self._apply_policy(result.hits, question, profile, res)
        if hits is None:
            res.passages = [self._trace(h, {}, removed) for h in result.hits]
            yield {"type": "sources", "citations": [], "passages": res.passages}
            yield _done(res, t_start)
            return

        # 4. evidence within the token budget; the sources are shown before the model starts
        count = self._count(llm)
        budget = budget_tokens or self.settings.llm.prompt_budget_tokens
        evidence, dropped = select_evidence(standalone, hits, budget_tokens=budget, count=count, max_passages=n_pass)
        in_prompt = {ev.hit.chunk.chunk_id: ev.n for ev in evidence}
        res.passages = [self._trace(h, in_prompt, removed) for h in result.hits]
        res.citations = [citation_for(ev) for ev in evidence]
        if dropped and len(evidence) < n_pass:
            res.notices.append(f"{len(dropped)} weitere Textstelle(n) passten nicht mehr in das Kontextfenster.")
        messages = answer_messages(standalone if history else question, evidence)
        res.prompt = render(messages)
        res.timings["prepare_ms"] = _ms(t_ret)
        yield {"type": "sources", "citations": res.citations, "passages": res.passages}

        # questions no model can answer from these passages are refused before it runs
        q_stems = content_stems(standalone)
        if self._refuse_before_model(res, evidence, standalone):
            yield _done(res, t_start)
            return

        # 5. generation (or extractive)
        if llm is None:
            res.answer, res.refused = self._extractive(evidence, q_stems)
            if profile.mode != "extractive" and res.fallback:
                res.mode = "extractive"
            for i in range(0, len(res.answer), 24):
                yield {"type": "token", "text": res.answer[i : i + 24]}
            yield _done(res, t_start)
            return
        res.prompt_tokens = count(res.prompt)
        raw = yield from self._generate(llm, messages, res, t_start)
        if raw is None:  # the model failed mid-way: the evidence answers instead
            res.answer, res.refused = self._extractive(evidence, q_stems)
            yield {"type": "reset", "text": res.answer}
            yield _done(res, t_start)
            return
        res.raw_answer = raw
        res.completion_tokens = count(raw) if raw else 0

        # 6. citations and refusal
        self._finish(res, raw, evidence, q_stems, self._confident(evidence, q_stems))
        if res.answer != raw:
            yield {"type": "reset", "text": res.answer}
        yield _done(res, t_start)

    def answer(self, question: str, history: Sequence[tuple[str, str]] = (), **kwargs) -> AnswerResult:
        result = None
        for event in self.stream(question, history, **kwargs):
            if event["type"] == "done":
                result = event["result"]
        assert result is not None
        return result

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
        or the question names a number that no passage contains (near misses: "… im Jahr 2019?")."""
        if not evidence:
            res.refused, res.answer = True, REFUSAL
            return True
        notice = None
        min_score = self.settings.llm.refusal_min_score
        if min_score and max((ev.hit.dense_score or 0.0) for ev in evidence) < min_score:
            notice = "Die gefundenen Textstellen passen nur schwach zur Frage."
        else:
            missing = sorted(numbers(standalone) - numbers(" ".join(ev.text for ev in evidence)))
            if missing:
                notice = f"Die Angabe {', '.join(missing)} aus der Frage steht in keiner gefundenen Textstelle."
        if notice is None:
            return False
        res.refused, res.answer = True, self._refusal_with_passages(evidence)
        res.notices.append(notice)
        return True

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
                            removed_reason=removed.get(c.chunk_id))

    @staticmethod
    def _confident(evidence: Sequence[Evidence], q_stems: Sequence[str]) -> bool:
        """Retrieval is confident when a passage contains every content word of the question
        (numbers and names included, which is what near-miss questions lack), or when both
        retrievers agree on a top passage that covers most of it."""
        if len(set(q_stems)) < 2:
            return False
        if any(ev.coverage >= 0.999 and (ev.hit.bm25_rank or 99) <= 5 for ev in evidence):
            return True
        top = evidence[0]
        agree = (top.hit.bm25_rank or 99) <= 3 and (top.hit.dense_rank or 99) <= 3
        return agree and top.coverage >= 0.75

    def _extractive(self, evidence: Sequence[Evidence], q_stems: Sequence[str]) -> tuple[str, bool]:
        """Compose an answer from the best evidence sentences, each with its citation."""
        scored = []
        for ev in evidence:
            for sent in re.split(r"(?<=[.!?])\s+| … |\n+", ev.text):
                sent = sent.strip(" …")
                if len(sent) < 15:
                    continue
                cov = coverage(q_stems, sent)
                scored.append((cov, -ev.n, sent, ev.n))
        scored.sort(reverse=True)
        # only sentences nearly as relevant as the best one: a heading glued to an unrelated line
        # (or an instruction planted in a document) must not ride along
        best = scored[0][0] if scored else 0.0
        picked = [s for s in scored if s[0] > 0 and s[0] >= 0.6 * best][:2]
        if not picked:
            return self._refusal_with_passages(evidence), True
        body = " ".join(f"{sent} [{n}]" for _, _, sent, n in picked)
        return f"Laut den Dokumenten: {body}", False

    @staticmethod
    def _refusal_with_passages(evidence: Sequence[Evidence]) -> str:
        lines = [REFUSAL, "", "Am nächsten kommen diese Textstellen:"]
        for ev in evidence[:3]:
            lines.append(f"[{ev.n}] {source_label(ev)}: „{ev.text[:160]}…“")
        return "\n".join(lines)

    def _finish(self, res: AnswerResult, raw: str, evidence: Sequence[Evidence], q_stems, confident: bool) -> None:
        """Check the model's answer: valid citations, no refusal, numbers that stand in the sources."""
        valid = {ev.n for ev in evidence}
        answer = strip_invalid_citations(raw, valid)
        answer = strip_refusal_tail(answer)  # "Die Frist ist … [1]. Dazu finde ich … keine Informationen."
        cited = [n for n in parse_citations(answer) if n in valid]
        notice = _unusable(answer, evidence, cited)
        if notice:
            self._no_model_answer(res, evidence, q_stems, confident, notice)
            return
        if not cited:
            n, share = attribute(answer, [ev.text for ev in evidence], content_stems)
            if n is None or share < 0.5:
                self._no_model_answer(res, evidence, q_stems, confident,
                                      "Die Antwort des Modells war nicht durch Quellen belegt und wurde verworfen.")
                return
            answer = f"{answer} [{n}]"
            cited = [n]
        questions = [res.question, res.standalone_question]
        invented = sorted(_invented_numbers(answer, evidence, cited, questions))
        holder = _number_holder(answer, evidence, questions, q_stems) if invented else None
        if holder is not None:
            answer, cited, invented = _CITATION_MARKS.sub(f"[{holder}]", answer), [holder], []
            res.notices.append(f"Die Quellenangabe wurde auf Quelle [{holder}] berichtigt: nur dort stehen die Zahlen der Antwort.")
        if invented:
            self._no_model_answer(res, evidence, q_stems, confident,
                                  f"Die Antwort des Modells enthielt Zahlen, die in den Quellen nicht stehen ({', '.join(invented)}), "
                                  "und wurde verworfen.")
            return
        limit = self.settings.llm.refusal_max_probability
        if limit and res.refusal_probability is not None and res.refusal_probability >= limit:
            # the model nearly refused: a near miss, not a case for the extractive fallback
            res.answer, res.refused = self._refusal_with_passages(evidence), True
            res.notices.append(f"Das Modell war unsicher (Ablehnung zu {round(res.refusal_probability * 100)} % wahrscheinlich); "
                               "die Antwort wurde nicht übernommen.")
            return
        res.answer = answer
        res.refused = False
        order = {n: i for i, n in enumerate(cited)}  # cited sources first
        res.citations.sort(key=lambda c: (order.get(c.n, 99), c.n))
        if self.settings.llm.warn_unmentioned_terms:
            res.unmentioned_terms = self._unmentioned(res.standalone_question or res.question, evidence, cited)
            if res.unmentioned_terms:
                res.notices.append(warning(res.unmentioned_terms))

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

    def _no_model_answer(self, res: AnswerResult, evidence: Sequence[Evidence], q_stems, confident: bool,
                         notice: str) -> None:
        """The model gave nothing usable: answer from the evidence when retrieval is confident, else refuse."""
        if confident:
            res.answer, res.refused = self._extractive(evidence, q_stems)
        else:
            res.answer, res.refused = self._refusal_with_passages(evidence), True
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
            parts = []
            for chunk in llm.stream(messages):
                if chunk.content:
                    if not parts:
                        res.timings["first_token_ms"] = _ms(t_start)
                    parts.append(str(chunk.content))
                    yield {"type": "token", "text": str(chunk.content)}
            res.answer = "".join(parts).strip()
        yield _done(res, t_start)


_CITATION_MARKS = re.compile(r"\[[\d,; ]+\]")
_YEAR = re.compile(r"^(19|20)\d\d$")
# "Die Telefonnummer des Personalrats ist [2]." – in the answer's first sentence a citation stands
# where the content should be (later sentences such as "Die Quelle ist [2]." are fine)
_DANGLING = re.compile(r"(?:\b(?:ist|sind|lautet|lauten|beträgt|betragen|heißt|heißen|war|waren)|:)\s*\[\d+\]",
                       re.IGNORECASE)


def _dangling(answer: str) -> bool:
    first = re.split(r"(?<=[.!?])\s+|\n", answer.strip(), maxsplit=1)[0]
    return bool(_DANGLING.search(first))


def _unusable(answer: str, evidence: Sequence[Evidence], cited: Sequence[int]) -> str | None:
    """Why the model's answer says nothing usable (the German notice), or None when it does."""
    if not _substantive(answer, evidence, cited) or (is_refusal(answer) and not cited):
        return "Das Modell fand keine Antwort; hier die passendste Textstelle."
    if _dangling(answer):
        return "Die Antwort des Modells nannte statt eines Inhalts nur eine Quellennummer und wurde verworfen."
    if "<<<" in answer or ">>>" in answer:  # the model copied a source block of the prompt
        return "Das Modell gab einen Quellenblock wieder statt zu antworten; die Antwort wurde verworfen."
    return None


def _block(res: AnswerResult, decision: dict) -> None:
    """The Ampel refused the request: its German messages are the answer."""
    res.refused = True
    res.answer = " ".join(decision.get("messages_de") or ["Anfrage blockiert."])


def _cited_text(evidence: Sequence[Evidence], cited: Sequence[int]) -> str:
    return " ".join(ev.text for ev in evidence if ev.n in cited)


def _substantive(answer: str, evidence: Sequence[Evidence], cited: Sequence[int]) -> bool:
    """An answer says something: three words or more, or a short answer ("41 % [1]") whose
    numbers all stand in the cited source. A bare "[2] [3]" says nothing."""
    words = _CITATION_MARKS.sub(" ", answer).split()
    if len(words) >= 3:
        return True
    found = numbers(" ".join(words))
    return bool(words) and bool(found) and found <= numbers(_cited_text(evidence, cited))


def _invented_numbers(answer: str, evidence: Sequence[Evidence], cited: Sequence[int],
                      questions: Sequence[str]) -> set[str]:
    """Numbers in the answer that stand neither in its cited sources nor in the question. A year
    may also come from another source given to the model ("am 6. Mai 2025": the slide says
    "6. Mai", the programme says 2025): a date's year is context, not a claim of its own."""
    all_text = " ".join(f"{source_label(ev)} {ev.text}" for ev in evidence)
    missing = numbers(answer) - numbers(_cited_text(evidence, cited) + " " + " ".join(questions))
    return {n for n in missing if not (_YEAR.match(n) and n in numbers(all_text))}


def _number_holder(answer: str, evidence: Sequence[Evidence], questions: Sequence[str],
                   q_stems: Sequence[str]) -> int | None:
    """The one given source that holds every number of the answer, when the model cited another.

    A small model often copies the right figure but the wrong source number ("7.00 bis 19.00 Uhr [3]"
    when [1] says so). Re-citing is safe only when exactly one source holds all the numbers and that
    source also covers at least half the question's content words; measured on both eval sets, a
    looser rule (no coverage condition) turned near misses into answers."""
    wanted = numbers(answer) - numbers(" ".join(questions))
    if not wanted:
        return None
    holders = [ev for ev in evidence if wanted <= numbers(ev.text)]
    if len(holders) != 1 or coverage(q_stems, holders[0].text) < 0.5:
        return None
    return holders[0].n


def _done(res: AnswerResult, t_start: float) -> dict:
    """The final event; total time is taken here so every path measures it the same way."""
    res.timings["total_ms"] = _ms(t_start)
    return {"type": "done", "result": res}


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)
