"""Files handed to gradio for download (chat export, audit CSV, training handout).

Exports can hold personal data (user names in the audit log, chat text), so:

* Each export gets a private folder (0700, files 0600) under ``kiportal-exports`` inside
  gradio's own upload/cache folder (:func:`ui.file_values.gradio_folder`, itself private to
  the service). gradio serves a file from there as it is, instead of keeping another copy.
* The folder is registered with its owner (:data:`ui.file_values.RECEIVED`); the portal's
  HTTP guard serves a file of it only to that user and deletes it after the download.
* Folders older than an hour are purged whenever a new export is written.

A parent folder that is a symlink or belongs to someone else is never used (they could
swap the files served for download); a fresh private folder is used instead.
"""
from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from ui.file_values import RECEIVED, gradio_folder

log = logging.getLogger(__name__)

EXPORT_MAX_AGE_S = 3600


def download_now_js(elem_id: str) -> str:
    """The browser-side step after an export: the download starts at once. Before, the export button
    only put a file chip under it, and a second click on the chip downloaded it (a browser review).
    Waits up to 5 s for the chip's new link; a link it started once is not started again."""
    return f"""() => {{
  const started = Date.now();
  const tick = () => {{
    const link = document.querySelector('#{elem_id} a[download]');
    if (link && link.href && link.dataset.kpStarted !== link.href) {{
      link.dataset.kpStarted = link.href;
      link.click();
      return;
    }}
    if (Date.now() - started < 5000) setTimeout(tick, 100);
  }};
  tick();
}}"""


def export_root() -> Path:
    return gradio_folder() / "kiportal-exports"


def _own_private_dir(path: Path) -> bool:
    st = path.lstat()
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077 == 0


def export_folder(max_age_s: float = EXPORT_MAX_AGE_S, *, owner: str | None = None) -> Path:
    """A fresh private folder for one export, downloadable only by ``owner``; older exports go first.

    Without an owner nobody can download the files through the portal (fail closed)."""
    root = export_root()
    try:
        root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.mkdir(mode=0o700, exist_ok=True)
        usable = _own_private_dir(root)
    except OSError:  # e.g. a file or a dangling symlink of that name
        usable = False
    if not usable:
        log.warning("%s is not a private folder of this user; exporting to a fresh temporary folder", root)
        folder = Path(tempfile.mkdtemp(prefix="kiportal-export-", dir=root.parent if root.parent.is_dir() else None))
    else:
        now = time.time()
        for old in root.iterdir():
            try:
                if now - old.stat().st_mtime > max_age_s:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        folder = Path(tempfile.mkdtemp(dir=root))
    if owner:
        RECEIVED.add_export_folder(folder, owner, max_age_s=max_age_s)
    return folder


def write_export(name: str, content: str | bytes, owner: str | None = None) -> Path:
    """Write one private file (text, or a document's bytes) for download by ``owner``; its path."""
    path = export_folder(owner=owner) / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content.encode("utf-8") if isinstance(content, str) else content)
    return path
