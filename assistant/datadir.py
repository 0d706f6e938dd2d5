"""The data directory is private to the service user: folders 0700, files 0600.

It holds password hashes, chats and the audit log (``app.sqlite3``), the link secret,
uploaded documents and the indexes. :func:`make_private` tightens what exists (called when
the portal starts) and sets the process umask so that what is created later is private
too; :func:`permission_problems` lists what is open to others (``kiportal doctor``).

Symlinks are neither followed nor changed: a prepared model folder may be linked in from
a shared, read-only cache.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


def _walk(home: Path):
    yield home
    for root, dirs, files in os.walk(home, followlinks=False):
        for name in dirs + files:
            yield Path(root) / name


def permission_problems(home: Path) -> list[str]:
    """Paths in ``home`` that group or others may read, write or enter (empty = all private)."""
    problems = []
    if not home.exists():
        return problems
    for path in _walk(home):
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            continue
        if stat.S_IMODE(st.st_mode) & 0o077:
            problems.append(f"{path} ({stat.filemode(st.st_mode)})")
    return problems


def make_private(home: Path) -> int:
    """Set folders to 0700 and files to 0600 (owned by us, not symlinks); returns how many changed."""
    os.umask(PRIVATE_UMASK)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    changed = 0
    uid = os.getuid()
    for path in _walk(home):
        try:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or st.st_uid != uid:
                continue
            # folders 0700; files keep the owner's bits (an executable stays one) and lose the rest
            want = 0o700 if stat.S_ISDIR(st.st_mode) else (stat.S_IMODE(st.st_mode) & 0o700) | 0o600
            if stat.S_IMODE(st.st_mode) != want:
                os.chmod(path, want)
                changed += 1
        except OSError as exc:
            log.warning("could not make %s private: %s", path, exc)
    if changed:
        log.info("made %d paths in %s private to the service user", changed, home)
    return changed
