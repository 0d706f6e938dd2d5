"""Reading in a worker process: same result as in-process, a time limit per file, a fresh
worker after a stuck or killed one, and an ingest run that goes on past the bad file."""
from __future__ import annotations

import os
import signal
import time

import pytest

from ingest.errors import IngestError
from ingest.loaders import LoadLimits, load_document
from ingest.loaders.isolated import IsolatedLoader, make_loader

pytestmark = pytest.mark.integration  # real worker processes

# one page with 150,000 text-positioning operators: pypdf needs several seconds for it
SLOW_PAGE = b"BT /F1 11 Tf " + b"1 0 0 1 72 700 Tm (ab) Tj " * 150_000 + b"ET"


@pytest.fixture
def loader():
    isolated = IsolatedLoader(LoadLimits(), timeout_s=1.5)
    yield isolated
    isolated.close()


def test_worker_reads_like_the_in_process_loader(tmp_path, loader, make_pdf):
    pdf = make_pdf(tmp_path / "bericht.pdf", ["Erste Seite über Radwege", "Zweite Seite über Brücken"], title="Bericht")
    txt = tmp_path / "notiz.txt"
    txt.write_text("Notiz\n\nDer Bauhof öffnet um 7 Uhr.", encoding="utf-8")
    for path in (pdf, txt):
        assert loader(path) == load_document(path, LoadLimits())
    assert loader.worker_pid is not None and loader.worker_pid != os.getpid()


def test_loader_errors_keep_their_code(tmp_path, loader):
    (tmp_path / "leer.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "kaputt.pdf").write_bytes(b"%PDF-1.4\nkein echtes PDF")
    with pytest.raises(IngestError) as err:
        loader(tmp_path / "leer.txt")
    assert err.value.code == "empty"
    with pytest.raises(IngestError) as err:
        loader(tmp_path / "kaputt.pdf")
    assert err.value.code == "corrupt"


def test_a_file_that_takes_too_long_fails_with_timeout_and_the_next_one_is_read(tmp_path, loader, make_pdf):
    slow = make_pdf(tmp_path / "endlos.pdf", [SLOW_PAGE])
    good = make_pdf(tmp_path / "gut.pdf", ["Die Sitzung beginnt um 18 Uhr."])
    loader(good)
    first_pid = loader.worker_pid
    t0 = time.monotonic()
    with pytest.raises(IngestError) as err:
        loader(slow)
    assert err.value.code == "timeout" and "1.5 s" in str(err.value)
    assert "Zeitlimit" in str(err.value) and "time limit" in str(err.value)
    assert time.monotonic() - t0 < 10  # stopped, not waited for
    assert loader.worker_pid is None  # the stuck worker is gone …
    assert "18 Uhr" in loader(good).blocks[0].text  # … and a new one reads the next file
    assert loader.worker_pid not in (None, first_pid)


def test_a_killed_worker_fails_nothing_but_is_replaced(tmp_path, loader, make_pdf):
    good = make_pdf(tmp_path / "gut.pdf", ["Der Bauhof öffnet um 7 Uhr."])
    loader(good)
    os.kill(loader.worker_pid, signal.SIGKILL)
    time.sleep(0.2)
    assert "7 Uhr" in loader(good).blocks[0].text


def test_timeout_zero_reads_in_process(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("Text", encoding="utf-8")
    read = make_loader(LoadLimits(), 0)
    assert not isinstance(read, IsolatedLoader)
    assert read(path).blocks[0].text == "Text"


def test_ingest_run_goes_on_past_a_stuck_file_and_keeps_what_was_stored(tmp_path, make_pdf, app_factory):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "satzung.pdf", ["Die Hundesteuer beträgt 120 Euro im Jahr."])
    app = app_factory(tmp_path / "data", limits={"load_timeout_s": 1.5})
    assert isinstance(app.ingestor.loader, IsolatedLoader)
    first = app.ingestor.ingest([docs], collection="test")
    assert first.added == 1 and not first.failed
    make_pdf(docs / "endlos.pdf", [SLOW_PAGE])
    make_pdf(docs / "gebuehren.pdf", ["Ein Reisepass kostet 70 Euro."])
    second = app.ingestor.ingest([docs], collection="test")
    assert second.added == 1 and second.unchanged == 1
    assert [(f["code"], os.path.basename(f["source"])) for f in second.failed] == [("timeout", "endlos.pdf")]
    hits = app.retriever.search("Hundesteuer", k=3).hits
    assert hits and "120 Euro" in hits[0].chunk.text
    assert app.retriever.search("Reisepass", k=3).hits[0].chunk.source.endswith("gebuehren.pdf")
    app.ingestor.loader.close()



def test_the_time_limit_counts_reading_not_starting_the_worker(tmp_path, monkeypatch):
    # A busy machine can take seconds to start a worker; that must not fail a good file.
    # A sitecustomize on the worker's PYTHONPATH makes its start take 1.5 s, three times the limit.
    slow_start = tmp_path / "slow_start"
    slow_start.mkdir()
    (slow_start / "sitecustomize.py").write_text("import time\ntime.sleep(1.5)\n", encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(slow_start), os.environ.get("PYTHONPATH")])))
    path = tmp_path / "notiz.txt"
    path.write_text("Der Bauhof öffnet um 7 Uhr.", encoding="utf-8")
    quick = IsolatedLoader(LoadLimits(), timeout_s=0.5)
    try:
        t0 = time.monotonic()
        assert "7 Uhr" in quick(path).blocks[0].text
        assert time.monotonic() - t0 >= 1.5  # the slow start really happened
    finally:
        quick.close()
