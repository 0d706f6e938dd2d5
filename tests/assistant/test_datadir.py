"""The data directory is private: folders 0700, files 0600; symlinks are left alone."""
from __future__ import annotations

import os
import stat

from assistant.datadir import make_private, permission_problems


def test_open_paths_are_found_and_made_private(tmp_path):
    home = tmp_path / "data"
    (home / "chroma").mkdir(parents=True)
    (home / "app.sqlite3").write_text("x")
    (home / "app.sqlite3").chmod(0o644)
    (home / "chroma").chmod(0o755)
    shared = tmp_path / "shared-model"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    (home / "model").symlink_to(shared)
    old = os.umask(0o022)
    try:
        problems = permission_problems(home)
        assert any("app.sqlite3" in p for p in problems) and any("chroma" in p for p in problems)
        assert make_private(home) >= 2
        assert permission_problems(home) == []
        assert stat.S_IMODE((home / "app.sqlite3").stat().st_mode) == 0o600
        assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # not followed
        (home / "neu.txt").write_text("y")  # created after: private by the umask
        assert stat.S_IMODE((home / "neu.txt").stat().st_mode) == 0o600
    finally:
        os.umask(old)
