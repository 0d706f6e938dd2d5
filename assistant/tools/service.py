"""The Werkzeuge as one service: the Ampel, the model and the knowledge base around the pure tools.

The Ampel applies exactly as in the chat, through the same :class:`assistant.policy_step.PolicyStep`:
text a person pastes (or an instruction) is checked for personal data before it goes to a
yellow or red model – blocked for red, a warning to confirm for yellow – and passages of the
knowledge base (a document to summarise or simplify, sources of a draft) reach a model only
if its zone may see their classification. Nothing is sent before the check has passed.

Every tool is a generator of events – ``progress`` (done/total/label), ``token``, ``reset``
(the text shown so far is replaced), and finally ``done`` with the :class:`ToolResult` – so
the portal and the CLI stream the same thing.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator, Sequence

from assistant.llm.backends import for_background, token_counter
from assistant.model_choice import model_profile
from assistant.settings import ModelProfile, Settings
from assistant.tools.result import ToolError, ToolResult
from corpus.ligatures import SplitDocuments, close_gaps, readable_chunks
from corpus.models import Chunk, Hit

log = logging.getLogger(__name__)


class Tools:
    """Built by :class:`assistant.wiring.App` (``app.tools``); ``model_for(key)`` gives the chat model."""

    def __init__(self, settings: Settings, model_for: Callable[[str], Any], catalog, retriever_for: Callable[[], Any],
                 policy: Callable[..., dict] | None, split_docs: SplitDocuments | None = None) -> None:
        """``split_docs``: which documents' fonts split ligatures (the tools read and show them
        joined, corpus.ligatures); the App shares one with the chain, so each is decided once."""
        self.settings = settings
        self.model_for = model_for
        self.catalog = catalog
        self.retriever_for = retriever_for
        self.policy = policy
        self._split_docs = split_docs or SplitDocuments(catalog)

    # -- shared --------------------------------------------------------------------------
    def profile(self, key: str | None) -> tuple[str, ModelProfile]:
        try:
            return model_profile(self.settings, key)
        except ValueError as exc:
            raise ToolError(str(exc)) from None

    def _result(self, tool: str, key: str, profile: ModelProfile, title: str = "") -> ToolResult:
        return ToolResult(tool=tool, model=profile.label or key, model_key=key, zone=profile.zone, title=title)

    def _gate_text(self, res: ToolResult, text: str, profile: ModelProfile, confirmed: bool) -> bool:
        """The Ampel on pasted text; True when the request may go on."""
        if self.policy is None or not text.strip():
            return True
        decision = self.policy(question=text, zone=profile.zone, passages=None, confirmed=confirmed)
        res.policy = decision
        action = decision.get("action")
        if action == "block":
            res.status = "blocked"
        elif action == "warn" and not confirmed:
            res.status = "warn"
        else:
            return True
        res.notices.extend(decision.get("messages_de") or [])
        return False

    def _gate_passages(self, res: ToolResult, question: str, chunks: Sequence[Chunk], profile: ModelProfile) -> list[Chunk] | None:
        """Only passages the zone may see; None when none is left (the request is blocked)."""
        if self.policy is None or not chunks:
            return list(chunks)
        hits = [Hit(c, 0.0) for c in chunks]
        decision = self.policy(question=question, zone=profile.zone, passages=hits, confirmed=True)
        allowed = {h.chunk.chunk_id for h in decision.get("allowed", hits)}
        res.policy = res.policy or {k: v for k, v in decision.items() if k != "allowed"}
        res.notices.extend(m for m in decision.get("messages_de") or [] if m not in res.notices)
        if decision.get("action") == "block" or not allowed:
            res.status = "blocked"
            return None
        return [c for c in chunks if c.chunk_id in allowed]

    def _llm(self, key: str, profile: ModelProfile, needed_for: str):
        if profile.mode == "extractive":
            return None
        try:
            return for_background(self.model_for(key))  # a chat answer goes first on the local model
        except Exception as exc:
            log.warning("model %s not available: %s", key, exc)
            raise ToolError(f"Das Sprachmodell ist nicht verfügbar ({type(exc).__name__}); {needed_for} braucht ein "
                            "Sprachmodell.") from None

    @staticmethod
    def _run(res: ToolResult, events: Iterator[dict], t0: float) -> Iterator[dict]:
        for ev in events:
            if ev["type"] == "done":
                res.output = ev["output"]
                res.details.update(ev.get("details") or {})
                res.timings.update(ev.get("timings") or {})
            else:
                yield ev
        res.timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)

    def document_text(self, doc_id: str, pages: tuple[int, int] | None = None) -> tuple[str, str, list[Chunk]]:
        """(title people read, text, chunks) of an indexed document, optionally a page range (for Einfache Sprache).

        The text is the one people read (words a PDF font's ligatures broke apart joined,
        corpus.ligatures): the tools hand it to the model to rewrite for people, and retrieval
        never sees it."""
        rec = self.catalog.get(doc_id)
        if rec is None or rec.status != "indexed":
            raise ToolError(f"Dokument nicht gefunden / document not found: {doc_id}")
        chunks = readable_chunks(rec.format, sorted(self.catalog.iter_chunks(doc_id), key=lambda c: c.ordinal))
        if pages:
            chunks = [c for c in chunks if c.page is not None and pages[0] <= c.page <= pages[1]]
            if not chunks:
                raise ToolError(f"Keine Textstellen auf den Seiten {pages[0]}–{pages[1]} / no text on these pages.")
        return rec.shown_title, _join_chunks(chunks), chunks

    # -- Einfache / Leichte Sprache ------------------------------------------------------------
    def simplify(self, *, text: str | None = None, doc_id: str | None = None, pages: tuple[int, int] | None = None,
                 leicht: bool = False, model: str | None = None, confirmed: bool = False,
                 source_label: str = "") -> Iterator[dict]:
        from assistant.tools.rules import level_for
        from assistant.tools.simplify import LEICHT_DRAFT_NOTICE, simplify

        t0 = time.perf_counter()
        ts = self.settings.tools
        key, profile = self.profile(model)
        level = level_for("leicht" if leicht else "einfach",
                          max_words=ts.leicht_max_words if leicht else ts.einfach_max_words)
        res = self._result("einfach", key, profile)
        citations: list[dict] = []
        if doc_id:
            title, text, chunks = self.document_text(doc_id, pages)
            res.title = title
            if self._gate_passages(res, title, chunks, profile) is None:
                yield {"type": "done", "result": res}
                return
            citations = _doc_citations(doc_id, title, chunks)
        text = (text or "").strip()
        if not text:
            raise ToolError("Bitte einen Text eingeben, eine Datei hochladen oder ein Dokument wählen.")
        if len(text) > ts.max_input_chars:
            raise ToolError(f"Der Text ist zu lang ({len(text)} Zeichen, höchstens {ts.max_input_chars}).")
        res.title = res.title or source_label or _title(text)
        if not doc_id and not self._gate_text(res, text, profile, confirmed):
            yield {"type": "done", "result": res}
            return
        llm = self._llm(key, profile, "Einfache Sprache")
        if llm is None:
            raise ToolError("Einfache und Leichte Sprache brauchen ein Sprachmodell – bitte ein anderes Modell wählen.")
        res.citations = citations
        res.details["input_chars"] = len(text)
        yield from self._run(res, simplify(text, level, llm, max_revisions=ts.max_revisions,
                                           part_tokens=ts.simplify_part_tokens, output_tokens=ts.output_tokens,
                                           count=token_counter(llm)), t0)
        if leicht:
            res.notices.append(LEICHT_DRAFT_NOTICE)
        if res.details.get("facts_changed"):
            res.notices.append(f"{len(res.details['facts_changed'])} Angabe(n) des Ausgangstextes fehlen oder sind "
                               "verändert – bitte vor dem Versand prüfen.")
        yield {"type": "done", "result": res}

    # -- summary ---------------------------------------------------------------------------------
    def summarize(self, doc_id: str, *, length: str = "mittel", model: str | None = None,
                  pages: tuple[int, int] | None = None, fast: bool | None = None) -> Iterator[dict]:
        from assistant.tools.summarize import (
            extractive_summary, loc_label, normalise_length, passages_of, preselect, summarize,
        )

        t0 = time.perf_counter()
        ts = self.settings.tools
        key, profile = self.profile(model)
        try:
            length = normalise_length(length)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        rec = self.catalog.get(doc_id)
        if rec is None or rec.status != "indexed":
            raise ToolError(f"Dokument nicht gefunden / document not found: {doc_id}")
        res = self._result("zusammenfassung", key, profile, rec.shown_title)
        chunks = list(self.catalog.iter_chunks(doc_id))
        allowed = self._gate_passages(res, rec.title, chunks, profile)
        if allowed is None:
            yield {"type": "done", "result": res}
            return
        passages, has_pages = passages_of(allowed, pages)
        if not passages:
            raise ToolError("Das Dokument hat in diesem Bereich keinen Text.")
        label = loc_label(rec.page_kind, has_pages)
        if fast is None:
            mode = ts.summary_preselect
            fast = mode == "always" or (mode == "auto" and len({p.loc for p in passages}) > ts.summary_preselect_pages)
        llm = self._llm(key, profile, "die Zusammenfassung")
        read = preselect(passages, ts.summary_preselect_share) if fast and llm is not None else passages
        res.details.update({"doc_id": doc_id, "pages": rec.pages, "fast": bool(fast and llm is not None),
                            "loc_label": label})
        if llm is None:
            res.notices.append("Ohne Sprachmodell: die zentralen Sätze des Dokuments, jeweils mit Fundstelle.")
            events = extractive_summary(passages, label, length, (rec.title, rec.shown_title))
        else:
            if fast:
                res.notices.append(f"Schnellverfahren: Das Modell las nur die zentralsten Sätze "
                                   f"(etwa {round(ts.summary_preselect_share * 100)} %) jedes Abschnitts.")
            events = summarize(rec.title, read, label, llm, length=length, batch_tokens=ts.summary_batch_tokens,
                               map_tokens=ts.summary_map_tokens, output_tokens=ts.output_tokens,
                               count=token_counter(llm))
        yield from self._run(res, events, t0)
        locs = sorted({loc for p in res.details.get("points", []) for loc in p["locs"]})
        res.citations = [{"n": i, "doc_id": doc_id, "title": rec.shown_title, "source": rec.source,
                          "page": loc if has_pages else None, "loc": loc, "label": f"{label} {loc}"}
                         for i, loc in enumerate(locs, start=1)]
        unchecked = sum(1 for p in res.details.get("points", []) if not p["checked"])
        if unchecked:
            res.notices.append(f"{unchecked} Stichpunkt(e) ließen sich keiner Stelle des Dokuments sicher zuordnen.")
        yield {"type": "done", "result": res}

    # -- drafts ------------------------------------------------------------------------------------
    def draft(self, kind: str, instruction: str, *, model: str | None = None, use_documents: bool = False,
              collections: Sequence[str] | None = None, confirmed: bool = False) -> Iterator[dict]:
        from assistant.tools.drafts import KINDS, draft
        from assistant.tools.prompts import DRAFT_KINDS

        t0 = time.perf_counter()
        ts = self.settings.tools
        if kind not in KINDS:
            raise ToolError(f"Unbekannte Art / unknown kind: {kind} ({', '.join(KINDS)})")
        instruction = (instruction or "").strip()
        if not instruction:
            raise ToolError("Bitte eine Anweisung eingeben, z. B. „Einladung zur Bürgerversammlung am …“.")
        if len(instruction) > ts.max_input_chars:
            raise ToolError(f"Die Anweisung ist zu lang (höchstens {ts.max_input_chars} Zeichen).")
        key, profile = self.profile(model)
        res = self._result("entwurf", key, profile, f"{DRAFT_KINDS[kind][0]}: {_title(instruction)}")
        if not self._gate_text(res, instruction, profile, confirmed):
            yield {"type": "done", "result": res}
            return
        sources: list[tuple[int, str, str]] = []
        if use_documents:
            yield {"type": "progress", "done": 0, "total": 2, "label": "Textstellen werden gesucht"}
            # None searches everything; a list (the asker's readable collections, maybe empty) only those
            found = self.retriever_for().search(instruction, k=ts.draft_passages, collections=collections)
            chunks = [h.chunk for h in found.hits[: ts.draft_passages]]
            allowed = self._gate_passages(res, instruction, chunks, profile) if chunks else []
            if allowed is None:
                yield {"type": "done", "result": res}
                return
            records = self.catalog.records({c.doc_id for c in allowed})
            split = self._split_docs.gaps(records.values())
            for n, c in enumerate(allowed, start=1):
                where = f", Seite {c.page}" if c.page is not None else ""
                text = close_gaps(c.text) if c.doc_id in split else c.text  # the model writes for people
                sources.append((n, f"{c.title or c.source}{where}", text))  # the prompt keeps the indexed title
                title = records[c.doc_id].shown_title if c.doc_id in records else c.title
                res.citations.append({"n": n, "doc_id": c.doc_id, "title": title, "source": c.source,
                                      "page": c.page, "snippet": text[:400]})
        llm = self._llm(key, profile, "ein Entwurf")
        if llm is None:
            raise ToolError("Entwürfe brauchen ein Sprachmodell – bitte ein anderes Modell wählen.")
        yield from self._run(res, draft(kind, instruction, sources, llm, output_tokens=ts.output_tokens), t0)
        cited = set(res.details.get("cited") or [])
        if res.citations:
            res.citations = [c | {"cited": c["n"] in cited} for c in res.citations]
        if res.details.get("invented_replaced"):
            res.notices.append(f"{len(res.details['invented_replaced'])} Angabe(n), die weder in der Anweisung noch in "
                               "den Quellen stehen, wurden durch Platzhalter ersetzt.")
        if res.details.get("placeholders"):
            res.notices.append("Bitte die Platzhalter ausfüllen: " + ", ".join(res.details["placeholders"]))
        yield {"type": "done", "result": res}


def _join_chunks(chunks: Sequence[Chunk]) -> str:
    """Chunk texts in order; the overlap between consecutive chunks of one section is dropped."""
    out: list[str] = []
    for c in chunks:
        text = c.text.strip()
        if out:
            prev = out[-1]
            for size in range(min(len(prev), len(text), 400), 20, -1):
                if prev.endswith(text[:size]):
                    text = text[size:].lstrip()
                    break
        if text:
            out.append(text)
    return "\n\n".join(out)


def _doc_citations(doc_id: str, title: str, chunks: Sequence[Chunk]) -> list[dict]:
    pages = sorted({c.page for c in chunks if c.page is not None})
    where = {"page": pages[0]} if pages else {"page": None}
    label = f"S. {pages[0]}–{pages[-1]}" if len(pages) > 1 else (f"S. {pages[0]}" if pages else "")
    return [{"n": 1, "doc_id": doc_id, "title": title, "source": chunks[0].source if chunks else "", "label": label}
            | where]


def _title(text: str, n: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1].rstrip() + "…"


def run_to_end(events: Iterator[dict]) -> ToolResult:
    """Collect a tool's events into its result (the CLI's --json, evals, tests)."""
    result = None
    for ev in events:
        if ev["type"] == "done":
            result = ev["result"]
    if result is None:
        raise RuntimeError("tool ended without a result")
    return result
