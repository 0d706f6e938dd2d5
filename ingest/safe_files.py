"""Opening the files of a folder the way they were listed, not the way someone swapped them since.

Why: "Ordner abgleichen" indexes a share that other people write to. The folder walk skips
symlinks, but between the listing and the reading a writer of the share can replace a listed
file (or a folder on its way) by a symlink to the portal's data directory: the file read was then
the link secret, indexed for everyone (found by an attacker's probe). So a listed file is opened
without following a symlink at any step below the folder it was found in, must be a regular
file, and is read once into a private copy whose hash must be the one planned: the hash, the
size and the text all come from the same bytes, and the loaders (which open paths by name, some
in a child process) only ever see the copy.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class NotRegularFile(OSError):
    """The name is no longer a regular file of the folder (a symlink, a device, a pipe, a folder)."""


def open_listed(path: Path, under: Path | None = None) -> BinaryIO:
    """The regular file ``path`` opened for reading, following no symlink below ``under`` (the
    folder it was listed in; without it only the last step is checked). A pipe or device is not
    waited on (non-blocking open), and anything but a regular file raises :class:`NotRegularFile`."""
    path = Path(path)
    rel = None
    if under is not None:
        try:
            rel = path.relative_to(under)
        except ValueError:
            rel = None
    try:
        if rel is None or not rel.parts:
            fd = os.open(path, _FILE_FLAGS)
        else:
            dfd = os.open(under, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            try:
                for part in rel.parts[:-1]:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=dfd)
                    os.close(dfd)
                    dfd = nfd
                fd = os.open(rel.parts[-1], _FILE_FLAGS, dir_fd=dfd)
            finally:
                os.close(dfd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a symlink where the file or a folder on its way was
            raise NotRegularFile(exc.errno, "keine reguläre Datei (symbolischer Link) / not a regular file") from exc
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegularFile(0, "keine reguläre Datei / not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def listed_size_and_sha(path: Path, under: Path | None, max_bytes: int) -> tuple[int, str]:
    """(size, hex SHA-256) of the listed file; the hash is "" when the file is larger than ``max_bytes``
    (not read at all)."""
    with open_listed(path, under) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            return size, ""
        return size, hashlib.file_digest(fh, "sha256").hexdigest()


class ChangedWhileReading(OSError):
    """The file's bytes are not those planned (it changed between the plan and the reading)."""


def private_copy(path: Path, under: Path | None, sha: str, into: Path) -> Path:
    """A copy of the listed file in ``into`` (a private folder), under the same name, checked to hold
    the bytes whose hash was planned; raises :class:`ChangedWhileReading` otherwise."""
    target = Path(into) / Path(path).name
    h = hashlib.sha256()
    with open_listed(path, under) as src, open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as dst:
        while block := src.read(1 << 20):
            h.update(block)
            dst.write(block)
    if h.hexdigest() != sha:
        target.unlink(missing_ok=True)
        raise ChangedWhileReading(0, "Datei hat sich beim Lesen geändert / file changed while being read")
    return target


