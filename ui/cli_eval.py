"""`kiportal eval` and `kiportal bench`: thin wrappers around :mod:`evals.runner` and :mod:`evals.bench`.

Kept out of ui/cli.py so the evaluation code (matplotlib, the baseline's LangChain
stack) is imported only when one of these commands runs, never for `kiportal search`;
ui/cli.py adds the commands with ``cli.add_command``.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from ui.cli_access import as_user_option, scope_as
from ui.cli_common import app_for

log = logging.getLogger("kiportal.eval")


def _eval_summary(report: dict) -> None:
    """Human summary of one eval run (the report files hold the details)."""
    from evals.bench import format_cell

    if report.get("kind") == "tools":
        click.echo(f"Werkzeuge ({report['items']} Beispiele, Modell {report['model']}, {report['seconds']:.0f} s)")
        for tool, part in report["tools"].items():
            click.echo(f"  {tool}:")
            for key, value in part["metrics"].items():
                click.echo(f"    {key:38} {value if isinstance(value, dict) else format_cell(value)}")
        return
    if report.get("kind") == "pii":
        overall = report["pii"]["overall"]
        click.echo(f"PII-Erkennung ({report['pii']['examples']} Beispiele): Precision {overall['precision']:.3f}, "
                   f"Recall {overall['recall']:.3f}, F1 {overall['f1']:.3f}")
        return
    if "ingest" in report:
        s = report["ingest"]
        click.echo(f"Ingest: +{s['added']} ~{s['updated']} ={s['unchanged']} ✗{len(s['failed'])}, {s['chunks']} Abschnitte")
    ret = report["retrieval"]
    click.echo(f"Retrieval ({ret['n']} beantwortbare von {report['questions']} Fragen, k={ret['k']})")
    cols = ("hit@1", "hit@5", "mrr@10", "ndcg@10", "page_hit@1", "page_hit@5", "gold_page@5", "latency_p50_ms",
            "latency_p95_ms")
    click.echo(f"{'Modus':8}" + "".join(f"{c:>15}" for c in cols))
    for mode, v in ret["modes"].items():
        click.echo(f"{mode:8}" + "".join(f"{format_cell(v.get(c)):>15}" for c in cols))
    if "answers" in report:
        a = report["answers"]
        click.echo(f"Antworten ({a['n']} Fragen, Modell {a['model'] or 'Standard'}, {a['seconds']:.0f} s)")
        for key, value in a["metrics"].items():
            click.echo(f"  {key:38} {format_cell(value)}")
        if "replayed_from" in a:
            prompts = ("Prompts: unbekannt, ob geändert (Aufnahme ohne Prompt-Prüfsummen)" if a["prompt_changed"] is None
                       else f"{a['prompt_changed']} Prompts geändert (dort hätte das Modell anders antworten können)")
            click.echo(f"Wiederholt aus {a['replayed_from']}: {len(a['changed'])} Antworten anders, {prompts}")
            if a["unrecorded"]:
                click.echo(f"  ohne aufgezeichnete Modellantwort (damals nicht gefragt): {', '.join(a['unrecorded'])}")
            if a["raw_truncated"]:
                click.echo(f"  Rohantwort in der Aufnahme gekürzt: {', '.join(map(str, a['raw_truncated']))}")
            for c in a["changed"]:
                click.echo(f"  {c['id']}: abgelehnt {c['refused'][0]} -> {c['refused'][1]}, "
                           f"Schlüsselfakten {format_cell(c['key_terms'][0])} -> {format_cell(c['key_terms'][1])}")


@click.command("eval")
@click.argument("dataset", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Ein JSON-Objekt / one JSON object.")
@click.option("--answers/--no-answers", default=True, help="Auch Antworten bewerten / also score answers.")
@click.option("--model", default=None, help="Modell-Schlüssel für Antworten / model key (default: settings).")
@click.option("--corpus", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Diesen Ordner vorher indexieren (inkrementell) / ingest this folder first.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Bericht (JSON + Markdown + Grafiken) hierhin schreiben / write the report here.")
@click.option("--time-budget", type=float, default=None,
              help="Antworten nach so vielen Sekunden beenden (Anzahl wird berichtet) / stop answering after N s.")
@click.option("--replay", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Die Modellantworten eines gespeicherten Laufs (JSON) wiederverwenden: nur die Schritte nach dem "
                   "Modell laufen neu, in Sekunden / re-apply the answer checks to a saved run's model answers.")
@as_user_option
@click.pass_context
def eval_cmd(ctx: click.Context, dataset: Path, as_json: bool, answers: bool, model: str | None,
             corpus: Path | None, out: Path | None, time_budget: float | None, replay: Path | None,
             as_user: str | None) -> None:
    """Datensatz auswerten: Retrieval (bm25/dense/hybrid, late = fein abgeglichen wie vor einer Modellantwort),
    Antworten, Belege, Ablehnungen, Latenz.
    Ohne --as über alle Sammlungen (Betreiber-Sicht)."""
    from evals.replay import ReplayError
    from evals.runner import run_eval

    try:
        report = run_eval(app_for(ctx), dataset, answers=answers, model=model, corpus=corpus,
                          scope=scope_as(ctx, as_user, "eval"), as_user=as_user, time_budget_s=time_budget,
                          replay=replay)
    except ReplayError as exc:
        raise click.ClickException(str(exc)) from None
    if out is not None:
        import time

        from evals.report import write_report

        name = f"eval-{dataset.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        paths = write_report(report, out, name)
        report["files"] = [str(p) for p in paths]
    if as_json:
        from evals.report import to_json

        click.echo(json.dumps(json.loads(to_json(report)), ensure_ascii=False))
    else:
        _eval_summary(report)
        if out is not None:
            click.echo(f"Bericht: {report['files'][1]}")


@click.command("bench")
@click.option("--shared", "shared_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("../shared"),
              show_default=True, help="Das shared-Verzeichnis (Korpus, XQuAD) / the shared folder.")


@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("bench/results"),
              show_default=True, help="Ergebnisordner / results folder.")


@click.option("--quick", is_flag=True, help="Weniger Fragen, für die Entwicklung / fewer questions.")
@click.option("--no-llm", is_flag=True, help="Ohne Antwortbewertung mit dem lokalen Sprachmodell.")
@click.option("--runtimes", is_flag=True,
              help="Auch torch vs. ONNX fp32 vs. int8 vergleichen (mit XQuAD je Laufzeit, ~10 min) / compare embedding runtimes.")
@click.option("--work-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Arbeitsordner für die Bench-Datenverzeichnisse (Standard: temporär, wird gelöscht).")


@click.option("--json", "as_json", is_flag=True, help="Ergebnis als ein JSON-Objekt.")
@click.option("--scale", "scale", type=click.IntRange(min=100), multiple=True,
              help="Nur der Skalierungs-Benchmark mit N synthetischen Abschnitten (mehrfach: --scale 10000 "
                   "--scale 100000) / only the scale benchmark at N passages.")
@click.option("--cluster", "cluster_only", is_flag=True,
              help="Nur der Cluster-Abschnitt: PostgreSQL + Chroma-Server gegen eingebettet, Sichtbarkeit auf "
                   "einem zweiten Replikat / only the cluster section.")
@click.pass_context
def bench_cmd(ctx: click.Context, shared_dir: Path, out: Path, quick: bool, no_llm: bool, runtimes: bool,
              work_dir: Path | None, as_json: bool, scale: tuple[int, ...], cluster_only: bool) -> None:
    """Alle Leistungs- und Qualitätszahlen auf ../shared messen (Exit ≠ 0, wenn ein Schritt scheitert).

    Mit --scale N: Massenladen, RAM, Platte, Start, Suchlatenz, Aufnehmen und Löschen eines
    Dokuments und Known-Item-Trefferquote bei N synthetischen Abschnitten (Sätze aus ../shared)."""
    from evals.bench import format_summary, run_bench

    settings = app_for(ctx).settings
    if scale:
        from evals.scale_bench import render_scale_markdown, run_scale_bench

        try:
            report = run_scale_bench(sorted(set(scale)), shared_dir, out, settings=settings, work_dir=work_dir,
                                     keep_work=work_dir is not None)
        except (FileNotFoundError, RuntimeError) as exc:
            raise click.ClickException(str(exc)) from None
        if as_json:
            click.echo(json.dumps(report, ensure_ascii=False))
        else:
            click.echo(render_scale_markdown(report, None))
            click.echo(f"Bericht: {Path(out) / report['files']['md']} (auch scale-latest.md)")
        return
    try:
        if cluster_only:
            from evals.bench import run_cluster_bench

            report = run_cluster_bench(shared_dir, out, settings=settings, quick=quick, work_dir=work_dir,
                                       keep_work=work_dir is not None)
        else:
            report = run_bench(shared_dir, out, settings=settings, quick=quick, llm=not no_llm,
                               work_dir=work_dir, keep_work=work_dir is not None, runtimes=runtimes)
    except (FileNotFoundError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        from evals.report import to_json

        click.echo(json.dumps(json.loads(to_json(report)), ensure_ascii=False))
    else:
        click.echo(format_summary(report))
        click.echo(f"\nBericht: {Path(out) / report['files']['md']} "
                   f"(auch {'cluster-latest.md' if cluster_only else 'latest.md'})")
    if report["errors"]:
        print_errors = "; ".join(e["step"] for e in report["errors"])
        log.error("bench steps failed: %s", print_errors)
        sys.exit(1)
