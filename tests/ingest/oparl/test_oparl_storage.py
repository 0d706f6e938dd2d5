"""OParl downloads in the shared ``storage`` folder: a sync job runs on whichever worker takes it,
so its files must land where every replica reads them, under ids that do not depend on where a
machine mounts the folder (real files, the real test council server, hash embedder; the catalog
on SQLite and on the real PostgreSQL server)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from oparl_world import FAST_OPARL

from ingest.pipeline import doc_id_for

OLD = time.time() - 2 * 86400  # old enough for a cluster's upload recovery to judge


def machine(app_factory, home: Path, db_url: str, share: Path):
    return app_factory(home, app_db_url=db_url, storage=str(share), limits={"load_timeout_s": 0}, oparl=FAST_OPARL)


def other_machine(app_factory, tmp_path: Path, db_url: str, share: Path):
    """Another replica of the cluster (its own data dir); on SQLite, where the catalog lives in the data
    dir, the same installation started again (with ``share`` e.g. moved to another disk)."""
    home = tmp_path / ("b" if db_url.startswith("postgresql") else "a")
    return machine(app_factory, home, db_url, share)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_a_sync_stores_its_files_in_the_share_and_another_machine_opens_the_cited_file(
        tmp_path, any_db_url, app_factory, oparl_server):
    share = tmp_path / "share"
    a = machine(app_factory, tmp_path / "a", any_db_url, share)
    report = a.oparl_importer().sync(oparl_server.system_url, "rat")
    assert report.imported == 6 and report.downloaded > 0

    docs = a.catalog.documents()
    assert len(docs) == 9
    for rec in docs:  # storage-relative, like uploads: the id is the same on every machine
        assert rec.storage_path.startswith("_oparl/") and rec.file(share).is_file()
        assert rec.doc_id == doc_id_for(share / rec.storage_path, share)
    assert files_under(share / "_oparl") == {r.file(share) for r in docs}  # no staging left over
    # only the lock stays on a's own disk
    assert [p.name for p in files_under(tmp_path / "a" / "oparl")] == [".sync.lock"]

    b = other_machine(app_factory, tmp_path, any_db_url, share)
    cited = next(r for r in b.catalog.documents() if r.meta.get("reference") == "2025/117"
                 and r.meta["file_role"] == "mainFile")
    assert cited.file(b.settings.uploads_dir).read_bytes() == \
        oparl_server.world.files["/files/117a/vorlage-2025-117.pdf"].content
    for app in (a, b):
        app.catalog.close()


def test_a_share_mounted_elsewhere_still_resolves_for_reading_syncing_and_deleting(
        tmp_path, any_db_url, app_factory, oparl_server):
    """a synced into /…/share; b mounts the same folder at /…/mnt/kiportal (a's path does not exist there)."""
    share = tmp_path / "share"
    a = machine(app_factory, tmp_path / "a", any_db_url, share)
    a.oparl_importer().sync(oparl_server.system_url, "rat")
    ids = {r.doc_id for r in a.catalog.documents()}
    a.catalog.close()
    mount = tmp_path / "mnt" / "kiportal"
    mount.parent.mkdir()
    os.rename(share, mount)

    b = other_machine(app_factory, tmp_path, any_db_url, mount)
    for rec in b.catalog.documents():
        assert not Path(rec.path).exists() and rec.file(b.settings.uploads_dir).is_file()

    # b's next sync: 118 only renamed (its file is reused from the share, not fetched again), 123 deleted
    w = oparl_server.world
    w.touch_paper("118", name="Anfrage zur LED-Straßenbeleuchtung")
    w.delete_paper("123")
    before = len(oparl_server.file_requests())
    gone = next(r for r in b.catalog.documents() if r.meta.get("reference") == "2025/123")
    report = b.oparl_importer().sync(oparl_server.system_url, "rat")
    fetched = {r.split("/")[2] for r in oparl_server.file_requests()[before:]}
    assert "118a" not in fetched and report.files_unchanged >= 1
    assert report.deleted_objects == 1 and report.documents_removed == 1
    assert not gone.file(mount).exists() and b.catalog.get(gone.doc_id) is None
    assert {r.doc_id for r in b.catalog.documents()} == ids - {gone.doc_id}  # nothing re-imported under a new id
    renamed = next(r for r in b.catalog.documents() if r.meta.get("reference") == "2025/118")
    assert "LED-Straßenbeleuchtung" in renamed.title and renamed.file(mount).is_file()
    s = b.ingestor.reindex(sorted(ids - {gone.doc_id}))  # a re-index on b reads the files
    assert s.failed == [] and s.updated == len(ids) - 1
    b.catalog.close()


def test_upload_recovery_and_the_admin_leave_oparl_files_alone(tmp_path, any_db_url, app_factory, oparl_server):
    share = tmp_path / "share"
    a = machine(app_factory, tmp_path / "a", any_db_url, share)
    a.oparl_importer().sync(oparl_server.system_url, "rat")
    # a sync elsewhere has placed a file it has not catalogued yet, and a staging folder is in use
    pending = share / "_oparl" / "ff" / "ffff-vorlage.pdf"
    pending.parent.mkdir(parents=True, exist_ok=True)
    pending.write_bytes(b"%PDF-1.4 noch nicht im Katalog")
    staging = share / "_oparl" / "staging-x" / "abc.part"
    staging.parent.mkdir()
    staging.write_bytes(b"halb geladen")
    orphan = share / "rat" / "abgebrochen.txt"  # an upload that never completed: still swept
    orphan.parent.mkdir()
    orphan.write_text("weg\n", encoding="utf-8")
    oparl_files = files_under(share / "_oparl")
    for p in [*oparl_files, orphan]:
        os.utime(p, (OLD, OLD))

    out = a.admin.recover()
    assert out["orphans"] == 1 and not orphan.exists()
    assert files_under(share / "_oparl") == oparl_files
    # an OParl document is not an upload: the admin may not replace it, deleting it keeps the file
    rec = a.catalog.documents()[0]
    assert not a.admin.uploads.contains(rec.file(share)) and not a.admin.uploads.remove(rec.file(share))
    assert not any(d["uploaded"] for d in a.admin.documents())
    assert rec.file(share).is_file()
    a.catalog.close()


def test_without_storage_oparl_files_stay_in_the_data_directory(oparl_app, oparl_server):
    home = oparl_app.settings.home
    assert oparl_app.settings.oparl_dir == home / "oparl"
    report = oparl_app.oparl_importer().sync(oparl_server.system_url, "rat")
    assert report.imported == 6
    for rec in oparl_app.catalog.documents():  # ids and paths as catalogs have always held them
        assert rec.storage_path == "" and Path(rec.path).is_relative_to((home / "oparl").resolve())
        assert rec.doc_id == doc_id_for(Path(rec.path))
    assert not (home / "uploads").exists() or not files_under(home / "uploads")
    rows = oparl_app.app_db.query("SELECT doc_path FROM oparl_files")
    assert rows and all(Path(r["doc_path"]).is_absolute() for r in rows)  # the sync state as before


def test_setting_storage_later_keeps_the_files_synced_before_without_duplicates(tmp_path, app_factory, oparl_server):
    home = tmp_path / "data"
    before = app_factory(home, limits={"load_timeout_s": 0}, oparl=FAST_OPARL)
    before.oparl_importer().sync(oparl_server.system_url, "rat")
    ids = {r.doc_id for r in before.catalog.documents()}
    before.catalog.close()

    share = tmp_path / "share"
    after = machine(app_factory, home, f"sqlite:///{home / 'app.sqlite3'}", share)
    oparl_server.world.touch_paper("118", name="Anfrage zur LED-Straßenbeleuchtung")
    report = after.oparl_importer().sync(oparl_server.system_url, "rat")
    assert report.files_unchanged >= 1 and report.documents_removed == 0
    assert {r.doc_id for r in after.catalog.documents()} == ids  # the old files are reused, not imported twice
    renamed = next(r for r in after.catalog.documents() if r.meta.get("reference") == "2025/118")
    assert "LED-Straßenbeleuchtung" in renamed.title and Path(renamed.path).is_relative_to((home / "oparl").resolve())
    after.catalog.close()


@pytest.mark.cluster
def test_in_a_cluster_a_run_leaves_another_workers_staging_alone_and_clears_dead_ones(tmp_path, pg_url, app_factory,
                                                                                      oparl_server):
    """Workers on other machines stage in the same shared folder, and a local lock does not keep them apart."""
    share = tmp_path / "share"
    a = machine(app_factory, tmp_path / "a", pg_url, share)
    busy = share / "_oparl" / "staging-anderer" / "abc.part"  # another worker's run, right now
    dead = share / "_oparl" / "staging-tot" / "abc.part"  # a run that died two days ago
    for p in (busy, dead):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"halb")
    os.utime(dead.parent, (OLD, OLD))
    assert a.oparl_importer().sync(oparl_server.system_url, "rat").imported == 6
    assert busy.exists() and not dead.parent.exists()
    a.catalog.close()
