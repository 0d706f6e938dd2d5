from __future__ import annotations

import threading

import pytest

from corpus.catalog import Catalog, DocumentRecord
from corpus.models import Chunk


def _rec(doc_id="d1", coll="a", **kw) -> DocumentRecord:
    kw.setdefault("status", "indexed")
    return DocumentRecord(doc_id=doc_id, source=f"{doc_id}.pdf", path=f"/x/{doc_id}.pdf", collection=coll, **kw)


def _chunks(doc_id: str, version: str, n: int) -> list[Chunk]:
    return [Chunk(chunk_id=f"{doc_id}:{version}:{i}", doc_id=doc_id, ordinal=i, text=f"t{i}", source="", title="",
                  page=i + 1, section=None, collection="a") for i in range(n)]


@pytest.fixture
def cat(any_db_url):
    """The catalog on a SQLite file and on PostgreSQL: the same code and schema on both."""
    catalog = Catalog(any_db_url)
    yield catalog
    catalog.close()


def test_commit_replaces_version_and_returns_stale_ids(cat):
    assert cat.commit_document(_rec(), _chunks("d1", "v1", 3)) == []
    stale = cat.commit_document(_rec(), _chunks("d1", "v2", 2))
    assert sorted(stale) == ["d1:v1:0", "d1:v1:1", "d1:v1:2"]
    assert cat.chunk_ids() == {"d1:v2:0", "d1:v2:1"}
    assert cat.get("d1").chunk_count == 2


def test_generation_moves_on_visible_changes(cat):
    g0 = cat.generation()
    cat.commit_document(_rec(), _chunks("d1", "v1", 1))
    g1 = cat.generation()
    cat.delete_document("d1")
    assert g0 < g1 < cat.generation()


def test_chunks_by_ids_joins_document_fields_and_skips_unknown(cat):
    cat.commit_document(_rec(title="Satzung"), _chunks("d1", "v1", 2))
    got = cat.chunks_by_ids(["d1:v1:1", "orphan"])
    assert list(got) == ["d1:v1:1"]
    assert got["d1:v1:1"].title == "Satzung" and got["d1:v1:1"].page == 2 and got["d1:v1:1"].source == "d1.pdf"


def test_failed_update_keeps_indexed_version(cat):
    cat.commit_document(_rec(), _chunks("d1", "v1", 2))
    cat.record_failure(_rec(status="failed", error="kaputt"))
    rec = cat.get("d1")
    assert rec.status == "indexed" and rec.chunk_count == 2 and rec.error == "kaputt"


def test_delete_unknown_raises(cat):
    with pytest.raises(KeyError):
        cat.delete_document("nope")


def test_collections_rename_move_delete(cat):
    cat.commit_document(_rec("d1", "a"), _chunks("d1", "v1", 1))
    cat.ensure_collection("leer")
    assert [c["name"] for c in cat.collections()] == ["a", "leer"]
    assert cat.rename_collection("a", "b") == ["d1"]
    assert cat.get("d1").collection == "b"
    cat.move_document("d1", "c")
    assert cat.get("d1").collection == "c"
    with pytest.raises(ValueError):
        cat.delete_collection("c")
    cat.delete_collection("leer")
    assert "leer" not in [c["name"] for c in cat.collections()]


def test_concurrent_readers_during_writes(cat):
    cat.commit_document(_rec(), _chunks("d1", "v0", 3))
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            ids = cat.chunk_ids()
            versions = {i.split(":")[1] for i in ids}
            if len(versions) != 1 or len(ids) != 3:
                errors.append(f"saw {sorted(ids)}")

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for v in range(1, 30):
        cat.commit_document(_rec(), _chunks("d1", f"v{v}", 3))
    stop.set()
    for t in readers:
        t.join()
    assert errors == []


def test_metadata_is_stored_with_the_version_and_old_catalogs_gain_the_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)  # a catalog as schema 2 wrote it: no documents.meta
    old.executescript("""CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '2'), ('generation', '4');
        CREATE TABLE documents (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL, path TEXT NOT NULL UNIQUE,
            original_name TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL DEFAULT 0,
            format TEXT NOT NULL DEFAULT '', title TEXT NOT NULL DEFAULT '', pages INTEGER, page_kind TEXT,
            collection TEXT NOT NULL, classification TEXT, status TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',
            indexed_at REAL, chunk_count INTEGER NOT NULL DEFAULT 0);
        INSERT INTO documents(doc_id, source, path, collection, status) VALUES ('d0', 'a.pdf', '/x/a.pdf', 'a', 'indexed');""")
    old.commit()
    old.close()
    cat = Catalog(path)
    assert cat.get("d0").meta == {} and cat.get_meta("schema_version") == "4"
    meta = {"source": "oparl", "reference": "2025/117", "consultations": [{"role": "Beschlussfassung"}]}
    cat.commit_document(_rec("d1", meta=meta), _chunks("d1", "v1", 1))
    assert cat.get("d1").meta == meta and cat.documents(collection="a")[1].meta == meta
    gen = cat.generation()
    cat.set_document_meta("d1", {"source": "oparl", "reference": "2025/118"})
    assert cat.get("d1").meta["reference"] == "2025/118" and cat.generation() == gen + 1
    with pytest.raises(KeyError):
        cat.set_document_meta("nope", {})


def test_every_visible_change_moves_the_generation(cat):
    """Processes cache what they derive from the catalog by its generation (collection sizes, the
    Ampel's classifications, readers, the BM25 index), so each of these changes must move it."""
    changes = [
        lambda: cat.ensure_collection("neu"),
        lambda: cat.set_collection_classification("neu", "vertraulich"),
        lambda: cat.set_collection_readers("neu", ["bauamt"]),
        lambda: cat.commit_document(_rec("d1", "neu"), _chunks("d1", "v1", 1)),
        lambda: cat.set_document_meta("d1", {"x": 1}),
        lambda: cat.move_document("d1", "a"),
        lambda: cat.rename_collection("a", "b"),
        lambda: cat.record_failure(_rec("d2", "b", status="failed", error="kaputt")),
        lambda: cat.delete_document("d1"),
        lambda: cat.delete_collection("neu"),
    ]
    seen = [cat.generation()]
    for change in changes:
        change()
        seen.append(cat.generation())
    assert seen == sorted(set(seen)), seen
    cat.ensure_collection("b")  # exists already: nothing visible changed
    assert cat.generation() == seen[-1]


def test_a_second_catalog_on_the_same_database_sees_every_change(cat, any_db_url):
    """Two replicas are two Catalog objects on one database: no state is kept in the process."""
    other = Catalog(any_db_url)
    cat.commit_document(_rec("d1", "a", title="Satzung"), _chunks("d1", "v1", 2))
    cat.set_collection_classification("a", "vertraulich")
    assert other.generation() == cat.generation()
    assert other.get("d1").title == "Satzung" and other.chunk_ids() == {"d1:v1:0", "d1:v1:1"}
    assert [c["classification"] for c in other.collections()] == ["vertraulich"]
    other.delete_document("d1")
    assert cat.get("d1") is None and cat.generation() == other.generation()
    other.close()


def test_meta_notes_of_several_writers_are_kept_apart(cat):
    cat.set_meta("vectors_in_flight:a", '["x"]')
    cat.set_meta("vectors_in_flight:b", '["y"]')
    cat.set_meta("index_signature", "v1")
    assert cat.meta_items("vectors_in_flight") == {"vectors_in_flight:a": '["x"]', "vectors_in_flight:b": '["y"]'}
    cat.delete_meta("vectors_in_flight:a")
    assert list(cat.meta_items("vectors_in_flight")) == ["vectors_in_flight:b"]


# The catalog DDL of schema version 4, exactly as corpus/catalog.py created it before Alembic.
V4_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    classification TEXT NOT NULL DEFAULT 'intern',
    created_at REAL NOT NULL,
    readers TEXT NOT NULL DEFAULT '["alle"]'
);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    original_name TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    format TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    pages INTEGER,
    page_kind TEXT,
    collection TEXT NOT NULL,
    classification TEXT,
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    indexed_at REAL,
    chunk_count INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS documents_collection ON documents(collection);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    page INTEGER,
    section TEXT,
    content_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ordinal);
CREATE TABLE IF NOT EXISTS ocr_pages (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    page INTEGER NOT NULL,
    confidence REAL NOT NULL,
    PRIMARY KEY (doc_id, page)
);
"""


def test_a_version_4_catalog_from_before_alembic_opens_with_its_data(tmp_path):
    import sqlite3

    from corpus.catalog import VERSION_TABLE, _head

    path = tmp_path / "catalog.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(V4_SCHEMA)
    old.executescript("""
        INSERT INTO meta VALUES ('schema_version', '4'), ('generation', '17'), ('index_signature', 'v1|e5');
        INSERT INTO collections VALUES ('Bauamt', 'vertraulich', 1700000000.5, '["bauamt"]');
        INSERT INTO documents(doc_id, source, path, collection, status, title, indexed_at, chunk_count, meta)
            VALUES ('d0', 'satzung.pdf', '/daten/satzung.pdf', 'Bauamt', 'indexed', 'Satzung', 1700000001.25, 2,
                    '{"reference": "2025/1"}');
        INSERT INTO chunks VALUES ('d0:v1:0', 'd0', 0, 'Erster Teil', 1, NULL, 'h0'),
                                  ('d0:v1:1', 'd0', 1, 'Zweiter Teil', 2, 'Abschnitt', 'h1');
        INSERT INTO ocr_pages VALUES ('d0', 2, 88.5);""")
    old.commit()
    old.close()

    cat = Catalog(path)
    assert cat.generation() == 17 and cat.get_meta("index_signature") == "v1|e5"
    assert cat.get_meta("schema_version") == "4"
    rec = cat.get("d0")
    assert (rec.title, rec.chunk_count, rec.meta, rec.ocr_pages) == ("Satzung", 2, {"reference": "2025/1"}, {2: 88.5})
    assert (rec.display_title, rec.shown_title) == ("", "Satzung")  # read before readable titles: shown as before
    assert cat.index_fingerprints() == {"d0": ("1700000001.25:2", "Bauamt")}
    assert [c.text for c in cat.iter_chunks("d0")] == ["Erster Teil", "Zweiter Teil"]
    assert cat.collection_readers() == {"Bauamt": ["bauamt"]}
    assert [(c["classification"], c["documents"], c["chunks"]) for c in cat.collections()] == [("vertraulich", 1, 2)]
    cat.commit_document(_rec("d1", "Bauamt"), _chunks("d1", "v1", 1))  # and it takes new versions
    assert cat.generation() == 18
    cat.close()
    with sqlite3.connect(path) as conn:  # stamped: the next start does not adopt it again
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()[0] == _head()
    again = Catalog(path)
    assert again.chunk_ids() == {"d0:v1:0", "d0:v1:1", "d1:v1:0"} and again.generation() == 18


def test_the_readable_title_is_stored_beside_the_indexed_one(cat):
    cat.commit_document(_rec("d1", title="Herausgeber:", display_title="Digitale Alarmierung"), _chunks("d1", "v1", 1))
    cat.commit_document(_rec("d2", title="Satzung"), _chunks("d2", "v1", 1))
    cat.commit_document(_rec("d3", original_name="Bericht 2025.pdf"), _chunks("d3", "v1", 1))
    shown = {r.doc_id: (r.title, r.shown_title) for r in cat.documents()}
    assert shown == {"d1": ("Herausgeber:", "Digitale Alarmierung"), "d2": ("Satzung", "Satzung"),
                     "d3": ("", "Bericht 2025.pdf")}
    # the passages keep the indexed title
    assert {c.title for c in cat.iter_chunks("d1")} == {"Herausgeber:"}
    assert {d: r.shown_title for d, r in cat.records(["d1", "d3", "d1", "nope"]).items()} == {
        "d1": "Digitale Alarmierung", "d3": "Bericht 2025.pdf"}
    assert cat.records([]) == {}
    # an answer's sources in one query, with what get() gives (the pages read by text recognition too)
    cat.commit_document(_rec("d4", ocr_pages={2: 61.0}), _chunks("d4", "v1", 1))
    both = cat.records(["d1", "nope", "d4", "d1"])
    assert both == {"d1": cat.get("d1"), "d4": cat.get("d4")} and both["d4"].ocr_pages == {2: 61.0}


def test_a_column_a_newer_replica_added_does_not_stop_reading(cat):
    """In a rolling upgrade an older replica reads a catalog a newer one has migrated."""
    cat.commit_document(_rec("d1", title="Satzung"), _chunks("d1", "v1", 1))
    with cat.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE documents ADD COLUMN summary_of_the_future TEXT DEFAULT 'x'")
    assert cat.get("d1").title == "Satzung" and [r.doc_id for r in cat.documents()] == ["d1"]
    cat.commit_document(_rec("d2", title="Ordnung"), _chunks("d2", "v1", 1))
    assert cat.get("d2").title == "Ordnung"


def test_text_with_nul_characters_is_stored(cat):
    """A PDF's text layer may hold NUL characters, which PostgreSQL's TEXT refuses."""
    chunk = Chunk(chunk_id="d1:v1:0", doc_id="d1", ordinal=0, text="Sat\x00zung", source="", title="", page=1,
                  section="Teil\x00 1", collection="a")
    cat.commit_document(_rec(title="Ti\x00tel"), [chunk])
    assert cat.get("d1").title.replace("\x00", "") == "Titel"
    got = cat.chunks_by_ids(["d1:v1:0"])["d1:v1:0"]
    assert got.text.replace("\x00", "") == "Satzung" and got.section.replace("\x00", "") == "Teil 1"


def test_several_changes_become_visible_in_one_transaction_or_not_at_all(cat, monkeypatch, dies_in_catalog_commit):
    cat.commit_document(_rec("d1"), _chunks("d1", "v1", 2))
    cat.commit_document(_rec("d2"), _chunks("d2", "v1", 1))
    cat.commit_document(_rec("d3"), _chunks("d3", "v1", 1))
    gen = cat.generation()

    # killed while writing the second version: nothing of the batch is visible
    calls = dies_in_catalog_commit()
    with pytest.raises(KeyboardInterrupt):
        cat.commit_documents([(_rec("d1"), _chunks("d1", "v2", 1)), (_rec("d2"), _chunks("d2", "v2", 1))],
                             failures=[_rec("d4", status="failed", error="kaputt")], drop=["d3"])
    assert calls == ["d1", "d2"]
    assert cat.chunk_ids() == {"d1:v1:0", "d1:v1:1", "d2:v1:0", "d3:v1:0"} and cat.get("d4") is None
    assert cat.generation() == gen
    monkeypatch.undo()

    stale = cat.commit_documents([(_rec("d1"), _chunks("d1", "v2", 1)), (_rec("d2"), _chunks("d2", "v2", 1))],
                                 failures=[_rec("d4", status="failed", error="kaputt")], drop=["d3", "unbekannt"])
    assert sorted(stale) == ["d1:v1:0", "d1:v1:1", "d2:v1:0", "d3:v1:0"]
    assert cat.chunk_ids() == {"d1:v2:0", "d2:v2:0"} and cat.get("d3") is None
    assert cat.get("d4").status == "failed" and cat.generation() == gen + 1
    assert cat.commit_documents([]) == [] and cat.generation() == gen + 1  # nothing to do changes nothing
