"""evals.stop_bench with a scripted assistant: one model behind a lock that reads a prompt in parts and
looks at the stop signal between them, as the local model does (the real figures come from
`kiportal bench`, step stop_then_ask)."""
from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from assistant import stopping
from evals.stop_bench import stop_then_ask

PARTS = 40


@dataclass
class ScriptedAssistant:
    """sources at once, then PARTS parts of prompt reading (10 ms each) under one model lock, then tokens."""
    runs: list[list] = field(default_factory=list)  # [question, parts read], in the order asked
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stream(self, question, model=None):
        yield {"type": "sources", "citations": [], "passages": []}
        with self.lock:
            run = [question, 0]
            self.runs.append(run)
            for _ in range(PARTS):
                stopping.check()
                time.sleep(0.01)
                run[1] += 1
            yield {"type": "token", "text": "Antwort"}


def test_each_round_stops_question_a_with_the_signal_and_reads_it_to_the_end_without():
    assistant = ScriptedAssistant()
    questions = ["A1", "B1", "A2", "B2"]
    res = stop_then_ask(assistant, questions, "lokal", rounds=2, stop_after_s=0.05)
    assert res["next_answers"] == 4 == res["next_answer_by_model"]
    assert len(res["seconds"]["with_stop"]) == len(res["seconds"]["without_stop"]) == 2
    # the ratio of the medians of the reported seconds (the medians shown beside it are rounded to 0.01 s,
    # which at these 50-100 ms moves their quotient by more than 0.01)
    median = statistics.median
    assert res["ratio_median"] == pytest.approx(median(res["seconds"]["with_stop"]) / median(res["seconds"]["without_stop"]), abs=0.001)
    # each A is asked twice: stopped in its prompt reading with the signal, read to the end without it
    read = Counter((q, "all" if n == PARTS else "stopped") for q, n in assistant.runs)
    assert read == {("A1", "stopped"): 1, ("A1", "all"): 1, ("A2", "stopped"): 1, ("A2", "all"): 1,
                    ("B1", "all"): 2, ("B2", "all"): 2}


def test_too_few_questions_is_a_clear_error():
    with pytest.raises(ValueError, match="need 6 questions"):
        stop_then_ask(ScriptedAssistant(), ["a", "b"], "lokal", rounds=3)
