"""Download files: private folders, old exports purged (they can hold personal data)."""
from __future__ import annotations

import os
import stat
import tempfile

from ui.exports import export_folder, export_root, write_export


def test_exports_are_private_and_old_ones_are_purged(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)  # exports live in gradio's folder, here under tmp_path
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


def test_a_parent_planted_by_someone_else_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)  # exports live in gradio's folder, here under tmp_path
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir(mode=0o777)
    export_root().parent.mkdir(parents=True, exist_ok=True)
    export_root().symlink_to(elsewhere)  # another user got there first
    path = write_export("protokoll.csv", "zeit;nutzer\n")
    assert elsewhere not in path.parents and export_root() not in path.parents
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and list(elsewhere.iterdir()) == []
    export_root().unlink()
    export_root().symlink_to(tmp_path / "nowhere")  # dangling: no crash either
    assert write_export("chat.md", "Frage").read_text(encoding="utf-8") == "Frage"
