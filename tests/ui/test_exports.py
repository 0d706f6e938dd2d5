"""Download files: private folders, old exports purged (they can hold personal data); a chat's
exports carry the notices the reopened chat shows under its answers."""
from __future__ import annotations

import html
import os
import re
import stat
import tempfile

import gradio as gr
from docx_files import docx_text

from assistant.answer_checks import NOTICE_NO_ANSWER
from assistant.grounding import warning
from ui.exports import export_folder, export_root, write_export


def test_exports_are_private_and_old_ones_are_purged(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)  # exports live in gradio's folder, here under tmp_path
    old = write_export("protokoll.csv", "zeit;nutzer\n1;adam\n")
    assert old.read_text(encoding="utf-8").endswith("adam\n") and old.parent.parent == export_root()
    assert stat.S_IMODE(old.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(export_root().stat().st_mode) == 0o700
    fresh = write_export("chat.md", "Frage")
    hour_ago = old.parent.stat().st_mtime - 3700
    os.utime(old.parent, (hour_ago, hour_ago))
    folder = export_folder()
    assert not old.parent.exists()  # older than an hour: gone
    assert fresh.exists() and folder.is_dir() and folder != fresh.parent


def test_a_parent_planted_by_someone_else_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)  # exports live in gradio's folder, here under tmp_path
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir(mode=0o777)
    export_root().parent.mkdir(parents=True, exist_ok=True)
    export_root().symlink_to(elsewhere)  # another user got there first
    path = write_export("protokoll.csv", "zeit;nutzer\n")
    assert elsewhere not in path.parents and export_root() not in path.parents
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and list(elsewhere.iterdir()) == []
    export_root().unlink()
    export_root().symlink_to(tmp_path / "nowhere")  # dangling: no crash either
    assert write_export("chat.md", "Frage").read_text(encoding="utf-8") == "Frage"


def _shown_notices(handlers, chat_id: str) -> list[str]:
    """The notices under the last answer of the chat as reopened in the portal (read from the store)."""
    answer = handlers.open_chat(gr.Request(username="anna"), chat_id).messages[-1]["content"]
    return [html.unescape(n) for n in re.findall(r'<p class="kp-notice[^"]*"><span[^>]*>[i!]</span>(.*?)</p>', answer)]


def _exported_notices(handlers, chat_id: str) -> tuple[list[str], list[str]]:
    _, md = handlers.export_chat(gr.Request(username="anna"), chat_id)
    _, docx = handlers.export_chat(gr.Request(username="anna"), chat_id, fmt="docx")
    in_word = [line.removeprefix("Hinweis: ") for line in docx_text(docx).split("\n") if line.startswith("Hinweis: ")]
    return re.findall(r"^\*Hinweis: (.*)\*$", md, flags=re.MULTILINE), in_word


def test_chat_exports_carry_the_notices_the_reopened_chat_shows(handlers):
    """Asked through the portal: the notice stored with the answer is in both files, as the chat shows it."""
    question = "Welche Zonen hat das Ampelsystem im Jahr 1987?"  # no passage names the year: a refusal with a notice
    view = list(handlers.ask(gr.Request(username="anna"), question, model="extraktiv"))[-1]
    shown = _shown_notices(handlers, view.chat_id)
    assert shown == ["Die Angabe 1987 aus der Frage steht in keiner gefundenen Textstelle."]
    assert _exported_notices(handlers, view.chat_id) == (shown, shown)

    # several notices, one repeated: the files list them as the chat does, in its order and each once
    chat = handlers.chats.create_chat("anna")
    handlers.chats.add_message("anna", chat, "user", "Wie funktioniert die Technik der Einführung?")
    notices = [NOTICE_NO_ANSWER, warning(["Einführung", "Technik"]), NOTICE_NO_ANSWER]
    handlers.chats.add_message("anna", chat, "assistant", "Siehe Quelle.", [], {"notices": notices})
    shown = _shown_notices(handlers, chat)
    assert shown == notices[:2]
    assert _exported_notices(handlers, chat) == (shown, shown)
