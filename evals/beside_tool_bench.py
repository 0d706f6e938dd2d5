"""What a chat question waits for beside a tool run: seconds to its first token while the local model
writes a tool's part, with answers going first and without (the baseline), in one run.

Why: the local model serves one generation at a time. A tool run (Einfache Sprache of a long text)
writes part after part, each up to ``tools.output_tokens`` tokens; a chat question asked meanwhile
waited for the part being written (70-80 s on a loaded 2-core machine, docs/results.md, session 50).
Since session 51 the tools' parts are background work (``assistant.llm.backends.for_background``)
and step aside between two tokens when an answer waits. Each round starts a tool part, asks the
question once the part has written ``head_start_tokens`` tokens, and measures until the question's
first token; once as background work and once not, alternating which goes first, and then once with
the model to itself (what the question takes alone: retrieval and its own prompt). The tool's own
time is recorded too (what stepping aside costs it).
"""
from __future__ import annotations

import statistics
import threading
import time
from typing import Any, Sequence

from assistant.llm.backends import for_background
from evals.stop_bench import next_answer_begins


def _ask_until_first_token(assistant, question: str, model: str) -> tuple[float, str]:
    """Seconds until the question's first token (or its end, if no model wrote), and which it was."""
    t0 = time.perf_counter()
    ended = next_answer_begins(assistant, question, model)
    return time.perf_counter() - t0, ended


def _one(assistant, chat_model, tool_messages, question: str, model: str, background: bool,
         part_tokens: int, head_start_tokens: int) -> dict[str, Any]:
    tool_model = for_background(chat_model) if background else chat_model
    written = threading.Event()
    tool: dict[str, Any] = {}

    def write_part() -> None:
        t0, n = time.perf_counter(), 0
        for n, _ in enumerate(tool_model.stream(tool_messages, max_tokens=part_tokens), start=1):
            if n == head_start_tokens:
                written.set()
        tool.update(seconds=time.perf_counter() - t0, chunks=n)
        written.set()

    chat_model.llama.reset()  # every round from the same empty cache
    thread = threading.Thread(target=write_part, name="tool-part")
    thread.start()
    written.wait()
    wait_s, ended = _ask_until_first_token(assistant, question, model)
    thread.join()
    return {"first_token_s": round(wait_s, 2), "ended_by": ended, "tool_s": round(tool["seconds"], 2),
            "tool_chunks": tool["chunks"]}


def answer_beside_tool(assistant, chat_model, tool_messages, questions: Sequence[str], model: str, *,
                       part_tokens: int = 300, head_start_tokens: int = 8) -> dict[str, Any]:
    """One round per question, each with the tool's part as background work and without. Ratio =
    with ÷ without of the median seconds to the question's first token (below 1: answers go first);
    ``extra_wait_ratio``: the same for the seconds the part adds to the question alone (the target)."""
    rows: dict[str, list[dict]] = {"answers_first": [], "baseline": []}
    alone: list[float] = []
    for i, question in enumerate(questions):
        for background in ((True, False) if i % 2 == 0 else (False, True)):
            rows["answers_first" if background else "baseline"].append(
                _one(assistant, chat_model, tool_messages, question, model, background, part_tokens, head_start_tokens))
        chat_model.llama.reset()  # the question with the model to itself, from the same empty cache
        alone.append(round(_ask_until_first_token(assistant, question, model)[0], 2))
    med = {k: statistics.median(r["first_token_s"] for r in v) for k, v in rows.items()}
    tool = {k: statistics.median(r["tool_s"] for r in v) for k, v in rows.items()}
    alone_med = statistics.median(alone)
    # what the part adds to the question's own time, with ÷ without answers first: unlike the plain
    # ratio it does not shrink or grow with how long the question takes by itself
    extra = {k: max(0.0, v - alone_med) for k, v in med.items()}
    return {"rounds": len(questions), "model": model, "part_tokens": part_tokens, "rows": rows,
            "answers_first_median_s": round(med["answers_first"], 2), "baseline_median_s": round(med["baseline"], 2),
            "alone_s": alone, "alone_median_s": round(alone_med, 2),
            "ratio_median": round(med["answers_first"] / med["baseline"], 3) if med["baseline"] else None,
            "extra_wait_s": {k: round(v, 2) for k, v in extra.items()},
            "extra_wait_ratio": round(extra["answers_first"] / extra["baseline"], 3) if extra["baseline"] else None,
            "tool_part_median_s": {k: round(v, 2) for k, v in tool.items()},
            "answers_by_model": sum(r["ended_by"] == "token" for v in rows.values() for r in v)}


def summary_line(r: dict[str, Any]) -> str:
    return (f"Chatfrage neben einem Werkzeug-Teil ({r['rounds']} Runden, Teil bis {r['part_tokens']} Tokens): "
            f"1. Token im Median nach {r['answers_first_median_s']} s mit Vortritt, {r['baseline_median_s']} s ohne, "
            f"Verhältnis {r['ratio_median']} (die Frage allein: {r['alone_median_s']} s; Wartezeit durch den Teil "
            f"{r['extra_wait_s']['answers_first']} s ÷ {r['extra_wait_s']['baseline']} s = {r['extra_wait_ratio']}); der Teil selbst {r['tool_part_median_s']['answers_first']} s mit, "
            f"{r['tool_part_median_s']['baseline']} s ohne")
