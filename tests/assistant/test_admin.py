"""Admin operations shared by portal and CLI: uploads (good and hostile), replace, delete,
re-index, sync, collections, health, audit trail. Hash embedder + in-memory vectors."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from assistant.admin import Admin, AdminError, Busy, disk_usage, writer_lock_wait
from assistant.admin_rules import refused_sync_folder
from corpus.models import Chunk


# -- files -----------------------------------------------------------------------------
def make_pdf(path: Path, pages: list[str], password: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    if password:
        from pypdf import PdfReader, PdfWriter

        w = PdfWriter(clone_from=PdfReader(path))
        w.encrypt(user_password=password, owner_password="owner-" + password, algorithm="AES-256")
        with open(path, "wb") as fh:
            w.write(fh)
    return path


def make_pptx(path: Path, slides: list[tuple[str, str]]) -> Path:
    from pptx import Presentation

    prs = Presentation()
    for title, body in slides:
        s = prs.slides.add_slide(prs.slide_layouts[1])
        s.shapes.title.text = title
        s.placeholders[1].text_frame.text = body
    prs.save(path)
    return path


def make_zip_bomb(path: Path) -> Path:
    """A real DOCX plus one member that inflates 1000:1 (what the loader's guard refuses)."""
    import docx

    d = docx.Document()
    d.add_paragraph("harmloser Text")
    buf = io.BytesIO()
    d.save(buf)
    path.write_bytes(buf.getvalue())
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/media/bomb.bin", b"\0" * (20 * 1024 * 1024))
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture
def admin(hash_app):
    a = Admin(hash_app, hash_app.audit, lock_timeout=1.0)
    a.create_collection("Bauamt", "intern", "adam")
    return a


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "incoming"
    d.mkdir()
    return d


def state(admin: Admin) -> dict:
    """Everything an upload could change (except the audit log)."""
    app = admin.app
    kw = app.kb.keyword_index()
    return {
        "documents": sorted((r.as_dict() for r in app.catalog.documents()), key=lambda d: d["doc_id"]),
        "collections": app.catalog.collections(),
        "chunks": sorted(app.catalog.chunk_ids()),
        "vectors": sorted(app.vectors.ids()),
        "bm25": sorted(kw.chunk_ids()),
        "generation": app.catalog.generation(),
        "uploads": sorted(str(p.relative_to(app.settings.uploads_dir)) for p in app.settings.uploads_dir.rglob("*")
                          if p.is_file()) if app.settings.uploads_dir.exists() else [],
    }


def search_sources(admin: Admin, query: str) -> list[str]:
    return [h.chunk.doc_id for h in admin.app.retriever.search(query, k=10).hits]


def texts(admin: Admin) -> str:
    return " ".join(c.text for c in admin.app.catalog.iter_chunks())


# -- uploads -------------------------------------------------------------------------------
def test_upload_several_files(admin, src):
    pdf = make_pdf(src / "x1", ["Die Hundesteuer beträgt 120 Euro pro Jahr.", "Zweite Seite: Ermäßigungen."])
    pptx = make_pptx(src / "x2", [("Radwege 2025", "Der Ausbau der Radwege kostet 2 Mio Euro.")])
    md = write(src / "x3", "# Parken\n\nAnwohnerparkausweise kosten 30 Euro.\n")
    progress = []
    result = admin.upload([(pdf, "Hundesteuer Satzung.pdf"), (pptx, "Radwege.pptx"), (md, "parken.md")],
                          "Bauamt", "adam", progress=lambda f, m: progress.append(f))
    assert result.rejected == [] and len(result.accepted) == 3, result.message()
    assert "3 Dateien übernommen" in result.message()
    up = admin.app.settings.uploads_dir / "Bauamt"
    assert sorted(p.name for p in up.iterdir()) == ["Hundesteuer_Satzung.pdf", "Radwege.pptx", "parken.md"]
    docs = {d["file"]: d for d in admin.documents()}
    assert docs["Hundesteuer Satzung.pdf"]["pages"] == 2 and docs["Hundesteuer Satzung.pdf"]["format"] == "pdf"
    assert docs["Radwege.pptx"]["format"] == "pptx" and all(d["status"] == "indexed" for d in docs.values())
    assert all(d["uploaded"] and d["link"] == f"/doc/{d['doc_id']}" for d in docs.values())
    assert progress[-1] == 1.0 and progress == sorted(progress)
    assert docs["Radwege.pptx"]["doc_id"] in search_sources(admin, "Radwege Ausbau")
    assert [e["target"] for e in admin.audit.entries(action="upload")] != []
    assert admin.documents(text="radweg")[0]["file"] == "Radwege.pptx"
    assert admin.documents(status="failed") == []


def test_upload_same_name_twice_gets_a_new_name(admin, src):
    f = write(src / "a.txt", "Öffnungszeiten des Bürgeramts: Montag bis Freitag.\n")
    admin.upload([(f, "info.txt")], "Bauamt", "adam")
    admin.upload([(f, "info.txt")], "Bauamt", "adam")
    names = sorted(p.name for p in (admin.app.settings.uploads_dir / "Bauamt").iterdir())
    assert names == ["info-2.txt", "info.txt"]
    assert [d["file"] for d in admin.documents()] == ["info.txt", "info.txt"]


BAD = ["corrupt", "encrypted", "zip_bomb", "hostile_name", "empty", "too_large", "unsupported", "no_text"]


def _bad_file(kind: str, src: Path) -> tuple[Path, str]:
    if kind == "corrupt":
        return write(src / "c.pdf", "%PDF-1.7\n1 0 obj << /Type /Catalog >>\nkaputt"), "kaputt.pdf"
    if kind == "encrypted":
        return make_pdf(src / "e.pdf", ["Geheim"], password="geheim"), "geheim.pdf"
    if kind == "zip_bomb":
        return make_zip_bomb(src / "z.docx"), "bombe.docx"
    if kind == "hostile_name":
        return write(src / "h.txt", "root:x:0:0:root:/root:/bin/bash\n"), "../../etc/passwd"
    if kind == "empty":
        (src / "0.txt").write_bytes(b"")
        return src / "0.txt", "leer.txt"
    if kind == "too_large":
        p = src / "big.pdf"
        with open(p, "wb") as fh:
            fh.truncate(300 * 1024 * 1024)  # sparse: no disk used
        return p, "riesig.pdf"
    if kind == "unsupported":
        (src / "p.gif").write_bytes(b"GIF89a" + bytes(500))  # PNG, JPEG and TIFF are scans read by OCR now
        return src / "p.gif", "foto.pdf"
    if kind == "no_text":
        return make_pdf(src / "n.pdf", [""]), "scan.pdf"
    raise AssertionError(kind)


EXPECTED = {
    "corrupt": "beschädigt", "encrypted": "passwortgeschützt", "zip_bomb": "Zip-Bombe",
    "hostile_name": "Unzulässiger Dateiname", "empty": "leer", "too_large": "zu groß",
    "unsupported": "nicht unterstützt", "no_text": "",
}


@pytest.mark.parametrize("kind", BAD)
def test_bad_upload_changes_nothing(admin, src, kind):
    good = write(src / "good.txt", "Die Müllabfuhr kommt dienstags.\n")
    admin.upload([(good, "muell.txt")], "Bauamt", "adam")
    before = state(admin)
    path, name = _bad_file(kind, src)
    result = admin.upload([(path, name)], "Bauamt", "adam")
    assert result.accepted == [] and len(result.rejected) == 1
    reason = result.rejected[0]["reason"]
    assert "wurde nicht übernommen" in reason and EXPECTED[kind] in reason, reason
    assert state(admin) == before
    assert not list((admin.app.settings.uploads_dir / ".staging").glob("*"))
    rejected = admin.audit.entries(action="upload.rejected")
    assert len(rejected) == 1 and json.loads(rejected[0]["detail"])["code"] == result.rejected[0]["code"]


def test_bad_file_in_a_batch_does_not_stop_the_others(admin, src):
    good = write(src / "good.txt", "Die Müllabfuhr kommt dienstags.\n")
    bad, name = _bad_file("encrypted", src)
    result = admin.upload([(bad, name), (good, "muell.txt")], "Bauamt", "adam")
    assert [a["name"] for a in result.accepted] == ["muell.txt"]
    assert [r["code"] for r in result.rejected] == ["encrypted"]


def test_upload_into_unknown_collection_is_refused(admin, src):
    f = write(src / "a.txt", "Text\n")
    before = state(admin)
    with pytest.raises(AdminError, match="gibt es nicht"):
        admin.upload([(f, "a.txt")], "Gibtsnicht", "adam")
    with pytest.raises(AdminError, match="Ungültiger Sammlungsname"):
        admin.upload([(f, "a.txt")], "../etc", "adam")
    assert state(admin) == before


# -- replace / delete ---------------------------------------------------------------------
def test_replace_document_with_new_version(admin, src):
    v1 = make_pdf(src / "v1.pdf", ["Die Hundesteuer beträgt 120 Euro."])
    doc = admin.upload([(v1, "hundesteuer.pdf")], "Bauamt", "adam").accepted[0]
    v2 = make_pdf(src / "v2.pdf", ["Die Hundesteuer beträgt ab 2026 nun 150 Euro."])
    res = admin.upload([(v2, "hundesteuer-2026.pdf")], "", "adam", replace_doc_id=doc["doc_id"])
    assert res.rejected == [] and res.accepted[0]["doc_id"] == doc["doc_id"]
    rec = admin.app.catalog.get(doc["doc_id"])
    assert rec.original_name == "hundesteuer-2026.pdf" and Path(rec.path).name == "hundesteuer.pdf"
    assert "150 Euro" in texts(admin) and "120 Euro" not in texts(admin)
    assert len(admin.documents()) == 1
    assert not [p for p in admin.app.settings.uploads_dir.rglob("*") if "bak" in p.name]
    assert admin.audit.entries(action="replace")[0]["target"] == "hundesteuer-2026.pdf"


@pytest.mark.parametrize("kind", ["corrupt", "encrypted", "other_format"])
def test_failed_replacement_keeps_the_old_version(admin, src, kind):
    v1 = make_pdf(src / "v1.pdf", ["Die Hundesteuer beträgt 120 Euro."])
    doc = admin.upload([(v1, "hundesteuer.pdf")], "Bauamt", "adam").accepted[0]
    before = state(admin)
    if kind == "other_format":
        path, name = write(src / "x.txt", "Neue Fassung als Text\n"), "neu.txt"
    else:
        path, name = _bad_file(kind, src)
    res = admin.upload([(path, name)], "", "adam", replace_doc_id=doc["doc_id"])
    assert res.accepted == [] and res.rejected
    assert state(admin) == before and "120 Euro" in texts(admin)


def test_only_uploaded_documents_can_be_replaced(admin, src, tmp_path):
    folder = tmp_path / "server"
    write(folder / "a.txt", "Serverdokument\n")
    admin.app.ingestor.ingest([folder], collection="Bauamt")
    doc_id = admin.app.catalog.documents()[0].doc_id
    with pytest.raises(AdminError, match="Serverordner"):
        admin.upload([(write(src / "b.txt", "neu\n"), "b.txt")], "", "adam", replace_doc_id=doc_id)
    assert not list((admin.app.settings.uploads_dir / ".staging").glob("*"))


def test_delete_removes_chunks_everywhere_and_the_upload_file(admin, src, tmp_path):
    f = write(src / "a.txt", "Die Hundesteuer beträgt 120 Euro.\n")
    doc = admin.upload([(f, "hund.txt")], "Bauamt", "adam").accepted[0]
    folder = tmp_path / "server"
    server_file = write(folder / "b.txt", "Parkgebühren betragen 2 Euro.\n")
    admin.app.ingestor.ingest([folder], collection="Bauamt")
    server_doc = admin.app.catalog.get_by_path(str(server_file.resolve())).doc_id

    out = admin.delete_document(doc["doc_id"], "adam")
    assert out["file_deleted"] and not Path(doc["stored"]).exists()
    assert admin.app.catalog.get(doc["doc_id"]) is None
    assert not any(c.startswith(doc["doc_id"]) for c in admin.app.vectors.ids())
    assert doc["doc_id"] not in search_sources(admin, "Hundesteuer")
    assert admin.app.kb.check().ok

    out = admin.delete_document(server_doc, "adam")
    assert not out["file_deleted"] and server_file.exists()  # files outside uploads/ are never deleted
    with pytest.raises(AdminError):
        admin.delete_document(server_doc, "adam")
    assert [e["action"] for e in admin.audit.entries(action="delete")] == ["delete", "delete"]


# -- re-index / sync ---------------------------------------------------------------------------
def test_reindex_scopes(admin, src, tmp_path):
    folder = tmp_path / "server"
    a = write(folder / "a.txt", "Version A: Die Hundesteuer beträgt 120 Euro.\n")
    write(folder / "b.txt", "Parkgebühren betragen 2 Euro.\n")
    admin.app.ingestor.ingest([folder], collection="Bauamt")
    up = admin.upload([(write(src / "u.txt", "Hochgeladen: Radwege.\n"), "Radwege Plan.txt")], "Bauamt", "adam")
    uploaded = up.accepted[0]["doc_id"]

    s = admin.reindex("changed", None, "adam")
    assert (s["updated"], s["unchanged"]) == (0, 3)
    a.write_text("Version B: Die Hundesteuer beträgt 150 Euro.\n", encoding="utf-8")
    s = admin.reindex("changed", None, "adam")
    assert (s["updated"], s["unchanged"]) == (1, 2) and "150 Euro" in texts(admin)
    s = admin.reindex("all", None, "adam")
    assert s["updated"] == 3
    s = admin.reindex("collection", "Bauamt", "adam")
    assert s["updated"] == 3
    s = admin.reindex("doc", uploaded, "adam")
    assert s["updated"] == 1
    assert admin.app.catalog.get(uploaded).original_name == "Radwege Plan.txt"  # survives re-index
    (folder / "b.txt").unlink()
    s = admin.reindex("all", None, "adam")
    assert s["missing_files"] == ["b.txt"] and s["updated"] == 2
    with pytest.raises(AdminError):
        admin.reindex("doc", "nope", "adam")
    with pytest.raises(AdminError):
        admin.reindex("sometimes", None, "adam")
    assert admin.audit.count(action="reindex") == 6
    assert admin.app.kb.check().ok


def test_sync_folder(admin, tmp_path):
    folder = tmp_path / "server"
    write(folder / "a.txt", "Eins\n")
    write(folder / "b.txt", "Zwei\n")
    s = admin.sync(str(folder), "Bauamt", "adam")
    assert s["added"] == 2
    (folder / "b.txt").unlink()
    s = admin.sync(str(folder), "Bauamt", "adam")
    assert (s["removed"], s["unchanged"]) == (1, 1)
    for bad in ("relativ/pfad", str(tmp_path / "fehlt"), "/", str(admin.settings.home),
                str(admin.settings.uploads_dir)):
        with pytest.raises(AdminError):
            admin.sync(bad, None, "adam")
    assert admin.audit.count(action="sync") == 2


PROTECTED = {"Datenverzeichnis": Path("/srv/kiportal"), "Upload-Ordner": Path("/tmp/kiportal-gradio-x1")}


@pytest.mark.parametrize("folder, refused", [
    ("/srv/dokumente", None),
    ("/srv/dokumente/bauamt", None),
    ("/srv/kiportal-alt", None),                     # a name that only begins like a protected one
    ("/tmp/kiportal-gradio-x2", None),               # only this process's own folder is known
    ("/tmp/anderes", None),
    ("/", "Systemwurzel"),
    ("/srv/kiportal", "Datenverzeichnis"),           # the folder itself
    ("/srv/kiportal/uploads", "Datenverzeichnis"),   # inside it
    ("/srv", "Datenverzeichnis"),                    # holding it
    ("/tmp/kiportal-gradio-x1", "Upload-Ordner"),
    ("/tmp/kiportal-gradio-x1/0a1b2c/antrag.pdf", "Upload-Ordner"),
    ("/tmp/kiportal-gradio-x1/kiportal-exports", "Upload-Ordner"),
    ("/tmp", "Upload-Ordner"),
])
def test_which_folders_an_admin_may_not_sync(folder, refused):
    why = refused_sync_folder(Path(folder), PROTECTED)
    assert (why.split(",")[0] if why else None) == refused


def test_sync_refuses_gradios_upload_folder_and_the_stored_originals(tmp_path, monkeypatch):
    """Other users' uploads and exports wait in gradio's folder; the originals folder may lie
    outside the data directory (``storage``)."""
    from settings_factory import make_settings

    from assistant.wiring import App

    gradio_tmp = tmp_path / "kiportal-gradio-test"
    write(gradio_tmp / "a1b2" / "fremder-antrag.txt", "Antrag von Frau Beispiel\n")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(gradio_tmp))
    storage = tmp_path / "ablage"
    write(storage / "hund.txt", "Hundesteuer\n")
    app = App(make_settings(tmp_path / "data", storage=str(storage)))
    admin = Admin(app, app.audit, lock_timeout=1.0)
    for bad, what in ((gradio_tmp, "Upload-Ordner"), (gradio_tmp / "a1b2", "Upload-Ordner"),
                      (storage, "Ablage der Originale"), (tmp_path, "Ordner darin oder darüber")):
        with pytest.raises(AdminError, match=what):
            admin.sync(str(bad), None, "adam")
    link = tmp_path / "harmlos"
    link.symlink_to(gradio_tmp / "a1b2")  # a link is judged by where it leads
    with pytest.raises(AdminError, match="Upload-Ordner"):
        admin.sync(str(link), None, "adam")
    assert admin.catalog.documents() == [] and admin.audit.count(action="sync") == 0


# -- collections -----------------------------------------------------------------------------
def test_collections(admin, src):
    admin.create_collection("Kultur", "oeffentlich", "adam")
    with pytest.raises(AdminError, match="gibt es schon"):
        admin.create_collection("Kultur", "intern", "adam")
    with pytest.raises(AdminError, match="Einstufung"):
        admin.create_collection("Neu", "geheim", "adam")
    for bad in ("", "../x", "a/b", "*", "x" * 65):
        with pytest.raises(AdminError):
            admin.create_collection(bad, "intern", "adam")
    admin.classify_collection("Kultur", "öffentlich", "adam")

    doc = admin.upload([(write(src / "a.txt", "Museumsnacht am Samstag.\n"), "museum.txt")], "Bauamt", "adam").accepted[0]
    with pytest.raises(AdminError, match="gibt es nicht"):
        admin.move_document(doc["doc_id"], "Nirgendwo", "adam")
    admin.move_document(doc["doc_id"], "Kultur", "adam")
    assert admin.app.catalog.get(doc["doc_id"]).collection == "Kultur"
    hits = admin.app.retriever.search("Museumsnacht", collections=["Kultur"]).hits
    assert hits and hits[0].chunk.doc_id == doc["doc_id"]
    assert admin.app.retriever.search("Museumsnacht", collections=["Bauamt"], mode="dense").hits == []

    with pytest.raises(AdminError, match="enthält noch"):
        admin.delete_collection("Kultur", "adam")
    admin.rename_collection("Kultur", "Kulturamt", "adam")
    assert admin.app.catalog.get(doc["doc_id"]).collection == "Kulturamt"
    assert admin.app.retriever.search("Museumsnacht", collections=["Kulturamt"], mode="dense").hits
    assert admin.app.retriever.search("Museumsnacht", collections=["Kulturamt"], mode="bm25").hits
    with pytest.raises(AdminError, match="gibt es schon"):
        admin.rename_collection("Kulturamt", "Bauamt", "adam")
    admin.delete_document(doc["doc_id"], "adam")
    admin.delete_collection("Kulturamt", "adam")
    assert [c["name"] for c in admin.collections()] == ["Bauamt"]
    assert admin.app.kb.check().ok
    actions = [e["action"] for e in admin.audit.entries(action="collection.*")][::-1]
    assert actions == ["collection.create", "collection.create", "collection.classify", "collection.move",
                       "collection.rename", "collection.delete"]


def test_catalog_changes_wait_briefly_for_the_writer_lock(admin, src):
    doc = admin.upload([(write(src / "a.txt", "Text\n"), "a.txt")], "Bauamt", "adam").accepted[0]
    admin.create_collection("Kultur", "intern", "adam")
    with writer_lock_wait(admin.settings.home):  # e.g. a long re-index in another process
        with pytest.raises(Busy, match="Indexierung"):
            admin.move_document(doc["doc_id"], "Kultur", "adam")
    admin.move_document(doc["doc_id"], "Kultur", "adam")


# -- health ------------------------------------------------------------------------------------
def test_health_and_repair(admin, src):
    admin.upload([(write(src / "a.txt", "Die Hundesteuer beträgt 120 Euro.\n"), "a.txt")], "Bauamt", "adam")
    h = admin.health()
    assert h["report"]["ok"] and h["documents"] == 1 and h["collections"][0]["documents"] == 1
    assert {"Katalog", "Chroma (Vektoren)", "BM25 (Stichwörter)", "Uploads", "Modelle"} <= set(h["disk"])
    assert h["disk"]["Uploads"] > 0 and h["disk"]["Katalog"] > 0
    # an orphan vector, as a crash between the steps would leave
    orphan = Chunk(chunk_id="orphan-1", doc_id="gone", ordinal=0, text="x", source="x", title="x", page=None, section=None,
                   collection="Bauamt")
    admin.app.vectors.add([orphan], admin.app.kb.embedder.embed_passages(["x"]))
    assert not admin.health()["report"]["ok"]
    # and a move whose vector update was cut off: the catalog says Kultur, the vectors Bauamt
    admin.create_collection("Kultur", "intern", "adam")
    doc_id = admin.app.catalog.documents()[0].doc_id
    admin.app.catalog.move_document(doc_id, "Kultur")
    # the knowledge base decides by the catalog, but the index's own filter (used when few of the
    # nearest passages are readable) still sees the old collection until the repair
    vector = admin.app.kb.embedder.embed_query_vector("Hundesteuer")
    assert admin.app.vectors.query(vector, 5, {"collections": ["Kultur"]}) == []
    assert admin.app.retriever.search("Hundesteuer", collections=["Kultur"], mode="dense").hits
    h = admin.health(repair=True, actor="adam")
    assert h["report"]["repaired"] and admin.health()["report"]["ok"]
    assert admin.app.vectors.query(vector, 5, {"collections": ["Kultur"]})
    assert admin.app.retriever.search("Hundesteuer", collections=["Kultur"], mode="dense").hits
    assert admin.audit.count(action="repair") == 1


def test_disk_usage_counts_shared_models(hash_app, tmp_path):
    shared = tmp_path / "shared-model"
    shared.mkdir()
    (shared / "w.bin").write_bytes(b"\0" * 5000)
    models = hash_app.settings.models_dir
    models.mkdir(parents=True, exist_ok=True)
    (models / "e5").symlink_to(shared)
    assert disk_usage(hash_app.settings)["Modelle"] == 5000


# -- background jobs and start-up ---------------------------------------------------------------
def test_upload_and_reindex_as_jobs(hash_app, src):
    admin = hash_app.start_jobs()
    try:
        admin.create_collection("Bauamt", "intern", "adam")
        f = write(src / "a.txt", "Die Hundesteuer beträgt 120 Euro.\n")
        empty = src / "leer.txt"
        empty.write_bytes(b"")
        job_id, rejected = admin.submit_upload([(f, "hund.txt"), (empty, "leer.txt")], "Bauamt", "adam")
        assert [r["code"] for r in rejected] == ["empty"]  # refused at once, before any job
        job = admin.jobs.wait(job_id, 10)
        assert job["status"] == "done" and "1 Datei übernommen" in job["message"]
        assert "leer" in job["message"]
        job = admin.jobs.wait(admin.submit_reindex("all", None, "adam"), 10)
        assert job["status"] == "done" and job["collection"] == "*" and "neu indexiert 1" in job["message"]
        job = admin.jobs.wait(admin.submit_reindex("collection", "Bauamt", "adam"), 10)
        assert job["status"] == "done" and job["collection"] == "Bauamt"
        bad_id, _ = admin.submit_upload([(_bad_file("corrupt", src)[0], "kaputt.pdf")], "Bauamt", "adam")
        job = admin.jobs.wait(bad_id, 10)
        assert job["status"] == "failed" and "beschädigt" in job["message"]
        with pytest.raises(AdminError):
            admin.submit_sync("/does/not/exist", None, "adam")
        assert hash_app.start_jobs() is admin  # one per app
    finally:
        admin.jobs.shutdown()


def test_an_upload_job_finds_its_files_relative_to_the_store(hash_app, tmp_path):
    """A worker on another machine mounts the shared upload store elsewhere: the job names each
    staged file relative to the store, not by the submitting machine's absolute path."""
    admin = hash_app.start_jobs()
    try:
        admin.create_collection("Bauamt", "intern", "adam")
        f = tmp_path / "a.txt"
        f.write_text("Die Hundesteuer beträgt 120 Euro.\n", encoding="utf-8")
        staged, _ = admin.stage_uploads([(f, "hund.txt")])
        stored = admin._stored_name(staged[0].path)
        assert stored.startswith(".staging/") and not Path(stored).is_absolute()
        params = {"files": [{"path": "/mnt/elsewhere/" + stored, "stored": stored, "name": "hund.txt",
                             "size": staged[0].size}], "collection": "Bauamt", "replace": None, "rejected": []}
        job = admin.jobs.wait(admin.jobs.submit("upload", params, collection="Bauamt", actor="adam"), 20)
        assert job["status"] == "done" and "1 Datei übernommen" in job["message"], job
    finally:
        admin.jobs.shutdown()


def test_startup_recovers_uploads_and_purges_audit(hash_app, src):
    audit = hash_app.audit
    db = audit.db
    audit.record("upload", "alt", "x")
    db.execute("UPDATE audit SET at = at - :d", {"d": 400 * 86400})
    orphan = hash_app.settings.uploads_dir / "Bauamt" / "halb.txt"
    write(orphan, "halb hochgeladen\n")
    write(hash_app.settings.uploads_dir / ".staging" / "up-1.txt", "x\n")
    admin = hash_app.start_jobs()
    try:
        assert not orphan.exists() and not (hash_app.settings.uploads_dir / ".staging").exists()
        assert audit.entries(action="upload") == [] and audit.count(action="audit.purge") == 1
    finally:
        admin.jobs.shutdown()
