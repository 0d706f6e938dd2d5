"""Guessing training join codes: counted per user, held back like a login, audited.

A join code is the only key to a KI-Kompass session (its quiz and the projector view). The code
space is large (about 10⁹), but every door that takes a code from the client (join, the current
question, an answer, the projector's poll) could otherwise be asked as often as an attacker likes,
and nothing recorded it. Now an unknown code counts as a failure of the user in the login throttle's
table (so every replica counts together), the first :data:`FREE_UNKNOWN` cost nothing (people
mistype), after that the user waits with the login's back-off, and every unknown or held-back code
is audited as ``training_code_refused`` (held-back ones as one row per user and minute, counted, as
for held-back logins: they cost the guesser nothing).

A user's codes are decided one after the other in a process (read the count, look the code up,
count it): in three free-running steps a parallel burst right when a back-off ended passed several
guesses on one reading. Replicas decide on their own, so a burst spread over them passes at most one
guess per replica.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Callable

from assistant.audit import AuditLog
from assistant.login_failures import WINDOW_S, DBLoginFailures
from assistant.training.sessions import Session, SessionError, TrainingStore, UnknownCode
from ui.login import HeldBackAudit, back_off_s
from ui.login_page import wait_words

FREE_UNKNOWN = 20  # unknown codes per user and window before the back-off starts
CAP_S = 900.0  # the longest wait, as for a login


class JoinCodeGuard:
    """The one check before a client's join code reaches the training store."""

    def __init__(self, store: TrainingStore, counters: DBLoginFailures, audit: AuditLog, *,
                 free: int = FREE_UNKNOWN, cap_s: float = CAP_S, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.counters = counters
        self.audit = audit
        self.free = free
        self.cap_s = cap_s
        self.clock = clock
        self.held = HeldBackAudit(audit)
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()

    def session(self, code: str, user: str) -> Session:
        """The session of ``code`` (ended ones too); :class:`SessionError` in German if the user is
        held back or the code is unknown (counted and audited)."""
        key = f"t:{user}"
        with self._locks_lock:
            lock = self._locks[key]
        with lock:
            now = self.clock()
            failures, last = self.counters.get([key]).get(key, (0, 0.0))
            wait = back_off_s(failures, last, now, free=self.free, cap=self.cap_s, window_s=WINDOW_S)
            shown = TrainingStore.normalize_code(code)[:16]
            if wait > 0:
                self.held.record(key, "training_code_refused", user, {"reason": "held_back"}, now,
                                 collect=("codes", shown))
                raise SessionError(f"Zu viele unbekannte Teilnahmecodes. Bitte versuchen Sie es in "
                                   f"{wait_words(wait)} erneut.")
            try:
                return self.store.by_code(code, active=False)
            except UnknownCode:
                self.counters.add([key], now, WINDOW_S)
                self.audit.record("training_code_refused", user, shown, {"reason": "unknown"})
                raise
