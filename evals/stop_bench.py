"""What Stopp gives the next question: the time from Stopp to the next answer's first token.

Why: the local model serves one answer at a time. Before the stop signal (:mod:`assistant.stopping`)
a stopped answer's prompt reading went on to its end, and the question asked right after it waited
behind it. Each round asks question A, leaves it once its sources are shown (as Stopp does, while
the model reads the prompt) and asks question B at once; it does so with the stop signal and
without it (the baseline: the signal never says stop), alternating which goes first, in one run.
"""
from __future__ import annotations

import statistics
import threading
import time
from typing import Any, Sequence

from assistant.stopping import detached


def _leave_after_sources(assistant, question: str, model: str, stop_signal: bool, stop_after_s: float):
    """Answer ``question`` as the portal does (its steps run :func:`assistant.stopping.detached`) and
    return, ``stop_after_s`` after its sources were shown, the answer's loop and the event that
    leaves it. Left, the loop ends at once; the step it was in (the model's prompt reading) runs on
    in its thread, to its end without the stop signal, and then the answer is closed."""
    gone = threading.Event()
    loop = detached(assistant.stream(question, model=model), gone.is_set, stop_signal=stop_signal)
    next(loop, None)  # the sources
    time.sleep(stop_after_s)  # the person reads them, then presses Stopp
    return loop, gone


def next_answer_begins(assistant, question: str, model: str) -> str:
    """Ask ``question`` until its first word ("token"), or its end if no model writes (its mode)."""
    events = assistant.stream(question, model=model)
    try:
        for ev in events:
            if ev["type"] == "token":
                return "token"
            if ev["type"] == "done":
                return ev["result"].mode
    finally:
        events.close()
    raise RuntimeError(f"no answer for {question!r}")


def stop_then_ask(assistant, questions: Sequence[str], model: str, rounds: int = 3,
                  stop_after_s: float = 1.0) -> dict[str, Any]:
    """``rounds`` pairs of questions (A stopped ``stop_after_s`` after its sources, B asked at once),
    each with and without the stop signal. Seconds from Stopp to B's first token; ratio = with ÷
    without (below 1: Stopp helps)."""
    if len(questions) < 2 * rounds:
        raise ValueError(f"need {2 * rounds} questions, got {len(questions)}")
    seconds: dict[str, list[float]] = {"with_stop": [], "without_stop": []}
    ends: list[str] = []
    for i in range(rounds):
        a, b = questions[2 * i], questions[2 * i + 1]
        order = (True, False) if i % 2 == 0 else (False, True)
        for stop_signal in order:
            loop, gone = _leave_after_sources(assistant, a, model, stop_signal, stop_after_s)
            t_stop = time.perf_counter()
            gone.set()
            list(loop)  # left: the loop ends at once, whatever its step still does
            ends.append(next_answer_begins(assistant, b, model))
            seconds["with_stop" if stop_signal else "without_stop"].append(round(time.perf_counter() - t_stop, 2))
    with_s, without_s = (statistics.median(seconds[k]) for k in ("with_stop", "without_stop"))
    return {"rounds": rounds, "model": model, "stop_after_s": stop_after_s, "seconds": seconds,
            "with_stop_median_s": round(with_s, 2), "without_stop_median_s": round(without_s, 2),
            "ratio_median": round(with_s / without_s, 3) if without_s else None,
            "next_answer_by_model": ends.count("token"), "next_answers": len(ends)}
