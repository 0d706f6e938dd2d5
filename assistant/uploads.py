"""Safe storage of uploaded files under ``<data>/uploads/<collection>/<safe name>``.

An upload is hostile until proven otherwise: its name may contain ``../``, control
characters or a Windows device name; its content may be a zip bomb, an encrypted PDF
or 300 MB of zeros. So a file is first **staged** outside the uploads tree, checked
exactly as ingestion would read it (format by content, size/page limits, zip-bomb
guard, full parse), and only a file that passes is placed under its safe name. A file
that fails is deleted and nothing else changes: no catalog row, no index entry, no file.

Placement is atomic and race-free: ``os.link`` refuses an existing name, so two uploads
of ``bericht.pdf`` get ``bericht.pdf`` and ``bericht-2.pdf`` even across processes; a
replacement goes through ``os.replace`` with the previous file kept as a backup until
the new version is indexed (:meth:`UploadStore.replace` / :meth:`restore`).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import IngestError, os_error_de
from ingest.loaders import LoadLimits
from ingest.loaders.isolated import Loader, make_loader

log = logging.getLogger(__name__)

MAX_NAME = 120
STAGING = ".staging"
BACKUP_SUFFIX = ".bak-kiportal"
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_ALLOWED = re.compile(r"[^\w.\- ]", re.UNICODE)
_EXT = re.compile(r"^\.[a-z0-9]{1,8}$")


def safe_name(name: str, *, max_len: int = MAX_NAME, default: str = "datei") -> str:
    """A file name safe to create anywhere: no path, no control characters, only letters
    (incl. umlauts), digits, ``._-``; spaces become ``_``; extension kept (lower case);
    at most ``max_len`` characters; never hidden, never empty, never a Windows device."""
    name = unicodedata.normalize("NFKC", name or "")
    name = re.split(r"[\\/]", name)[-1]  # strip path components of either OS
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # controls, format, surrogates
    name = _ALLOWED.sub("_", name).replace(" ", "_")
    name = re.sub(r"_+", "_", name).strip("._- ")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    ext = "." + ext.lower() if ext else ""
    if not _EXT.match(ext or "."):
        stem, ext = (stem + ext).replace(".", "_"), ""
    stem = stem.replace(".", "_").strip("._- ") or default
    stem = stem[: max(1, max_len - len(ext) - 6)].rstrip("._- ") or default
    if stem.lower() in _WINDOWS_RESERVED:  # CON, NUL, LPT1 … are devices on Windows shares
        stem = f"{stem}_datei"
    return stem + ext


def is_reserved(top: str) -> bool:
    """Is ``top`` (a name directly under the storage root) a folder other parts keep there, not a
    collection's uploads? ``.staging`` and OParl's ``_oparl``: :func:`safe_dir_name` strips a leading
    ``.`` or ``_``, so no collection folder starts with one, and upload recovery, replacement and
    deletion never touch what lies under such a name (OParl files not yet catalogued included)."""
    return top[:1] in (".", "_")


def safe_dir_name(collection: str) -> str:
    """Folder name for a collection (collection names are validated elsewhere; this is the
    second line of defence against path tricks)."""
    return safe_name(collection, max_len=64, default="sammlung").replace(".", "_")


@dataclass
class Staged:
    """A file copied into the staging area, not yet checked."""

    path: Path
    original_name: str
    size: int


@dataclass
class Checked:
    staged: Staged
    format: str
    pages: int | None
    title: str


class UploadRejected(Exception):
    """Upload refused; ``str()`` is a German sentence for the admin, ``code`` a stable key."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def printable(name: str, limit: int = 80) -> str:
    """A file name as it may appear in a message or log line (no control characters)."""
    out = "".join("?" if unicodedata.category(ch)[0] == "C" else ch for ch in str(name))
    return out if len(out) <= limit else out[: limit - 1] + "…"


def check_name(name: str) -> None:
    """Refuse names no browser sends: browsers strip the folder, so a name with ``/`` or ``\\``,
    ``..`` or control characters comes from a crafted request. (Merely unusual names, with
    spaces, umlauts, or too long, are accepted and stored under :func:`safe_name`.)"""
    raw = name or ""
    bad = (not raw.strip() or "/" in raw or "\\" in raw or raw.strip() in (".", "..")
           or any(unicodedata.category(ch) in ("Cc", "Cs") for ch in raw) or len(raw) > 1024)
    if bad:
        raise UploadRejected("bad_name", f"„{printable(raw)}“ wurde nicht übernommen: Unzulässiger Dateiname "
                                         "(Pfadangaben oder Steuerzeichen sind nicht erlaubt).")


def explain(err: IngestError, name: str) -> str:
    de = IngestError.CODES[err.code][0]
    return f"„{printable(name)}“ wurde nicht übernommen: {de}" + (f" ({err.detail})." if err.detail else ".")


class UploadStore:
    def __init__(self, root: Path, limits: LoadLimits = LoadLimits(), loader: Loader | None = None) -> None:
        self.root = Path(root)
        self.limits = limits
        self.loader: Loader = loader or make_loader(limits)  # the same reader (and time limit) as ingestion

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    def collection_dir(self, collection: str) -> Path:
        return self.root / safe_dir_name(collection)

    def contains(self, path: str | Path) -> bool:
        """Is ``path`` a stored upload (so deleting its document may delete the file)?"""
        try:
            rel = Path(path).resolve().relative_to(self.root.resolve())
        except ValueError:
            return False
        return bool(rel.parts) and not is_reserved(rel.parts[0])

    # -- staging and checking ---------------------------------------------
    def stage(self, src: Path, original_name: str) -> Staged:
        """Copy ``src`` (e.g. Gradio's temp file) into staging, refusing oversize input
        before copying it (the copy would otherwise double the disk use of a 300 MB file)."""
        src = Path(src)
        check_name(original_name)
        try:
            size = src.stat().st_size
        except OSError as exc:
            raise UploadRejected("corrupt", f"„{printable(original_name)}“ ist nicht lesbar ({os_error_de(exc)}).") from exc
        self._check_size(size, original_name)
        self.staging.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.staging, prefix="up-", suffix=Path(safe_name(original_name)).suffix)
        os.close(fd)
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            copied = 0
            for block in iter(lambda: fin.read(1 << 20), b""):
                copied += len(block)
                if copied > self.limits.max_bytes:  # grew while copying
                    fout.close()
                    os.unlink(tmp)
                    self._check_size(copied, original_name)
                fout.write(block)
        return Staged(Path(tmp), original_name, copied)

    def _check_size(self, size: int, name: str) -> None:
        if size == 0:
            raise UploadRejected("empty", f"„{printable(name)}“ wurde nicht übernommen: Die Datei ist leer (0 Bytes).")
        if size > self.limits.max_bytes:
            raise UploadRejected(
                "too_large",
                f"„{printable(name)}“ wurde nicht übernommen: Die Datei ist zu groß ({size / 1048576:.1f} MB, "
                f"erlaubt sind {self.limits.max_bytes / 1048576:.0f} MB).")

    def check(self, staged: Staged) -> Checked:
        """Read the staged file exactly as ingestion will; any failure deletes it."""
        try:
            check_name(staged.original_name)
            try:
                doc = self.loader(staged.path)
            except IngestError as err:
                raise UploadRejected(err.code, explain(err, staged.original_name)) from err
            return Checked(staged, doc.format, doc.page_count, doc.title)
        except BaseException:
            self.discard(staged)
            raise

    def discard(self, staged: Staged) -> None:
        try:
            staged.path.unlink()
        except FileNotFoundError:
            pass

    # -- placing -----------------------------------------------------------
    def place(self, checked: Checked, collection: str) -> Path:
        """Move a checked file to ``uploads/<collection>/<safe name>``, de-duplicating the name."""
        target_dir = self.collection_dir(collection)
        target_dir.mkdir(parents=True, exist_ok=True)
        base = safe_name(checked.staged.original_name)
        stem, ext = os.path.splitext(base)
        for n in range(1, 10000):
            candidate = target_dir / (base if n == 1 else f"{stem[: MAX_NAME - len(ext) - 6]}-{n}{ext}")
            try:
                os.link(checked.staged.path, candidate)  # fails if the name is taken: atomic de-dup
            except FileExistsError:
                continue
            self.discard(checked.staged)
            _fsync_dir(target_dir)
            return candidate
        raise UploadRejected("bad_name", "Kein freier Dateiname gefunden.")

    def replace(self, checked: Checked, target: Path) -> Path | None:
        """Put a checked file at an existing document's path; returns the backup of the
        previous file (restore it with :meth:`restore` if indexing the new one fails)."""
        target = Path(target)
        backup = None
        if target.exists():
            backup = target.with_name(target.name + BACKUP_SUFFIX)
            os.replace(target, backup)
        os.replace(checked.staged.path, target)
        _fsync_dir(target.parent)
        return backup

    @staticmethod
    def restore(target: Path, backup: Path | None) -> None:
        if backup is not None and backup.exists():
            os.replace(backup, target)

    @staticmethod
    def drop_backup(backup: Path | None) -> None:
        if backup is not None:
            backup.unlink(missing_ok=True)

    def remove(self, path: str | Path) -> bool:
        """Delete a stored upload (only ever inside the uploads tree)."""
        if not self.contains(path):
            return False
        Path(path).unlink(missing_ok=True)
        return True

    # -- recovery ----------------------------------------------------------
    def recover(self, known: dict[str, str], *, min_age_s: float = 0.0) -> dict:
        """After a crash: empty the staging area, finish or undo interrupted replacements, and
        delete placed files no document refers to (their upload never completed, and the
        admin was told so by the failed job). ``known`` maps each catalog path to its
        sha256. Call with the writer lock held. ``min_age_s``: leave everything younger alone; in a
        cluster the folder is shared and another replica may be uploading right now (its upload
        stages and places files before it takes the writer lock)."""
        from corpus.models import file_sha256

        out = {"staging": 0, "restored": 0, "orphans": 0}
        cutoff = time.time() - min_age_s

        def old_enough(p: Path) -> bool:
            try:
                return min_age_s <= 0 or p.lstat().st_mtime < cutoff
            except OSError:
                return False

        if self.staging.exists():
            for entry in list(self.staging.iterdir()):
                if old_enough(entry):
                    out["staging"] += 1
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
            if min_age_s <= 0:
                shutil.rmtree(self.staging, ignore_errors=True)
        if not self.root.exists():
            return out
        for path in sorted(self.root.rglob("*")):
            if not path.is_file() or path.is_symlink() or not old_enough(path):
                continue
            if is_reserved(path.relative_to(self.root).parts[0]):
                continue  # OParl downloads (``_oparl``), staging: not uploads, not ours to sweep
            if path.name.endswith(BACKUP_SUFFIX):
                original = path.with_name(path.name[: -len(BACKUP_SUFFIX)])
                key = str(original.resolve())
                if original.exists() and key in known and known[key] == file_sha256(original):
                    path.unlink()  # the new version was committed: the backup is obsolete
                else:  # the catalog still describes the old file: put it back
                    os.replace(path, original)
                    out["restored"] += 1
                continue
            if str(path.resolve()) not in known:
                log.warning("removing upload without document (interrupted upload): %s", path)
                path.unlink()
                out["orphans"] += 1
        return out


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (a power cut must not lose a placed file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
