"""Also found: exports for anyone with the URL, live Markdown in exports, a world-readable data dir."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from sec_client import audit, call, http, login

pytestmark = pytest.mark.integration

HOSTILE_Q = "Was gilt für [klick](javascript:alert(1)) und ![](https://tracker.example/p.png) bei der Kantine?"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def exported(pw_portal):
    """anna's chat with a hostile question, exported: (url path, client of anna)."""
    with login(pw_portal, "anna") as c:
        tab = "anna-tab"  # one browser tab: the chat id is kept in its session state
        asked = call(c, pw_portal, "ask", [HOSTILE_Q, None, "extraktiv", []], session=tab)
        assert asked["success"], asked
        result = call(c, pw_portal, "export_chat", [None], session=tab)
        assert result["success"], result
        file = result["output"][0]["value"] if "value" in result["output"][0] else result["output"][0]
        yield file, c


def test_an_export_is_served_only_to_its_owner_once(pw_portal, exported):
    file, anna = exported
    path = file["path"]
    assert _mode(Path(path)) == 0o600 and _mode(Path(path).parent) == 0o700
    url = "gradio_api/file=" + path
    with http(pw_portal) as anonymous:
        assert anonymous.get(url).status_code == 401
    with login(pw_portal, "bernd") as bernd:
        assert bernd.get(url).status_code == 404
    with login(pw_portal, "adam") as admin:  # not even an administrator
        assert admin.get(url).status_code == 404
    r = anna.get(url)
    assert r.status_code == 200 and "Kantine" in r.text
    text = r.text
    assert "](javascript" not in text and "![](" not in text and "<script" not in text
    assert anna.get(url).status_code == 404 and not Path(path).exists()  # gone after the download
    refused = audit(pw_portal, "export_refused")
    assert {e["actor"] for e in refused} >= {"bernd", "adam"}


def test_data_dir_is_private(pw_portal):
    home = pw_portal.home
    for name in ("app.sqlite3", "portal_secret", "catalog.sqlite3"):
        assert _mode(home / name) == 0o600, name
    for folder in [home, *[p for p in home.rglob("*") if p.is_dir() and not p.is_symlink()
                           and "multilingual-e5-small" not in p.parts]]:
        assert _mode(folder) == 0o700, folder


def test_doctor_finds_and_repairs_open_permissions(tmp_path, monkeypatch):
    from ui.cli import cli

    home = tmp_path / "data"
    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    monkeypatch.setenv("KIPORTAL_VECTOR__MODE", "chroma")
    runner = CliRunner()
    r = runner.invoke(cli, ["--data-dir", str(home), "users", "add", "erika", "--password-stdin"],
                      input="Passwort-123\n", obj={})
    assert r.exit_code == 0, r.output
    assert _mode(home / "app.sqlite3") == 0o600
    (home / "app.sqlite3").chmod(0o644)
    (home / "offen").mkdir(mode=0o755)
    (home / "offen").chmod(0o755)
    r = runner.invoke(cli, ["--data-dir", str(home), "doctor", "--no-repair", "--json"], obj={})
    assert r.exit_code == 1 and "app.sqlite3" in r.output and '"data_dir_private": false' in r.output
    r = runner.invoke(cli, ["--data-dir", str(home), "doctor", "--json"], obj={})
    assert r.exit_code == 0, r.output
    assert _mode(home / "app.sqlite3") == 0o600 and _mode(home / "offen") == 0o700


def test_the_word_export_is_served_only_to_its_owner_too(pw_portal):
    """The same door for the .docx export: owner only, once, and another user's tab gets no chat of anna's."""
    with login(pw_portal, "anna") as anna:
        tab = "anna-word-tab"
        assert call(anna, pw_portal, "ask", [HOSTILE_Q, None, "extraktiv", []], session=tab)["success"]
        result = call(anna, pw_portal, "export_chat_docx", [None], session=tab)
        assert result["success"], result
        file = result["output"][0]["value"] if "value" in result["output"][0] else result["output"][0]
        path = file["path"]
        assert path.endswith(".docx") and _mode(Path(path)) == 0o600
        url = "gradio_api/file=" + path
        with login(pw_portal, "bernd") as bernd:
            assert bernd.get(url).status_code == 404
            # bernd naming anna's chat id gets an error, no file (the id is session state: a client's
            # value is not taken, and the handler would refuse a foreign chat either way)
            chat_id = pw_portal.server.handlers.chats.list_chats("anna")[0]["id"]
            refused = call(bernd, pw_portal, "export_chat_docx", [chat_id], session="bernd-tab")
            assert not refused["success"] and refused["output"] is None
            assert refused["error"] in ("Es ist noch kein Chat geöffnet.", "Dieser Chat ist nicht vorhanden.")
        r = anna.get(url)
        assert r.status_code == 200 and r.content[:2] == b"PK"  # a zip: the Word document
        assert anna.get(url).status_code == 404
