"""A synced share's writers cannot swap a listed file for a link to the portal's secrets
(ingest.safe_files): found by an attacker's probe, which had the link secret indexed for everyone
by replacing a listed file with a symlink after the folder walk."""
from __future__ import annotations

import os

import pytest

from ingest.safe_files import ChangedWhileReading, NotRegularFile, listed_size_and_sha, open_listed, private_copy


@pytest.fixture
def share(tmp_path):
    (tmp_path / "share" / "sub").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "portal_secret").write_text("geheim-0123456789", encoding="utf-8")
    (tmp_path / "share" / "sub" / "notiz.txt").write_text("Protokoll der Sitzung", encoding="utf-8")
    return tmp_path


def swap_for_link(path, target) -> None:
    path.unlink() if path.is_file() or path.is_symlink() else os.rename(path, str(path) + ".weg")
    path.symlink_to(target)


def test_a_listed_file_is_read_as_listed(share):
    f = share / "share" / "sub" / "notiz.txt"
    size, sha = listed_size_and_sha(f, share / "share", 1000)
    assert size == len("Protokoll der Sitzung") and len(sha) == 64
    copy = private_copy(f, share / "share", sha, share)
    assert copy.read_text(encoding="utf-8") == "Protokoll der Sitzung" and copy.stat().st_mode & 0o077 == 0
    assert listed_size_and_sha(f, share / "share", 5) == (size, "")  # too large: not read at all


@pytest.mark.parametrize("swapped", ["file", "folder"])
def test_a_file_or_folder_swapped_for_a_link_is_refused(share, swapped):
    f = share / "share" / "sub" / "notiz.txt"
    _, sha = listed_size_and_sha(f, share / "share", 1000)
    if swapped == "file":
        swap_for_link(f, share / "secret" / "portal_secret")
    else:  # the folder on its way: sub -> the secret folder, which holds a file of the listed name
        (share / "secret" / "notiz.txt").write_text("geheim", encoding="utf-8")
        swap_for_link(share / "share" / "sub", share / "secret")
    with pytest.raises(NotRegularFile):
        private_copy(f, share / "share", sha, share)
    with pytest.raises(NotRegularFile):
        listed_size_and_sha(f, share / "share", 1000)


def test_a_pipe_is_not_waited_on_and_changed_bytes_are_refused(share):
    fifo = share / "share" / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile):
        open_listed(fifo, share / "share")
    f = share / "share" / "sub" / "notiz.txt"
    _, sha = listed_size_and_sha(f, share / "share", 1000)
    f.write_text("Protokoll der Sitzung, geändert", encoding="utf-8")
    with pytest.raises(ChangedWhileReading):
        private_copy(f, share / "share", sha, share / "share")
    assert not (share / "share" / "notiz.txt").exists()  # no half copy left behind


def test_the_sync_indexes_no_file_swapped_for_a_link_after_the_folder_was_listed(hash_app, share, monkeypatch):
    """The whole pipeline, with the attacker's swap at the moment between plan and reading."""
    from ingest.pipeline import Ingestor

    (share / "share" / "zzz-notiz.txt").write_text("Harmlose Notiz zur Kantine", encoding="utf-8")
    planned = Ingestor._plan

    def plan_then_swap(self, *args, **kwargs):
        work = planned(self, *args, **kwargs)
        swap_for_link(share / "share" / "zzz-notiz.txt", share / "secret" / "portal_secret")
        return work

    monkeypatch.setattr(Ingestor, "_plan", plan_then_swap)
    summary = hash_app.ingestor.ingest([share / "share"], collection="allgemein")
    assert summary.added == 1 and [f["code"] for f in summary.failed] == ["unsupported"]
    for rec in hash_app.catalog.documents():
        assert all("geheim" not in c.text for c in hash_app.catalog.iter_chunks(rec.doc_id))


@pytest.mark.parametrize("how", ["ingestor", "admin"])
def test_a_reindex_follows_no_folder_swapped_for_a_link_since_the_file_was_read(hash_app, share, how):
    """A re-index names each file by the path the catalog keeps, not by its folder (found by a
    review): a folder on that path swapped for a link to the secrets must not lead there."""
    (share / "secret" / "notiz.txt").write_text("geheim-0123456789", encoding="utf-8")
    assert hash_app.ingestor.ingest([share / "share"], collection="allgemein").added == 1
    (rec,) = hash_app.catalog.documents()
    swap_for_link(share / "share" / "sub", share / "secret")
    if how == "ingestor":
        summary = hash_app.ingestor.reindex([rec.doc_id]).as_dict()
    else:
        summary = hash_app.admin.reindex("all", None, "adam")
    assert summary["updated"] == 0 and [f["code"] for f in summary["failed"]] == ["unsupported"], summary
    assert all("geheim" not in c.text for r in hash_app.catalog.documents() for c in hash_app.catalog.iter_chunks(r.doc_id))
    assert "Protokoll der Sitzung" in next(iter(hash_app.catalog.iter_chunks(rec.doc_id))).text  # the old version stays
