"""The incremental pipeline with the hash embedder: add, update, skip, remove, fail safely."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner



def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _search_sources(app, q: str, **kw) -> list[str]:
    return [h.chunk.source for h in app.retriever.search(q, **kw).hits]


def test_add_update_unchanged_remove(hash_app, tmp_path):
    docs = tmp_path / "docs"
    a = write(docs / "satzung.md", "# Friedhofssatzung\n\nDie Ruhezeit für Urnengräber beträgt 20 Jahre.\n")
    write(docs / "haushalt.txt", "Der Haushaltsplan 2025 sieht 3 Millionen Euro für Schulen vor.\n")
    s1 = hash_app.ingestor.ingest([docs])
    assert (s1.added, s1.updated, s1.unchanged, s1.failed) == (2, 0, 0, [])
    s2 = hash_app.ingestor.ingest([docs])
    assert (s2.added, s2.updated, s2.unchanged, s2.chunks) == (0, 0, 2, 0)
    a.write_text("# Friedhofssatzung\n\nDie Ruhezeit für Urnengräber beträgt 15 Jahre.\n", encoding="utf-8")
    s3 = hash_app.ingestor.ingest([docs])
    assert (s3.added, s3.updated, s3.unchanged) == (0, 1, 1)
    texts = [h.chunk.text for h in hash_app.retriever.search("Ruhezeit Urnengräber", k=10).hits]
    assert any("15 Jahre" in t for t in texts) and not any("20 Jahre" in t for t in texts)
    a.unlink()
    s4 = hash_app.ingestor.ingest([docs], prune_under=[docs])
    assert s4.removed == 1 and len(hash_app.catalog.documents()) == 1
    assert hash_app.kb.check().ok


def test_one_bad_file_never_stops_the_batch_or_damages_the_store(hash_app, tmp_path):
    docs = tmp_path / "docs"
    good = write(docs / "gut.md", "# Gut\n\nDie Bibliothek öffnet um 9 Uhr.\n")
    hash_app.ingestor.ingest([docs])
    (docs / "kaputt.pdf").write_bytes(b"%PDF-1.7\n garbage without xref")
    (docs / "leer.txt").write_bytes(b"")
    (docs / "bild.docx").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    (docs / "-rf ; $(reboot) ü.md").write_text("# Name\n\nSeltsamer Dateiname, guter Inhalt zur Kantine.\n", encoding="utf-8")
    summary = hash_app.ingestor.ingest([docs])
    codes = {os.path.basename(f["source"]): f["code"] for f in summary.failed}
    assert codes == {"kaputt.pdf": "corrupt", "leer.txt": "empty", "bild.docx": "corrupt"}  # a broken image (scans are read)
    assert summary.added == 1 and summary.unchanged == 1
    statuses = {os.path.basename(r.source): r.status for r in hash_app.catalog.documents()}
    assert statuses["kaputt.pdf"] == "failed" and statuses["gut.md"] == "indexed"
    assert all(r.error for r in hash_app.catalog.documents(status="failed"))
    assert str(good) in _search_sources(hash_app, "Bibliothek öffnet")


def test_a_broken_update_keeps_the_previous_version_searchable(hash_app, tmp_path):
    f = write(tmp_path / "d" / "regel.md", "# Regel\n\nDie Kantine öffnet um 11:30 Uhr.\n")
    hash_app.ingestor.ingest([f])
    f.write_bytes(b"")  # the new version is empty
    summary = hash_app.ingestor.ingest([f])
    assert summary.failed and summary.failed[0]["code"] == "empty"
    rec = hash_app.catalog.documents()[0]
    assert rec.status == "indexed" and rec.chunk_count > 0 and rec.error
    assert any("11:30" in h.chunk.text for h in hash_app.retriever.search("Kantine").hits)


def test_oversized_file_is_refused_without_reading(hash_app, tmp_path):
    hash_app.ingestor.limits = type(hash_app.ingestor.limits)(max_bytes=1000)
    big = tmp_path / "gross.txt"
    with big.open("wb") as fh:
        fh.truncate(10_000_000)
    summary = hash_app.ingestor.ingest([big])
    assert summary.failed[0]["code"] == "too_large" and hash_app.catalog.documents()[0].status == "failed"


def test_collections_filter_search(hash_app, tmp_path):
    write(tmp_path / "a" / "x.md", "# A\n\nParkgebühren am Rathaus betragen zwei Euro.\n")
    write(tmp_path / "b" / "y.md", "# B\n\nParkgebühren am Bahnhof betragen einen Euro.\n")
    hash_app.ingestor.ingest([tmp_path / "a"], collection="verkehr")
    hash_app.ingestor.ingest([tmp_path / "b"], collection="bahn")
    hits = hash_app.retriever.search("Parkgebühren", collections=["bahn"]).hits
    assert hits and all(h.chunk.collection == "bahn" for h in hits)
    # moving by re-ingesting with another collection needs no re-embedding
    s = hash_app.ingestor.ingest([tmp_path / "a"], collection="bahn")
    assert s.unchanged == 1
    assert len(hash_app.retriever.search("Parkgebühren", collections=["bahn"], k=10).hits) == 2


def test_settings_change_reindexes_everything(hash_app, tmp_path):
    write(tmp_path / "d" / "x.md", "# X\n\nText.\n" * 3)
    hash_app.ingestor.ingest([tmp_path / "d"])
    hash_app.ingestor.signature = "other-model"
    assert hash_app.ingestor.ingest([tmp_path / "d"]).updated == 1


def test_cli_ingest_docs_search_json(tmp_path, monkeypatch):
    from ui.cli import cli

    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    write(tmp_path / "docs" / "satzung.md", "# Satzung\n\nDie Hundesteuer beträgt 96 Euro im Jahr.\n")
    run = lambda *args: CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args], obj={})  # noqa: E731
    res = run("ingest", str(tmp_path / "docs"), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["added"] == 1 and summary["chunks"] >= 1 and "chunks_per_s" in summary
    docs = [json.loads(line) for line in run("docs", "list", "--json").output.splitlines()]
    assert {"doc_id", "source", "status", "pages", "chunks"} <= set(docs[0]) and docs[0]["status"] == "indexed"
    hits = json.loads(run("search", "Hundesteuer", "--json").output)
    assert hits["query"] == "Hundesteuer" and hits["hits"][0]["source"].endswith("satzung.md")
    assert {"doc_id", "source", "title", "page", "section", "score", "text"} == set(hits["hits"][0])
    qfile = write(tmp_path / "q.txt", "Hundesteuer\nSatzung\n")
    lines = run("search", "--batch", str(qfile), "--json", "-k", "1").output.splitlines()
    assert [json.loads(x)["query"] for x in lines] == ["Hundesteuer", "Satzung"]
    assert run("doctor", "--no-repair").exit_code == 0
    assert run("docs", "delete", docs[0]["doc_id"]).exit_code == 0
    assert json.loads(run("search", "Hundesteuer", "--json").output)["hits"] == []
    assert run("docs", "show", "nope").exit_code != 0


def test_doctor_finds_and_repairs_orphans_and_missing_vectors(chroma_hash_app, tmp_path):
    app = chroma_hash_app
    write(tmp_path / "d" / "x.md", "# X\n\nDie Stadtbücherei hat samstags geöffnet.\n")
    app.ingestor.ingest([tmp_path / "d"])
    chunk = next(iter(app.catalog.iter_chunks()))
    app.vectors.delete([chunk.chunk_id])  # missing vector
    import numpy as np
    from dataclasses import replace

    orphan = replace(chunk, chunk_id="ghost:0")
    app.vectors.add([orphan], np.stack([app.kb.embedder.embed_passages(["x"])[0]]))
    report = app.kb.check(repair=False)
    assert not report.ok and report.missing_in_vectors == 1 and report.orphans_in_vectors == 1
    assert app.kb.check(repair=True).repaired
    assert app.kb.check().ok


def test_an_importers_title_and_metadata_survive_a_reindex(hash_app, tmp_path):
    """Importers (OParl) cite by their own title; a re-index without them keeps both, a new
    title re-embeds (it is part of the indexed text), new metadata alone does not."""
    f = write(tmp_path / "docs" / "x1.txt", "Der Rat beschließt die Einführung der Biotonne ab 2026.\n")
    title = "Drucksache 2025/117 (Beschlussvorlage): Einführung der Biotonne"
    meta = {"source": "oparl", "reference": "2025/117", "title": title}
    s = hash_app.ingestor.ingest([f], titles={f: title}, meta={f: meta})
    assert s.added == 1
    rec = hash_app.catalog.documents()[0]
    assert rec.title == title and rec.meta == meta
    assert all(c.title == title for c in hash_app.catalog.iter_chunks(rec.doc_id))

    s = hash_app.ingestor.ingest([f], force=True)  # what `kiportal reindex` does
    rec = hash_app.catalog.get(rec.doc_id)
    assert s.updated == 1 and rec.title == title and rec.meta == meta

    meta2 = dict(meta, paper_type="Beschlussvorlage")
    s = hash_app.ingestor.ingest([f], titles={f: title}, meta={f: meta2})
    assert s.unchanged == 1 and hash_app.catalog.get(rec.doc_id).meta == meta2
    s = hash_app.ingestor.ingest([f], titles={f: title + " (neu)"}, meta={f: meta2})
    assert s.updated == 1 and hash_app.retriever.search("Biotonne", k=1).hits[0].chunk.title == title + " (neu)"


def test_files_in_the_storage_folder_get_ids_that_do_not_depend_on_where_it_is_mounted(tmp_path):
    from ingest.pipeline import doc_id_for

    here, there = tmp_path / "mnt" / "share", tmp_path / "srv" / "kiportal"  # one share, two machines
    assert doc_id_for(here / "Bauamt" / "satzung.txt", here) == doc_id_for(there / "Bauamt" / "satzung.txt", there)
    assert doc_id_for(here / "Bauamt" / "satzung.txt", here) != doc_id_for(here / "Kultur" / "satzung.txt", here)
    outside = write(tmp_path / "ordner" / "satzung.txt", "x")
    assert doc_id_for(outside, here) == doc_id_for(outside)  # elsewhere: the id catalogs have always held
    assert doc_id_for(outside) != doc_id_for(here / "satzung.txt", here)


def test_a_shared_storage_folder_mounted_at_two_places_is_one_set_of_documents(app_factory, tmp_path):
    share = tmp_path / "share"
    first = app_factory(tmp_path / "data", storage=str(share))
    assert first.settings.uploads_dir == share
    f = write(share / "Bauamt" / "satzung.txt", "Die Ruhezeit beträgt 20 Jahre.\n")
    first.ingestor.ingest([f], collection="Bauamt")
    doc = first.catalog.documents()[0]
    # the same data (catalog and share) seen by a machine that mounts the share elsewhere
    moved = tmp_path / "mnt" / "kiportal-share"
    moved.parent.mkdir()
    os.rename(share, moved)
    second = app_factory(tmp_path / "data", storage=str(moved))
    s = second.ingestor.ingest([moved / "Bauamt" / "satzung.txt"], collection="Bauamt")
    assert (s.added, s.updated, s.unchanged) == (0, 0, 1)
    assert [d.doc_id for d in second.catalog.documents()] == [doc.doc_id]


def test_uploads_catalogued_before_storage_ids_keep_their_id(hash_app, tmp_path, monkeypatch):
    """Existing catalogs hold uploads under the id of their absolute path: they keep it."""
    import hashlib

    import ingest.pipeline as pipeline

    f = write(hash_app.settings.uploads_dir / "Bauamt" / "alt.txt", "Der alte Text.\n")
    old_id = hashlib.sha1(str(f.resolve()).encode()).hexdigest()[:16]
    monkeypatch.setattr(pipeline, "doc_id_for", lambda path, storage=None: old_id)  # as the code before storage did
    hash_app.ingestor.ingest([f], collection="Bauamt")
    monkeypatch.undo()
    assert hash_app.catalog.documents()[0].doc_id == old_id
    f.write_text("Der neue Text.\n", encoding="utf-8")
    s = hash_app.ingestor.ingest([f], collection="Bauamt")
    assert s.updated == 1 and [d.doc_id for d in hash_app.catalog.documents()] == [old_id]
    assert "neue" in hash_app.catalog.iter_chunks(old_id)[0].text


def test_an_atomic_run_commits_all_its_documents_at_once_or_none(hash_app, tmp_path, monkeypatch,
                                                                 dies_in_catalog_commit):
    """An importer's files that belong together (a council paper and its attachments): killed at the
    commit, every one keeps its previous version; a stand-in replaces an unreadable file in the same
    commit, and ``drop`` removes documents there too."""
    from ingest.pipeline import doc_id_for

    docs = tmp_path / "docs"
    a = write(docs / "vorlage.md", "# Vorlage\n\nDie Gebühr beträgt 48 Euro im Jahr.\n")
    b = write(docs / "anlage.md", "# Anlage\n\nDie Behälter kosten 310.000 Euro.\n")
    old = write(docs / "alt.md", "# Alt\n\nDiese Anlage entfällt.\n")
    hash_app.ingestor.ingest([docs])
    a.write_text("# Vorlage\n\nDie Gebühr beträgt 52 Euro im Jahr.\n", encoding="utf-8")
    b.write_text("# Anlage\n\nDie Behälter kosten 330.000 Euro.\n", encoding="utf-8")
    scan = docs / "scan.pdf"
    scan.write_bytes(b"%PDF-1.7\n garbage without xref")
    text = tmp_path / "scan-text.txt"
    text.write_text("Der Scan sagt: Leerung vierzehntäglich.", encoding="utf-8")

    def texts() -> str:
        return " ".join(c.text for c in hash_app.catalog.iter_chunks())

    calls = dies_in_catalog_commit()
    run = dict(atomic=True, drop=[doc_id_for(old)], fallback=lambda p: (text, {"text_fallback": True}) if p == scan else None)
    with pytest.raises(KeyboardInterrupt):
        hash_app.ingestor.ingest([a, b, scan], **run)
    assert len(calls) == 2
    assert "48 Euro" in texts() and "310.000" in texts() and "entfällt" in texts()
    assert "52 Euro" not in texts() and "vierzehntäglich" not in texts() and len(hash_app.catalog.documents()) == 3
    monkeypatch.undo()

    summary = hash_app.ingestor.ingest([a, b, scan], **run)
    assert (summary.updated, summary.added, summary.removed, summary.failed) == (2, 1, 1, [])
    assert summary.substituted == {str(scan): str(text)}
    assert "52 Euro" in texts() and "330.000" in texts() and "vierzehntäglich" in texts() and "entfällt" not in texts()
    assert hash_app.catalog.get(doc_id_for(text)).meta == {"text_fallback": True}
    assert hash_app.catalog.get(doc_id_for(scan)) is None
    assert hash_app.kb.check().ok  # the vectors the killed run added were swept


def test_a_file_name_the_catalog_cannot_store_fails_alone(hash_app, tmp_path):
    """A Latin-1 name from an old share (not valid UTF-8) stopped the whole run with a traceback
    (found by a hostile-input probe); now that file fails with ``bad_name`` and the others are indexed."""
    docs = tmp_path / "docs"
    write(docs / "z_spaet.txt", "Die Bibliothek öffnet montags um 9 Uhr.\n")
    with open(os.fsencode(docs) + b"/a_ung\xfcltig.txt", "w", encoding="utf-8") as fh:
        fh.write("Text mit kaputtem Namen.\n")
    summary = hash_app.ingestor.ingest([docs])
    assert summary.added == 1 and [f["code"] for f in summary.failed] == ["bad_name"]
    assert "\\udcfc" in summary.failed[0]["source"] and "UTF-8" in summary.failed[0]["reason"]
    json.dumps(summary.failed, ensure_ascii=False).encode("utf-8")  # printable as the CLI prints it
    assert [d.original_name for d in hash_app.catalog.documents()] == ["z_spaet.txt"]


def test_a_file_that_vanishes_after_the_folder_was_read_fails_alone(hash_app, tmp_path, monkeypatch):
    import ingest.pipeline as pipeline

    docs = tmp_path / "docs"
    good = write(docs / "gut.txt", "Die Bibliothek öffnet montags um 9 Uhr.\n")
    monkeypatch.setattr(pipeline, "discover", lambda paths: [docs / "weg.txt", good])  # deleted in between
    summary = hash_app.ingestor.ingest([docs])
    assert summary.added == 1 and [f["code"] for f in summary.failed] == ["corrupt"]
    assert summary.failed[0]["reason"].endswith("Datei nicht lesbar: Datei nicht gefunden")


def test_a_path_too_long_for_the_system_is_read_through_its_folders(hash_app, tmp_path):
    """A file whose whole path is longer than the system takes is opened folder by folder
    (ingest.safe_files), as the folder walk listed it; the batch goes on either way."""
    docs = tmp_path / "docs"
    write(docs / "z_gut.md", "# Gut\n\nDie Bibliothek öffnet um 9 Uhr.\n")
    deep, i = docs, 0
    while len(os.fsencode(deep)) < 4096 - 400:  # the folder's path stays listable (under PATH_MAX) …
        deep, i = deep / (f"{i:02d}" + "o" * 198), i + 1
    name = "x" * 250 + ".txt"  # … the file's own path does not (ENAMETOOLONG)
    assert len(os.fsencode(deep / name)) > 4096
    fd = os.open(docs, os.O_RDONLY)
    try:  # build it relative to open directories: the path itself is too long to pass
        for part in deep.relative_to(docs).parts:
            os.mkdir(part, dir_fd=fd)
            nfd = os.open(part, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        with os.fdopen(os.open(name, os.O_WRONLY | os.O_CREAT, dir_fd=fd), "w") as fh:
            fh.write("tief\n")
    finally:
        os.close(fd)
    summary = hash_app.ingestor.ingest([docs])
    assert summary.added == 2 and summary.failed == []
    assert any(len(os.fsencode(r.source)) > 4096 for r in hash_app.catalog.documents())


def test_a_pdf_is_shown_by_its_cover_headline_and_indexed_as_before(hash_app, tmp_path, make_pdf, sized_page):
    """The catalog keeps the headline for people; the passages keep the first line (ingest.loaders.pdf_title).
    An importer's own title is shown as it is."""
    cover = sized_page([(10, "Herausgeber:"), (26, "Digitale Alarmierung"), (16, "Geräte für den Rettungsdienst")])
    body = "\n".join(["Meldeempfänger müssen mindestens 200 Stunden empfangsbereit bleiben."] * 20)
    (tmp_path / "docs").mkdir()
    f = make_pdf(tmp_path / "docs" / "richtlinie.pdf", [cover, body])
    assert hash_app.ingestor.ingest([f]).added == 1
    rec = hash_app.catalog.documents()[0]
    assert (rec.title, rec.shown_title) == ("Herausgeber:", "Digitale Alarmierung – Geräte für den Rettungsdienst")
    assert {c.title for c in hash_app.catalog.iter_chunks(rec.doc_id)} == {"Herausgeber:"}

    hash_app.ingestor.ingest([f], titles={f: "TR BOS Alarmierung"})
    rec = hash_app.catalog.get(rec.doc_id)
    assert (rec.title, rec.display_title, rec.shown_title) == ("TR BOS Alarmierung", "", "TR BOS Alarmierung")


def test_a_pdf_whose_font_splits_ligatures_is_shown_by_its_joined_title(hash_app, tmp_path, make_pdf, sized_page):
    """Decided on the passages, as the chain and the text view decide (corpus.ligatures); the
    indexed title keeps pypdf's text (joining there cost retrieval). An importer's title stays."""
    body = "\n".join(["Die Betroff enen treff en sich, um Konfl ikte zu defi nieren und Lösungen zu fi nden."] * 20)
    (tmp_path / "docs").mkdir()
    broken = make_pdf(tmp_path / "docs" / "a.pdf", [sized_page([(26, "Öff entliches Gestalten"), (11, "x")]), body])
    plain = make_pdf(tmp_path / "docs" / "b.pdf", [sized_page([(11, "Öff entliches Werken")]), "Text " * 50])
    assert hash_app.ingestor.ingest([broken, plain]).added == 2
    recs = {r.source.rsplit("/", 1)[-1]: r for r in hash_app.catalog.documents()}
    assert (recs["a.pdf"].title, recs["a.pdf"].shown_title) == ("Öff entliches Gestalten", "Öffentliches Gestalten")
    assert {c.title for c in hash_app.catalog.iter_chunks(recs["a.pdf"].doc_id)} == {"Öff entliches Gestalten"}
    assert recs["b.pdf"].display_title == ""  # one gap is no font's doing

    hash_app.ingestor.ingest([broken], titles={broken: "Drucksache 7/11: Betroff ene"})
    assert hash_app.catalog.get(recs["a.pdf"].doc_id).shown_title == "Drucksache 7/11: Betroff ene"


def test_the_cli_reads_a_symlinked_file_the_operator_names(tmp_path, monkeypatch):
    """The pipeline follows no symlink (ingest.safe_files); a link the operator names on the command
    line is theirs to follow, once, by the CLI."""
    from ui.cli import cli

    monkeypatch.setenv("KIPORTAL_EMBEDDING__MODE", "hash")
    target = write(tmp_path / "ablage" / "satzung.md", "# Satzung\n\nDie Hundesteuer beträgt 96 Euro im Jahr.\n")
    (tmp_path / "link.md").symlink_to(target)
    res = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "ingest", str(tmp_path / "link.md"), "--json"],
                             obj={})
    assert res.exit_code == 0 and json.loads(res.output)["added"] == 1, res.output


def test_while_the_model_embeds_the_reader_reads_on_so_the_next_call_embeds_many_documents_at_once(hash_app, tmp_path):
    """The embedder sorts a call's texts by length, so large calls pad less (ingest.read_ahead).
    A reader bounded at 8 documents made calls of at most 8 documents' passages."""
    import time

    from ingest.pipeline import FLUSH_CHUNKS

    for i in range(150):
        write(tmp_path / "d" / f"n{i:03}.md", f"# Notiz {i}\n\nDie Notiz Nummer {i} betrifft das Amt {i % 7}.\n")
    inner = hash_app.kb.embedder
    calls: list[int] = []

    class Slow:
        """The real (hash) embedder, slow on its first call as a model is on a busy machine."""

        def __getattr__(self, name):
            return getattr(inner, name)

        def embed_passages(self, texts, batch_size=32):
            calls.append(len(texts))
            if len(calls) == 1:
                time.sleep(3)
            return inner.embed_passages(texts, batch_size=batch_size)

    hash_app.kb._embedder = Slow()
    summary = hash_app.ingestor.ingest([tmp_path / "d"])
    assert summary.added == 150 and sum(calls) == summary.chunks
    assert max(calls) > 100 and max(calls) <= FLUSH_CHUNKS, calls  # 8 documents at most before
    assert _search_sources(hash_app, "Notiz Nummer 149 Amt")[0].endswith("n149.md")
