"""Evaluation of the Werkzeuge (`kiportal eval evals/datasets/tools/<tool>.jsonl`).

Datasets reference real municipal texts in ``../shared`` by path (``"path":
"corpus/docs/…"``, optionally a ``"section"`` heading whose text is the excerpt) – the corpus
is never copied into the repository; short texts written for this project may stand inline
(``"text"``). Metrics, per tool:

* einfach – readability gain (German Flesch after Amstad, after − before; Wiener
  Sachtextformel, before − after), rule violations per 100 sentences (before and after the
  revision passes), facts kept (numbers, dates, amounts, deadlines, names of the input found
  in the output, pooled);
* zusammenfassung – key points covered (each key point is a list of alternatives
  "a|b" that must all occur), citations valid (a point's cited page exists and supports it);
  a ``timing_only`` item times the map step on its first batches and extrapolates the whole
  document, for the full and the fast (pre-selected) path;
* entwurf – invented facts in the model's raw draft (names, numbers, dates, file numbers not
  in the instruction or sources), invented facts left after the check (should be 0), facts of
  the instruction and sources kept.
"""
from __future__ import annotations

import json
import logging
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

from assistant.tools.facts import added_facts, compare_facts, extract_facts
from assistant.tools.service import run_to_end

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("einfach", "zusammenfassung", "entwurf")


def shared_dir() -> Path:
    """``KIPORTAL_SHARED_DIR``, else ``../shared`` next to the working directory or the repository."""
    env = os.environ.get("KIPORTAL_SHARED_DIR")
    if env:
        return Path(env)
    for cand in (Path.cwd().parent / "shared", REPO.parent / "shared"):
        if cand.is_dir():
            return cand
    return REPO.parent / "shared"


def load_items(path: Path) -> list[dict]:
    items = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{i}: kein gültiges JSON ({exc.msg})") from None
        if rec.get("tool") not in TOOLS:
            raise ValueError(f"{path}:{i}: 'tool' muss einer von {TOOLS} sein")
        items.append(rec)
    return items


def is_tools_dataset(path: str | Path) -> bool:
    try:
        first = next(line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip())
        return json.loads(first).get("tool") in TOOLS
    except (StopIteration, ValueError, OSError):
        return False


def resolve(rel: str) -> Path:
    path = shared_dir() / rel
    if not path.is_file():
        raise FileNotFoundError(f"Korpusdatei fehlt: {path} (KIPORTAL_SHARED_DIR setzen?)")
    return path


def excerpt(path: Path, section: str | None, max_chars: int = 1200) -> str:
    """The text under ``section`` (a heading line) up to the next heading of the same or a higher
    level, without YAML front matter and Markdown emphasis, cut at a sentence within ``max_chars``."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.DOTALL)
    if section:
        lines = text.splitlines()
        start = next((i for i, line in enumerate(lines) if line.strip() == section), None)
        if start is None:
            raise ValueError(f"Abschnitt {section!r} nicht gefunden in {path.name}")
        level = len(section) - len(section.lstrip("#"))
        body = []
        for line in lines[start + 1:]:
            m = re.match(r"^(#+)\s", line)
            if m and len(m.group(1)) <= level:
                break
            body.append(line)
        text = "\n".join(body)
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text).strip()
    if len(text) > max_chars:
        cut = text[:max_chars]
        end = max(cut.rfind(". "), cut.rfind(".\n"))
        text = cut[: end + 1] if end > 200 else cut
    return text.strip()


def _doc_id(app, path: Path) -> str:
    app.ingestor.ingest([path], collection="eval-werkzeuge")
    for rec in app.catalog.documents(status="indexed"):
        if Path(rec.source).name == path.name:
            return rec.doc_id
    raise RuntimeError(f"{path.name} wurde nicht indexiert")


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.fmean(values), 3) if values else None


# -- einfach --------------------------------------------------------------------------------
def eval_einfach(app, item: dict, model: str | None) -> dict:
    text = item.get("text") or excerpt(resolve(item["path"]), item.get("section"), item.get("max_chars", 1200))
    t0 = time.perf_counter()
    res = run_to_end(app.tools.simplify(text=text, leicht=bool(item.get("leicht")), model=model))
    d = res.details
    facts_total = len(extract_facts(text))
    return {
        "id": item["id"], "leicht": bool(item.get("leicht")), "seconds": round(time.perf_counter() - t0, 1),
        "input_chars": len(text), "output": res.output,
        "flesch_before": d["readability_before"]["flesch_amstad"], "flesch_after": d["readability_after"]["flesch_amstad"],
        "wiener_before": d["readability_before"]["wiener_sachtextformel"],
        "wiener_after": d["readability_after"]["wiener_sachtextformel"],
        "sentences": d["rule_check"]["sentences"], "violations": len(d["rule_check"]["violations"]),
        "violations_before_revision": d["violations_before_revision"], "revisions": d["revisions"],
        "facts_total": facts_total, "facts_changed": d["facts_changed"],
        "facts_kept": facts_total - len(d["facts_changed"]),
    }


def einfach_metrics(rows: list[dict]) -> dict:
    sentences = sum(r["sentences"] for r in rows) or 1
    facts = sum(r["facts_total"] for r in rows)
    return {
        "readability_gain_flesch": _mean(r["flesch_after"] - r["flesch_before"] for r in rows),
        "readability_gain_wiener": _mean(r["wiener_before"] - r["wiener_after"] for r in rows),
        "flesch_after": _mean(r["flesch_after"] for r in rows),
        "violations_per_100_sentences": round(100 * sum(r["violations"] for r in rows) / sentences, 1),
        "violations_per_100_sentences_draft": round(100 * sum(r["violations_before_revision"] for r in rows) / sentences, 1),
        "facts_kept": round(sum(r["facts_kept"] for r in rows) / facts, 3) if facts else None,
        "seconds_mean": _mean(r["seconds"] for r in rows),
    }


# -- zusammenfassung ------------------------------------------------------------------------------
def covered(output: str, key_point: list[str]) -> bool:
    low = output.lower()
    return all(any(alt.lower() in low for alt in group.split("|")) for group in key_point)


def eval_summary(app, item: dict, model: str | None) -> dict:
    path = resolve(item["path"])
    doc_id = _doc_id(app, path)
    if item.get("timing_only"):
        return time_summary(app, doc_id, model, item.get("max_batches", 2)) | {"id": item["id"], "timing_only": True}
    t0 = time.perf_counter()
    res = run_to_end(app.tools.summarize(doc_id, length=item.get("length", "mittel"), model=model,
                                         fast=item.get("fast")))
    kp = item.get("key_points") or []
    hits = [covered(res.output, k) for k in kp]
    return {"id": item["id"], "seconds": round(time.perf_counter() - t0, 1), "output": res.output,
            "key_points_covered": round(sum(hits) / len(kp), 3) if kp else None, "key_points_missed":
            [k for k, h in zip(kp, hits) if not h], "citations_valid": res.details["citations_valid"],
            "citations_total": res.details["citations_total"], "batches": res.details["batches"],
            "fast": res.details["fast"]}


def time_summary(app, doc_id: str, model: str | None, max_batches: int) -> dict:
    """Map time per batch on the first ``max_batches`` batches, extrapolated to the whole document,
    for the full path and the fast (pre-selected) path; the reduce is counted as one more batch."""
    from assistant.tools import prompts
    from assistant.tools.summarize import MAP_POINTS, batches, format_batch, loc_label, passages_of, preselect
    from assistant.llm.backends import token_counter

    tools = app.tools
    key, profile = tools.profile(model)
    llm = tools.model_for(key)
    count = token_counter(llm)
    rec = app.catalog.get(doc_id)
    passages, has_pages = passages_of(app.catalog.iter_chunks(doc_id))
    label = loc_label(rec.page_kind, has_pages)
    ts = app.settings.tools
    out: dict[str, Any] = {"doc": Path(rec.source).name, "pages": rec.pages, "passages": len(passages),
                           "model": profile.label or key}
    for name, ps in (("full", passages), ("fast", preselect(passages, ts.summary_preselect_share))):
        groups = batches(ps, ts.summary_batch_tokens, count)
        secs, tokens = [], []
        for batch in groups[:max_batches]:
            msgs = prompts.map_messages(rec.title, format_batch(batch, label), MAP_POINTS["mittel"], label)
            tokens.append(sum(count(str(m.content)) for m in msgs))
            t = time.perf_counter()
            for _ in llm.stream(msgs, max_tokens=ts.summary_map_tokens):
                pass
            secs.append(time.perf_counter() - t)
        per = statistics.fmean(secs)
        out[name] = {"batches": len(groups), "measured_batches": len(secs), "seconds_per_batch": round(per, 1),
                     "prompt_tokens_per_batch": round(statistics.fmean(tokens)),
                     "estimated_total_s": round(per * (len(groups) + 1))}
    return out


def summary_metrics(rows: list[dict]) -> dict:
    real = [r for r in rows if not r.get("timing_only")]
    cites = sum(r["citations_total"] for r in real)
    m = {"key_points_covered": _mean(r["key_points_covered"] for r in real),
         "citations_valid": round(sum(r["citations_valid"] for r in real) / cites, 3) if cites else None,
         "seconds_mean": _mean(r["seconds"] for r in real)}
    for r in rows:
        if r.get("timing_only"):
            m["timing"] = {k: r[k] for k in ("doc", "pages", "passages", "model", "full", "fast")}
    return m


# -- entwurf ------------------------------------------------------------------------------------
def eval_draft(app, item: dict, model: str | None) -> dict:
    colls = None
    if item.get("corpus"):
        for rel in item["corpus"]:
            _doc_id(app, resolve(rel))
        colls = ["eval-werkzeuge"]
    t0 = time.perf_counter()
    res = run_to_end(app.tools.draft(item["kind"], item["instruction"], model=model,
                                     use_documents=bool(item.get("use_documents")), collections=colls))
    known = item["instruction"] + "\n" + "\n".join(c.get("snippet", "") for c in res.citations)
    expected = item.get("expected_facts") or []
    kept = [any(alt.lower() in res.output.lower() for alt in e.split("|")) for e in expected]
    return {"id": item["id"], "kind": item["kind"], "seconds": round(time.perf_counter() - t0, 1), "output": res.output,
            "invented_raw": len(res.details.get("invented_replaced") or []),
            "invented_raw_values": res.details.get("invented_replaced") or [],
            "invented_after_check": len(added_facts(known, res.output)),
            "instruction_facts_changed": len(compare_facts(item["instruction"], res.output)),
            "expected_facts": len(expected), "expected_kept": sum(kept),
            "placeholders": res.details.get("placeholders") or [], "cited": res.details.get("cited") or []}


def draft_metrics(rows: list[dict]) -> dict:
    expected = sum(r["expected_facts"] for r in rows)
    return {"drafts_with_invented_raw": sum(1 for r in rows if r["invented_raw"]),
            "invented_raw_total": sum(r["invented_raw"] for r in rows),
            "invented_after_check_total": sum(r["invented_after_check"] for r in rows),
            "facts_kept": round(sum(r["expected_kept"] for r in rows) / expected, 3) if expected else None,
            "drafts": len(rows), "seconds_mean": _mean(r["seconds"] for r in rows)}


RUNNERS = {"einfach": (eval_einfach, einfach_metrics), "zusammenfassung": (eval_summary, summary_metrics),
           "entwurf": (eval_draft, draft_metrics)}


def run_tools_eval(app, path: str | Path, model: str | None = None, limit: int | None = None) -> dict:
    """Run every item of a tools dataset; one report with per-item rows and metrics per tool."""
    items = load_items(Path(path))[: limit or None]
    rows: dict[str, list[dict]] = {}
    t0 = time.perf_counter()
    for item in items:
        fn, _ = RUNNERS[item["tool"]]
        log.info("tool eval %s", item["id"])
        rows.setdefault(item["tool"], []).append(fn(app, item, model))
    key, profile = app.tools.profile(model)
    return {"kind": "tools", "model": profile.label or key, "items": len(items),
            "seconds": round(time.perf_counter() - t0, 1),
            "tools": {tool: {"metrics": RUNNERS[tool][1](r), "rows": r} for tool, r in rows.items()}}
