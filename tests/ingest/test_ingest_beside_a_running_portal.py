"""`kiportal ingest` while the portal runs on the same data directory (the embedded default): the
portal finds the new document by meaning too, in every scope, without a restart. Its embedded
Chroma used to keep the graph it had before the other process wrote (corpus.vector_store.WriteStamp).
Real CLI in a second process, real embedded Chroma; the hash embedder keeps it fast."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _cli(home: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIPORTAL_")}
    env.update(KIPORTAL_HOME=str(home), KIPORTAL_EMBEDDING__MODE="hash", ANONYMIZED_TELEMETRY="False",
               PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-c", "from ui.cli import main; main()", *args], env=env,
                         capture_output=True, text=True, timeout=300, cwd=home.parent)
    assert res.returncode == 0, (args, res.stdout[-2000:], res.stderr[-4000:])


def test_the_running_portal_finds_a_document_the_cli_ingested_beside_it(tmp_path):
    from assistant.settings import load_settings
    from assistant.wiring import App

    home, docs = tmp_path / "data", tmp_path / "docs"
    docs.mkdir()
    for i, topic in enumerate(["Hundesteuer", "Parkgebühren", "Müllabfuhr"]):
        (docs / f"alt{i}.md").write_text(f"# {topic}\n\nDie Regeln zur {topic} stehen in der Satzung {i}.\n",
                                         encoding="utf-8")
    app = App(load_settings(home, embedding={"mode": "hash"}))
    try:
        app.ingestor.ingest([docs])
        question = "Wann blüht die Streuobstwiese am Krickenbecker See?"
        assert app.retriever.search(question, k=3, mode="dense").hits  # the portal's graph is in memory now
        assert app.retriever.search(question, k=3, mode="dense", collections=["allgemein"]).hits

        new = tmp_path / "neu"
        new.mkdir()
        (new / "streuobst.md").write_text("# Streuobstwiese\n\nDie Streuobstwiese am Krickenbecker See blüht "
                                          "im April.\n", encoding="utf-8")
        _cli(home, "ingest", str(new))

        for scope in (None, ["allgemein"]):
            hits = app.retriever.search(question, k=3, mode="dense", collections=scope).hits
            assert hits and "Krickenbecker" in hits[0].chunk.text, (scope, [h.chunk.text for h in hits])
        hits = app.retriever.search(question, k=3).hits
        assert "Krickenbecker" in hits[0].chunk.text
    finally:
        app.catalog.close()
