"""The login throttle: back-off per (address, name), per address and per name; no lock-out by strangers.
The same behaviour with the counters in memory and in the app database, and across two replicas."""
from __future__ import annotations

import time

import asyncio
import json

import pytest
from portal_replicas import replica_contexts

from assistant.appdb import AppDB
from assistant.login_failures import DBLoginFailures
from fastapi import HTTPException

from ui.login import LoginThrottle, MemoryLoginFailures, back_off_s, client_address
from ui.login_page import PARALLEL, held_back_message


@pytest.fixture(params=["memory", "app_db"])
def throttle(request, tmp_path):
    """A throttle factory over either store: every behaviour below must hold for both."""
    def make(**kwargs) -> LoginThrottle:
        if request.param == "app_db":
            kwargs["store"] = DBLoginFailures(AppDB(f"sqlite:///{tmp_path / f'app{len(made)}.sqlite3'}"))
        made.append(1)
        return LoginThrottle(**kwargs)

    made: list = []
    return make


@pytest.mark.parametrize("failures, last, now, free, expect", [
    (0, 0.0, 0.0, 3, 0.0),        # nothing failed
    (2, 100.0, 100.0, 3, 0.0),    # within the free tries
    (3, 100.0, 100.0, 3, 2.0),    # the third: 2 s
    (5, 100.0, 100.0, 3, 8.0),    # doubling
    (5, 100.0, 105.0, 3, 3.0),    # time passes
    (5, 100.0, 109.0, 3, 0.0),    # back-off over: not a lock
    (40, 100.0, 100.0, 3, 900.0),  # capped
    (40, 100.0, 3701.0, 3, 0.0),  # the window forgets
    (1_100, 100.0, 100.0, 3, 900.0),  # 2.0 ** 1098 overflowed: a 500 for every later try
    (10**9, 100.0, 100.0, 3, 900.0),
])
def test_back_off_is_a_pure_function(failures, last, now, free, expect):
    assert back_off_s(failures, last, now, free=free, cap=900.0, window_s=3600.0) == expect


def test_back_off_per_address_and_name_not_a_lock(throttle):
    t = throttle(max_failures=3)
    for _ in range(5):
        t.failed("mayor", "203.0.113.1", now=100.0)
    wait, by = t.wait_s("203.0.113.1", "mayor", now=100.0)
    assert by == "pair" and wait == 8.0  # 2 s after the third failure, doubling
    assert t.wait_s("198.51.100.7", "mayor", now=100.0) == (0.0, "")  # the owner elsewhere is not held back
    assert t.wait_s("203.0.113.1", "mayor", now=108.5) == (0.0, "")  # back-off, not a lock
    t.held_back("mayor", "203.0.113.1", now=101.0)  # hammering while held back digs deeper …
    assert t.wait_s("203.0.113.1", "mayor", now=110.0)[0] > 0
    assert t.wait_s("198.51.100.7", "mayor", now=101.0) == (0.0, "")  # … for that address only


def test_an_address_held_back_by_its_own_counter_starts_no_counter_per_name_it_sprays(throttle):
    """An attacker's probe: each held-back try also deepened its (address, name) pair, so spraying new
    names wrote a row per name (100 a second); now only the counters that hold the try are deepened."""
    t = throttle()
    for n in range(10):
        t.failed(f"kollege{n}", "203.0.113.2", now=0.0)
    for n in range(50):
        assert t.begin(f"zufall{n}", "203.0.113.2", now=1.0)[1] == "address"
    assert t.store.get([f"p:203.0.113.2|zufall{n}" for n in range(50)]) == {}
    assert t.store.get(["a:203.0.113.2"])["a:203.0.113.2"][0] == 60  # the address digs deeper


def test_a_counter_stops_growing_at_its_cap(throttle):
    from assistant.login_failures import MAX_COUNT

    t = throttle()
    key = "a:203.0.113.3"
    if isinstance(t.store, MemoryLoginFailures):
        t.store._failures[key] = (MAX_COUNT - 1, 0.0)
    else:
        t.store.db.execute("INSERT INTO login_failures(key, failures, last_at) VALUES (:k, :n, 0.0)",
                           {"k": key, "n": MAX_COUNT - 1})
    for _ in range(3):
        t.store.add([key], 1.0, 3600.0)
    assert t.store.get([key])[key] == (MAX_COUNT, 1.0)
    assert t.wait_s("203.0.113.3", "x", now=1.0) == (900.0, "address")


def test_spraying_one_address_is_slowed(throttle):
    t = throttle()
    for n in range(10):
        t.failed(f"kollege{n}", "203.0.113.2", now=0.0)
    wait, by = t.wait_s("203.0.113.2", "tina", now=0.0)
    assert by == "address" and wait > 0


def test_many_addresses_on_one_name_are_slowed_but_capped(throttle):
    t = throttle()
    for n in range(30):
        t.failed("mayor", f"10.0.{n}.1", now=0.0)
    wait, by = t.wait_s("10.9.9.9", "mayor", now=0.0)
    assert by == "name" and 0 < wait <= t.name_cap_s


def test_strangers_guessing_a_name_from_many_addresses_never_keep_its_owner_out(throttle):
    """Found by an attacker's probe: renewing the name's minute from fresh addresses kept the owner
    out for good, and each refused try of the owner deepened the back-off of the owner's address."""
    t = throttle()
    now = time.time()
    assert t.begin("mayor", "198.51.100.7", now=now) == (0.0, "")
    t.succeeded("mayor", "198.51.100.7")  # the office, last week
    for n in range(30):  # strangers from thirty addresses
        t.failed("mayor", f"10.0.{n}.1", now=now)
    assert t.begin("mayor", "198.51.100.7", now=now) == (0.0, "")  # the owner's known place: in at once
    t.succeeded("mayor", "198.51.100.7")
    for n in range(30):
        t.failed("mayor", f"10.1.{n}.1", now=now)
    wait, by = t.begin("mayor", "192.0.2.44", now=now)  # a place the name never logged in from: slowed
    assert by == "name" and 0 < wait <= t.name_cap_s
    for _ in range(10):  # … and trying again there is no fault of that address
        assert t.begin("mayor", "192.0.2.44", now=now)[1] == "name"
    assert t.store.get(["p:192.0.2.44|mayor", "a:192.0.2.44"]) == {}
    assert t.wait_s("192.0.2.44", "mayor", now=now + t.name_cap_s + 1) == (0.0, "")


def test_failures_are_forgotten_and_success_resets(throttle):
    t = throttle(max_failures=1, window_s=60)
    t.failed("sam", "1.2.3.4", now=0.0)
    t.failed("sam", "1.2.3.4", now=0.0)
    assert t.wait_s("1.2.3.4", "sam", now=1.0)[0] > 0
    assert t.wait_s("1.2.3.4", "sam", now=100.0) == (0.0, "")
    t.failed("sam", "1.2.3.4", now=200.0)
    t.failed("sam", "1.2.3.4", now=200.0)
    t.succeeded("sam", "1.2.3.4")
    assert t.wait_s("1.2.3.4", "sam", now=200.0) == (0.0, "")


def test_attempts_being_checked_count_as_failures_until_they_end(throttle):
    """Parallel attempts are decided one after the other: a burst gets no more checks than a sequence."""
    t = throttle(max_failures=3)
    waits = [t.begin("mayor", "203.0.113.5", now=100.0)[0] for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 2.0, 2.0]  # three checked at once, then held back as after 3 failures
    assert t.wait_s("198.51.100.7", "mayor", now=100.0) == (0.0, "")  # the owner elsewhere: not held back
    for _ in range(3):
        t.succeeded("mayor", "203.0.113.5")
    assert t.wait_s("203.0.113.5", "mayor", now=100.0) == (0.0, "")  # ended: nothing left over
    for n in range(12):  # successes are no failures: a busy address (the town hall's NAT) stays open
        assert t.begin(f"kollege{n}", "203.0.113.6", now=100.0) == (0.0, "")
        t.succeeded(f"kollege{n}", "203.0.113.6")
    assert t.wait_s("203.0.113.6", "tina", now=100.0) == (0.0, "")
    assert t.begin("sam", "203.0.113.7", now=100.0) == (0.0, "")
    t.failed("sam", "203.0.113.7", now=100.0)  # a failure counts once, not twice
    assert t.store.get(["p:203.0.113.7|sam"])["p:203.0.113.7|sam"][0] == 1 and t.checking("sam", "203.0.113.7", now=100.0) == {}


def test_an_attempt_is_never_counted_twice_while_its_failure_is_recorded(throttle):
    """Between any two writes of the store, the pair counts at most the attempts made. Recording a
    failure and ending its check were two writes: for a moment the attempt was a recorded failure and
    a running check at once, and a parallel attempt deciding then was refused for a guess not made
    (a burst got 2 checks instead of 3 under load, session 41)."""
    t = throttle(max_failures=3)
    key, seen = "p:203.0.113.5|mayor", []

    class Watched:
        """The store, read after every write: recorded failures plus running checks of the pair."""

        def __init__(self, store):
            self._store = store

        def __getattr__(self, attr):
            method = getattr(self._store, attr)
            if attr not in {"add", "clear", "start_checks", "end_checks", "end_check"}:
                return method

            def write(*args, **kwargs):
                method(*args, **kwargs)
                counts, running = self._store.state([key], 100.0)
                seen.append(counts.get(key, (0, 0.0))[0] + running.get(key, 0))
            return write

    t.store = Watched(t.store)
    assert [t.begin("mayor", "203.0.113.5", now=100.0)[0] for _ in range(2)] == [0.0, 0.0]
    t.failed("mayor", "203.0.113.5", now=100.0)  # one of the two failed, the other is still checked
    assert max(seen) <= 2 and seen[-1] == 2, seen
    assert t.begin("mayor", "203.0.113.5", now=100.0) == (0.0, "")  # a third guess, as in a sequence
    t.succeeded("mayor", "203.0.113.5")  # clears the pair's failures; one check still runs
    t.failed("mayor", "203.0.113.5", now=100.0)
    assert seen[-3:] == [3, 1, 1], seen
    assert t.store.state([key], 100.0) == ({key: (1, 100.0)}, {})


def test_a_check_left_by_a_dead_replica_stops_counting(throttle):
    """A replica that died in the middle of three checks leaves their rows: they hold the pair back
    for a minute at most, not for ever."""
    from assistant.login_failures import CHECK_STALE_S

    dead = throttle(max_failures=3)
    for _ in range(3):
        assert dead.begin("mayor", "203.0.113.5", now=100.0) == (0.0, "")  # never ended
    alive = LoginThrottle(max_failures=3, store=dead.store)  # another process on the same store
    assert alive.begin("mayor", "203.0.113.5", now=101.0) == (2.0, "parallel")
    assert alive.begin("mayor", "203.0.113.5", now=101.0 + CHECK_STALE_S) == (0.0, "")
    alive.failed("mayor", "203.0.113.5", now=101.0 + CHECK_STALE_S)
    assert alive.checking("mayor", "203.0.113.5", now=101.0 + CHECK_STALE_S) == {}


def test_a_database_error_while_deciding_leaves_no_check_behind():
    """The attempt registered itself, then reading the others failed: its row must not hold the
    pair back for a minute as a phantom check."""
    class Flaky(MemoryLoginFailures):
        fail = True

        def checks(self, keys, now):
            if self.fail:
                raise ConnectionError("app database gone")
            return super().checks(keys, now)

    store = Flaky()
    t = LoginThrottle(max_failures=1, store=store)
    with pytest.raises(ConnectionError):
        t.begin("mayor", "203.0.113.5", now=100.0)
    store.fail = False
    assert t.checking("mayor", "203.0.113.5", now=100.0) == {}
    assert t.begin("mayor", "203.0.113.5", now=100.0) == (0.0, "")


def test_counters_in_the_app_db_survive_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    for _ in range(4):
        LoginThrottle(store=DBLoginFailures(AppDB(url))).failed("mayor", "203.0.113.1", now=50.0)
    again = LoginThrottle(store=DBLoginFailures(AppDB(url)))  # a new process on the same database
    assert again.wait_s("203.0.113.1", "mayor", now=50.0) == (4.0, "pair")


@pytest.mark.cluster
def test_ten_failures_on_replica_a_throttle_replica_b(tmp_path, pg_url, app_factory):
    """Two portals on one PostgreSQL: an address spraying passwords over replica A is held back on B,
    through the portal's own login callable (audited); another address logs in on B at once."""
    from ui.login import make_auth

    a, b = replica_contexts(tmp_path, app_factory, pg_url).values()
    a.users.add("anna", "Sicher-Test-2026!", "staff")
    auth_a, auth_b = make_auth(a), make_auth(b)

    def attempt(auth, address, name, password):
        token = client_address.set(address)
        try:
            return asyncio.run(auth(name, password))
        finally:
            client_address.reset(token)

    for n in range(2):  # through A's login (each costs an Argon2 hash) …
        assert not attempt(auth_a, "203.0.113.9", f"kollege{n}", "Sommer2026!")
    spray = LoginThrottle(store=a.app.login_failures)  # … and eight more as A's login counts them
    for n in range(2, 10):
        spray.failed(f"kollege{n}", "203.0.113.9")
    assert a.audit.count(action="login_failed") == 2
    with pytest.raises(HTTPException) as held:  # held back on B: 429 with the wait, password unchecked
        attempt(auth_b, "203.0.113.9", "anna", "Sicher-Test-2026!")
    assert held.value.status_code == 429 and "Zu viele fehlgeschlagene Anmeldungen" in held.value.detail
    assert int(held.value.headers["Retry-After"]) >= 1
    blocked = b.audit.entries(action="login_blocked", actor="anna")
    assert blocked and json.loads(blocked[0]["detail"])["by"] == "address"
    assert attempt(auth_b, "198.51.100.7", "anna", "Sicher-Test-2026!")  # anna's own address: at once


@pytest.mark.cluster
def test_attempts_being_checked_on_replica_a_hold_back_a_burst_on_replica_b(tmp_path, pg_url, app_factory):
    """A burst of guesses for one name spread over two replicas behind a load balancer: while A
    checks three (the pair's free tries), B checks none of them but refuses ("parallel", audited,
    not counted as a failure); once A's checks end, B checks again. Kept per process, each replica
    had let its own three through: n replicas, n times the guesses per burst."""
    from ui.login import make_auth

    a, b = replica_contexts(tmp_path, app_factory, pg_url).values()
    b.users.add("anna", "Sicher-Test-2026!", "staff")
    throttle_a = LoginThrottle(store=a.app.login_failures)
    for _ in range(3):  # three guesses of the burst being checked on A right now
        assert throttle_a.begin("anna", "203.0.113.9") == (0.0, "")
    token = client_address.set("203.0.113.9")
    try:
        auth_b = make_auth(b)
        with pytest.raises(HTTPException) as held:  # the fourth, on B: not checked
            asyncio.run(auth_b("anna", "Sicher-Test-2026!"))
        assert held.value.status_code == 429 and held.value.detail == PARALLEL
        blocked = b.audit.entries(action="login_blocked", actor="anna")
        assert blocked and json.loads(blocked[0]["detail"])["by"] == "parallel"
        assert b.app.login_failures.get(["p:203.0.113.9|anna"]) == {}  # refused, not counted
        assert LoginThrottle(store=b.app.login_failures).checking("anna", "203.0.113.9")["p:203.0.113.9|anna"] == 3
        for _ in range(3):
            throttle_a.succeeded("anna", "203.0.113.9")  # A's checks end
        assert asyncio.run(auth_b("anna", "Sicher-Test-2026!"))
    finally:
        client_address.reset(token)


def test_a_crowd_behind_one_address_is_let_in_and_a_burst_on_one_name_is_not_counted_as_hammering():
    """Twenty people behind the town hall's NAT log in at the same moment: all are checked. Four
    parallel attempts on one name: the fourth waits for the others ("parallel"), and that refusal is
    not recorded as hammering (the next try after the burst is decided by real failures only)."""
    t = LoginThrottle(store=MemoryLoginFailures())
    crowd = [t.begin(f"person{n}", "192.0.2.7", now=100.0) for n in range(20)]
    assert all(wait == 0.0 for wait, _ in crowd)
    for n in range(20):
        t.succeeded(f"person{n}", "192.0.2.7")
    burst = [t.begin("mayor", "203.0.113.1", now=200.0) for _ in range(4)]
    assert [w == 0.0 for w, _ in burst] == [True, True, True, False] and burst[3][1] == "parallel"
    for _ in range(3):
        t.succeeded("mayor", "203.0.113.1")
    assert t.begin("mayor", "203.0.113.1", now=201.0) == (0.0, "")


@pytest.mark.parametrize("wait_s, reason, says", [
    (0.2, "pair", "in 1 Sekunde erneut"),  # never "0 Sekunden"
    (3.5, "address", "in 4 Sekunden erneut"),
    (89.0, "name", "in 89 Sekunden erneut"),
    (90.0, "pair", "in 2 Minuten erneut"),
    (900.0, "pair", "in 15 Minuten erneut"),
    (0.0, "parallel", "in einigen Sekunden erneut"),
])
def test_a_held_back_login_says_how_long_to_wait_and_that_the_password_was_not_checked(wait_s, reason, says):
    message = held_back_message(wait_s, reason)
    assert says in message
    assert ("nicht geprüft" in message) == (reason != "parallel") and "falsch" not in message


def test_a_device_cookie_vouches_for_its_name_only_and_only_while_valid(tmp_path):
    from assistant.links import LinkSigner
    from assistant.users import UserStore
    from ui.login_devices import FAILURES_FREE, DeviceCookies, device_cookies_of

    users, store = UserStore(AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")), MemoryLoginFailures()
    users.add("mayor", "Passwort-Passwort-1", "staff")
    users.add("tina", "Passwort-Passwort-2", "trainer")
    devices = DeviceCookies(b"s" * 40, users, store, ttl_s=100)
    name, token = devices.issue("mayor", now=1000.0)
    assert name.startswith("kp-device-") and name != DeviceCookies(b"t" * 40, users, store).cookie_name("mayor")
    assert devices.token({name: token}, "mayor", now=1050.0) == token
    assert devices.token({name: token}, "mayor", now=1101.0) is None  # expired
    assert devices.token({devices.cookie_name("tina"): token}, "tina", now=1050.0) is None  # another name
    assert devices.token({name: token[:-2] + "AA"}, "mayor", now=1050.0) is None  # tampered
    for crafted in ("1.ä", "9" * 5000 + ".x", ""):  # never raises
        assert devices.token({name: crafted}, "mayor", now=1050.0) is None
    assert devices.token({name: LinkSigner(b"s" * 40).sign("device", "mayor", now=1000.0)}, "mayor",
                         now=1050.0) is None  # a document link's token is no device cookie
    assert DeviceCookies(b"t" * 40, users, store, ttl_s=100).token({name: token}, "mayor", now=1050.0) is None
    # spent on failed checks: a copied cookie gets a few tries, not the name's freedom
    for _ in range(FAILURES_FREE):
        assert devices.token({name: token}, "mayor", now=1050.0) == token
        devices.failed(token, now=1050.0)
    assert devices.token({name: token}, "mayor", now=1051.0) is None
    # a new password ends every cookie of the name
    fresh_name, fresh = devices.issue("mayor", now=2000.0)
    assert devices.token({fresh_name: fresh}, "mayor", now=2001.0) == fresh
    users.set_password("mayor", "Neues-Passwort-3")
    assert devices.token({fresh_name: fresh}, "mayor", now=2002.0) is None
    assert device_cookies_of(f"a=b; {name}={token}") == {name: token}
    assert device_cookies_of(f'bad"cookie x; {name}={token}') == {name: token}  # one bad cookie hides none


def test_a_device_cookie_lifts_only_the_names_hold(throttle):
    t = throttle()
    for n in range(25):
        t.failed("mayor", f"203.0.113.{n}", now=100.0)
    assert t.begin("mayor", "10.0.0.1", now=100.5)[1] == "name"  # a new address: held by the name
    assert t.begin("mayor", "10.0.0.1", now=100.5, known_device=True) == (0.0, "")  # her browser: checked
    t.failed("mayor", "10.0.0.1", now=100.5)
    for _ in range(3):
        t.failed("mayor", "10.0.0.2", now=101.0)
    assert t.begin("mayor", "10.0.0.2", now=101.0, known_device=True)[1] == "pair"  # its own counters still hold
