"""Replay a saved answer run: the chain's steps after the model, on the model's recorded answers.

Why: an answer run with the local model takes 5–15 minutes on 2 cores, but the checks that follow
the model (``assistant.answer_checks``, the quotes, re-citation, refusals with passages) are pure
functions of the evidence and the model's raw answer. ``kiportal eval DATASET --replay RUN.json``
runs retrieval and evidence as usual, then takes each question's raw answer (and its refusal
probability) from the saved run instead of calling the model, so a change to the checks is measured
in seconds on exactly the answers the model gave. Earlier sessions did this by hand for every check
they tried ("re-applied to the saved answers", docs/results.md).

A replay only measures what comes after the model, and says where it cannot:

* ``prompt_changed``: rows whose prompt differs from the recorded one (retrieval, evidence or prompt
  changed since: the model might have answered otherwise); ``None`` for a recording without
  prompt hashes (made before they were kept), where this is unknown;
* ``unrecorded``: questions the model is asked now but was not then (refused before the model,
  blocked, unreachable); they are answered with nothing;
* ``raw_truncated``: rows of an older recording whose raw answer was cut at the preview length.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from langchain_core.messages import BaseMessage
from pydantic import Field

from assistant.llm.fake import FakeChatModel


class ReplayError(ValueError):
    """The recording cannot be replayed for this dataset (no answers, questions missing)."""


class ReplayChatModel(FakeChatModel):
    """The scripted model, answering each question with its recorded raw answer and refusal
    probability, and counting tokens like the recorded model.

    The question is recognised as the longest recorded question that the prompt contains (the
    chain's prompt states it verbatim); a prompt with none is noted in ``misses`` and answered
    with nothing, which the chain treats as no answer."""

    recorded: dict[str, dict] = Field(default_factory=dict)
    counter: Callable[[str], int] | None = None
    misses: list[str] = Field(default_factory=list)
    #: questions the model is asked now but gave no answer in the recording (it was not called
    #: then: refused before the model, blocked, unreachable) – a replay cannot know what it would say
    unrecorded: list[str] = Field(default_factory=list)

    def count_tokens(self, text: str) -> int:
        return self.counter(text) if self.counter is not None else super().count_tokens(text)

    def _reply(self, messages: list[BaseMessage]) -> str:
        prompt = str(messages[-1].content) if messages else ""
        found = [q for q in self.recorded if q and q in prompt]
        if not found:
            self.misses.append(prompt[:200])
            self.refusal_probability = None
            return ""
        row = self.recorded[max(found, key=len)]
        if not row.get("raw_answer"):
            self.unrecorded.append(row.get("id") or row.get("question", "")[:60])
        self.refusal_probability = row.get("refusal_probability")  # FakeChatModel reports it with the first chunk
        return row.get("raw_answer") or ""


def load_recording(path: str | Path) -> tuple[str | None, list[dict]]:
    """(model key, answer rows) of a saved ``kiportal eval --json``/``--out`` report."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReplayError(f"Aufnahme nicht lesbar / recording not readable: {path} ({exc})") from None
    answers = report.get("answers") if isinstance(report, dict) else None
    rows = answers.get("rows") if isinstance(answers, dict) else None
    if not rows:
        raise ReplayError(f"Die Aufnahme enthält keine Antworten / the recording holds no answers: {path}")
    return answers.get("model"), rows


#: Recordings made before session 35 cut the raw answer at the report's preview length (300
#: characters then): a raw answer of exactly this length may have lost its end.
OLD_PREVIEW_CHARS = 300


class Replay:
    """An Assistant whose model answers as recorded in ``recording``, and what a replay adds to the
    answer evaluation run with it (:func:`evals.runner.replay_eval` runs the two together)."""

    def __init__(self, app, questions: Sequence, recording: str | Path, *, model: str | None = None) -> None:
        from assistant.chain import Assistant
        from assistant.llm.backends import token_counter

        recorded_model, self.rows = load_recording(recording)
        self.recording = recording
        self.by_question = {r.get("question", ""): r for r in self.rows}
        missing = [q.id for q in questions if q.question not in self.by_question]
        if missing:
            raise ReplayError(f"{len(missing)} Fragen fehlen in der Aufnahme / questions missing from the recording: "
                              f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        self.model = key = model or recorded_model or app.settings.llm.default
        self.chat_model = ReplayChatModel(recorded=self.by_question, counter=token_counter(app.chat_model(key)))
        self.assistant = Assistant(app.retriever, app.settings,
                                   lambda k: self.chat_model if k == key else app.chat_model(k), policy=app.policy)

    def annotate(self, out: dict) -> dict:
        """The evaluation ``out`` with ``replayed_from``, ``prompt_changed`` (rows whose prompt differs
        from the recording's) and ``changed`` (rows whose outcome differs: refused, key facts, answer
        text); times and rates are cleared (no model ran)."""
        if self.chat_model.misses:
            raise ReplayError(f"{len(self.chat_model.misses)} Prompts ohne Frage aus der Aufnahme / prompts without "
                              f"a recorded question: {self.chat_model.misses[0]!r}")
        hashed = any(r.get("prompt_sha") for r in self.rows)  # recordings before session 35 have no prompt hashes
        changed, prompt_changed = [], 0
        for row in out["rows"]:
            before = self.by_question[row["question"]]
            row["prompt_changed"] = bool(before.get("prompt_sha")) and before["prompt_sha"] != row.get("prompt_sha")
            prompt_changed += row["prompt_changed"]
            if (before.get("refused"), before.get("key_terms"), before.get("answer")) != (row["refused"], row["key_terms"], row["answer"]):
                changed.append({"id": row["id"], "answerable": row["answerable"],
                                "refused": [before.get("refused"), row["refused"]],
                                "key_terms": [before.get("key_terms"), row["key_terms"]],
                                "answer": row["answer"]})
        for name in out["metrics"]:  # no model ran: its times and rates would be meaningless here
            if name.endswith("_ms") or "_per_s" in name:
                out["metrics"][name] = None
        truncated = [r.get("id") for r in self.rows if len(r.get("raw_answer") or "") == OLD_PREVIEW_CHARS]
        out.update(replayed_from=str(self.recording), prompt_changed=prompt_changed if hashed else None,
                   changed=changed, unrecorded=list(dict.fromkeys(self.chat_model.unrecorded)), raw_truncated=truncated)
        return out
