"""CLI output helpers (table tests)."""
from __future__ import annotations

import pytest

from ui.cli_common import shown


@pytest.mark.parametrize("name, printed", [
    ("Satzung über Gebühren.pdf", "Satzung über Gebühren.pdf"),          # umlauts and spaces stay
    ("\x1b[31mrot\x1b]0;TITEL\x07\x1b[0m.txt", "\\x1b[31mrot\\x1b]0;TITEL\\x07\\x1b[0m.txt"),  # no colours, no title
    ("zwei\nzeilen.txt", "zwei\\nzeilen.txt"),                             # no fake output line
    ("abc\u202etxt.exe", "abc\\u202etxt.exe"),                             # no right-to-left override
])
def test_file_names_are_printed_without_terminal_control(name, printed):
    assert shown(name) == printed


def test_docs_list_and_the_ingest_summary_print_hostile_names_inertly(tmp_path, monkeypatch):
    """Through the real CLI: a file named with a terminal title sequence and a newline."""
    from click.testing import CliRunner

    from ui.cli import cli

    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "\x1b]0;TITEL\x07zeile\nzwei.txt").write_text("Die Hundesteuer beträgt 96 Euro.\n", encoding="utf-8")
    (docs / "\x1b[31mleer.txt").write_text("", encoding="utf-8")  # fails: its name appears in the summary
    run = lambda *args: CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], obj={})  # noqa: E731
    ingested = run("ingest", str(docs))
    listed = run("docs", "list")
    assert ingested.exit_code == 0 and listed.exit_code == 0, ingested.output + listed.output
    for out in (ingested.output, listed.output):
        assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[31mleer.txt" in ingested.output
    assert "\\x1b]0;TITEL\\x07zeile\\nzwei.txt" in listed.output and "Dokumente" in listed.output.splitlines()[-1]


def _users(tmp_path, monkeypatch, *args, input=None):
    from click.testing import CliRunner

    from ui.cli import cli

    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "users", *args], obj={}, input=input)


def test_password_prompts_answer_a_mismatch_in_german_and_ask_again(tmp_path, monkeypatch):
    res = _users(tmp_path, monkeypatch, "add", "anna", input="geheim-123\ngeheim-124\ngeheim-123\ngeheim-123\n")
    assert res.exit_code == 0, res.output
    assert "Die beiden Eingaben stimmen nicht überein" in res.output and "do not match" in res.output
    assert "Error" not in res.output and "Repeat for confirmation" not in res.output
    assert _users(tmp_path, monkeypatch, "list").output.count("anna") == 1


@pytest.mark.parametrize("answer, handed", [("j\n", True), ("Ja\n", True), ("y\n", True), ("n\n", False), ("\n", False),
                                            ("", False)])  # "" : end of input, as Ctrl-D
def test_a_handover_asks_in_german_and_takes_j_for_yes(tmp_path, monkeypatch, answer, handed):
    assert _users(tmp_path, monkeypatch, "add", "tina", "--password-stdin", input="geheim-123\n").exit_code == 0
    res = _users(tmp_path, monkeypatch, "handover", "tina", input=answer)
    assert "[j/N]" in res.output and "Aborted!" not in res.output
    assert (res.exit_code == 0) is handed, res.output
    assert ("Abgebrochen" in res.output) is not handed
    assert ("tina" in _users(tmp_path, monkeypatch, "list").output) is not handed
