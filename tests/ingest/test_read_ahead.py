"""The ingest's read-ahead: bounded by passages, never blocking for good."""
from __future__ import annotations

import threading
import time

from ingest.read_ahead import ReadAhead


def _queue(max_chunks: int = 10, stopped: threading.Event | None = None) -> ReadAhead[int]:
    return ReadAhead(max_chunks, lambda n: n, stopped or threading.Event())  # an item's size is its value


def _put_later(q: ReadAhead[int], item: int) -> tuple[threading.Thread, list[bool]]:
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(q.put(item)), daemon=True)
    t.start()
    return t, result


def test_items_come_out_in_order_and_the_waiting_passages_are_counted():
    q = _queue()
    assert q.put(3) and q.put(4) and q.put(None)
    assert q.waiting_chunks == 7 and not q.empty()
    assert [q.get(), q.get(), q.get()] == [3, 4, None]
    assert q.empty() and q.waiting_chunks == 0


def test_the_reader_waits_while_the_bound_is_reached_and_goes_on_when_the_embedder_takes_an_item():
    q = _queue(10)
    assert q.put(6)
    t, result = _put_later(q, 5)  # 11 > 10: waits
    t.join(0.3)
    assert t.is_alive() and result == [] and q.waiting_chunks == 6
    assert q.get() == 6
    t.join(2)
    assert result == [True] and q.get() == 5


def test_a_document_larger_than_the_bound_passes_alone_so_nothing_blocks_for_good():
    q = _queue(10)
    assert q.put(50)  # empty queue: accepted at once
    t, result = _put_later(q, 1)
    t.join(0.3)
    assert t.is_alive()  # but nothing joins it until it is taken
    assert q.get() == 50
    t.join(2)
    assert result == [True]


def test_done_is_always_accepted_and_a_stopped_embedder_releases_a_waiting_reader():
    stopped = threading.Event()
    q = _queue(10, stopped)
    assert q.put(10)
    t, result = _put_later(q, 5)
    t.join(0.2)
    assert t.is_alive()
    stopped.set()
    t.join(2)
    assert result == [False]  # the reader gives up instead of waiting for an embedder that is gone
    assert q.put(None)  # the reader's "done" still goes in, even over the bound
    assert q.put(1) is False  # and nothing else once stopped


def test_get_waits_for_the_reader():
    q = _queue()
    got: list[int | None] = []
    t = threading.Thread(target=lambda: got.append(q.get()), daemon=True)
    t.start()
    time.sleep(0.1)
    assert got == []
    q.put(2)
    t.join(2)
    assert got == [2]
