"""Reading in a worker process: same result as in-process, a time limit per file, a fresh
worker after a stuck or killed one, and an ingest run that goes on past the bad file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ingest.errors import IngestError
from ingest.loaders import LoadLimits, load_document
from ingest.loaders.isolated import IsolatedLoader, ReadCancelled, group_members, make_loader

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


def test_a_read_called_off_stops_its_worker_at_once_and_the_next_one_is_read(tmp_path, make_pdf):
    """A tool's read of an upload ends when the user leaves the run (session 50's probe: each called-off
    read went on in its own process for the whole read time)."""
    slow = make_pdf(tmp_path / "endlos.pdf", [SLOW_PAGE])
    good = make_pdf(tmp_path / "gut.pdf", ["Die Sitzung beginnt um 18 Uhr."])
    called_off = {"at": None}
    isolated = IsolatedLoader(LoadLimits(), timeout_s=30, cancelled=lambda: called_off["at"] is not None
                              and time.monotonic() >= called_off["at"])
    try:
        isolated(good)
        pid = isolated.worker_pid
        called_off["at"] = time.monotonic() + 0.5
        with pytest.raises(ReadCancelled):
            isolated(slow)
        assert time.monotonic() - called_off["at"] < 2  # not the 30 s of the read time
        assert isolated.worker_pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        called_off["at"] = None
        again = make_pdf(tmp_path / "neu.pdf", ["Der Rat der Stadt tagt am Donnerstag um 19 Uhr im Ratssaal."])
        assert "19 Uhr" in isolated(again).blocks[0].text and isolated.worker_pid not in (None, pid)
    finally:
        isolated.close()


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


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may stay until its new parent reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_a_worker_whose_portal_died_stops_reading_and_leaves_no_files(tmp_path, private_tmp, make_pdf):
    """The portal is killed (-9) while its worker reads a slow file: the worker ends within a second
    or two instead of reading on for no one (here half a minute: a PDF page never reports progress),
    and its scratch directory goes with it."""
    slow = make_pdf(tmp_path / "endlos.pdf", [SLOW_PAGE] * 8)  # about 5 s per page
    portal = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, threading, time
        from pathlib import Path
        from ingest.loaders import LoadLimits
        from ingest.loaders.isolated import IsolatedLoader
        loader = IsolatedLoader(LoadLimits(), timeout_s=600)
        def tell():
            while loader.worker_pid is None:
                time.sleep(0.05)
            print(loader.worker_pid, flush=True)
        threading.Thread(target=tell, daemon=True).start()
        loader(Path(sys.argv[1]))
        """), str(slow)], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    worker = None
    try:
        worker = int(portal.stdout.readline())
        time.sleep(1.0)  # the worker has the file now
        assert _running(worker) and len(list(private_tmp.glob("kiportal-loader-*"))) == 1
        portal.send_signal(signal.SIGKILL)
        portal.wait(10)
        deadline = time.monotonic() + 15  # reading on would take 30 s and more
        while time.monotonic() < deadline and group_members(worker):
            time.sleep(0.1)
        assert group_members(worker) == [], "the orphaned worker kept reading"
        assert list(private_tmp.iterdir()) == []  # its scratch directory is gone
    finally:
        portal.kill()
        for pid in group_members(worker) if worker else []:
            os.kill(pid, signal.SIGKILL)


def test_scratch_directories_of_dead_portals_are_swept(tmp_path):
    from ingest.loaders.isolated import SCRATCH_PREFIX, sweep_scratch

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    left = tmp_path / f"{SCRATCH_PREFIX}{dead_pid}-abc"
    (left / "sub").mkdir(parents=True)
    (left / "tess_x_input.PNG").write_bytes(b"x")
    mine = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}-def"
    living = tmp_path / f"{SCRATCH_PREFIX}1-ghi"  # pid 1 always runs
    other = tmp_path / "kiportal-loader-notapid"
    for d in (mine, living, other):
        d.mkdir()
    precious = tmp_path / "daten"  # someone else's link, named like a dead portal's directory
    (precious / "kiportal.sqlite3").parent.mkdir()
    (precious / "kiportal.sqlite3").write_text("x")
    trap = tmp_path / f"{SCRATCH_PREFIX}{dead_pid}-link"
    trap.symlink_to(precious, target_is_directory=True)
    # names that are no process id must not break the sweep (it runs before every worker start)
    odd = [tmp_path / f"{SCRATCH_PREFIX}99999999999999999999-x", tmp_path / f"{SCRATCH_PREFIX}\u00b2-x"]
    stranger = tmp_path / f"{SCRATCH_PREFIX}{dead_pid}-fremd"  # another user's directory
    for d in (*odd, stranger):
        d.mkdir()
    os.chown(stranger, 65534, 65534)
    assert sweep_scratch(tmp_path) == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        d.name for d in (mine, living, other, precious, trap, *odd, stranger))
    assert (precious / "kiportal.sqlite3").exists()


def test_a_loader_nobody_closed_leaves_no_scratch_directory_at_exit(tmp_path, private_tmp):
    """An app that simply ends (a CLI command, a test) never closes its loader: the exit does."""
    note = tmp_path / "notiz.txt"
    note.write_text("Der Bauhof öffnet um 7 Uhr.", encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        from pathlib import Path
        from ingest.loaders import LoadLimits
        from ingest.loaders.isolated import IsolatedLoader
        import gc
        loader = IsolatedLoader(LoadLimits(), timeout_s=60)
        # Python does not promise __del__ for what is still alive at exit (a test run left 17 such
        # directories); gc.garbage is never freed, so here it certainly does not run
        gc.garbage.append(loader)
        assert "7 Uhr" in loader(Path(sys.argv[1])).blocks[0].text
        print(len(list(Path(sys.argv[2]).glob("kiportal-loader-*"))))
        """), str(note), str(private_tmp)], capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"  # the worker had its directory …
    assert list(private_tmp.iterdir()) == []  # … and the exit removed it


def test_stopping_at_exit_does_not_wait_for_a_read_in_progress(tmp_path, make_pdf):
    """At exit a job thread may be in the middle of a long read, holding the loader's lock: the exit
    kills the worker under it instead of waiting minutes, and that read fails as a broken worker."""
    import threading

    slow = make_pdf(tmp_path / "endlos.pdf", [SLOW_PAGE] * 8)
    loader = IsolatedLoader(LoadLimits(), timeout_s=600)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            loader(slow)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 60
    while loader.worker_pid is None and time.monotonic() < deadline:
        time.sleep(0.05)
    worker, scratch = loader.worker_pid, loader._scratch
    t0 = time.monotonic()
    loader.stop_at_exit()
    assert time.monotonic() - t0 < 2  # did not wait for the lock
    reader.join(30)
    assert not reader.is_alive() and errors and isinstance(errors[0], IngestError)
    assert not _running(worker) and scratch and not Path(scratch).exists()
    loader.close()
