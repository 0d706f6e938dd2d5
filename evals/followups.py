"""Follow-up questions in "Nur Textstellen" mode: does the follow-up's quote hold what it asks?

Why a runner of its own: the other datasets ask single questions, so a change to how a follow-up is
answered moves none of their figures. Each row of ``evals/datasets/followups/demo.jsonl`` asks its
``previous`` question first, then ``question`` with that exchange as history, over the demo corpus,
with the extractive model (no LLM: seconds). ``split`` dev rows are the ones a change was tuned on
(the browser review's example); test rows are for reporting.

``python -m evals.followups DATASET [--json OUT]`` (``KIPORTAL_HOME`` with the demo corpus indexed:
``kiportal ingest corpus/demo/files --collection demo``) prints the share per split and each miss.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def answer(app, question: str, history=(), model: str = "extraktiv"):
    return app.assistant.answer(question, list(history), model=model)


def run(app, rows: list[dict], model: str = "extraktiv") -> dict:
    """Per split: rows whose follow-up answer holds every key term (case-insensitive)."""
    out: dict = {"rows": []}
    for row in rows:
        first = answer(app, row["previous"], model=model)
        follow = answer(app, row["question"], [(row["previous"], first.answer)], model=model)
        ok = all(k.lower() in follow.answer.lower() for k in row["key_terms"])
        out["rows"].append({"id": row["id"], "split": row["split"], "ok": ok, "answer": follow.answer[:300]})
    for split in sorted({r["split"] for r in rows}):
        mine = [r for r in out["rows"] if r["split"] == split]
        out[split] = {"ok": sum(r["ok"] for r in mine), "of": len(mine)}
    return out


def main(argv: list[str]) -> int:
    from assistant.settings import load_settings
    from assistant.wiring import App

    logging.basicConfig(level=logging.WARNING)
    if not argv:
        print(__doc__)
        return 2
    rows = [json.loads(line) for line in Path(argv[0]).read_text(encoding="utf-8").splitlines() if line.strip()]
    result = run(App(load_settings()), rows)
    for split in ("dev", "test"):
        if split in result:
            print(f"{split}: {result[split]['ok']} of {result[split]['of']}")
    for r in result["rows"]:
        if not r["ok"]:
            print(f"  miss {r['id']}: {r['answer'][:120]}")
    if "--json" in argv:
        Path(argv[argv.index("--json") + 1]).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
