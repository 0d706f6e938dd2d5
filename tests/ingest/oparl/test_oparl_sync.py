"""OParl import end to end: the test council system on 127.0.0.1 → catalog, indexes, search.

Hash embedder and in-memory vectors (unit level); the server, the HTTP, the files, the
loaders and the catalog are real.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from oparl_world import pdf_bytes

from assistant.appdb import AppDB
from ingest.oparl.client import ClientConfig
from ingest.oparl.state import SyncState
from ingest.oparl.sync import OParlImporter

CONFIG = ClientConfig(timeout_s=0.4, retries=1, backoff_s=0.01, concurrency=3, max_file_bytes=1024 * 1024)


@pytest.fixture
def hash_app(oparl_app):
    return oparl_app


@pytest.fixture
def importer(hash_app):
    state = SyncState(AppDB(hash_app.settings.app_db))
    return OParlImporter(hash_app.ingestor, state, hash_app.settings.oparl_dir, CONFIG, overlap_s=0)


def docs_by_ref(app) -> dict[str, list]:
    out: dict[str, list] = {}
    for rec in app.catalog.documents():
        key = rec.meta.get("reference") or rec.meta.get("oparl_type", "?")
        out.setdefault(key, []).append(rec)
    return out


def test_first_sync_imports_papers_and_meetings_and_names_each_failure(hash_app, importer, oparl_server):
    report = importer.sync(oparl_server.system_url, "rat")
    failed = {f["object"].rsplit("/", 1)[-1]: f["error"] for f in report.failed}
    assert set(failed) == {"119", "121"}
    assert "Fotodokumentation" in failed["119"] and "HTTP 404" in failed["119"]
    assert "Lageplan" in failed["121"] and "größer als" in failed["121"]
    assert report.imported == 6 and report.bodies[0]["complete"] and report.bodies[0]["modified_since"] == ""

    docs = docs_by_ref(hash_app)
    # never a half-imported paper: 119 and 121 have a good main file, but nothing of them landed
    assert "2025/119" not in docs and "2025/121" not in docs
    assert {len(docs[r]) for r in ("2025/118", "2025/120", "2025/123")} == {1}
    assert len(docs["2025/117"]) == 2 and len(docs["2025/122"]) == 2  # 122's attachment was a link
    assert all(r.status == "indexed" and r.collection == "rat" for v in docs.values() for r in v)

    main, aux = sorted(docs["2025/117"], key=lambda r: r.meta["file_role"] != "mainFile")
    assert main.title == "Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne im Stadtgebiet"
    assert main.pages == 2 and main.meta["paper_type"] == "Beschlussvorlage"
    assert main.meta["body"] == "Stadt Musterstadt"
    assert main.meta["access_url"] == oparl_server.base + "/files/117a/vorlage-2025-117.pdf"
    assert main.meta["consultations"] == [{"meeting": oparl_server.base + "/oparl/v1/meeting/1",
                                           "role": "Beschlussfassung", "authoritative": True}]
    assert aux.title.endswith("– Anlage: Anlage 1 Kostenaufstellung")
    assert aux.format == "pdf" and Path(aux.path).suffix == ".pdf"  # mimeType said text/plain: sniffed

    slow = docs["2025/120"][0]  # timed out: its text field stands in
    assert slow.meta["text_fallback"] is True and slow.format == "txt"
    assert "2,50 Euro je Stunde" in " ".join(c.text for c in hash_app.catalog.iter_chunks(slow.doc_id))

    meeting = sorted(r.title for r in docs["meeting"])
    assert meeting == ["12. Sitzung des Rates am 04.03.2025 – Einladung",
                       "12. Sitzung des Rates am 04.03.2025 – Ergebnisprotokoll"]
    assert docs["meeting"][0].meta["meeting_date"] == "2025-03-04T18:00:00+01:00"

    # every list page was followed; the huge file was cut off, not read to the end
    assert sum(r.startswith("/oparl/v1/body/1/papers") for r in oparl_server.requests) == 4
    assert oparl_server.world.files["/files/121b/lageplan.pdf"].sent < 20 * 1024 * 1024
    assert hash_app.kb.check().ok


def test_titles_are_data(hash_app, importer, oparl_server):
    importer.sync(oparl_server.system_url)
    rec = docs_by_ref(hash_app)["2025/123"][0]
    assert rec.title == "Drucksache 2025/123 (Bericht): Bericht <script>alert(1)</script> des Bürgermeisters"
    from ui.docview import render_text_page

    page = render_text_page(rec, hash_app.catalog.iter_chunks(rec.doc_id))
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_search_finds_a_paper_cited_with_its_drucksache_number(hash_app, importer, oparl_server):
    importer.sync(oparl_server.system_url)
    hits = hash_app.retriever.search("Biotonne Leerung vierzehntäglich Gebühr 48 Euro", k=3).hits
    top = hits[0].chunk
    assert top.title == "Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne im Stadtgebiet"
    assert top.page == 2 and "48 Euro" in top.text


def test_second_sync_changes_nothing_and_downloads_nothing(hash_app, importer, oparl_server):
    world = oparl_server.world
    del world.papers["119"], world.papers["121"]  # a healthy system: nothing to retry
    first = importer.sync(oparl_server.system_url)
    assert first.ok and first.downloaded == 8 and first.text_fallback == 1
    before = {r.doc_id: (r.sha256, r.indexed_at) for r in hash_app.catalog.documents()}
    generation = hash_app.catalog.generation()
    oparl_server.requests.clear()

    second = importer.sync(oparl_server.system_url)
    assert second.ok and second.downloaded == 0 and second.imported == 0 and second.documents_removed == 0
    assert oparl_server.file_requests() == []
    # only System, body list and one page of each (now empty) list, asked for changes only
    assert len(oparl_server.requests) == 4
    assert all("modified_since=" in r for r in oparl_server.requests if r.startswith("/oparl/v1/body/1/"))
    assert {r.doc_id: (r.sha256, r.indexed_at) for r in hash_app.catalog.documents()} == before
    assert hash_app.catalog.generation() == generation


def test_changes_deletions_and_retries_of_failed_objects(hash_app, importer, oparl_server):
    world = oparl_server.world
    importer.sync(oparl_server.system_url)
    old = {r.meta["file_id"]: r for r in hash_app.catalog.documents()}
    oparl_server.requests.clear()

    # 117: main file replaced; 118: renamed, file untouched; 123: deleted; 119: its missing file appears
    world.papers["117"]["mainFile"] = world.file("117a", "Vorlage", "vorlage-2025-117.pdf", pdf_bytes([
        "Beschlussvorlage 2025/117 (geändert)", "Die Gebühr für die Biotonne beträgt 52 Euro im Jahr."]),
        modified="2025-05-01T09:00:00+02:00")
    world.touch_paper("117")
    world.touch_paper("118", name="Anfrage zur LED-Straßenbeleuchtung")
    world.delete_paper("123")
    world.files["/files/119b/fotos.pdf"].status = 200
    world.files["/files/119b/fotos.pdf"].content = pdf_bytes(["Fotos der Baustelle am Gymnasium."])

    report = importer.sync(oparl_server.system_url)
    downloaded = sorted(r.split("/")[2] for r in oparl_server.file_requests())
    assert downloaded == ["117a", "119a", "119b", "121a", "121b"]  # 118's file was not fetched again
    assert [f["object"].rsplit("/", 1)[-1] for f in report.failed] == ["121"]
    assert report.deleted_objects == 1 and report.documents_removed == 1

    docs = docs_by_ref(hash_app)
    assert "2025/123" not in docs and len(docs["2025/119"]) == 2
    new = {r.meta["file_id"]: r for r in hash_app.catalog.documents()}
    a117 = world.url("/oparl/v1/file/117a")
    assert new[a117].doc_id == old[a117].doc_id and new[a117].sha256 != old[a117].sha256
    a118 = world.url("/oparl/v1/file/118a")
    assert new[a118].title == "Drucksache 2025/118 (Anfrage): Anfrage zur LED-Straßenbeleuchtung"
    assert new[a118].sha256 == old[a118].sha256
    assert not Path(old[world.url("/oparl/v1/file/123a")].path).exists()
    chunk_text = " ".join(c.text for c in hash_app.catalog.iter_chunks(new[a117].doc_id))
    assert "52 Euro" in chunk_text and "48 Euro" not in chunk_text
    hits = hash_app.retriever.search("Anfrage LED-Straßenbeleuchtung Weststadt", k=1).hits
    assert hits[0].chunk.title.startswith("Drucksache 2025/118 (Anfrage): Anfrage zur LED")
    assert hash_app.kb.check().ok


def test_a_run_that_dies_resumes_without_duplicates(hash_app, importer, oparl_server):
    ingest = importer.ingestor.ingest
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("Strom weg")
        return ingest(*args, **kwargs)

    importer.ingestor.ingest = dying
    importer.batch_size = 2
    with pytest.raises(KeyboardInterrupt):
        importer.sync(oparl_server.system_url)
    partial = len(hash_app.catalog.documents())
    assert 0 < partial
    importer.ingestor.ingest = ingest
    report = importer.sync(oparl_server.system_url)  # no modified_since yet: the body never completed
    assert report.bodies[0]["modified_since"] == "" and report.bodies[0]["complete"]
    recs = hash_app.catalog.documents()
    assert len(recs) == 9 and len({r.meta["file_id"] for r in recs}) == 9
    assert not list(hash_app.settings.oparl_dir.glob("staging-*"))
    assert hash_app.kb.check().ok


def test_a_body_url_works_too_and_a_wrong_url_says_why(hash_app, importer, oparl_server):
    body = importer.sync(oparl_server.base + "/oparl/v1/body/1")
    assert body.imported == 6 and body.bodies[0]["name"] == "Stadt Musterstadt"
    bad = importer.sync(oparl_server.base + "/oparl/v1/paper/117")
    assert "weder OParl-System noch -Körperschaft" in bad.failed[0]["error"]
    missing = importer.sync(oparl_server.base + "/nichts")
    assert "HTTP 404" in missing.failed[0]["error"]


@pytest.mark.integration
def test_real_model_answers_a_question_from_a_drucksache(real_app, oparl_server):
    """With the real e5 model and Chroma: a plain German question finds the Beschlussvorschlag
    of Drucksache 2025/117 on its page 2, and the hit cites it by number, type and title."""
    from ingest.loaders.isolated import make_loader

    real_app.ingestor.loader = make_loader(real_app.ingestor.limits)  # in-process: this tests retrieval
    state = SyncState(AppDB(real_app.settings.app_db))
    report = OParlImporter(real_app.ingestor, state, real_app.settings.oparl_dir, CONFIG).sync(oparl_server.system_url)
    assert report.imported == 6
    hits = real_app.retriever.search("Wie oft wird die Biotonne geleert und was kostet sie im Jahr?", k=3).hits
    top = hits[0].chunk
    assert top.title.startswith("Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne")
    assert top.page == 2 and "vierzehntäglich" in top.text
    assert real_app.kb.check().ok


def test_unreadable_files_fall_back_to_their_text_or_are_listed_with_the_reason(hash_app, importer, oparl_server):
    w = oparl_server.world
    w.papers.clear()
    w.meetings.clear()
    broken = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> kaputt\n"
    w.add_paper("130", "2025/130", "Bericht", "Lärmaktionsplan",
                w.file("130a", "Bericht", "laerm.pdf", broken,
                       text="Der Lärmaktionsplan sieht Tempo 30 in der Hauptstraße vor."))
    w.add_paper("131", "2025/131", "Bericht", "Bericht mit kaputter Anlage",
                w.file("131a", "Bericht", "bericht.pdf", pdf_bytes(["Der Bericht ist vollständig lesbar."])),
                [w.file("131b", "Scan", "scan.pdf", broken)])
    report = importer.sync(oparl_server.system_url)
    assert report.imported == 2 and report.text_fallback == 1
    assert [f["object"].rsplit("/", 1)[-1] for f in report.failed] == ["131"]
    assert "„Scan“ nicht lesbar" in report.failed[0]["error"]

    docs = docs_by_ref(hash_app)
    (laerm,) = docs["2025/130"]  # the unreadable PDF's document was replaced by its text
    assert laerm.status == "indexed" and laerm.format == "txt" and laerm.meta["text_fallback"] is True
    assert hash_app.retriever.search("Tempo 30 Hauptstraße", k=1).hits[0].chunk.title == \
        "Drucksache 2025/130 (Bericht): Lärmaktionsplan"
    by_role = {r.meta["file_role"]: r for r in docs["2025/131"]}
    assert by_role["mainFile"].status == "indexed" and by_role["auxiliaryFile"].status == "failed"
    assert by_role["auxiliaryFile"].title.endswith("– Anlage: Scan")  # listed for the admin with its title
    assert hash_app.kb.check().ok

    # the file changes and is still unreadable: its stand-in takes the same place again and stays
    w.papers["130"]["mainFile"] = w.file("130a", "Bericht", "laerm.pdf", broken + b"%neu",
                                         text="Der Lärmaktionsplan sieht jetzt Tempo 20 vor.",
                                         modified="2025-06-01T09:00:00+02:00")
    w.touch_paper("130")
    report = importer.sync(oparl_server.system_url)
    assert report.imported == 1 and report.text_fallback == 1
    (laerm2,) = docs_by_ref(hash_app)["2025/130"]
    assert laerm2.doc_id == laerm.doc_id and laerm2.status == "indexed" and Path(laerm2.path).is_file()
    assert "Tempo 20" in " ".join(c.text for c in hash_app.catalog.iter_chunks(laerm2.doc_id))
    assert hash_app.kb.check().ok


def test_a_paper_loses_an_attachment_and_a_paper_without_files_is_remembered(hash_app, importer, oparl_server):
    w = oparl_server.world
    importer.sync(oparl_server.system_url)
    assert len(docs_by_ref(hash_app)["2025/117"]) == 2
    old_aux = next(r for r in docs_by_ref(hash_app)["2025/117"] if r.meta["file_role"] == "auxiliaryFile")
    del w.papers["117"]["auxiliaryFile"]
    w.touch_paper("117")
    w.add_paper("124", "2025/124", "Anfrage", "Anfrage ohne Anlage", None, modified=w.papers["117"]["modified"])
    report = importer.sync(oparl_server.system_url)
    assert report.documents_removed == 1 and report.downloaded == 0 and report.imported == 2
    assert [r.meta["file_role"] for r in docs_by_ref(hash_app)["2025/117"]] == ["mainFile"]
    assert not Path(old_aux.path).exists() and "2025/124" not in docs_by_ref(hash_app)
    assert importer.state.object(w.url("/oparl/v1/paper/124"))["status"] == "done"


def test_a_paper_changes_whole_or_not_at_all_when_the_run_dies_at_its_commit(hash_app, importer, oparl_server,
                                                                            monkeypatch, dies_in_catalog_commit):
    """Both files of Drucksache 2025/117 change and the run dies while they are written: the paper
    keeps its old fee *and* its old costs (before, each file was committed on its own, so the main
    file could show the new fee beside the old attachment); the next run brings both."""
    w = oparl_server.world
    importer.sync(oparl_server.system_url)

    def paper_text() -> str:
        return " ".join(c.text for r in docs_by_ref(hash_app)["2025/117"] for c in hash_app.catalog.iter_chunks(r.doc_id))

    assert "48 Euro" in paper_text() and "310.000" in paper_text()
    changed = "2025-05-01T09:00:00+02:00"
    w.papers["117"]["mainFile"] = w.file("117a", "Vorlage", "vorlage-2025-117.pdf", pdf_bytes([
        "Beschlussvorlage 2025/117 (geändert)", "Die Gebühr für die Biotonne beträgt 52 Euro im Jahr."]), modified=changed)
    w.papers["117"]["auxiliaryFile"] = [w.file("117b", "Anlage 1 Kostenaufstellung", "kosten.pdf", pdf_bytes([
        "Kostenaufstellung: Anschaffung der Behälter 330.000 Euro."]), modified=changed)]
    w.touch_paper("117")

    written = dies_in_catalog_commit()
    with pytest.raises(KeyboardInterrupt):
        importer.sync(oparl_server.system_url)
    assert len(written) == 2  # it died inside the commit, after writing the first file
    assert "48 Euro" in paper_text() and "310.000" in paper_text()
    assert "52 Euro" not in paper_text() and "330.000" not in paper_text()
    monkeypatch.undo()

    report = importer.sync(oparl_server.system_url)
    assert report.imported == 1 and report.documents_updated == 2
    assert "52 Euro" in paper_text() and "330.000" in paper_text() and "48 Euro" not in paper_text()
    assert len(docs_by_ref(hash_app)["2025/117"]) == 2 and hash_app.kb.check().ok


def test_a_source_speaks_only_for_the_objects_on_its_own_server(hash_app, importer, oparl_server):
    """Found by an attacker's probe: a second OParl source (into its own collection) that listed the
    first source's ids deleted its documents, moved them into its own collection with its own text,
    and by naming the first source's body changed that body's sync time and planted URLs that the
    first source's next run requested. A server speaks only for ids on itself (its host and port)."""
    from oparl_world import OParlServer

    a = oparl_server
    importer.sync(a.system_url, "rat-a")
    before = {r.doc_id: (r.collection, r.sha256) for r in hash_app.catalog.documents()}
    a_body = a.world.body()["id"]
    a_since = importer.state.last_sync(a_body)
    assert before and a_since
    b = OParlServer()
    try:
        w = b.world
        w.papers.clear()
        w.meetings.clear()
        importer.sync(b.system_url, "rat-b")  # B's first, empty run: its next one asks what changed (deletions too)
        victim, hijacked = a.world.papers["117"], a.world.papers["118"]
        w.papers["x1"] = {"id": victim["id"], "type": victim["type"], "created": victim["created"],
                          "modified": "2030-01-01T00:00:00+01:00", "deleted": True}
        fake = w.file("f1", "Vorlage", "fake.pdf", pdf_bytes(["GEFAELSCHT von Server B"]))
        w.papers["x2"] = dict(hijacked, mainFile=dict(fake, id=hijacked["mainFile"]["id"]),
                              modified="2030-01-01T00:00:00+01:00")
        w.papers["x2"].pop("auxiliaryFile", None)
        report = importer.sync(b.system_url, "rat-b")
        assert report.imported == 0 and report.deleted_objects == 0 and report.documents_removed == 0
        assert sorted(f["object"] for f in report.failed) == sorted([victim["id"], hijacked["id"]])
        assert all("anderen Servers" in f["error"] for f in report.failed)
        after = {r.doc_id: (r.collection, r.sha256) for r in hash_app.catalog.documents()}
        assert after == before
        assert all("GEFAELSCHT" not in h.chunk.text for h in hash_app.retriever.search("GEFAELSCHT Server B", k=5).hits)

        # B names A's body as its own and lists a paper at a URL of its choosing on A's host
        planted = a.base + "/internal/chosen-by-B?token=1"
        body = w.body()
        w.body = lambda: dict(body, id=a_body)  # type: ignore[method-assign]
        broken = w.file("f2", "Anlage", "weg.pdf", b"%PDF-1.4", status=404)  # fails: retried by id next time
        w.papers = {"p": {"id": planted, "type": victim["type"], "name": "Köder", "created": victim["created"],
                          "modified": "2030-01-01T00:00:00+01:00", "body": a_body, "mainFile": broken}}
        report = importer.sync(b.system_url, "rat-b")
        assert [f["object"] for f in report.failed] == [a_body] and "anderen Servers" in report.failed[0]["error"]
        assert importer.state.last_sync(a_body) == a_since  # A's next run still asks for what changed since A's own sync
        importer.sync(a.system_url, "rat-a")
        assert not [r for r in a.requests if r.startswith("/internal/")]
    finally:
        b.close()
