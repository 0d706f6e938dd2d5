"""The document routes' pure decisions (ui.docview); the routes themselves are attacked over HTTP in
tests/security (test_attack_swapped_original.py serves these ranges from a real portal)."""
from __future__ import annotations

import pytest

from ui.docview import byte_range


@pytest.mark.parametrize("header, size, expected", [
    (None, 100, None), ("", 100, None), ("bytes=0-9", 100, (0, 9)), ("bytes=90-", 100, (90, 99)),
    ("bytes=-10", 100, (90, 99)), ("bytes=-500", 100, (0, 99)), ("bytes=0-500", 100, (0, 99)),
    ("bytes=100-", 100, False), ("bytes=9-3", 100, False), ("bytes=0-1,5-6", 100, None),  # several: the whole file
    ("items=0-9", 100, None), ("bytes=-", 100, None), ("bytes=abc-", 100, None), ("bytes=0-0", 0, False),
    # thousands of digits: int() raised (a 500 and a traceback per request); now no range, the whole file
    ("bytes=" + "9" * 5000 + "-", 100, None), ("bytes=-" + "9" * 5000, 100, None),
    ("bytes=" + "9" * 18 + "-", 100, False),  # a long but readable number: cannot be satisfied
])
def test_byte_range(header, size, expected):
    assert byte_range(header, size) == expected
