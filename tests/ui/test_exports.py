"""Download files: private folders, old exports purged (they can hold personal data)."""
from __future__ import annotations

import os
import stat
import tempfile

from ui.exports import export_folder, export_root, write_export


def test_exports_are_private_and_old_ones_are_purged(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    old = write_export("protokoll.csv", "zeit;nutzer\n1;adam\n")
    assert old.read_text(encoding="utf-8").endswith("adam\n") and old.parent.parent == export_root()
    assert stat.S_IMODE(old.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(export_root().stat().st_mode) == 0o700
    fresh = write_export("chat.md", "Frage")
    hour_ago = old.parent.stat().st_mtime - 3700
    os.utime(old.parent, (hour_ago, hour_ago))
    folder = export_folder()
    assert not old.parent.exists()  # older than an hour: gone
    assert fresh.exists() and folder.is_dir() and folder != fresh.parent
