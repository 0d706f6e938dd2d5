"""`kiportal oparl sources list`: the run status in German, and what went wrong below it."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from ui.cli import cli
from ui.cli_oparl import source_lines

ROW = {"id": "3f2a9c0011223344", "collection": "rat", "interval_hours": 24, "url": "https://ris.example.org/oparl",
       "last_status": "", "last_message": ""}
ERRORS = "3 Vorgänge importiert; 2 Fehler – zuerst „Drucksache 12“: Zeitüberschreitung"


@pytest.mark.parametrize("status, message, status_text, second_line", [
    ("", "", "–", None),
    ("done", "3 Vorgänge importiert; 0 Fehler", "fertig", None),
    ("with_errors", ERRORS, "mit Fehlern", ERRORS),
    ("failed", "Ungültige OParl-Adresse", "fehlgeschlagen", "Ungültige OParl-Adresse"),
    ("with_errors", "", "mit Fehlern", None),
    ("with_errors", "zwei\nZeilen", "mit Fehlern", "zwei Zeilen"),
])
def test_source_lines(status, message, status_text, second_line):
    lines = source_lines(ROW | {"last_status": status, "last_message": message})
    assert lines[0].split() == ["3f2a9c00", "rat", "alle", "24", "h", *status_text.split(), ROW["url"]]
    assert "with_errors" not in "\n".join(lines)
    assert [line.strip() for line in lines[1:]] == ([second_line] if second_line else [])


def test_sources_list_says_mit_fehlern_and_the_first_error(tmp_path):
    from assistant.appdb import AppDB

    def invoke(*args):
        return CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], obj={})

    assert invoke("oparl", "sources", "add", "https://ris.example.org/oparl", "--interval", "0").exit_code == 0
    AppDB(f"sqlite:///{tmp_path / 'data' / 'app.sqlite3'}").execute(
        "UPDATE oparl_sources SET last_status='with_errors', last_message=:m", {"m": ERRORS})
    out = invoke("oparl", "sources", "list")
    assert out.exit_code == 0, out.output
    assert "with_errors" not in out.output
    assert "mit Fehlern" in out.output and "2 Fehler – zuerst „Drucksache 12“: Zeitüberschreitung" in out.output
    assert out.output.endswith("1 Quelle\n")
