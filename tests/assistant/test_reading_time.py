"""assistant.reading_time: the model's reading rate from its last answers, as a table."""
from __future__ import annotations

import pytest

from assistant.reading_time import ReadingSpeed


@pytest.mark.parametrize("answers, tokens, expected", [
    ([], 600, None),                                        # never answered: nothing to foretell
    ([(1000, 10.0)], 600, 6.0),                             # 100 tokens/s
    ([(1000, 10.0), (1000, 25.0), (1000, 9.0)], 500, 5.0),  # the median rate: one slow answer moves nothing
    ([(1000, 10.0)], 0, None),                              # no prompt
    ([(0, 3.0), (1000, 0.0)], 600, None),                   # nothing learnt from an empty prompt or no time
])
def test_estimate(answers, tokens, expected):
    speed = ReadingSpeed()
    for n, seconds in answers:
        speed.record("lokal", n, seconds)
    got = speed.estimate_s("lokal", tokens)
    assert got == (None if expected is None else pytest.approx(expected))


def test_each_model_has_its_own_rate_and_only_the_last_answers_count():
    speed = ReadingSpeed(keep=3)
    speed.record("lokal", 400, 10.0)   # 40 tokens/s
    speed.record("server", 4000, 1.0)  # 4,000 tokens/s
    assert speed.estimate_s("lokal", 400) == pytest.approx(10.0)
    assert speed.estimate_s("server", 400) == pytest.approx(0.1)
    assert speed.estimate_s("anderes", 400) is None
    for _ in range(3):  # the machine got faster: three answers at 100 tokens/s push the old one out
        speed.record("lokal", 1000, 10.0)
    assert speed.estimate_s("lokal", 400) == pytest.approx(4.0)
