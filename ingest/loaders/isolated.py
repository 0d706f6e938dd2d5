"""Reading files in a worker process, with a time limit per file.

The parsers are pure Python (pypdf, python-pptx, …) and a hostile or broken file can keep
one of them busy for minutes (millions of drawing operators on one PDF page) or make it
allocate without end. In the worker such a file costs at most ``timeout_s`` seconds: the
worker is killed, the file fails with the error code ``timeout`` and the next file gets a
fresh worker. Nothing already indexed is touched.

Scans are the exception to a fixed limit: text recognition takes seconds per page, so when the
worker announces N pages for OCR the file's limit grows by N × ``ocr.seconds_per_page`` (at most
``ocr.max_file_seconds``), and
every page read is reported back (``("progress", done, total)``) for the progress display. The
worker leads its own process group, so stopping it also stops a running ``tesseract``.

A stopped worker leaves nothing behind. It writes its temporary files (Tesseract's page images,
about 2 MB each) into a directory of its own, which the portal removes once the worker is gone:
a worker killed for its time limit had left them in ``/tmp``, eight per test run and one per
timed-out scan in production. When the portal process dies (``kill -9``, a crash) the worker
notices within half a second, removes its directory and ends its process group, instead of
reading the rest of a long scan for no one; directories of dead portals are swept at the next
start.

One long-lived worker (started on first use with ``spawn``, so it shares no locks or
threads with the portal) serves all loads one after another; starting a process per file
would cost more than reading most files. The per-file clock starts once the worker has
reported that it is ready, so a slow start on a busy machine never fails a good file.
"""
from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Callable

from corpus.models import ExtractedDocument
from ingest.errors import IngestError
from ingest.loaders.limits import LoadLimits
from ingest.loaders.ocr import allowance

log = logging.getLogger(__name__)

#: How long a new worker may take to start (spawn, imports) before the file fails. Not part of
#: the per-file limit: on a busy machine a start can take seconds, and a good file must not fail.
START_TIMEOUT_S = 120.0
#: Scratch directories are named ``kiportal-loader-<portal pid>-<random>`` (the pid for the sweep).
SCRATCH_PREFIX = "kiportal-loader-"
#: How often the worker checks that the process that started it is still there.
PARENT_CHECK_S = 0.5

Loader = Callable[..., ExtractedDocument]


class RecentScans:
    """The last few documents read by OCR, by content hash: an upload is read once to check it
    and once to index it, and a scan should not go through text recognition twice for that."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._docs: dict[str, ExtractedDocument] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(path: Path) -> str | None:
        import hashlib

        try:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            return h.hexdigest()
        except OSError:
            return None

    def get(self, key: str | None) -> ExtractedDocument | None:
        with self._lock:
            return self._docs.get(key) if key else None

    def put(self, key: str | None, doc: ExtractedDocument) -> None:
        if not key or not doc.ocr_pages:  # only scans: everything else reads in moments
            return
        with self._lock:
            self._docs.pop(key, None)
            self._docs[key] = doc
            while len(self._docs) > self.size:
                self._docs.pop(next(iter(self._docs)))


#: ``(done, total)`` pages read by OCR in the current file
PageProgress = Callable[[int, int], None]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except (OverflowError, ValueError):  # no process can have this id
        return False
    return True


_OWNER = re.compile(r"[0-9]{1,9}")


def sweep_scratch(base: Path | None = None) -> list[Path]:
    """Remove the scratch directories of portal processes that no longer run; returns them.

    /tmp is shared, so only real directories of this user are touched (never a link, never a
    stranger's directory named like ours), and nothing found there can fail a start."""
    base = Path(base or tempfile.gettempdir())
    gone = []
    for d in base.glob(f"{SCRATCH_PREFIX}*"):
        owner = d.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        try:
            if d.is_symlink() or not d.is_dir() or d.lstat().st_uid != os.getuid():
                continue
        except OSError:  # gone meanwhile
            continue
        if _OWNER.fullmatch(owner) and int(owner) != os.getpid() and not _alive(int(owner)):
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


def group_members(pgid: int) -> list[int]:
    """The running processes of a process group (a worker and its tesseract), from /proc (Linux);
    zombies left out (they need no kill, and an orphan's may stay until init reaps it)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(stat.parent.name))
    return out


def _kill_worker(proc) -> None:
    """SIGKILL the worker and its group (it leads one once started, see _serve), else the worker alone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        try:
            proc.kill()
        except OSError:
            pass


def _watch_parent(portal_pid: int, scratch: str, own_group: bool) -> None:
    """End the worker, and the tesseract it runs, once the portal (``portal_pid``, passed in: read
    here it could already be init's) is gone. Its children go first, then the scratch directory
    (nothing writes into it any more), then the worker itself."""
    def watch() -> None:
        while os.getppid() == portal_pid:
            time.sleep(PARENT_CHECK_S)
        if own_group:
            for pid in group_members(os.getpgid(0)):
                if pid != os.getpid():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
        shutil.rmtree(scratch, ignore_errors=True)
        if own_group:
            os.killpg(0, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="kiportal-loader-parent-watch", daemon=True).start()


def _serve(conn, limits: LoadLimits, max_memory_mb: int, scratch: str = "", portal_pid: int = 0) -> None:
    """Worker loop: a path in, ``("ok", doc)`` or ``("error", code, detail)`` out."""
    if scratch:  # before anything makes a temporary file: pytesseract, PIL and PDFium all go here
        os.environ["TMPDIR"] = scratch
        tempfile.tempdir = scratch
    if max_memory_mb > 0:
        try:
            import resource

            cap = max_memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        except (ImportError, ValueError, OSError):  # not on this platform: the time limit still holds
            pass
    try:
        os.setsid()  # own process group: a stop takes the tesseract children along
        own_group = True
    except OSError:
        own_group = False
    if scratch and portal_pid:
        _watch_parent(portal_pid, scratch, own_group)
    from ingest.loaders import load_document
    from ingest.loaders.ocr import PROGRESS

    PROGRESS.set(lambda done, total: conn.send(("progress", done, total)))

    import pypdf  # noqa: F401 - the parser the time limit is for, imported before the clock runs

    conn.send(("ready",))
    while True:
        try:
            path = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", load_document(Path(path), limits)))
        except IngestError as err:
            conn.send(("error", err.code, err.detail))
        except MemoryError:
            conn.send(("error", "too_large", "Speicher reicht nicht zum Lesen"))
        except Exception as exc:  # noqa: BLE001 - the worker must answer, whatever happened
            conn.send(("error", "corrupt", f"{type(exc).__name__}: {str(exc)[:300]}"))


_LIVE: "weakref.WeakSet[IsolatedLoader]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """At exit, stop every worker and remove its scratch directory: a loader nobody closed (an app
    that simply ends) would otherwise leave an empty directory per worker behind."""
    for loader in list(_LIVE):
        try:
            loader.stop_at_exit()
        except Exception:  # noqa: BLE001 - exit goes on
            pass


class ReadCancelled(Exception):
    """The caller's ``cancelled()`` turned true during a read: its worker was stopped."""


#: how often a read in progress asks ``cancelled()``
CANCEL_POLL_S = 0.25


class IsolatedLoader:
    """``load_document`` in a worker process; a file that takes longer than ``timeout_s`` fails.

    ``cancelled``: asked while a read is in progress; when it turns true the worker is killed and the
    read raises :class:`ReadCancelled`. A tool's read of an upload uses it (the user left the run:
    an attacker's probe called runs off and sent them again, and each called-off read of a scan went
    on in its own process for the read time, any number at once)."""

    def __init__(self, limits: LoadLimits = LoadLimits(), timeout_s: float = 300.0, max_memory_mb: int = 4096,
                 cancelled: Callable[[], bool] | None = None) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.limits = limits
        self.timeout_s = timeout_s
        self.max_memory_mb = max_memory_mb
        self.cancelled = cancelled
        self._lock = threading.Lock()
        self._proc = None
        self._conn = None
        self._scratch: str | None = None
        self.recent = RecentScans()
        _LIVE.add(self)

    def _start(self) -> None:
        try:
            sweep_scratch()
        except Exception:  # noqa: BLE001 - housekeeping must never fail a file
            log.warning("sweeping old loader directories failed", exc_info=True)
        self._scratch = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(child, self.limits, self.max_memory_mb, self._scratch, os.getpid()),
                           name="kiportal-loader", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        try:
            ready = parent.poll(START_TIMEOUT_S) and parent.recv() == ("ready",)
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._stop()
            raise IngestError("timeout", f"Leseprozess startet nicht (innerhalb von {START_TIMEOUT_S:g} s)")
        log.debug("loader worker started (pid %s)", proc.pid)

    def _stop(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is not None and proc.is_alive():
            _kill_worker(proc)
        if proc is not None:
            proc.join(timeout=5)
        scratch, self._scratch = self._scratch, None
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    @property
    def worker_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    accepts_progress = True

    def __call__(self, path: Path, progress: PageProgress | None = None) -> ExtractedDocument:
        key = self.recent.key(Path(path))
        cached = self.recent.get(key)
        if cached is not None:
            return cached
        doc = self._read(path, progress)
        self.recent.put(key, doc)
        return doc

    def _read(self, path: Path, progress: PageProgress | None) -> ExtractedDocument:
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._stop()
                self._start()
            try:
                self._conn.send(str(path))
                started = time.monotonic()
                deadline = started + self.timeout_s
                done = total = 0
                while True:
                    left = max(0.0, deadline - time.monotonic())
                    if self.cancelled is not None:
                        if self.cancelled():
                            log.info("reading %s called off: worker stopped", Path(path).name)
                            self._stop()
                            raise ReadCancelled(str(path))
                        if left > CANCEL_POLL_S and not self._conn.poll(CANCEL_POLL_S):
                            continue
                    if not self._conn.poll(left):
                        limit = deadline - started
                        log.warning("reading %s took longer than %.0f s: worker stopped", Path(path).name, limit)
                        self._stop()
                        read = f"; Texterkennung: {done} von {total} Seiten gelesen" if total else ""
                        raise IngestError("timeout", f"nach {limit:g} s abgebrochen{read}")
                    reply = self._conn.recv()
                    if reply[0] != "progress":
                        break
                    _, done, total = reply
                    if done == 0:  # OCR announced: each page gets its share of time, up to a ceiling
                        deadline += allowance(total, self.limits.ocr)
                    if progress is not None:
                        try:
                            progress(done, total)
                        except Exception:  # noqa: BLE001 - a display must not break the read
                            log.exception("progress callback failed")
            except (EOFError, OSError, BrokenPipeError) as exc:
                # the worker died (killed, out of memory): this file fails, the next one gets a new worker
                self._stop()
                raise IngestError("corrupt", f"Leseprozess abgebrochen ({type(exc).__name__})") from None
        if reply[0] == "ok":
            return reply[1]
        raise IngestError(reply[1], reply[2])

    def close(self) -> None:
        with self._lock:
            self._stop()

    def stop_at_exit(self) -> None:
        """Like :meth:`close`, without waiting for a read in progress (a job thread may hold the lock
        for minutes): its worker is killed under it, which that read then reports as failed."""
        if self._lock.acquire(timeout=0):
            try:
                self._stop()
            finally:
                self._lock.release()
            return
        proc, scratch = self._proc, self._scratch
        if proc is not None and proc.pid:
            _kill_worker(proc)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    def __del__(self) -> None:  # a daemon process ends with us anyway; this just ends it earlier
        try:
            self._stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def make_loader(limits: LoadLimits, timeout_s: float = 0.0, max_memory_mb: int = 4096,
                cancelled: Callable[[], bool] | None = None) -> Loader:
    """The loader the pipeline uses: isolated with a time limit, or in-process when ``timeout_s`` is 0
    (``cancelled`` then goes unasked: nothing can stop an in-process read)."""
    if timeout_s and timeout_s > 0:
        return IsolatedLoader(limits, timeout_s, max_memory_mb, cancelled)
    from ingest.loaders import load_document
    from ingest.loaders.ocr import PROGRESS

    recent = RecentScans()

    def load_in_process(path: Path, progress: PageProgress | None = None) -> ExtractedDocument:
        key = recent.key(Path(path))
        cached = recent.get(key)
        if cached is not None:
            return cached
        token = PROGRESS.set(progress)
        try:
            doc = load_document(Path(path), limits)
        finally:
            PROGRESS.reset(token)
        recent.put(key, doc)
        return doc

    load_in_process.accepts_progress = True  # type: ignore[attr-defined]
    return load_in_process
