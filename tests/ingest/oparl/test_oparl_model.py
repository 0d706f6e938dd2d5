"""Pure OParl decisions: citation titles, cleaning of untrusted text, when to download again."""
from __future__ import annotations

import pytest

from ingest.oparl.model import (
    RemoteFile, clean, file_meta, file_title, german_date, needs_download, parse_file, parse_item,
)

T = "https://schema.oparl.org/1.1/"
BODY = {"id": "https://ris.example/body/1", "name": "Stadt Musterstadt"}


def paper(**kw) -> dict:
    base = {"id": "https://ris.example/paper/1", "type": T + "Paper", "name": "Einführung der Biotonne",
            "reference": "2025/117", "paperType": "Beschlussvorlage", "modified": "2025-03-01T10:00:00+01:00",
            "mainFile": {"id": "https://ris.example/file/1", "type": T + "File", "name": "Vorlage",
                         "accessUrl": "https://ris.example/f/1.pdf", "sha1Checksum": "A" * 40, "size": 10},
            "auxiliaryFile": [{"id": "https://ris.example/file/2", "type": T + "File", "name": "Anlage 1 Kosten",
                               "accessUrl": "https://ris.example/f/2.pdf"}]}
    base.update(kw)
    return base


@pytest.mark.parametrize("obj, label", [
    (paper(), "Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne"),
    (paper(paperType=None), "Drucksache 2025/117: Einführung der Biotonne"),
    (paper(reference=None), "Drucksache (Beschlussvorlage): Einführung der Biotonne"),
    (paper(name="  Einführung\n\tder\x00 Biotonne\u202e "), "Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne"),
    ({"id": "https://ris.example/meeting/1", "type": T + "Meeting", "name": "12. Sitzung des Rates",
      "start": "2025-03-04T18:00:00+01:00"}, "12. Sitzung des Rates am 04.03.2025"),
    ({"id": "https://ris.example/meeting/2", "type": T + "Meeting"}, "Sitzung"),
])
def test_labels(obj, label):
    assert parse_item(obj, BODY).label == label


def test_file_titles_name_the_role():
    item = parse_item(paper(), BODY)
    main, aux = item.files
    assert file_title(item, main) == "Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne"
    assert file_title(item, aux) == ("Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne – "
                                     "Anlage: Anlage 1 Kosten")
    meeting = parse_item({"id": "m", "type": T + "Meeting", "name": "Rat", "start": "2025-03-04",
                          "resultsProtocol": {"id": "f", "accessUrl": "https://x/f"}}, BODY)
    assert file_title(meeting, meeting.files[0]) == "Rat am 04.03.2025 – Ergebnisprotokoll"


def test_meta_carries_what_docs_list_shows():
    item = parse_item(paper(), BODY)
    meta = file_meta(item, item.files[0])
    assert meta["body"] == "Stadt Musterstadt" and meta["reference"] == "2025/117"
    assert meta["paper_type"] == "Beschlussvorlage" and meta["oparl_type"] == "paper"
    assert meta["access_url"] == "https://ris.example/f/1.pdf" and meta["file_role"] == "mainFile"
    assert meta["title"].startswith("Drucksache 2025/117")


def test_a_file_used_for_several_roles_becomes_one_document():
    f = {"id": "https://ris.example/file/9", "accessUrl": "https://x/9"}
    m = parse_item({"id": "m", "type": T + "Meeting", "invitation": f, "resultsProtocol": f,
                    "auxiliaryFile": [f, {"id": "https://ris.example/file/10", "accessUrl": "https://x/10"}]}, BODY)
    assert [(x.id[-1:], x.role) for x in m.files] == [("9", "invitation"), ("0", "auxiliaryFile")]


def test_deleted_objects_and_junk():
    d = parse_item({"id": "p", "type": T + "Paper", "deleted": True, "modified": "2025-04-01"}, BODY)
    assert d.deleted and d.files == ()
    assert parse_item({"id": "o", "type": T + "Organization"}, BODY) is None
    assert parse_item({"type": T + "Paper"}, BODY) is None
    assert parse_file({"id": "f", "deleted": True}, "mainFile") is None
    f = parse_file({"id": "f", "size": True, "sha1Checksum": "nothex", "accessUrl": 5}, "mainFile")
    assert f.size is None and f.sha1 == "" and f.access_url == ""


@pytest.mark.parametrize("value, out", [
    ("2025-03-04", "04.03.2025"), ("2025-03-04T18:00:00+01:00", "04.03.2025"), ("gestern", ""), (None, ""),
])
def test_german_date(value, out):
    assert german_date(value) == out


def test_clean_cuts_and_rejects_non_strings():
    assert clean({"x": 1}) == "" and clean(5) == ""
    long = clean("a" * 1000)
    assert len(long) == 240 and long.endswith("…")


F = RemoteFile(id="f", role="mainFile", sha1="a" * 40, modified="2025-03-01", size=10)


@pytest.mark.parametrize("stored, f, fetch", [
    (None, F, True),                                                            # never fetched
    ({"mode": "text", "sha1": "a" * 40}, F, True),                              # only its text last time
    ({"mode": "file", "sha1": "a" * 40, "modified": "old", "size": 99}, F, False),  # checksum decides
    ({"mode": "file", "sha1": "b" * 40, "modified": "2025-03-01", "size": 10}, F, True),
    ({"mode": "file", "sha1": "", "modified": "2025-03-01", "size": 99}, F, False),  # then modified
    ({"mode": "file", "sha1": "", "modified": "2025-02-01", "size": 10}, F, True),
    ({"mode": "file", "sha1": "", "modified": "", "size": 10}, F, False),             # then size
    ({"mode": "file", "sha1": "", "modified": "", "size": 11}, F, True),
    ({"mode": "file", "sha1": "", "modified": "", "size": None}, F, True),            # nothing to compare
    ({"mode": "file", "sha1": "", "modified": "", "size": None}, RemoteFile(id="f", role="mainFile"), True),
])
def test_needs_download(stored, f, fetch):
    assert needs_download(stored, f) is fetch


@pytest.mark.parametrize("file_name, name, stem", [
    ("vorlage-2025-117.pdf", "", "vorlage-2025-117"),
    ("../../etc/passwd", "", "passwd"), ("C:\\Temp\\brief.docx", "", "brief"),
    ("Anlage 1 (Kosten).PDF", "", "Anlage-1-Kosten"),
    ("", "Übersichtsplan Süd", "Übersichtsplan-Süd"),
    ("....", "", "datei"),
    ("", "", "datei"),
])
def test_readable_stem_is_safe(file_name, name, stem):
    from ingest.oparl.sync import readable_stem

    assert readable_stem(RemoteFile(id="f", role="mainFile", file_name=file_name, name=name)) == stem
