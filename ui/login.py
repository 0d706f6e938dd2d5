"""Password login: the throttle, gradio's ``auth=`` callable and the session bridge.

Why back-off on three counters instead of a lock per name: a lock after five failures let
any stranger lock the mayor's office out for five minutes, while one password sprayed over
many names was not slowed at all. A failure counts for

* the pair (client address, name): after ``max_failures`` the next try waits 2, 4, 8 … s
  (at most ``cap_s``); tries made while held back count too, so hammering only digs deeper;
* the client address: after ``address_free`` failures over any names, the same back-off:
  spraying one password over many names crawls;
* the name alone, from all addresses: after ``name_free`` failures a back-off of at most
  ``name_cap_s`` (a minute), so a distributed guess is slowed. It holds back only addresses the
  name has not logged in from in the last 30 days: a stranger renewing the minute from many
  addresses kept the owner out for good (found by an attacker's probe), and the owner's refused
  tries, counted against the owner's own address, dug a back-off of their own. An attempt held
  back by the name alone is now not counted for its address.

Failures are forgotten ``window_s`` after the last one; a held-back attempt is refused
without checking the password and audited (``login_blocked`` with address and reason).
An attempt is let through by :meth:`LoginThrottle.begin`, which counts it as a failure made now
until it ends: a burst of parallel attempts sees each other, else all of them read the counters
before the first Argon2 check had finished, and a burst of 1,000 guesses passed as one (found by
an attacker's probe).
The counters, and the attempts being checked, are kept in the app database
(:mod:`assistant.login_failures`), so they hold across the replicas of a cluster and across
restarts; the decision is :func:`back_off_s`.
"""
from __future__ import annotations

import contextvars
import logging
import math
import secrets
import threading
import time
from collections.abc import MutableMapping
from typing import Callable, Iterator

from assistant.login_failures import MAX_COUNT, WINDOW_S

log = logging.getLogger(__name__)

# The address of the client of the current HTTP request (set by ui.http_guard): gradio's
# ``auth`` callable receives only name and password.
client_address: contextvars.ContextVar[str] = contextvars.ContextVar("kiportal_client_address", default="")


def back_off_s(failures: int, last: float, now: float, *, free: int, cap: float, window_s: float) -> float:
    """Seconds one counter still holds the next attempt back (the decision, a pure function).

    ``failures`` failures, the last at ``last``: the first ``free`` cost nothing, then 2, 4, 8 …
    seconds after the last one, at most ``cap``; a counter silent for ``window_s`` holds nothing."""
    if failures <= 0 or now - last > window_s:
        return 0.0
    # the exponent clamped: past about 1,030 failures 2.0 ** n overflowed, and every login from a
    # hammering address ended in a 500 with a traceback in the log (an attacker's probe: 1.6 MB/s)
    delay = 0.0 if failures < free else min(cap, 2.0 ** min(failures - free + 1, 60))
    return max(0.0, last + delay - now)


class MemoryLoginFailures:
    """The counters in this process's memory (unit tests; the portal keeps them in the app
    database, :class:`assistant.login_failures.DBLoginFailures`, so every replica counts alike)."""

    def __init__(self) -> None:
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, time of the last one)
        self._known: dict[str, float] = {}  # (address, name) key -> time of the last successful login
        self._checks: dict[str, tuple[list[str], float]] = {}  # token -> (keys, started)
        self._lock = threading.RLock()  # state() and end_check() take it around the single steps

    def start_checks(self, keys, token: str, now: float) -> None:
        with self._lock:
            self._checks[token] = (list(keys), now)

    def checks(self, keys, now: float) -> dict[str, int]:
        from assistant.login_failures import CHECK_STALE_S

        wanted, out = set(keys), {}
        with self._lock:
            for held, started in self._checks.values():
                if started >= now - CHECK_STALE_S:
                    for key in wanted.intersection(held):
                        out[key] = out.get(key, 0) + 1
        return out

    def end_checks(self, token: str) -> None:
        with self._lock:
            self._checks.pop(token, None)

    def state(self, keys, now: float) -> tuple[dict[str, tuple[int, float]], dict[str, int]]:
        """:meth:`get` and :meth:`checks` read as one (no attempt is seen between its two writes)."""
        with self._lock:
            return self.get(keys), self.checks(keys, now)

    def end_check(self, token: str, *, failed=(), cleared=(), now: float, window_s: float) -> None:
        """End one attempt's check and, in the same step, count its failure or clear the counters."""
        with self._lock:
            self.add(failed, now, window_s)
            self.clear(cleared)
            self._checks.pop(token, None)

    def remember(self, key: str, now: float) -> None:
        with self._lock:
            self._known[key] = now

    def known(self, key: str, now: float) -> bool:
        from assistant.login_failures import KNOWN_S

        with self._lock:
            return key in self._known and now - self._known[key] <= KNOWN_S

    def get(self, keys) -> dict[str, tuple[int, float]]:
        with self._lock:
            return {k: self._failures[k] for k in keys if k in self._failures}

    def add(self, keys, now: float, window_s: float) -> None:
        with self._lock:
            for key in keys:
                count, last = self._failures.get(key, (0, 0.0))
                self._failures[key] = ((0 if now - last > window_s else min(count, MAX_COUNT - 1)) + 1, now)

    def clear(self, keys) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


PARALLEL_ADDRESS_FACTOR = 4  # attempts one address may have checked at once: this many times address_free


class LoginThrottle:
    """Exponential back-off per (address, name), per address and per name.

    The counters live in ``store`` (the app database in the portal, so ten failures on one
    replica hold back the next try on every other); without one, in this process's memory."""

    def __init__(self, max_failures: int = 3, window_s: float = WINDOW_S, *, address_free: int = 10,
                 name_free: int = 20, cap_s: float = 900.0, name_cap_s: float = 60.0, store=None) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.address_free = address_free
        self.name_free = name_free
        self.cap_s = cap_s
        self.name_cap_s = name_cap_s
        self.store = store if store is not None else MemoryLoginFailures()
        self._tokens: dict[tuple[str, str], list[str]] = {}  # (name, address) -> this process's checks
        self._lock = threading.Lock()

    def _keys(self, name: str, address: str) -> list[tuple[str, str, int, float]]:
        """(reason, key, free failures, longest wait) of the counters an attempt touches."""
        keys = [("pair", f"p:{address}|{name}", self.max_failures, self.cap_s)]
        if address:
            keys.append(("address", f"a:{address}", self.address_free, self.cap_s))
        keys.append(("name", f"n:{name}", self.name_free, self.name_cap_s))
        return keys

    def wait_s(self, address: str, name: str, *, now: float | None = None, known: bool = False) -> tuple[float, str]:
        """Seconds until the next attempt is allowed by the recorded failures, and the counter that
        holds it (0.0, "" = allowed). ``known``: the name logged in from this address before, so the
        name's own counter (strangers' guesses from anywhere) does not hold it back."""
        return self._wait(address, name, now=now, checking=False, known=known)

    def _wait(self, address: str, name: str, *, now: float | None, checking: bool,
              known: bool = False) -> tuple[float, str]:
        """With ``checking``, the attempt deciding has registered itself as being checked: the
        others being checked (on any replica) count as failures made now."""
        wait, reason, _ = self._decide(address, name, now=now, checking=checking, known=known)
        return wait, reason

    def _decide(self, address: str, name: str, *, now: float | None, checking: bool,
                known: bool = False) -> tuple[float, str, list[str]]:
        """:meth:`_wait`, and the keys of this address's own counters that hold the attempt (the pair,
        the address; never the name's), from one read of the counters."""
        now = time.time() if now is None else now
        keys = self._keys(name, address)
        names = [key for _, key, _, _ in keys]
        counts, others = self.store.state(names, now) if checking else (self.store.get(names), {})
        waits = []
        for reason, key, free, cap in keys:
            if known and reason == "name":
                continue
            failures, last = counts.get(key, (0, 0.0))
            running = max(0, others.get(key, 0) - 1)
            if running:  # attempts being checked right now count as failures made now
                failures, last = (0 if now - last > self.window_s else failures) + running, now
                if reason == "address":  # many people behind one address log in at the same moment
                    free *= PARALLEL_ADDRESS_FACTOR
            waits.append((back_off_s(failures, last, now, free=free, cap=cap, window_s=self.window_s), reason, key))
        wait, reason, _ = max(waits)
        holding = [key for w, r, key in waits if w > 0 and r != "name"]
        return (wait, reason, holding) if wait > 0 else (0.0, "", [])

    def begin(self, name: str, address: str = "", *, now: float | None = None,
              known_device: bool = False) -> tuple[float, str]:
        """Decide on an attempt about to be checked; (0.0, "") lets it go on and counts it as being
        checked until :meth:`failed` or :meth:`succeeded` ends it. One step under a lock, so parallel
        attempts of this process are decided one after the other.

        Held back by recorded failures: counted (:meth:`held_back`), so hammering digs deeper. Held
        back only because so many attempts of the pair, name or address are being checked right now
        (reason ``"parallel"``): refused but not counted, so that a burst of guesses is checked a few
        at a time while a crowd behind one address (a town hall's NAT at nine) is not punished.

        The attempts being checked are counted in the store, over every replica. An attempt registers
        itself *before* it counts the others, so two replicas deciding at the same moment each see
        the other: at worst both refuse, never both pass a limit that only one may."""
        now = time.time() if now is None else now
        # ``known_device``: the browser carries the name's device cookie (ui.login_devices)
        known = known_device or (bool(address) and self.store.known(self._known_key(name, address), now))
        with self._lock:
            wait, reason, holding = self._decide(address, name, now=now, checking=False, known=known)
            if wait > 0:
                # counted for this address only where its own counters hold it (not the name alone:
                # strangers' guesses are no fault of it); the counters read once for both
                self.store.add(holding, now, self.window_s)
                return wait, reason
            token = secrets.token_hex(8)
            self.store.start_checks([key for _, key, _, _ in self._keys(name, address)], token, now)
            try:
                wait, _ = self._wait(address, name, now=now, checking=True, known=known)
            except BaseException:  # the database failed us: leave no check behind that counts for a minute
                self.store.end_checks(token)
                raise
            if wait > 0:
                self.store.end_checks(token)
                return wait, "parallel"
            self._tokens.setdefault((name, address), []).append(token)
            return 0.0, ""

    def _ended(self, name: str, address: str, *, failed=(), cleared=(), now: float) -> None:
        """An attempt has ended: count its failure (``failed``) or clear counters (``cleared``) and end
        its check in one step of the store. In two steps a failure being recorded was counted twice
        for a moment (recorded and still being checked), and a parallel attempt deciding in that
        moment was refused for an attempt that was not there; read between them the other way round,
        it was counted not at all."""
        with self._lock:
            tokens = self._tokens.get((name, address))
            token = tokens.pop() if tokens else None
            if tokens == []:
                del self._tokens[(name, address)]
        self.store.end_check(token or "", failed=failed, cleared=cleared, now=now, window_s=self.window_s)

    def checking(self, name: str, address: str = "", *, now: float | None = None) -> dict[str, int]:
        """Attempts being checked right now (on every replica) per counter this attempt touches."""
        now = time.time() if now is None else now
        return self.store.checks([key for _, key, _, _ in self._keys(name, address)], now)

    def blocked(self, name: str, address: str = "") -> bool:
        return self.wait_s(address, name)[0] > 0

    def failed(self, name: str, address: str = "", *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._ended(name, address, failed=[key for _, key, _, _ in self._keys(name, address)], now=now)

    def held_back(self, name: str, address: str = "", *, now: float | None = None) -> None:
        """An attempt while held back: deepens the counters of this address that hold it (the pair, the
        address), never the name's, and starts none. Deepening the pair too wrote a row for every new
        name an address held back by its own counter sprayed (an attacker's probe: 100 rows a second)."""
        now = time.time() if now is None else now
        self.store.add(self._decide(address, name, now=now, checking=False, known=True)[2], now, self.window_s)

    def succeeded(self, name: str, address: str = "") -> None:
        now = time.time()
        self._ended(name, address, cleared=[f"p:{address}|{name}", f"n:{name}"], now=now)
        if address:
            self.store.remember(self._known_key(name, address), now)

    @staticmethod
    def _known_key(name: str, address: str) -> str:
        """Where ``name`` logged in before (assistant.login_failures.KNOWN_S)."""
        return f"k:{address}|{name}"


COLLECT_MOST = 20  # distinct values one grouped audit row keeps (documents or codes tried in its minute)


class HeldBackAudit:
    """Refusals that cost the refused nothing (held-back logins, a refused SSO subject's requests) in
    the audit: one row per key and minute, its ``attempts`` counted up while the minute lasts. A row
    each let an unauthenticated client grow the audit without end (an attacker's probe: 69 rows a
    second, about 4.6 GB a day kept for 90 days); the count keeps every attempt accounted for. Per
    process: a cluster writes a row per replica and minute."""

    def __init__(self, audit, every_s: float = 60.0, most: int = 10_000) -> None:
        self.audit = audit
        self.every_s = every_s
        self.most = most
        self._rows: dict[str, tuple[str, float, dict]] = {}  # counter -> (row id, first at, detail)
        self._lock = threading.Lock()

    def record(self, counter: str, action: str, actor: str, detail: dict, now: float, *,
               collect: tuple[str, str] | None = None) -> bool:
        """Audit one refused attempt; True if it started a new row. Under the lock with its database
        write, so parallel attempts of one minute land in one row (an attack path: queued, not fast).
        ``collect`` (key, value): the row keeps the minute's distinct values under ``key`` (the
        documents or codes tried), at most :data:`COLLECT_MOST`."""
        with self._lock:
            row = self._rows.get(counter)
            if row is not None and now - row[1] < self.every_s:
                row[2]["attempts"] += 1
                if collect is not None:
                    values = row[2].setdefault(collect[0], [])
                    if collect[1] not in values and len(values) < COLLECT_MOST:
                        values.append(collect[1])
                self.audit.update_detail(row[0], row[2])
                return False
            if len(self._rows) >= self.most:  # forget the oldest half rather than grow without end
                for old in sorted(self._rows, key=lambda k: self._rows[k][1])[: self.most // 2]:
                    del self._rows[old]
            detail = {**detail, "attempts": 1} | ({collect[0]: [collect[1]]} if collect is not None else {})
            self._rows[counter] = (self.audit.record(action, actor, "", detail), now, detail)
            return True


def make_auth(ctx, throttle: LoginThrottle | None = None) -> Callable:
    """gradio's ``auth=`` callable: throttled, Argon2 check off the event loop, every attempt audited."""
    import functools

    import anyio
    from fastapi import HTTPException

    from ui.login_devices import DeviceCookies, issued, request_cookies
    from ui.login_page import held_back_message

    throttle = throttle or LoginThrottle(store=ctx.app.login_failures)
    held = HeldBackAudit(ctx.audit)
    devices = DeviceCookies(ctx.app.link_secret, ctx.users, throttle.store, window_s=throttle.window_s)

    async def auth(username: str, password: str) -> bool:
        name = (username or "").strip()[:64]
        address = client_address.get()
        device = await anyio.to_thread.run_sync(devices.token, request_cookies.get(), name)
        vouched = device is not None
        # the throttle reads and writes the app database: off the event loop, like the password check
        wait, by = await anyio.to_thread.run_sync(  # counts a held-back attempt itself
            functools.partial(throttle.begin, name, address, known_device=vouched))
        if wait > 0:
            # one row per holding counter: spraying from an address, guessing a name from rotating addresses
            counter = {"address": f"a:{address}", "name": f"n:{name}"}.get(by, f"p:{address}|{name}")
            detail = {"address": address, "by": by, "wait_s": round(wait, 1)}
            if await anyio.to_thread.run_sync(held.record, counter, "login_blocked", name or "?", detail, time.time()):
                log.warning("login for %r from %s throttled (%s, %.0f s)", name, address, by, wait)
            # not "wrong password" (gradio's only other answer): the password was not checked, and the
            # owner would type it again and wait longer
            raise HTTPException(status_code=429, detail=held_back_message(wait, by),
                                headers={"Retry-After": str(max(1, math.ceil(wait)))})
        try:
            user = await anyio.to_thread.run_sync(ctx.users.verify, name, password or "")
        except BaseException:  # a broken check (or a client gone meanwhile) counts as a failed one
            throttle.failed(name, address)
            raise
        if user is None:
            await anyio.to_thread.run_sync(throttle.failed, name, address)
            if device is not None:  # a copied cookie gets a few tries, not the name's freedom
                await anyio.to_thread.run_sync(devices.failed, device)
            ctx.audit.record("login_failed", name or "?", "", {"address": address})
            log.warning("failed login for %r from %s", name, address)
            return False
        await anyio.to_thread.run_sync(throttle.succeeded, name, address)
        ctx.audit.record("login", user.name, "", {"role": user.role, "address": address, "device_cookie": vouched})
        out = issued.get()
        if out is not None:  # the guard sends it with this answer (renewed at every login)
            out.append(devices.issue(user.name))
        return True

    return auth


class SessionTokens(MutableMapping):
    """gradio's ``app.tokens`` (token -> user name) backed by :class:`assistant.sessions.SessionStore`.

    gradio writes ``tokens[token] = name`` at login and reads ``tokens.get(token)`` on every
    request; here a read is valid only for a live session of an unchanged user. Tokens are
    stored hashed, so they cannot be listed: logout is handled by the HTTP guard."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions

    def __setitem__(self, token: str, name: str) -> None:
        if self.sessions.open(name, token) is None:
            log.warning("login of unknown user %r not turned into a session", name)

    def __getitem__(self, token: str) -> str:
        name = self.sessions.user_of(token) if isinstance(token, str) else None
        if name is None:
            raise KeyError(token)
        return name

    def __delitem__(self, token: str) -> None:
        self.sessions.close(token)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0
