"""Nothing the portal shows depends on an emoji font: without one (Debian's chromium, many thin
clients) 🟢, ⏳ or ✅ render as empty boxes, and the zone's colour was readable only from the word
beside it (issue 14; found again by a browser review). Marks every text font has (✓, ⚠, ✗) are fine."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# pictographs, emoji-only symbols, and the variation selector that asks for the emoji form
EMOJI = re.compile("[\U0001F300-\U0001FAFF\u23F0-\u23FA\u2705\u274C\u2753\u2B50\uFE0F]")
#: words users type for feedback, read by the dashboard, never shown
READ_NOT_SHOWN = {"assistant/dashboard.py"}


def test_no_emoji_in_what_the_portal_and_the_cli_show():
    found = []
    for folder in ("ui", "assistant"):
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in READ_NOT_SHOWN:
                continue
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if EMOJI.search(line):
                    found.append(f"{rel}:{no}: {line.strip()[:80]}")
    assert found == []
