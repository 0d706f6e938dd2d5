"""Settings for tests, in a plain module of its own.

Why not in conftest.py: several directories have a conftest.py, and `from conftest import …`
resolves to whichever of them Python imported first, so a test's import broke depending on
which other test files ran in the same pytest process."""
from __future__ import annotations

from pathlib import Path


def make_settings(home: Path, **overrides):
    """Settings under ``home`` with the hash embedder and the in-memory vector index, unless
    ``overrides`` (per section, merged into the defaults) say otherwise."""
    from assistant.settings import load_settings

    defaults = {"embedding": {"mode": "hash"}, "vector": {"mode": "memory"}}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            defaults[key] = {**defaults[key], **value}
        else:
            defaults[key] = value
    return load_settings(home, **defaults)
