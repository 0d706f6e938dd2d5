"""When an OParl source is due for its scheduled sync (pure)."""
from __future__ import annotations

import pytest

from assistant.oparl_admin import is_due

H = 3600.0


@pytest.mark.parametrize("interval, last, at, due", [
    (0, None, 1000.0, False),            # by hand only
    (0, 0.0, 10 * H, False),
    (-1, None, 1000.0, False),
    (24, None, 1000.0, True),            # never ran
    (24, 0.0, 24 * H - 1, False),
    (24, 0.0, 24 * H, True),
    (0.5, 100.0, 100.0 + 0.5 * H, True),
    (6, 100.0, 100.0 + 5 * H, False),
])
def test_is_due(interval, last, at, due):
    assert is_due(interval, last, at) is due
