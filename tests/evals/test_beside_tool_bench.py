"""evals.beside_tool_bench with a scripted model and assistant sharing one FairLock, as the local model's
generations do (the real figures come from `kiportal bench`, step answer_beside_tool; the real model's
stepping aside is tested in tests/assistant/llm/test_llm_local.py)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from assistant.llm.fair_lock import FairLock
from evals.beside_tool_bench import answer_beside_tool, summary_line

TOKEN_S = 0.01


@dataclass
class ScriptedModel:
    """Writes one token per TOKEN_S under the lock; bound as background work it steps aside for an
    urgent waiter between two tokens, as assistant.llm.local does."""
    lock: FairLock = field(default_factory=FairLock)
    background: bool = False
    resets: int = 0
    steps_aside_for_answers = True

    @property
    def llama(self):
        return self

    def reset(self):
        self.resets += 1

    def bind(self, background: bool):
        return ScriptedModel(self.lock, background)

    def stream(self, messages, max_tokens: int):
        self.lock.acquire()
        try:
            for i in range(max_tokens):
                if self.background and self.lock.urgent_waiting():
                    self.lock.release()
                    self.lock.acquire()
                time.sleep(TOKEN_S)
                yield f"t{i}"
        finally:
            self.lock.release()


@dataclass
class ScriptedAssistant:
    lock: FairLock
    asked: list = field(default_factory=list)

    def stream(self, question, model=None):
        self.asked.append(question)
        yield {"type": "sources", "citations": [], "passages": []}
        self.lock.acquire(urgent=True)
        try:
            time.sleep(5 * TOKEN_S)  # the answer's prompt
            yield {"type": "token", "text": "Antwort"}
        finally:
            self.lock.release()


def test_each_question_is_asked_beside_a_part_once_as_background_work_and_once_not():
    model = ScriptedModel()
    assistant = ScriptedAssistant(model.lock)
    res = answer_beside_tool(assistant, model, [], ["F1", "F2"], "lokal", part_tokens=60, head_start_tokens=5)
    assert assistant.asked == ["F1", "F1", "F1", "F2", "F2", "F2"] and model.resets == 6
    assert len(res["alone_s"]) == 2 and all(s < 30 * TOKEN_S for s in res["alone_s"])  # no part to wait for
    assert res["answers_by_model"] == 4 and res["rounds"] == 2
    rows = res["rows"]
    assert len(rows["answers_first"]) == len(rows["baseline"]) == 2
    assert all(r["tool_chunks"] == 60 for v in rows.values() for r in v)
    # the baseline waits for the rest of the part (about 55 tokens), the answer going first for about one
    assert all(r["first_token_s"] >= 50 * TOKEN_S for r in rows["baseline"])
    assert all(r["first_token_s"] < 30 * TOKEN_S for r in rows["answers_first"])
    assert res["ratio_median"] == pytest.approx(res["answers_first_median_s"] / res["baseline_median_s"], abs=0.05)
    assert res["ratio_median"] < 0.6
    # what the part adds to the question alone: about one token with answers first, the part's rest without
    extra = res["extra_wait_s"]
    assert extra["baseline"] == pytest.approx(res["baseline_median_s"] - res["alone_median_s"], abs=0.011)
    assert extra["baseline"] >= 40 * TOKEN_S and extra["answers_first"] < 20 * TOKEN_S
    assert res["extra_wait_ratio"] == pytest.approx(extra["answers_first"] / extra["baseline"], abs=0.01)
    assert res["extra_wait_ratio"] < res["ratio_median"]
    assert "Verhältnis" in summary_line(res) and "Wartezeit durch den Teil" in summary_line(res)
