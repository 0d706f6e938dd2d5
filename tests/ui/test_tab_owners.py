"""Which browser tab a request names, and who owns it (the HTTP behaviour: tests/security/test_attack_queue_and_tabs.py)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from ui.tab_owners import TabOwners, open_events, tabs_of


@pytest.mark.parametrize("path, query, body, tabs", [
    ("/gradio_api/queue/data", "session_hash=abc", None, ["abc"]),
    ("/gradio_api/queue/data", "x=1&session_hash=abc", None, ["abc"]),
    ("/gradio_api/queue/data", "", None, []),
    # gradio reads the last of a repeated parameter: every one is checked
    ("/gradio_api/queue/data", "session_hash=mine&session_hash=theirs", None, ["mine", "theirs"]),
    ("/gradio_api/queue/data", "session%5Fhash=abc", None, ["abc"]),
    ("/gradio_api/heartbeat/abc", "", None, ["abc"]),
    ("/heartbeat/abc", "", None, ["abc"]),
    ("/gradio_api/stream/abc/run/3/playlist.m3u8", "", None, ["abc"]),
    ("/gradio_api/queue/join", "", {"session_hash": "abc", "fn_index": 1}, ["abc"]),
    ("/gradio_api/cancel", "", {"session_hash": "abc", "event_id": "e"}, ["abc"]),
    ("/gradio_api/component_server", "", {"session_hash": "abc"}, ["abc"]),
    # unqueued events run directly, with the named tab's state
    ("/gradio_api/run/predict", "", {"session_hash": "abc", "fn_index": 8}, ["abc"]),
    ("/gradio_api/api/predict/", "", {"session_hash": "abc", "fn_index": 8}, ["abc"]),
    ("/gradio_api/queue/join", "", {"session_hash": None}, []),   # gradio refuses it itself
    ("/gradio_api/queue/join", "", {"session_hash": ["abc"]}, []),
    ("/gradio_api/queue/join", "", ["abc"], []),
    ("/gradio_api/upload", "session_hash=abc", {"session_hash": "abc"}, []),  # names no tab
    ("/gradio_api/info", "", None, []),
])
def test_tabs_of(path, query, body, tabs):
    assert tabs_of(path, query, body) == tabs


def test_the_first_user_owns_a_tab():
    owners = TabOwners()
    assert owners.claim("t1", "tina") and owners.claim("t1", "tina")
    assert not owners.claim("t1", "sam")
    assert owners.owner("t1") == "tina" and owners.owner("t2") is None


def test_the_oldest_tabs_are_forgotten_first():
    owners = TabOwners(max_tabs=2)
    owners.claim("a", "tina")
    owners.claim("b", "tina")
    owners.claim("a", "tina")  # used again: now the newest
    owners.claim("c", "sam")
    assert owners.owner("b") is None and owners.owner("a") == "tina" and owners.owner("c") == "sam"


def test_one_account_sending_new_tabs_forgets_only_its_own_and_cannot_take_another_users_tab():
    """An attacker's probe: claiming fresh hashes until the victim's open tab was forgotten, then
    claiming it, took about ten minutes at 171 claims a second."""
    owners = TabOwners(max_tabs=1000, per_user=5)
    owners.claim("victim-tab", "tina")
    for i in range(5000):
        owners.claim(f"flood-{i}", "mallory")
    assert not owners.claim("victim-tab", "mallory") and owners.owner("victim-tab") == "tina"
    assert [owners.owner(f"flood-{i}") for i in (4994, 4995, 4999)] == [None, "mallory", "mallory"]
    owners.claim("flood-4995", "mallory")  # used again: the newest of hers
    owners.claim("one-more", "mallory")
    assert owners.owner("flood-4995") == "mallory" and owners.owner("flood-4996") is None


def test_open_events_counts_waiting_and_running_events_of_the_users_tabs():
    owners = TabOwners()
    for tab, user in [("t1", "tina"), ("t2", "tina"), ("s1", "sam")]:
        owners.claim(tab, user)
    ev = lambda tab, group="answer": SimpleNamespace(session_hash=tab, concurrency_id=group)  # noqa: E731
    queue = SimpleNamespace(event_queue_per_concurrency_id={"answer": SimpleNamespace(queue=[ev("t1"), ev("s1"), ev("t2")]),
                                                            "tools": SimpleNamespace(queue=[ev("t2", "tools")])},
                            active_jobs=[None, [ev("t1")], [ev("unknown")], [ev("t1", "load")]])
    assert open_events(queue, owners, "tina") == 5
    assert open_events(queue, owners, "tina", "answer") == 3  # per kind: a page load joins many kinds at once
    assert open_events(queue, owners, "tina", "tools") == 1
    assert open_events(queue, owners, "sam") == 1
    assert open_events(queue, owners, "anna") == 0


def test_concurrency_group():
    from ui.tab_owners import concurrency_group

    blocks = SimpleNamespace(fns={3: SimpleNamespace(concurrency_id="answer")})
    assert concurrency_group(blocks, 3) == "answer"
    assert concurrency_group(blocks, 4) is None and concurrency_group(blocks, "3") is None
