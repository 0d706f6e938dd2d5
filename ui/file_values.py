"""File values from clients are never trusted paths.

A gradio file value is JSON the client writes: ``{"path": "/etc/passwd", "meta":
{"_type": "gradio.FileData"}}`` names any file on the server. gradio itself checks that an
input file lies in its upload folder only after ``Blocks.launch()``; the portal is mounted
with ``gr.mount_gradio_app``, so that check never ran and an admin call indexed
``/etc/passwd`` and the link secret. Here a file value is accepted only if

* gradio received it through ``/gradio_api/upload`` from the same user on this server
  (the HTTP guard records every upload response in :data:`RECEIVED`),
* it lies inside gradio's upload folder, is a regular file and no symlink (nor below one).

:mod:`ui.http_guard` applies :func:`refused_file_values` to every call before gradio sees
it (so no handler can forget); handlers that take files call :func:`received_files` too.

Why one process-wide registry: gradio's upload folder is process-wide (``GRADIO_TEMP_DIR``),
so are the paths in it; the registry only holds paths and owners for at most an hour.
"""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from assistant.wiring import GRADIO_FOLDER_PREFIX

log = logging.getLogger(__name__)

UPLOAD_MAX_AGE_S = 3600


class UntrustedFile(Exception):
    """A file value the portal did not receive from this user (message in German)."""


def gradio_folder() -> Path:
    """gradio's upload and cache folder for this process (``GRADIO_TEMP_DIR``)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def ensure_private_gradio_folder() -> Path:
    """Give gradio a private upload/cache folder (0700) unless the operator chose one.

    gradio's default ``/tmp/gradio`` is shared by every user of the machine and its files
    are 0644; uploads and exports hold documents and personal data. Call before the
    interface is built (components read the folder when they are created).

    A folder made here is removed when the process ends (``kiportal serve`` ends on SIGTERM or
    Ctrl-C through uvicorn's shutdown): uploads and exports hold documents and personal data, and
    each start makes a new folder, so they piled up in the temp dir. An operator's own folder stays."""
    if not os.environ.get("GRADIO_TEMP_DIR"):
        made = tempfile.mkdtemp(prefix=GRADIO_FOLDER_PREFIX)
        os.environ["GRADIO_TEMP_DIR"] = made
        atexit.register(shutil.rmtree, made, ignore_errors=True)
    folder = Path(os.environ["GRADIO_TEMP_DIR"])
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if folder.stat().st_uid == os.getuid():
            folder.chmod(0o700)
    except OSError:
        log.warning("could not make %s private", folder)
    return folder.resolve()


class ReceivedFiles:
    """Which user may use (uploads) or download (exports) which file in gradio's folder."""

    def __init__(self) -> None:
        self._uploads: dict[str, tuple[set[str], float]] = {}
        self._exports: dict[str, tuple[str, float]] = {}  # folder -> (owner, expires)
        self._claimed: set[str] = set()  # export files whose one download has started
        self._sent: dict[str, list[tuple[float, int]]] = {}  # user -> (until, bytes) of each upload request
        self._lock = threading.Lock()

    def count_upload(self, owner: str, size: int) -> None:
        """An upload request of ``size`` bytes by ``owner``: counts for an hour (its files stay in
        gradio's folder that long, and up to half an hour more until gradio's cleanup runs)."""
        with self._lock:
            self._sent.setdefault(owner, []).append((time.time() + UPLOAD_MAX_AGE_S, size))

    def uploaded_bytes(self, owner: str) -> int:
        """Bytes ``owner`` sent to the upload route within the last hour."""
        now = time.time()
        with self._lock:
            recent = [(until, n) for until, n in self._sent.get(owner, []) if until > now]
            if recent:
                self._sent[owner] = recent
            else:
                self._sent.pop(owner, None)
            return sum(n for _, n in recent)

    def add_upload(self, path: str | Path, owner: str) -> None:
        key = os.path.realpath(path)
        with self._lock:
            owners, _ = self._uploads.get(key, (set(), 0.0))
            self._uploads[key] = (owners | {owner}, time.time() + UPLOAD_MAX_AGE_S)

    def uploaded_by(self, path: str | Path, owner: str) -> bool:
        key = os.path.realpath(path)
        with self._lock:
            owners, expires = self._uploads.get(key, (set(), 0.0))
            return owner in owners and time.time() < expires

    def add_export_folder(self, folder: Path, owner: str, *, max_age_s: float) -> None:
        with self._lock:
            self._exports[os.path.realpath(folder)] = (owner, time.time() + max_age_s)

    def export_owner(self, path: str | Path) -> str | None:
        """Owner of an export file (None: not an export, or expired)."""
        real = os.path.realpath(path)
        with self._lock:
            owner, expires = self._exports.get(os.path.dirname(real), (None, 0.0))
            claimed = real in self._claimed
        return owner if owner and time.time() < expires and not claimed else None

    def claim_export(self, path: str | Path, owner: str) -> bool:
        """The owner's download of an export starts: True once per file (later requests find nothing)."""
        real = os.path.realpath(path)
        with self._lock:
            got, expires = self._exports.get(os.path.dirname(real), (None, 0.0))
            if got != owner or time.time() >= expires or real in self._claimed:
                return False
            self._claimed.add(real)
            return True

    def downloaded(self, path: str | Path) -> None:
        """An export was delivered: delete it (and its folder once empty)."""
        real = Path(os.path.realpath(path))
        try:
            real.unlink(missing_ok=True)
            if not any(real.parent.iterdir()):
                shutil.rmtree(real.parent, ignore_errors=True)
                with self._lock:
                    self._exports.pop(str(real.parent), None)
        except OSError:
            log.warning("could not delete downloaded export %s", real)


RECEIVED = ReceivedFiles()


def is_inside(path: str | Path, folder: Path) -> bool:
    real = os.path.realpath(path)
    return real == str(folder) or real.startswith(str(folder) + os.sep)


def check_file(raw: str, user: str, folder: Path | None = None) -> Path:
    """The path of an uploaded file ``user`` may use, or :class:`UntrustedFile`."""
    folder = folder or gradio_folder()
    name = Path(str(raw)).name or "?"
    path = Path(str(raw))
    if not path.is_absolute() or os.path.realpath(path) != os.path.abspath(path) or not is_inside(path, folder):
        raise UntrustedFile(f"Die Datei „{name}“ wurde nicht über das Portal hochgeladen und wird nicht übernommen.")
    try:
        st = os.lstat(path)
    except OSError:
        raise UntrustedFile(f"Die Datei „{name}“ ist nicht (mehr) vorhanden. Bitte erneut hochladen.") from None
    if not stat.S_ISREG(st.st_mode):
        raise UntrustedFile(f"„{name}“ ist keine gewöhnliche Datei und wird nicht übernommen.")
    if not RECEIVED.uploaded_by(path, user):
        raise UntrustedFile(f"Die Datei „{name}“ wurde nicht von Ihnen über das Portal hochgeladen und wird "
                            "nicht übernommen.")
    return path


def file_paths(files) -> list[str]:
    """The paths in what gradio hands a handler for a file input (str, FileData, dict or lists)."""
    if not files:
        return []
    items = files if isinstance(files, (list, tuple)) else [files]
    out = []
    for f in items:
        p = f if isinstance(f, str) else getattr(f, "path", None) or getattr(f, "name", None) or \
            (f.get("path") if isinstance(f, dict) else None)
        if p:
            out.append(str(p))
    return out


def received_files(files, user: str, audit=None) -> list[str]:
    """Every path of a handler's file input, checked; a refusal is audited and raised."""
    paths = file_paths(files)
    for p in paths:
        try:
            check_file(p, user)
        except UntrustedFile as exc:
            log.warning("refused file value %r from %s", p, user)
            if audit is not None:
                audit.record("file_value_refused", user, str(p)[:300], {"reason": str(exc)})
            raise
    return paths


def iter_file_values(data: Any) -> Iterator[str]:
    """Every ``path`` of a gradio FileData in a decoded request body (any nesting)."""
    if isinstance(data, dict):
        # gradio treats {"path": ..., "meta": {"_type": "gradio.FileData"}} as a file; any dict
        # with a string "path" is checked, so an older or looser shape slips through nowhere
        if isinstance(data.get("path"), str):
            yield data["path"]
        for value in data.values():
            yield from iter_file_values(value)
    elif isinstance(data, list):
        for value in data:
            yield from iter_file_values(value)


def refused_file_values(body: Any, user: str, folder: Path | None = None) -> list[tuple[str, str]]:
    """(path, reason) for each file value in a call that ``user`` did not upload here."""
    out = []
    for p in iter_file_values(body):
        if p.startswith(("http://", "https://")):
            out.append((p, "URL als Datei nicht erlaubt"))
            continue
        try:
            check_file(p, user, folder)
        except UntrustedFile as exc:
            out.append((p, str(exc)))
    return out
