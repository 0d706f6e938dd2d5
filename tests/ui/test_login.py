"""The login throttle: back-off per (address, name), per address and per name; no lock-out by strangers."""
from __future__ import annotations

from ui.login import LoginThrottle


def test_back_off_per_address_and_name_not_a_lock():
    t = LoginThrottle(max_failures=3)
    for _ in range(5):
        t.failed("mayor", "203.0.113.1", now=100.0)
    wait, by = t.wait_s("203.0.113.1", "mayor", now=100.0)
    assert by == "pair" and wait == 8.0  # 2 s after the third failure, doubling
    assert t.wait_s("198.51.100.7", "mayor", now=100.0) == (0.0, "")  # the owner elsewhere is not held back
    assert t.wait_s("203.0.113.1", "mayor", now=108.5) == (0.0, "")  # back-off, not a lock
    t.held_back("mayor", "203.0.113.1", now=101.0)  # hammering while held back digs deeper …
    assert t.wait_s("203.0.113.1", "mayor", now=110.0)[0] > 0
    assert t.wait_s("198.51.100.7", "mayor", now=101.0) == (0.0, "")  # … for that address only


def test_spraying_one_address_is_slowed():
    t = LoginThrottle()
    for n in range(10):
        t.failed(f"kollege{n}", "203.0.113.2", now=0.0)
    wait, by = t.wait_s("203.0.113.2", "tina", now=0.0)
    assert by == "address" and wait > 0


def test_many_addresses_on_one_name_are_slowed_but_capped():
    t = LoginThrottle()
    for n in range(30):
        t.failed("mayor", f"10.0.{n}.1", now=0.0)
    wait, by = t.wait_s("10.9.9.9", "mayor", now=0.0)
    assert by == "name" and 0 < wait <= t.name_cap_s


def test_failures_are_forgotten_and_success_resets():
    t = LoginThrottle(max_failures=1, window_s=60)
    t.failed("sam", "1.2.3.4", now=0.0)
    t.failed("sam", "1.2.3.4", now=0.0)
    assert t.wait_s("1.2.3.4", "sam", now=1.0)[0] > 0
    assert t.wait_s("1.2.3.4", "sam", now=100.0) == (0.0, "")
    t.failed("sam", "1.2.3.4", now=200.0)
    t.failed("sam", "1.2.3.4", now=200.0)
    t.succeeded("sam", "1.2.3.4")
    assert t.wait_s("1.2.3.4", "sam", now=200.0) == (0.0, "")
