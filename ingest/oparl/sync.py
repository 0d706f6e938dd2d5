"""Import a council information system (OParl 1.1) into the knowledge base.

Walk: System → bodies → papers (Drucksachen: main file, auxiliary files, consultations)
and meetings (invitation, results and verbatim protocol, auxiliary files), following
``links.next`` on every list. Later runs ask each body only for what changed since its
last successful sync (``modified_since``) and fetch the objects that failed last time
once more by their id.

Guarantees, and how:

* **never a half-imported paper**: all files of an object are downloaded into a staging
  folder first; only when every one of them is there (or its ``text`` can stand in) are
  they moved into place and indexed. One missing file fails the whole object with a
  clear message, its previous version stays as it was, and the next run tries again.
  The new versions of a batch's documents, the text stand-ins of unreadable files and the
  removal of files an object no longer has become visible in one catalog transaction
  (``Ingestor.ingest(atomic=True)``): a process killed before it leaves every paper of the
  batch as it was; killed after it, the objects are not yet marked done and the next run
  finds their content unchanged.
* **no duplicates after a crash**: a file's local path (and so its document id) is derived
  from the object and file ids, and ingestion skips unchanged content by hash; an object
  is marked done only after its documents are committed.
* **nothing downloaded twice**: an object whose ``modified`` is unchanged is skipped
  without a request; a changed object's files are fetched only when ``sha1Checksum``,
  ``modified`` or ``size`` say the file changed (:func:`ingest.oparl.model.needs_download`).
* **deleted objects** (``deleted: true``) lose their documents and local files.
* **a shared files folder** (``files_dir`` inside the ``storage`` folder, so every machine of a
  cluster reads what a worker downloaded): the state remembers each file relative to
  the storage folder and documents are found by their storage-relative id, so machines may mount
  the folder at different places; staging happens inside ``files_dir`` (an atomic rename into
  place), and the lock that keeps runs apart may stay on the local disk (``lock_dir``).
* files go through the normal loaders: the format is sniffed from the bytes (the server's
  ``mimeType`` is not used), sizes and parse times are limited as for every file.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ingest.errors import IngestError
from ingest.loaders.detect import detect_format
from ingest.oparl.client import ClientConfig, Download, OParlClient, OParlError, origin_of
from ingest.oparl.model import (
    MEETING_FILE_ROLES, PAPER_FILE_ROLES, Item, RemoteFile, clean, file_meta, file_title, kind_of,
    needs_download, parse_item,
)
from ingest.oparl.state import SyncState
from ingest.pipeline import doc_id_for, storage_path_of

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
DEFAULT_COLLECTION = "ratsinformation"


@dataclass
class SyncReport:
    url: str
    collection: str
    bodies: list[dict] = field(default_factory=list)
    objects: int = 0
    imported: int = 0
    unchanged_objects: int = 0
    deleted_objects: int = 0
    downloaded: int = 0
    downloaded_bytes: int = 0
    files_unchanged: int = 0
    text_fallback: int = 0
    documents_added: int = 0
    documents_updated: int = 0
    documents_removed: int = 0
    failed: list[dict] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["seconds"] = round(self.seconds, 3)
        d["ok"] = self.ok
        return d

    def message(self) -> str:
        return report_message(self.as_dict())


def report_message(r: dict) -> str:
    """One German line for a sync report (job list, CLI)."""
    return (f"{r['imported']} Vorgänge importiert, {r['unchanged_objects']} unverändert, "
            f"{r['deleted_objects']} gelöscht; {r['downloaded']} Dateien geladen, "
            f"{r['files_unchanged']} unverändert, {r['text_fallback']} aus dem Textfeld; "
            f"{len(r['failed'])} Fehler")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def file_key(object_id: str, file_id: str) -> str:
    """Stable local name of one file of one object: the same file keeps its document across runs."""
    return hashlib.sha1(f"{object_id}\n{file_id}".encode("utf-8")).hexdigest()[:24]


def readable_stem(f: RemoteFile) -> str:
    """A short, safe name part from the server's file name, so listings and sources are legible
    (letters, digits, umlauts, - and _ only: no dots, no slashes, nothing a shell or path could misread)."""
    base = re.split(r"[/\\]", f.file_name)[-1]
    stem = (base.rsplit(".", 1)[0] if "." in base else base) or f.name
    return re.sub(r"[^0-9A-Za-zÄÖÜäöüß_-]+", "-", stem).strip("-_")[:60].strip("-_") or "datei"


@dataclass
class _Ready:
    """One file of an object, ready to be placed: downloaded, reused or taken from ``text``."""

    file: RemoteFile
    mode: str  # "file" (the file itself) | "text" (its text field)
    fresh: bool = True  # False: unchanged since last run, already in place (never a text stand-in: see needs_download)
    staged: Path | None = None
    path: Path | None = None  # final place
    sha1: str = ""


class OParlImporter:
    """Runs one sync of one OParl URL into one collection (see module docstring)."""

    def __init__(self, ingestor, state: SyncState, files_dir: Path, config: ClientConfig = ClientConfig(), *,
                 overlap_s: float = 600.0, batch_size: int = 20, lock_dir: Path | None = None,
                 stale_staging_s: float = 0.0) -> None:
        """``lock_dir``: where ``.sync.lock`` lives (default ``files_dir``); a local folder when
        ``files_dir`` is a network share, where ``flock`` may not work. ``stale_staging_s``: a run
        removes the staging folders of dead runs older than this (0 = all: every run that could
        use ``files_dir`` holds the lock); in a cluster, workers on other machines stage in the
        same shared folder while this one runs, and are not kept apart by a local lock."""
        self.ingestor = ingestor
        self.state = state
        self.files_dir = Path(files_dir)
        self.lock_dir = Path(lock_dir) if lock_dir is not None else self.files_dir
        self.stale_staging_s = stale_staging_s
        self.config = config
        self.overlap_s = overlap_s
        self.batch_size = batch_size

    @property
    def catalog(self):
        return self.ingestor.kb.catalog

    # -- the run ---------------------------------------------------------------------
    def sync(self, url: str, collection: str | None = None, progress: Progress | None = None) -> SyncReport:
        start = time.perf_counter()
        report = SyncReport(url=url, collection=collection or DEFAULT_COLLECTION)
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_dir / ".sync.lock", "w") as lock:
            # one OParl run per data directory (a scheduled job and a CLI run may overlap)
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._sync(url, report, start, progress)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _sync(self, url: str, report: SyncReport, start: float, progress: Progress | None) -> SyncReport:
        # leftovers of a run that died are removed; their objects were never marked done
        cutoff = time.time() - self.stale_staging_s
        for old in self.files_dir.glob("staging-*"):
            try:
                if self.stale_staging_s <= 0 or old.lstat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass  # another machine's run just removed it
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=self.files_dir))
        self._progress = progress
        self._done = 0
        self._total = 0
        self._origin = origin_of(url)
        try:
            with OParlClient(self.config, trusted_urls=(url,)) as client:
                try:
                    root = client.get_json(url)
                    bodies = self._bodies(client, root)
                except OParlError as exc:
                    report.failed.append({"object": url, "label": "OParl-System", "error": str(exc)})
                    bodies = []
                for body in bodies:
                    if self._own(body["id"]):
                        self._sync_body(client, body, url, report, staging)
                    else:
                        self._ignore_foreign(report, body["id"], clean(body.get("name")) or "Körperschaft")
                report.requests = client.requests
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            report.seconds = time.perf_counter() - start
        return report

    def _own(self, object_id: object) -> bool:
        """Whether an id is on this run's source (its origin, ``host:port``).

        Why: the importer's state is keyed by the ids servers send. A second source, into another
        collection, that listed the first source's paper ids could delete those documents, move
        them into its own collection with its own text, or, by naming the first source's body,
        change when that body last synced and which URLs its next run requests (found by an
        attacker's probe). A server speaks only for the ids on itself; OParl ids are URLs of the
        server that holds the object."""
        return isinstance(object_id, str) and bool(self._origin) and origin_of(object_id) == self._origin

    def _ignore_foreign(self, report: SyncReport, object_id: str, label: str) -> None:
        """A body, paper or meeting whose id is not on this source: reported, never acted on."""
        log.warning("OParl: %s is not on this source (%s); ignored", object_id[:200], self._origin)
        report.failed.append({"object": object_id[:500], "label": label,
                              "error": "Objekt eines anderen Servers (die id liegt nicht auf dieser Quelle): ignoriert"})

    def _bodies(self, client: OParlClient, root: dict) -> list[dict]:
        kind = kind_of(root)
        if kind == "body":
            if not isinstance(root.get("id"), str):
                raise OParlError("Körperschaft ohne id")
            return [root]
        if kind == "system":
            ref = root.get("body")
            if not isinstance(ref, str):
                raise OParlError("System ohne Liste der Körperschaften („body“)")
            return [b for b in client.iter_list(ref) if kind_of(b) == "body" and isinstance(b.get("id"), str)
                    and b.get("deleted") is not True]
        raise OParlError(f"weder OParl-System noch -Körperschaft (type „{clean(root.get('type'), 100)}“)")

    def _sync_body(self, client: OParlClient, body: dict, source_url: str, report: SyncReport, staging: Path) -> None:
        body_id = body["id"]
        name = clean(body.get("name") or body.get("shortName")) or body_id
        since = self.state.last_sync(body_id)
        started = _now()
        info = {"id": body_id, "name": name, "modified_since": since, "complete": False}
        report.bodies.append(info)
        seen: set[str] = set()
        params = {"modified_since": since} if since else None
        try:
            # what failed last time is asked for again by id: it may not count as modified any more
            retry = []
            for row in self.state.failed_objects(body_id):
                if not self._own(row["object_id"]):  # remembered before ids were checked: not this server's
                    continue
                try:
                    retry.append(client.get_json(row["object_id"]))
                except OParlError as exc:
                    self._fail(report, row["object_id"], body_id, row["kind"], row["label"], str(exc))
            self._process(client, retry, body, report, staging, seen)
            for key in ("paper", "meeting"):
                ref = body.get(key)
                if not isinstance(ref, str) or not ref:
                    continue
                batch: list[dict] = []
                for obj in client.iter_list(ref, params, on_page=self._count_page):
                    batch.append(obj)
                    if len(batch) >= self.batch_size:
                        self._process(client, batch, body, report, staging, seen)
                        batch = []
                self._process(client, batch, body, report, staging, seen)
        except OParlError as exc:
            # the listing broke off: keep what was imported, do not move the sync time, say why
            report.failed.append({"object": body_id, "label": name, "error": f"Liste abgebrochen: {exc}"})
            return
        since_next = (started - dt.timedelta(seconds=self.overlap_s)).isoformat()
        self.state.set_last_sync(body_id, source_url, name, since_next)
        info["complete"] = True

    def _count_page(self, page: dict) -> None:
        pag = page.get("pagination") if isinstance(page.get("pagination"), dict) else {}
        total = pag.get("totalElements")
        if isinstance(total, int) and pag.get("currentPage") in (None, 1):
            self._total += total

    def _tick(self, label: str) -> None:
        self._done += 1
        if self._progress:
            self._progress(self._done, max(self._total, self._done), label)

    # -- one batch of papers/meetings ------------------------------------------------------
    def _fail(self, report: SyncReport, object_id: str, body_id: str, kind: str, label: str, error: str) -> None:
        log.warning("OParl %s %s: %s", kind, object_id, error)
        report.failed.append({"object": object_id, "label": label, "error": error})
        self.state.mark_failed(object_id, body_id, kind or "paper", error, label)

    def _resolve_files(self, client: OParlClient, obj: dict) -> dict:
        """File links given as URLs (instead of embedded objects) are fetched, so parsing sees objects."""
        roles = PAPER_FILE_ROLES if kind_of(obj) == "paper" else MEETING_FILE_ROLES
        obj = dict(obj)
        for role in roles:
            value = obj.get(role)
            if isinstance(value, str):
                obj[role] = client.get_json(value)
            elif isinstance(value, list):
                obj[role] = [client.get_json(v) if isinstance(v, str) else v for v in value]
        return obj

    def _process(self, client: OParlClient, objs: list[dict], body: dict, report: SyncReport, staging: Path,
                 seen: set[str]) -> None:
        body_id = body["id"]
        todo: list[Item] = []
        for obj in objs:
            oid = obj.get("id")
            if not isinstance(oid, str) or oid in seen or kind_of(obj) not in ("paper", "meeting"):
                continue
            seen.add(oid)
            if not self._own(oid):
                self._ignore_foreign(report, oid, clean(obj.get("name")))
                continue
            report.objects += 1
            if obj.get("deleted") is True:
                self._delete(oid, report)
                self._tick("gelöscht")
                continue
            old = self.state.object(oid)
            modified = clean(obj.get("modified"), 64)
            if old and old["status"] == "done" and modified and old["modified"] == modified:
                report.unchanged_objects += 1
                self._tick(old["label"])
                continue
            try:
                item = parse_item(self._resolve_files(client, obj), body)
            except OParlError as exc:
                self._fail(report, oid, body_id, kind_of(obj), clean(obj.get("name")), f"Datei-Objekt: {exc}")
                continue
            if item is not None:
                todo.append(item)
        if not todo:
            return

        # 1. download what changed (bounded pool), per object all-or-nothing
        ready: dict[str, list[_Ready]] = {}
        jobs: list[tuple[Item, RemoteFile, Path]] = []
        for item in todo:
            stored = self.state.files(item.id)
            ready[item.id] = []
            for f in item.files:
                old = stored.get(f.id)
                if old and not needs_download(old, f) and self._local(old["doc_path"]).is_file():
                    ready[item.id].append(_Ready(f, "file", fresh=False, path=self._local(old["doc_path"]),
                                                 sha1=old["sha1"]))
                    report.files_unchanged += 1
                else:
                    jobs.append((item, f, staging / f"{file_key(item.id, f.id)}.part"))
        results = self._download_all(client, jobs)

        paths: list[Path] = []
        gone: list[Path] = []  # local files whose documents go in the same commit
        titles: dict[Path, str] = {}
        metas: dict[Path, dict] = {}
        names: dict[Path, str] = {}
        placed: list[Item] = []
        for item in todo:
            errors = []
            for it, f, dest in jobs:
                if it.id != item.id:
                    continue
                res = results[(item.id, f.id)]
                if isinstance(res, Download):
                    ready[item.id].append(_Ready(f, "file", staged=res.path, sha1=res.sha1))
                elif f.text:
                    log.info("OParl file %s not fetched (%s); using its text field", f.id, res)
                    txt = staging / f"{file_key(item.id, f.id)}.txt"
                    txt.write_text(f.text, encoding="utf-8")
                    ready[item.id].append(_Ready(f, "text", staged=txt))
                else:
                    errors.append(f"Datei „{f.name or f.file_name or f.id}“: {res}")
            if errors:
                for r in ready[item.id]:
                    if r.staged is not None:
                        r.staged.unlink(missing_ok=True)
                self._fail(report, item.id, body_id, item.kind, item.label, "; ".join(errors))
                self._tick(item.label)
                continue
            # 2. every file is here: move them into place (a file whose name changed leaves its old one)
            stored = self.state.files(item.id)
            for r in ready[item.id]:
                if r.fresh:
                    if r.mode == "file":
                        report.downloaded += 1
                        report.downloaded_bytes += r.staged.stat().st_size
                    report.text_fallback += r.mode == "text"
                    r.path = self._place(item, r)
                    old = stored.get(r.file.id)
                    if old and self._local(old["doc_path"]) != r.path:
                        gone.append(self._local(old["doc_path"]))
                paths.append(r.path)
                titles[r.path] = file_title(item, r.file)
                metas[r.path] = file_meta(item, r.file, text_fallback=r.mode == "text")
                names[r.path] = r.file.file_name or r.file.name or Path(r.path).name
            # ... and the files the object no longer has
            current = {r.file.id for r in ready[item.id]}
            gone += [self._local(old["doc_path"]) for fid, old in stored.items() if fid not in current]
            placed.append(item)
        if not placed:
            return

        # 3. index them, in one commit with the removals: a paper's files change together or not at all
        #    (unchanged content is skipped by hash; a new title or metadata is applied)
        stand_ins: dict[Path, tuple[Item, _Ready, Path]] = {}
        by_path = {r.path: (item, r) for item in placed for r in ready[item.id]}

        def text_instead(path: Path) -> tuple[Path, dict] | None:
            """A file the loaders cannot read (e.g. a scan) is indexed from its ``text`` field."""
            item, r = by_path.get(path, (None, None))
            if item is None or r.mode == "text" or not r.file.text:
                return None
            staged = staging / f"{file_key(item.id, r.file.id)}.txt"
            staged.write_text(r.file.text, encoding="utf-8")
            new_path = self._place(item, _Ready(r.file, "text", staged=staged))
            stand_ins[path] = (item, r, new_path)
            return new_path, file_meta(item, r.file, text_fallback=True)

        drop = [d for d in (self._doc_of(p) for p in gone) if d]
        summary = self.ingestor.ingest(paths, collection=report.collection, titles=titles, meta=metas,
                                       original_names=names, atomic=True, fallback=text_instead, drop=drop)
        report.documents_added += summary.added
        report.documents_updated += summary.updated
        report.documents_removed += summary.removed
        unreadable = {str(Path(f["source"]).resolve()): f["reason"] for f in summary.failed}
        for old_path, (item, r, new_path) in stand_ins.items():
            if summary.substituted.get(str(old_path)) == str(new_path):
                old_path.unlink(missing_ok=True)
                r.mode, r.path = "text", new_path
                report.text_fallback += 1
            else:
                new_path.unlink(missing_ok=True)  # its text could not be read either
        in_use = {r.path for item in placed for r in ready[item.id]}
        for path in gone:
            if path not in in_use:
                path.unlink(missing_ok=True)

        # 4. remember
        for item in placed:
            current = {r.file.id for r in ready[item.id]}
            for fid in self.state.files(item.id):
                if fid not in current:
                    self.state.drop_file(item.id, fid)
            problems = []
            for r in ready[item.id]:
                self.state.put_file(item.id, r.file.id, body_id, self._stored(r.path), r.mode, r.file.modified, r.file.sha1,
                                    r.file.size)
                reason = unreadable.get(str(r.path.resolve()))
                if reason:
                    problems.append(f"Datei „{r.file.name or r.file.file_name or r.file.id}“ nicht lesbar: {reason}")
            self.state.mark_done(item.id, body_id, item.kind, item.modified, item.label)
            report.imported += 1
            if problems:  # the file is stored and listed with its reason (e.g. a scan); retrying would not help
                report.failed.append({"object": item.id, "label": item.label, "error": "; ".join(problems)})
            self._tick(item.label)

    def _download_all(self, client: OParlClient, jobs: list[tuple[Item, RemoteFile, Path]]) -> dict:
        def one(job: tuple[Item, RemoteFile, Path]):
            item, f, dest = job
            if not f.url:
                return OParlError("weder downloadUrl noch accessUrl")
            if f.size is not None and f.size > self.config.max_file_bytes:
                return OParlError(f"laut Server {f.size} Bytes, Grenze {self.config.max_file_bytes}")
            try:
                return client.download(f.url, dest)
            except OParlError as exc:
                return exc

        if not jobs:
            return {}
        with ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="oparl-download") as pool:
            outcomes = list(pool.map(one, jobs))
        return {(item.id, f.id): out for (item, f, _), out in zip(jobs, outcomes)}

    def _place(self, item: Item, r: _Ready) -> Path:
        """Move a staged file to its stable place; the extension follows the sniffed content."""
        assert r.staged is not None
        if r.mode == "text":
            ext = "txt"
        else:
            try:
                ext = detect_format(r.staged)
            except IngestError:
                ext = "bin"  # the loader will say clearly what it is and why it is not read
        key = file_key(item.id, r.file.id)
        target = self.files_dir / key[:2] / f"{key}-{readable_stem(r.file)}.{ext}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(r.staged, target)
        return target

    # -- where files are -------------------------------------------------------------------------
    @property
    def storage(self) -> Path | None:
        return getattr(self.ingestor, "storage", None)

    def _stored(self, path: Path) -> str:
        """How the state remembers a file: inside the storage folder relative to it (another machine
        may mount the share elsewhere), else its full path, as rows always did (so an installation
        without ``storage`` keeps its rows exactly, and rows written before ``storage`` was set stay valid)."""
        return storage_path_of(path, self.storage) or str(path)

    def _local(self, stored: str) -> Path:
        """This machine's path of a remembered file."""
        p = Path(stored)
        return p if p.is_absolute() or self.storage is None else self.storage / p

    # -- removal -------------------------------------------------------------------------------
    def _remove_document(self, path: Path) -> int:
        """Delete the document of a local file and the file; returns 1 if a document went."""
        removed = 0
        doc_id = self._doc_of(path)
        if doc_id is not None:
            try:
                self.ingestor.delete(doc_id)
                removed = 1
            except KeyError:
                pass
        path.unlink(missing_ok=True)
        return removed

    def _doc_of(self, path: Path) -> str | None:
        """The catalogued document of a local file, if any: by id first (a file in the storage folder
        is catalogued under its storage-relative id, while the catalog's ``path`` is the full path on
        whichever machine imported it), then by path."""
        rec = self.catalog.get(doc_id_for(path, self.storage))
        if rec is None:
            rec = self.catalog.get_by_path(str(path.resolve()))
        return rec.doc_id if rec is not None else None

    def _delete(self, object_id: str, report: SyncReport) -> None:
        for row in self.state.files(object_id).values():
            report.documents_removed += self._remove_document(self._local(row["doc_path"]))
        if self.state.object(object_id) is not None or self.state.files(object_id):
            report.deleted_objects += 1
        self.state.forget_object(object_id)
