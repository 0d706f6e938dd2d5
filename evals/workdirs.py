"""Data directories of benchmark runs: each run gets its own, embedded, with the prepared models
linked in (never copied or rebuilt), whatever the installation it measures is configured for.
Shared by every bench section (evals.bench, evals.scale_bench, evals.cluster_bench)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def link_models(home: Path, models_dir: Path) -> Path:
    """Make ``<home>/models`` a symlink to an already prepared models folder (no rebuild, no copy)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    link = home / "models"
    target = Path(models_dir).resolve()
    if link.is_symlink():
        if link.resolve() == target:
            return link
        link.unlink()
    elif link.exists():
        log.info("%s is a real folder; leaving it as it is", link)
        return link
    link.symlink_to(target, target_is_directory=True)
    return link


def bench_settings(settings, home: Path):
    """The main settings with another data dir, embedded: a bench never writes to a server. On a
    cluster node the catalog lives in the app database, so ``app_db_url`` goes too (only the
    cluster step, evals.cluster_bench, uses servers: throwaway ones of its own)."""
    update: dict[str, Any] = {"home": Path(home), "app_db_url": ""}
    if settings.vector.mode == "chroma_http":
        update["vector"] = settings.vector.model_copy(update={"mode": "chroma"})
    return settings.model_copy(update=update)
