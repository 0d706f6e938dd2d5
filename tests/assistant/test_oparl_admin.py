"""OParl sources: when one is due (pure), the German messages for staff, and a run with errors."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from assistant.oparl_admin import MAX_ERROR_CHARS, failure_detail_de, is_due, missing_source_message, run_status_de

H = 3600.0


@pytest.mark.parametrize("interval, last, at, due", [
    (0, None, 1000.0, False),            # by hand only
    (0, 0.0, 10 * H, False),
    (-1, None, 1000.0, False),
    (24, None, 1000.0, True),            # never ran
    (24, 0.0, 24 * H - 1, False),
    (24, 0.0, 24 * H, True),
    (0.5, 100.0, 100.0 + 0.5 * H, True),
    (6, 100.0, 100.0 + 5 * H, False),
])
def test_is_due(interval, last, at, due):
    assert is_due(interval, last, at) is due


@pytest.mark.parametrize("source_id, message", [
    (None, "Bitte zuerst eine OParl-Quelle auswählen."),   # "Jetzt abgleichen" with no row chosen
    ("", "Bitte zuerst eine OParl-Quelle auswählen."),
    ("   ", "Bitte zuerst eine OParl-Quelle auswählen."),
    ("3f2a9c", "Diese OParl-Quelle gibt es nicht (mehr)."),  # removed in the meantime
])
def test_missing_source_message(source_id, message):
    assert missing_source_message(source_id) == message


@pytest.mark.parametrize("status, text", [
    ("done", "fertig"), ("with_errors", "mit Fehlern"), ("failed", "fehlgeschlagen"), ("", "–"), (None, "–"),
    ("neu", "neu"),  # an unknown status is shown as it is, not hidden
])
def test_run_status_de(status, text):
    assert run_status_de(status) == text


@pytest.mark.parametrize("failed, text", [
    ([], ""),
    ([{"object": "https://ris/p/12", "label": "Drucksache 12", "error": "Zeitüberschreitung"}],
     "„Drucksache 12“: Zeitüberschreitung"),
    ([{"object": "https://ris/p/12", "label": "", "error": "HTTP 500"}, {"object": "x", "label": "y", "error": "z"}],
     "zuerst „https://ris/p/12“: HTTP 500"),
    ([{"object": "", "label": "", "error": "kaputt\nzweite Zeile"}], "kaputt zweite Zeile"),
    ([{"object": "o", "label": "L", "error": ""}], "„L“: unbekannter Fehler"),
    ([{"object": "o", "label": "L", "error": "x" * 400}], "„L“: " + "x" * (MAX_ERROR_CHARS - 1) + "…"),
])
def test_failure_detail_de(failed, text):
    assert failure_detail_de(failed) == text


class _Audit:
    def __init__(self, db):
        self.db, self.records = db, []

    def record(self, *args):
        self.records.append(args)


class _Report:
    def __init__(self, failed):
        self.failed = failed

    def as_dict(self):
        return {"collection": "rat", "imported": 3, "unchanged_objects": 0, "deleted_objects": 0, "downloaded": 2,
                "files_unchanged": 0, "text_fallback": 0, "documents_removed": 0, "requests": 7,
                "failed": self.failed, "ok": not self.failed}


@pytest.fixture
def oparl(tmp_path):
    from assistant.appdb import AppDB
    from assistant.oparl_admin import OParlAdmin

    admin = SimpleNamespace(audit=_Audit(AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")), jobs=SimpleNamespace(),
                            app=SimpleNamespace())
    return OParlAdmin(admin)


def test_sync_without_a_chosen_source_asks_to_choose_one(oparl):
    from assistant.admin_rules import AdminError

    for source_id in ("", None):
        with pytest.raises(AdminError, match="^Bitte zuerst eine OParl-Quelle auswählen.$"):
            oparl.submit_sync(source_id, "adam")
    with pytest.raises(AdminError, match="gibt es nicht"):
        oparl.submit_sync("unbekannt", "adam")


def test_a_run_with_errors_records_how_many_and_the_first_error(oparl):
    failed = [{"object": "https://ris.example.org/p/12", "label": "Drucksache 12", "error": "Zeitüberschreitung"},
              {"object": "https://ris.example.org/p/13", "label": "Drucksache 13", "error": "HTTP 500"}]
    oparl.admin.app.oparl_importer = lambda: SimpleNamespace(sync=lambda url, coll, progress=None: _Report(failed))
    src = oparl.add_source("https://ris.example.org/oparl", "rat", 0, "adam")
    job = SimpleNamespace(params={"source": src["id"], "url": src["url"], "collection": "rat"}, actor="adam",
                          ingest_progress=lambda prefix="": None)
    _, msg = oparl.run_job(job)
    row = oparl.source(src["id"])
    assert row["last_status"] == "with_errors" and row["last_message"] == msg
    assert msg.endswith("; 2 Fehler – zuerst „Drucksache 12“: Zeitüberschreitung")
