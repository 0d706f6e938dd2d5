"""Write an evaluation or benchmark result as JSON (for machines) and Markdown with charts (for people).

The Markdown is rendered from the report's shape rather than from a fixed template, so
``kiportal eval`` and ``kiportal bench`` share one writer: a section with ``modes`` is a
retrieval comparison (table + bar chart + latency histogram), one with ``metrics`` and
``rows`` an answer evaluation, ``targets`` a pass/fail list, anything else a key/value
table. Charts are PNGs next to the Markdown so the file renders anywhere (Gitea, GitLab,
a file browser) without a server.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)

RETRIEVAL_COLUMNS = ("hit@1", "hit@5", "mrr@10", "ndcg@10", "page_hit@1", "page_hit@5", "gold_page@5",
                     "latency_p50_ms", "latency_p95_ms")
PLOT_METRICS = ("hit@1", "hit@5", "mrr@10")


# ---------------------------------------------------------------- JSON
def _clean(obj: Any) -> Any:
    """NaN/inf are not JSON; they become null so every consumer can parse the file."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_json(report: dict) -> str:
    return json.dumps(_clean(report), ensure_ascii=False, indent=2, default=str) + "\n"


# ---------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    return plt


def plot_retrieval(modes: dict[str, dict], path: Path, title: str, metrics: Sequence[str] = PLOT_METRICS) -> Path:
    """Grouped bars: one group per metric, one bar per mode (baseline included when present)."""
    plt = _pyplot()
    names = list(modes)
    metrics = [k for k in metrics if any(modes[n].get(k) is not None for n in names)]
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        vals = [modes[name].get(k) or 0.0 for k in metrics]
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(metrics))]
        bars = ax.bar(xs, vals, width, label=name)
        for b, v in zip(bars, vals):
            ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics)
    ax.set_ylim(0, 1.08)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=max(len(names), 1), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_latency(series: dict[str, Sequence[float]], path: Path, title: str) -> Path:
    """Overlaid histograms of latencies in ms, with each series' p95 marked."""
    from evals.metrics import linear_percentile

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    everything = [v for vals in series.values() for v in vals if v is not None]
    lo, hi = (min(everything), max(everything)) if everything else (0.0, 1.0)
    bins = [lo + (hi - lo) * i / 30 for i in range(31)] if hi > lo else 30  # shared bins: series stay comparable
    for name, vals in series.items():
        vals = [v for v in vals if v is not None]
        if not vals:
            continue
        line = ax.hist(vals, bins=bins, alpha=0.5, label=f"{name} (n={len(vals)})")
        color = line[2][0].get_facecolor() if len(line[2]) else None
        ax.axvline(linear_percentile(vals, 95), linestyle="--", linewidth=1, color=color)
    ax.set_xlabel("ms (gestrichelt: p95)")
    ax.set_ylabel("Anzahl")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- Markdown
def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "ja" if v else "nein"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, (list, dict)):
        text = json.dumps(_clean(v), ensure_ascii=False)
        return text if len(text) <= 120 else text[:117] + "…"
    return str(v).replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _kv_table(d: dict) -> str:
    return md_table(("Größe", "Wert"), [(k, v) for k, v in d.items()])


def _targets(targets: list[dict]) -> str:
    rows = [(t["name"], t.get("value"), f"{t.get('op', '')} {t.get('target')}", "✓" if t.get("ok") else "✗")
            for t in targets]
    return md_table(("Ziel", "gemessen", "Vorgabe", ""), rows)


def _retrieval_section(key: str, sec: dict, out_dir: Path, name: str) -> list[str]:
    parts: list[str] = []
    modes = sec["modes"]
    cols = [c for c in RETRIEVAL_COLUMNS if any(v.get(c) is not None for v in modes.values())]
    parts.append(md_table(("Modus", *cols), [(mode, *(v.get(c) for c in cols)) for mode, v in modes.items()]))
    extra = {k: v for k, v in sec.items() if k not in ("modes", "rows", "latencies_ms") and not isinstance(v, (dict, list))}
    if extra:
        parts.append(_kv_table(extra))
    for sub in ("ratio_hybrid_baseline", "ingest"):
        if isinstance(sec.get(sub), dict):
            parts.append(f"**{sub}**\n\n" + _kv_table(sec[sub]))
    try:
        png = plot_retrieval(modes, out_dir / f"{name}-{key}.png", key)
        parts.append(f"![{key}]({png.name})")
        if sec.get("latencies_ms"):
            png = plot_latency(sec["latencies_ms"], out_dir / f"{name}-{key}-latency.png", f"{key}: Suchlatenz")
            parts.append(f"![{key} latency]({png.name})")
    except Exception as exc:  # a chart must never cost the numbers
        log.warning("plot for %s failed: %s", key, exc)
    rows = sec.get("rows") or []
    if rows and all(isinstance(r, dict) for r in rows) and any(mode in rows[0] for mode in modes):
        mode_names = [mode for mode in modes if mode in rows[0]]
        table = [(r["id"], r.get("expected_source"), r.get("expected_page"),
                  *(r[mode].get("rank") for mode in mode_names),
                  ", ".join(r[mode_names[-1]].get("top", []))) for r in rows]
        parts.append("<details><summary>Fragen im Einzelnen</summary>\n\n"
                     + md_table(("id", "erwartet", "Seite", *(f"Rang {mm}" for mm in mode_names), f"Top ({mode_names[-1]})"), table)
                     + "\n\n</details>")
    return parts


def _answers_section(key: str, sec: dict, out_dir: Path, name: str) -> list[str]:
    parts = [_kv_table({k: v for k, v in sec.items() if k not in ("metrics", "rows")}), _kv_table(sec["metrics"])]
    rows = sec.get("rows") or []
    firsts = [r.get("first_token_ms") for r in rows if r.get("first_token_ms") is not None]
    totals = [r.get("total_ms") for r in rows if r.get("total_ms") is not None]
    if totals:
        try:
            series = {"gesamt": totals}
            if firsts:
                series["erstes Token"] = firsts
            png = plot_latency(series, out_dir / f"{name}-{key}-latency.png", f"{key}: Antwortzeit")
            parts.append(f"![{key} latency]({png.name})")
        except Exception as exc:
            log.warning("plot for %s failed: %s", key, exc)
    if rows:
        table = [(r["id"], r["answerable"], r["refused"], r.get("key_terms"), r.get("citation_precision"),
                  r.get("total_ms"), r["answer"][:140]) for r in rows]
        parts.append("<details><summary>Antworten im Einzelnen</summary>\n\n"
                     + md_table(("id", "beantwortbar", "abgelehnt", "Schlüsselbegriffe", "Zitat-Präzision", "ms", "Antwort"), table)
                     + "\n\n</details>")
    return parts


def render_markdown(report: dict, out_dir: Path, name: str) -> str:
    title = report.get("title") or f"Auswertung {name}"
    lines = [f"# {title}", ""]
    head = {k: v for k, v in report.items() if not isinstance(v, (dict, list)) and k != "title"}
    if head:
        lines += [_kv_table(head), ""]
    for key, sec in report.items():
        if key == "targets" and isinstance(sec, list):
            lines += ["## Ziele", "", _targets(sec), ""]
        elif key == "errors" and isinstance(sec, list) and sec:
            lines += ["## Fehler", ""] + [f"- **{e.get('step')}**: {_fmt(e.get('error'))}" for e in sec] + [""]
        elif not isinstance(sec, dict):
            continue
        elif key == "pii" and "per_kind" in sec:
            from evals.pii_eval import format_markdown

            lines += ["## pii", "", format_markdown(sec), ""]
        elif isinstance(sec.get("modes"), dict):
            lines += [f"## {key}", ""] + [p + "\n" for p in _retrieval_section(key, sec, out_dir, name)]
        elif isinstance(sec.get("metrics"), dict) and "rows" in sec:
            lines += [f"## {key}", ""] + [p + "\n" for p in _answers_section(key, sec, out_dir, name)]
        else:
            flat = {k: v for k, v in sec.items() if k not in ("rows", "latencies_ms", "sample_ms")}
            lines += [f"## {key}", "", _kv_table(flat), ""]
            if isinstance(sec.get("latencies_ms"), list) and sec["latencies_ms"]:
                try:
                    png = plot_latency({key: sec["latencies_ms"]}, out_dir / f"{name}-{key}-latency.png", f"{key}: Latenz")
                    lines += [f"![{key} latency]({png.name})", ""]
                except Exception as exc:
                    log.warning("plot for %s failed: %s", key, exc)
    return "\n".join(lines).rstrip() + "\n"


def write_report(report: dict, out_dir: Path, name: str) -> tuple[Path, Path]:
    """``<out_dir>/<name>.json`` and ``<name>.md`` (with ``<name>-*.png`` charts beside it)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{name}.json"
    md_path = out_dir / f"{name}.md"
    json_path.write_text(to_json(report), encoding="utf-8")
    md_path.write_text(render_markdown(report, out_dir, name), encoding="utf-8")
    log.info("report written: %s, %s", json_path, md_path)
    return json_path, md_path


def publish_report(report: dict, out_dir: Path, prefix: str, *, latest: str) -> dict:
    """Write ``<prefix>-<timestamp>.json/.md`` and copy them to ``<latest>.json/.md`` (what CI and
    docs point to); the report records its own file names."""
    import shutil
    import time

    name = f"{prefix}-" + time.strftime("%Y%m%d-%H%M%S")
    report["files"] = {"json": f"{name}.json", "md": f"{name}.md"}
    json_path, md_path = write_report(report, out_dir, name)
    shutil.copyfile(json_path, Path(out_dir) / f"{latest}.json")
    shutil.copyfile(md_path, Path(out_dir) / f"{latest}.md")
    return report


def format_cell(v: Any) -> str:
    """A figure for a summary table or line: "–" for missing, 3 decimals below 10, else 1."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)
