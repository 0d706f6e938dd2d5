"""Whose browser tab is it? gradio's session hash, tied to the user who first sent it.

gradio keys everything of a browser tab by a random "session hash" the client picks: the queue
events it joins, the stream that carries their answers (``/queue/data?session_hash=…``), the
heartbeat, cancelling, component state. gradio never asks who sends a hash, so a logged-in user
who learned another's hash (a proxy log records the heartbeat URL) read that user's streamed
answer, passages of another department included (found by an attacker's probe). Here the first
user to send a hash owns it; any other user is refused at the door (:mod:`ui.http_guard`).

The same map lets the door count a user's open events (:func:`open_events`): gradio's queue
holds events by tab, not by user, so one account could queue hundreds of answers and make
everyone else wait for hours. They are counted per kind (gradio's concurrency group: answers,
one tool, one admin list), since a page load joins a dozen different events at once.
"""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any, Iterable
from urllib.parse import parse_qsl

#: routes whose path names the tab: ``/heartbeat/<hash>``, ``/stream/<hash>/…``
_PATH_HASH = re.compile(r"^/(?:gradio_api/)?(?:heartbeat|stream)/([^/]+)")
#: routes that carry the tab in their JSON body (joining the queue, cancelling, component calls, and
#: ``/run/…``, ``/api/…``: gradio runs an unqueued event there with the named tab's state)
BODY_HASH_ROUTE = re.compile(r"^/(?:gradio_api/)?(queue/join|cancel|component_server|(?:run|api)/[^/]+)/?$")
#: routes that add an event to gradio's queue (the only one left open: ``/call/…`` is closed)
JOIN_ROUTE = re.compile(r"^/(?:gradio_api/)?queue/join/?$")


def tabs_of(path: str, query: str, body: Any = None) -> list[str]:
    """The session hashes a request names, wherever gradio reads one from (usually one; none: []).

    Every one is returned, not the first: a query may name ``session_hash`` twice, and gradio (Starlette)
    reads the last of them, so checking only the first let a user read another's stream with
    ``?session_hash=mine&session_hash=theirs`` (found by an attacker's probe)."""
    m = _PATH_HASH.match(path)
    if m:
        return [m.group(1)]
    if re.match(r"^/(?:gradio_api/)?queue/data/?$", path):
        return [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "session_hash"]
    if BODY_HASH_ROUTE.match(path) and isinstance(body, dict):
        value = body.get("session_hash")
        return [value] if isinstance(value, str) and value else []
    return []


class TabOwners:
    """Session hash → the user who sent it first. Bounded twice: a user keeps at most
    ``per_user`` tabs (their own oldest is forgotten first), and all users together ``max_tabs``
    (the oldest of anyone's first). A forgotten hash is claimed anew by whoever sends it next, so
    without the bound per user one account could send new hashes until another user's open tab
    was forgotten, then claim it (an attacker's probe: 171 claims a second push out any tab of
    100,000 in ten minutes). Now that takes hundreds of accounts."""

    def __init__(self, max_tabs: int = 100_000, per_user: int = 256) -> None:
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._by_user: dict[str, OrderedDict[str, None]] = {}
        self._max = max_tabs
        self._per_user = per_user
        self._lock = threading.Lock()

    def claim(self, tab: str, user: str) -> bool:
        """True when ``user`` may use ``tab``: it is theirs, or nobody's yet (then it becomes theirs)."""
        with self._lock:
            owner = self._owners.get(tab)
            if owner is None:
                self._owners[tab] = user
                mine = self._by_user.setdefault(user, OrderedDict())
                mine[tab] = None
                if len(mine) > self._per_user:
                    self._forget(next(iter(mine)))
                if len(self._owners) > self._max:
                    self._forget(next(iter(self._owners)))
                return True
            self._owners.move_to_end(tab)
            if owner == user:
                self._by_user[user].move_to_end(tab)
            return owner == user

    def _forget(self, tab: str) -> None:
        user = self._owners.pop(tab)
        mine = self._by_user[user]
        del mine[tab]
        if not mine:
            del self._by_user[user]

    def owner(self, tab: str) -> str | None:
        with self._lock:
            return self._owners.get(tab)


def open_events(queue, owners: TabOwners, user: str, concurrency_id: str | None = None) -> int:
    """Events of ``user``'s tabs that wait in gradio's queue or run now, of one concurrency group
    (``None``: of all).

    Reads gradio's queue (``gradio.queueing.Queue``, pinned with gradio): its waiting events per
    concurrency group and its running jobs."""
    def events() -> Iterable:
        for waiting in list(queue.event_queue_per_concurrency_id.values()):
            yield from list(waiting.queue)
        for job in list(queue.active_jobs):
            yield from (job or [])

    return sum(1 for event in events() if owners.owner(event.session_hash) == user
               and (concurrency_id is None or event.concurrency_id == concurrency_id))


def concurrency_group(blocks, fn_index: Any) -> str | None:
    """The concurrency group of event function ``fn_index`` of gradio ``blocks`` (None: unknown)."""
    fn = blocks.fns.get(fn_index) if isinstance(fn_index, int) else None
    return None if fn is None else str(fn.concurrency_id)
