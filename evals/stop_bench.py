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

from assistant.stopping import Stopped, stoppable


def _leave_after_sources(assistant, question: str, model: str, honour_stop: bool,
                         stop_after_s: float) -> tuple[threading.Thread, threading.Event]:
    """Start answering ``question`` in a thread as the portal does and return, ``stop_after_s`` after
    its sources were shown, the thread and the event that leaves it. As the portal's thread, it
    finishes the step it is in (after the sources: the model's prompt reading) and then closes the
    answer; only the stop signal ends that step early."""
    shown, gone = threading.Event(), threading.Event()

    def run() -> None:
        events = assistant.stream(question, model=model)
        try:
            with stoppable(gone.is_set if honour_stop else (lambda: False)):
                for ev in events:
                    if ev["type"] == "sources":
                        shown.set()
                    elif gone.is_set() or ev["type"] == "done":
                        break
        except Stopped:  # what the portal's thread gets too
            pass
        finally:
            shown.set()
            events.close()

    thread = threading.Thread(target=run, name="stop-bench", daemon=True)
    thread.start()
    if not shown.wait(300):
        raise RuntimeError(f"no sources within 300 s for {question!r}")
    time.sleep(stop_after_s)  # the person reads the sources, then presses Stopp
    return thread, gone


def _first_token_s(assistant, question: str, model: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    events = assistant.stream(question, model=model)
    try:
        for ev in events:
            if ev["type"] == "token":
                return time.perf_counter() - t0, "token"
            if ev["type"] == "done":
                return time.perf_counter() - t0, ev["result"].mode
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
        for honour in order:
            thread, gone = _leave_after_sources(assistant, a, model, honour, stop_after_s)
            t_stop = time.perf_counter()
            gone.set()
            _, end = _first_token_s(assistant, b, model)
            seconds["with_stop" if honour else "without_stop"].append(round(time.perf_counter() - t_stop, 2))
            ends.append(end)
            thread.join(300)
    with_s, without_s = (statistics.median(seconds[k]) for k in ("with_stop", "without_stop"))
    return {"rounds": rounds, "model": model, "stop_after_s": stop_after_s, "seconds": seconds,
            "with_stop_median_s": round(with_s, 2), "without_stop_median_s": round(without_s, 2),
            "ratio_median": round(with_s / without_s, 3) if without_s else None,
            "next_answer_by_model": ends.count("token"), "next_answers": len(ends)}
