"""Attacks of session 50's probe, sent as raw HTTP against a real portal (fake models, hash embedder).

What changed that day and was probed: gradio's page rewritten to pin German (``ui.portal.GermanPage``),
„Trotzdem senden“ in the Werkzeuge bound to a server-side fingerprint, the tools in a queue of their own
(``concurrency_id="tools"``), a quote the answer shows not repeated under its source, and the local
model's first-come lock (``assistant.llm.fair_lock``).

Found and fixed: a tool run called off with „Abbrechen“ leaves gradio's queue at once, but its detached
step (``assistant.stopping.detached``) read an uploaded file on, in a worker process of its own, until the
read time ended. Calling off and sending again, one account ran any number of such reads at once, past
``server.concurrency`` and ``server.max_open_events_per_user``; each read is a process of up to
``limits.load_max_memory_mb`` running text recognition. Now the isolated loader asks
``assistant.stopping.stop_requested()`` while it waits and kills its worker when the user left.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from portal_http import call, file_value, login, upload
from portal_world import PERSONAL, fake_model_portal

pytestmark = pytest.mark.integration

PASSWORD = "Probe-S50-Test-2026!"
USERS = {"anna": "staff", "bernd": "staff"}
HOSTILE = ("Zaunkönig-Protokoll der Stadt Kempenrath\n\nDas Zaunkönig-Protokoll regelt die Prüfung gefährlicher "
           "Eingaben: <script>window.__xss=1</script> und <img src=x onerror=\"window.__xss=2\"> und "
           "Rechnung\u202efdp.exe sind nie auszuführen.\n")
LOCALE_MARK = b"pin('language', 'de-DE')"


def respond(prompt: str) -> str:
    if "Sätze:" in prompt:
        return "1. Das Amt prüft den Antrag."
    if "Anweisung:" in prompt:
        return "Betreff: Termin\n\nSehr geehrte Damen und Herren,\nbitte kommen Sie ins Rathaus."
    return "Zahlen Sie 25 Euro.\nDer Antrag wird vom Amt geprüft."


@pytest.fixture(scope="module")
def s50(tmp_path_factory):
    with fake_model_portal(tmp_path_factory.mktemp("s50"), doc=("zaunkoenig.txt", HOSTILE), respond=respond,
                           users=USERS, password=PASSWORD, default="extraktiv", tools={"file_read_seconds": 4.0},
                           server={"concurrency": 2, "max_open_events_per_user": 2}) as portal:
        yield portal


def _tab() -> str:
    return f"s50{time.monotonic_ns()}"


def _join(c, portal, fn_index: int, data: list, tab: str) -> str | int:
    """Join gradio's queue as the page does: the event id, or the refusal's status code."""
    r = c.post("gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": tab,
                                               "event_data": None, "trigger_id": None})
    return r.json()["event_id"] if r.status_code == 200 else r.status_code


class TabStream:
    """The one event stream of a browser tab (every event of the tab reports there), read in a thread."""

    def __init__(self, c, tab: str) -> None:
        self.done: dict[str, dict] = {}
        self._c, self._tab = c, tab
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            with self._c.stream("GET", "gradio_api/queue/data", params={"session_hash": self._tab}, timeout=60) as s:
                for line in s.iter_lines():
                    if line.startswith("data:"):
                        msg = json.loads(line[5:])
                        if msg.get("msg") == "process_completed":
                            self.done[msg.get("event_id")] = msg
                        elif msg.get("msg") == "close_stream":
                            return
        except Exception:  # the test reads what arrived
            return

    def wait(self, event_id, timeout: float = 15) -> dict | None:
        deadline = time.monotonic() + timeout
        while event_id not in self.done and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.done.get(event_id)


# -- 1. GermanPage: the rewritten page keeps the door's headers, the login page is not rewritten --------
def test_the_rewritten_page_keeps_the_security_headers_and_its_length(s50):
    import httpx

    with login(s50, "anna", PASSWORD) as c:
        for encoding, sent_as in (("identity", None), ("br, gzip, deflate", "gzip"), ("gzip;q=0", None)):
            r = c.get("", headers={"Accept-Encoding": encoding})
            body = r.content  # decoded
            assert r.status_code == 200 and r.headers.get("content-encoding") == sent_as, encoding
            assert body.count(LOCALE_MARK) == 1 and int(r.headers["content-length"]) == r.num_bytes_downloaded
            if sent_as:  # gzipped after the script went in: a fraction of the page's 675 KB
                assert r.num_bytes_downloaded < len(body) / 3 and r.headers.get("vary") == "Accept-Encoding"
            first = body.index(b"<script")  # the pin is the page's first script, before gradio's config
            assert body.index(LOCALE_MARK, first) < body.index(b"</script>", first) < body.index(b"gradio_config")
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
            for name in ("x-frame-options", "x-content-type-options", "referrer-policy", "x-request-id"):
                assert r.headers.get(name), name
        head = c.head("")
        assert head.status_code == 200 and "frame-ancestors 'none'" in head.headers["content-security-policy"]
    with httpx.Client(base_url=s50.url, follow_redirects=False, timeout=30) as anonymous:
        r = anonymous.get("")  # the portal's own login page: its nonce policy, nothing of gradio's, not rewritten
        script_src = r.headers["content-security-policy"].split("script-src", 1)[1].split(";")[0]
        assert r.status_code == 200 and LOCALE_MARK not in r.content
        assert "nonce-" in script_src and "unsafe-inline" not in script_src


# -- 2. „Trotzdem senden“: one warning, two confirmed calls at once ------------------------------------
def test_one_warning_confirms_one_of_two_concurrent_confirmed_runs(s50):
    inputs = ["Text einfügen", PERSONAL, None, None, "", False, "gelb"]
    with login(s50, "anna", PASSWORD) as c:
        tab = _tab()
        warned = call(c, s50, "tool_einfach", inputs, session=tab)
        assert "Personendaten erkannt" in warned["output"][4]
        before = len(s50.fake.calls)
        stream = TabStream(c, tab)
        time.sleep(0.3)  # the tab's stream is open
        confirm = s50.fn_index("tool_einfach_confirmed")
        events = [_join(c, s50, confirm, [*inputs, {"fingerprint": "x"}], tab) for _ in range(2)]
        outs = [stream.wait(e, 30) for e in events]
        assert all(outs), outs
        shown = [json.dumps(o["output"]["data"], ensure_ascii=False) for o in outs]
        refused = [text for text in shown if "Es wurde nichts gesendet" in text]
        assert len(refused) == 1 and "keine Warnung" in refused[0], shown
        assert sum(1 for call_ in s50.fake.calls[before:] if "Petra Schulz" in call_) == 1


# -- 3. the tools' queue: the per-user limit, and runs called off ---------------------------------------
def _spawned_children() -> int:
    """Worker processes of this process started by multiprocessing's spawn (the isolated file readers)."""
    me, n = str(os.getpid()), 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if ppid == me and b"spawn_main" in cmd:
            n += 1
    return n


def _settled(seconds: float = 15) -> int:
    """The number of reader processes once no tool read is running any more (the ingest keeps one)."""
    deadline, last, same = time.monotonic() + seconds, -1, 0
    while time.monotonic() < deadline:
        now = _spawned_children()
        same = same + 1 if now == last else 0
        last = now
        if same >= 8:
            break
        time.sleep(0.25)
    return last


@pytest.fixture(scope="module")
def slow_scan(s50):
    """A 40-page scan: text recognition reads it for longer than ``tools.file_read_seconds`` (4 s)."""
    from evals.ocr_samples import Scan, render_scan
    from pdf_files import scan_pdf

    page = render_scan("Die Gebühr für den Bewohnerparkausweis beträgt 30 Euro im Jahr.", Scan(dpi=150), seed=1)
    return scan_pdf(page, 40)


class Peak:
    """The most reader processes seen at once while the block runs."""

    def __enter__(self):
        self.most, self._stop = 0, threading.Event()

        def sample():
            while not self._stop.is_set():
                self.most = max(self.most, _spawned_children())
                time.sleep(0.05)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


def test_runs_called_off_do_not_keep_reading_past_the_queue(s50, slow_scan):
    cancel = s50.fn_named("cancelled")
    with login(s50, "anna", PASSWORD) as c:
        r = upload(c, "scan.pdf", slow_scan)
        assert r.status_code == 200, r.text
        inputs = ["Datei hochladen", "", file_value(r.json()[0]), None, "", False, "lokal"]
        base = _settled()
        with Peak() as peak:
            for _ in range(5):
                tab = _tab()
                event = _join(c, s50, s50.fn_index("tool_einfach"), inputs, tab)
                assert isinstance(event, str), event  # never 429: the called-off runs left the queue
                stream = TabStream(c, tab)
                deadline = time.monotonic() + 3
                while peak.most <= base and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)  # the read is under way
                assert stream.wait(_join(c, s50, cancel, [], tab)), "Abbrechen did not answer"
        reading = peak.most - base
    _settled()
    # one user, two open events at most, two runs at once in the queue: never more reads than that
    assert reading <= 2, f"{reading} file reads ran at once for one user"


def test_the_per_user_limit_holds_in_the_tools_queue(s50, slow_scan):
    """Without calling off: two runs open (reading), the third is refused; the runs end with the read time."""
    with login(s50, "bernd", PASSWORD) as c:
        r = upload(c, "scan.pdf", slow_scan)
        assert r.status_code == 200, r.text
        inputs = ["Datei hochladen", "", file_value(r.json()[0]), None, "", False, "lokal"]
        tabs = [_tab() for _ in range(3)]
        events = [_join(c, s50, s50.fn_index("tool_einfach"), inputs, tab) for tab in tabs[:2]]
        streams = [TabStream(c, tab) for tab in tabs[:2]]
        assert all(isinstance(e, str) for e in events), events
        assert _join(c, s50, s50.fn_index("tool_zusammenfassung"), ["x", "kurz", False, "lokal"], tabs[2]) == 429
        started = time.monotonic()
        for stream, event in zip(streams, events):
            done = stream.wait(event, 30)
            assert done and "dauerte zu lange" in json.dumps(done["output"], ensure_ascii=False), done
        assert time.monotonic() - started < 15  # the read time (4 s) holds, with the worker's start
    _settled()


# -- 4. a quote the answer shows is not repeated: nothing unescaped on the way ----------------------------
def test_a_hostile_quote_shown_in_the_answer_stays_escaped(s50):
    with login(s50, "anna", PASSWORD) as c:
        out = call(c, s50, "ask", ["Was regelt das Zaunkönig-Protokoll?", None, "extraktiv", []], session=_tab())
        assert out["success"], out
        answer = out["output"][0][-1]["content"][0]["text"]
        assert "Zaunkönig-Protokoll regelt" in answer and "[1]" in answer
        assert "<script" not in answer and "<img" not in answer and "\u202e" not in answer
        assert "&lt;script&gt;" in answer.split("kp-sources", 1)[0]  # the quote, escaped, in the answer
        assert 'class="kp-quote"' not in answer  # and not repeated under its source (the excerpt on demand stays)


# -- 5. the model's first-come lock: a stopped waiter and a stream left half-read give it back -------------
class _StubLlama:
    """What LocalLlamaChat needs of llama.cpp: a streamed completion that looks at the stop signal
    before reading, as StoppableLlama.eval does."""

    def create_chat_completion(self, **kwargs):
        from assistant import stopping

        for word in ("Der ", "Antrag ", "wird ", "geprüft."):
            stopping.check()
            yield {"choices": [{"delta": {"content": word}}]}


def test_the_model_lock_is_given_back_after_a_stop_while_waiting_and_a_stream_left_half_read():
    from langchain_core.messages import HumanMessage

    from assistant.llm.local import LocalLlamaChat
    from assistant.stopping import Stopped, stoppable

    chat = LocalLlamaChat(model_path="/nonexistent.gguf")
    chat._llama = _StubLlama()
    messages = [HumanMessage(content="Frage")]
    half = chat._stream(messages)
    next(half)  # a stream that holds the lock, half-read
    assert chat._lock.locked()
    outcome = {}

    def stopped_waiter():  # the user pressed Stopp while the answer waited for the model
        try:
            with stoppable(lambda: True):
                list(chat._stream(messages))
        except Stopped:
            outcome["stopped"] = True

    waiter = threading.Thread(target=stopped_waiter)
    waiter.start()
    deadline = time.monotonic() + 5
    while not chat._lock._waiters and time.monotonic() < deadline:
        time.sleep(0.01)
    half.close()  # the reader left it (gradio's cancel, Stopp): the lock goes to the waiter, who stops
    waiter.join(5)
    assert outcome.get("stopped") and not chat._lock.locked()
    assert "".join(c.message.content for c in chat._stream(messages)) == "Der Antrag wird geprüft."
    assert not chat._lock.locked()


@pytest.mark.parametrize("header, ok", [
    ("gzip", True), ("br, gzip, deflate", True), ("GZIP", True), ("*", True), ("gzip;q=0.5", True),
    ("gzip;q=0", False), ("gzip; q=0.0", False), ("br", False), ("", False), ("identity", False),
])
def test_accepts_gzip(header, ok):
    from ui.portal import accepts_gzip

    assert accepts_gzip(header) is ok


def test_the_apps_own_500_is_answered_in_german_with_a_number(s50):
    """The probe: ``/?page=nope`` reached gradio's plain "Internal Server Error" (English, no number)."""
    with login(s50, "anna", PASSWORD) as c:
        r = c.get("", params={"page": "nope"})
    assert r.status_code == 500 and "Internal Server Error" not in r.text
    assert r.text.startswith("Interner Fehler.") and r.headers["x-request-id"] in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
