"""Safe upload names and storage: hostile names never escape the uploads tree, duplicates
get their own name, and a crash leaves nothing half-done behind."""
from __future__ import annotations

from pathlib import Path

import pytest

from assistant.uploads import (
    BACKUP_SUFFIX, MAX_NAME, STAGING, Checked, UploadRejected, UploadStore, check_name, safe_dir_name, safe_name,
)
from ingest.loaders import LoadLimits


@pytest.mark.parametrize("raw, expected", [
    ("Bericht 2025.pdf", "Bericht_2025.pdf"),
    ("Gebührenordnung Änderung.DOCX", "Gebührenordnung_Änderung.docx"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\boot.ini", "boot.ini"),
    ("ｂｅｒｉｃｈｔ．ｐｄｆ", "bericht.pdf"),          # full-width letters: NFKC
    ("evil／name.txt", "name.txt"),                  # full-width slash becomes a real one: stripped
    ("a\x00b\x1fc\u202e.txt", "abc.txt"),              # NUL, control, right-to-left override
    (".bashrc", "bashrc"),
    ("...", "datei"),
    ("", "datei"),
    ("CON.txt", "CON_datei.txt"),
    ("lpt1", "lpt1_datei"),
    ("x.tar.gz", "x_tar.gz"),
    ("name.with spaces.ext weird", "name_with_spaces_ext_weird"),
    ("$(rm -rf ~);.pdf", "rm_-rf.pdf"),
    ("<script>alert(1)</script>.html", "script.html"),
])
def test_safe_name(raw, expected):
    assert safe_name(raw) == expected


def test_safe_name_limits_length_and_keeps_extension():
    name = safe_name("ä" * 500 + ".pdf")
    assert len(name) <= MAX_NAME and name.endswith(".pdf")
    assert safe_dir_name("../Bauamt") == "Bauamt"
    assert "/" not in safe_dir_name("a/../../b") and not safe_dir_name("..").startswith(".")


@pytest.mark.parametrize("raw", ["../../etc/passwd", "a/b.pdf", "a\\b.pdf", "..", "  ", "x\x00.pdf", "x\n.pdf"])
def test_names_no_browser_sends_are_refused(raw):
    with pytest.raises(UploadRejected) as err:
        check_name(raw)
    assert err.value.code == "bad_name" and "Unzulässiger Dateiname" in str(err.value)


@pytest.mark.parametrize("raw", ["Bericht (final) v2.txt", "Übersicht – März.txt", "a" * 300 + ".txt"])
def test_unusual_but_legal_names_are_stored_under_a_safe_name(tmp_path, raw):
    check_name(raw)  # raises UploadRejected for a crafted name
    store = _store(tmp_path)
    placed = store.place(store.check(store.stage(_src(tmp_path), raw)), "Bauamt")
    assert placed.is_file() and placed.parent == tmp_path / "uploads" / "Bauamt"
    assert placed.name == safe_name(raw) and " " not in placed.name
    assert placed.suffix == ".txt" and len(placed.name) <= MAX_NAME  # too long: shortened, extension kept


def _store(tmp_path, **limits) -> UploadStore:
    return UploadStore(tmp_path / "uploads", LoadLimits(**limits))


def _src(tmp_path, name="in.txt", text="Die Hundesteuer beträgt 120 Euro im Jahr.\n") -> Path:
    p = tmp_path / "src" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_stage_check_place_and_deduplicate(tmp_path):
    store = _store(tmp_path)
    placed = []
    for _ in range(3):
        staged = store.stage(_src(tmp_path), "Bericht 2025.txt")
        assert staged.path.parent == store.staging
        checked = store.check(staged)
        assert checked.format == "txt"
        placed.append(store.place(checked, "Bauamt"))
    assert [p.name for p in placed] == ["Bericht_2025.txt", "Bericht_2025-2.txt", "Bericht_2025-3.txt"]
    assert all(p.parent == tmp_path / "uploads" / "Bauamt" for p in placed)
    assert list(store.staging.iterdir()) == []
    assert store.contains(placed[0]) and not store.contains(tmp_path / "src" / "in.txt")
    assert not store.contains(store.staging / "x")


def test_rejected_files_are_not_kept(tmp_path):
    store = _store(tmp_path, max_bytes=1000)
    empty = tmp_path / "leer.txt"
    empty.write_bytes(b"")
    with pytest.raises(UploadRejected, match="leer") as err:
        store.stage(empty, "leer.txt")
    assert err.value.code == "empty"
    big = tmp_path / "big.pdf"
    with open(big, "wb") as fh:
        fh.truncate(5000)
    with pytest.raises(UploadRejected, match="zu groß") as err:
        store.stage(big, "big.pdf")
    assert err.value.code == "too_large"
    exe = tmp_path / "prog.pdf"
    # A real DOS/PE header: NULs from byte 3 on, like every Windows program.
    exe.write_bytes(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(range(256)))
    staged = store.stage(exe, "prog.pdf")
    with pytest.raises(UploadRejected) as err:
        store.check(staged)
    assert not staged.path.exists()
    assert not any(p.is_file() for p in (tmp_path / "uploads").rglob("*"))


def test_replace_keeps_backup_until_told(tmp_path):
    store = _store(tmp_path)
    first = store.place(store.check(store.stage(_src(tmp_path, text="alt\n" * 3), "a.txt")), "K")
    backup = store.replace(store.check(store.stage(_src(tmp_path, text="neu\n" * 3), "a.txt")), first)
    assert first.read_text().startswith("neu") and backup.read_text().startswith("alt")
    store.restore(first, backup)
    assert first.read_text().startswith("alt") and not backup.exists()


def test_recover_after_crash(tmp_path):
    from corpus.models import file_sha256

    store = _store(tmp_path)
    known = store.place(store.check(store.stage(_src(tmp_path), "known.txt")), "K")
    orphan = store.place(store.check(store.stage(_src(tmp_path), "orphan.txt")), "K")
    store.stage(_src(tmp_path), "half.txt")  # staged, never checked
    # an interrupted replacement whose new version never reached the catalog
    replaced = store.place(store.check(store.stage(_src(tmp_path, text="alt\n"), "r.txt")), "K")
    old_sha = file_sha256(replaced)
    store.replace(store.check(store.stage(_src(tmp_path, text="neu\n"), "r.txt")), replaced)
    out = store.recover({str(known.resolve()): file_sha256(known), str(replaced.resolve()): old_sha})
    assert out == {"staging": 1, "restored": 1, "orphans": 1}
    assert known.exists() and not orphan.exists() and not (tmp_path / "uploads" / STAGING).exists()
    assert replaced.read_text() == "alt\n"
    assert not list((tmp_path / "uploads").rglob("*" + BACKUP_SUFFIX))


def test_recover_keeps_committed_replacement(tmp_path):
    from corpus.models import file_sha256

    store = _store(tmp_path)
    path = store.place(store.check(store.stage(_src(tmp_path, text="alt\n"), "r.txt")), "K")
    store.replace(store.check(store.stage(_src(tmp_path, text="neu\n"), "r.txt")), path)
    out = store.recover({str(path.resolve()): file_sha256(path)})  # catalog already has the new one
    assert out["restored"] == 0 and path.read_text() == "neu\n"
    assert not list((tmp_path / "uploads").rglob("*" + BACKUP_SUFFIX))


def test_checked_is_a_plain_record(tmp_path):
    store = _store(tmp_path)
    c = store.check(store.stage(_src(tmp_path), "x.txt"))
    assert isinstance(c, Checked) and c.staged.original_name == "x.txt"
    assert (c.format, c.pages) == ("txt", None)  # plain text has no pages
