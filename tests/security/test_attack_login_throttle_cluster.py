"""The login throttle across two served replicas, attacked over HTTP as behind a load balancer.

Two portals (tests/portal_replicas.py: own data directories, one PostgreSQL app database, each in a
uvicorn server of its own) trust the balancer at 127.0.0.2 for X-Forwarded-For, so the attacker has
one address on both. The attacker sends wrong passwords for one name to both servers' /login at once,
or one after the other to one server and then tries the other.

The password check (``UserStore.verify``, the Argon2 hash) of both replicas is held at a gate until
every attempt of the burst has either started its check or been answered: a slow hash that ends when
the test says so, so the checks that run at the same time are counted, not raced against a clock.
Each replica has its own App and its own ``LoginThrottle``: what one knows of the other's checks and
failures it knows only from the app database (``login_checks``, ``login_failures``), as on two machines.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from portal_replicas import replica_contexts, serving

from sec_client import PASSWORD, PROXY, Portal, attempt, audit, burst
from ui.login import LoginThrottle

pytestmark = pytest.mark.cluster

NAME = "kora"
ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"
PAIR = f"p:{ATTACKER}|{NAME}"  # the throttle's counter of (address, name), as in tests/ui/test_login.py
LIMIT = LoginThrottle().max_failures  # free tries of a pair = its checks allowed at once
BURST = 12  # six guesses on each server
TIMEOUT_S = 60.0  # only ever reached when something hangs


@pytest.fixture
def replicas(tmp_path, pg_url, app_factory) -> dict[str, Portal]:
    """Replicas "a" and "b" behind the balancer (``trusted_proxies``); ``NAME`` known to both (one user table)."""
    ctxs = replica_contexts(tmp_path, app_factory, pg_url, auth={"trusted_proxies": [PROXY]})
    ctxs["a"].users.add(NAME, PASSWORD, "staff")
    with serving(ctxs) as served:
        yield {name: Portal(url, ctxs[name], server, ctxs[name].app.settings.home)
               for name, (url, server) in served.items()}


class HeldChecks:
    """Every replica's password check waits at one gate; counts the checks running at once over all."""

    def __init__(self, monkeypatch, portals: dict[str, Portal]) -> None:
        self.gate = threading.Event()
        self.changed = threading.Condition()
        self.running = self.most = 0
        self.checked: list[tuple[str, str]] = []  # (replica, password) of every check started
        for replica, portal in portals.items():
            monkeypatch.setattr(portal.ctx.users, "verify", self._held(replica, portal.ctx.users.verify))

    def _held(self, replica: str, verify):
        def held(name: str, password: str):
            with self.changed:
                self.running += 1
                self.most = max(self.most, self.running)
                self.checked.append((replica, password))
                self.changed.notify_all()
            try:
                if not self.gate.wait(TIMEOUT_S):
                    raise TimeoutError("the test never opened the gate")
                return verify(name, password)
            finally:
                with self.changed:
                    self.running -= 1
        return held


def test_a_burst_spread_over_two_replicas_gets_no_more_checks_at_once_than_on_one(replicas, monkeypatch):
    """Kept per replica, each server had let its own three guesses through: 2 replicas, 6 at once."""
    a, b = replicas["a"], replicas["b"]
    held = HeldChecks(monkeypatch, replicas)
    answered: dict[int, int] = {}  # attempt -> status, of those answered while every check was held
    sent_to = {i: "ab"[i % 2] for i in range(BURST)}

    def guess(i: int) -> int:
        status = attempt(replicas[sent_to[i]], ATTACKER, NAME, f"Falsch-{i}-2026")
        with held.changed:
            if not held.gate.is_set():
                answered[i] = status
            held.changed.notify_all()
        return status

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(burst, BURST, guess)
        try:
            with held.changed:  # every attempt is being checked (held) or has been answered
                settled = held.changed.wait_for(lambda: held.running + len(answered) == BURST, timeout=TIMEOUT_S)
            assert settled, (held.running, answered)
            checks = held.running
            # 1. never more checks at once than one replica allows, counted in the app database as well
            assert 2 <= checks <= LIMIT, held.checked  # two deciding at once may both refuse, never both pass
            assert LoginThrottle(store=b.ctx.app.login_failures).checking(NAME, ATTACKER)[PAIR] == checks
            # 2. the rest refused on whichever server it reached, without a check: 429, not "wrong password"
            assert set(answered.values()) == {429} and len(answered) == BURST - checks
            assert {sent_to[i] for i in answered} == {"a", "b"}, answered
            assert sorted(held.checked) == sorted((sent_to[i], f"Falsch-{i}-2026") for i in range(BURST)
                                                  if i not in answered)
            blocked = audit(a, "login_blocked", actor=NAME)  # one row per replica and minute, attempts counted
            assert len(blocked) <= 2 and sum(e["detail"]["attempts"] for e in blocked) == len(answered), blocked
            assert all(e["detail"]["by"] == "parallel" and e["detail"]["address"] == ATTACKER for e in blocked)
            assert audit(b, "login_failed", actor=NAME) == []
            assert b.ctx.app.login_failures.get([PAIR, f"n:{NAME}", f"a:{ATTACKER}"]) == {}  # refused, not counted
        finally:
            held.gate.set()
        statuses = running.result(timeout=TIMEOUT_S)
        assert sorted(statuses) == [400] * checks + [429] * (BURST - checks)  # checked and wrong / held back

    assert held.most == checks  # also while the gate opened: no check started after the burst
    failed = audit(b, "login_failed", actor=NAME)
    assert len(failed) == checks and {e["detail"]["address"] for e in failed} == {ATTACKER}
    counted = a.ctx.app.login_failures.get([PAIR, f"n:{NAME}"])
    assert counted[PAIR][0] == checks and counted[f"n:{NAME}"][0] == checks  # the checks only
    assert LoginThrottle(store=a.ctx.app.login_failures).checking(NAME, ATTACKER) == {}  # no check left behind

    # 3. a stranger's burst locks nobody out: the owner, from her own address, logs in on both servers
    assert attempt(a, OWNER, NAME, PASSWORD) == 200
    assert attempt(b, OWNER, NAME, PASSWORD) == 200
    # … and the attacker's address is held back for seconds (2 s after the third failure), not locked
    throttle = LoginThrottle(store=b.ctx.app.login_failures)
    deadline = time.monotonic() + TIMEOUT_S
    while (wait := throttle.wait_s(ATTACKER, NAME)[0]) > 0:
        assert wait <= 2.0 and time.monotonic() < deadline, wait
        time.sleep(min(wait, 0.2))
    assert attempt(b, ATTACKER, NAME, PASSWORD) == 200
    assert attempt(a, ATTACKER, NAME, PASSWORD) == 200


def test_failures_on_replica_a_hold_back_the_next_try_on_replica_b(replicas):
    """B never saw a guess, yet refuses the attacker even the right password; the owner is let in."""
    a, b = replicas["a"], replicas["b"]
    guesses = 6  # the back-off after six: 16 s, time enough to reach B on a loaded machine
    statuses = [attempt(a, ATTACKER, NAME, f"Falsch-{i}-2026") for i in range(guesses)]
    failed, blocked = audit(a, "login_failed", actor=NAME), audit(a, "login_blocked", actor=NAME)
    held = sum(e["detail"]["attempts"] for e in blocked)  # one row per minute, the attempts counted
    assert len(failed) >= LIMIT and len(failed) + held == guesses and len(blocked) <= 1  # then 2, 4, 8 s on A
    assert statuses == [400] * len(failed) + [429] * held

    assert attempt(b, ATTACKER, NAME, PASSWORD) == 429
    on_b = audit(b, "login_blocked", actor=NAME)
    assert len(on_b) == len(blocked) + 1
    assert on_b[0]["detail"]["by"] == "pair" and on_b[0]["detail"]["address"] == ATTACKER, on_b[0]
    assert audit(b, "login_failed", actor=NAME) == failed  # refused before the password was checked
    assert a.ctx.app.login_failures.get([PAIR])[PAIR][0] == guesses + 1  # hammering B digs deeper on A

    # a back-off of the pair, not a lock of the name: the owner logs in through both at once
    assert attempt(b, OWNER, NAME, PASSWORD) == 200
    assert attempt(a, OWNER, NAME, PASSWORD) == 200
