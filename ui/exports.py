"""Files handed to gradio for download (chat export, audit CSV, training handout).

Each export gets a private folder (mode 0700) under one parent in the temp directory;
folders older than an hour are purged whenever a new export is written. Exports can
hold personal data (user names in the audit log, chat text), so none may linger in
/tmp. Gradio serves its own cached copy, so purging ours never breaks a download.
The temp directory is shared with other users: a parent that is a symlink or belongs
to someone else is never used (they could swap the files served for download).
"""
from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

EXPORT_MAX_AGE_S = 3600


def export_root() -> Path:
    return Path(tempfile.gettempdir()) / f"kiportal-exports-{os.getuid()}"


def _own_private_dir(path: Path) -> bool:
    st = path.lstat()
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077 == 0


def export_folder(max_age_s: float = EXPORT_MAX_AGE_S) -> Path:
    """A fresh private folder for one export; older exports are removed first."""
    root = export_root()
    try:
        root.mkdir(mode=0o700, exist_ok=True)
        usable = _own_private_dir(root)
    except OSError:  # e.g. a file or a dangling symlink of that name
        usable = False
    if not usable:
        log.warning("%s is not a private folder of this user; exporting to a fresh temporary folder", root)
        return Path(tempfile.mkdtemp(prefix="kiportal-export-"))
    now = time.time()
    for old in root.iterdir():
        try:
            if now - old.stat().st_mtime > max_age_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(dir=root))


def write_export(name: str, text: str) -> Path:
    """Write one text file for download and return its path."""
    path = export_folder() / name
    path.write_text(text, encoding="utf-8")
    return path
