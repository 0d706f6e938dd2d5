"""The one place that builds everything from settings. Nothing is built at import time.

Backends are imported lazily inside the builder that needs them, so e.g. a machine with
`vector.mode = "chroma_http"` never opens a local Chroma, and `kiportal docs list`
never loads a model.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.datadir import PRIVATE_UMASK
from assistant.settings import Settings
from corpus.catalog import Catalog
from corpus.embeddings import Embedder
from corpus.knowledge_base import KnowledgeBase

if TYPE_CHECKING:  # built lazily below: importing them here would load them for every command
    from assistant.access import Departments
    from assistant.admin import Admin
    from assistant.appdb import AppDB
    from assistant.audit import AuditLog
    from assistant.links import LinkSigner
    from assistant.login_failures import DBLoginFailures
    from assistant.sso_subjects import SubjectBindings
    from assistant.training.sessions import TrainingStore
    from assistant.users import UserStore
    from corpus.db import ReentrantLock

log = logging.getLogger(__name__)

E5_DIR_NAME = "multilingual-e5-small"
E5_ONNX_DIR_NAME = "multilingual-e5-small-onnx"
ONNX_FILES = {"e5_onnx": "model.onnx", "e5_int8": "model_int8.onnx"}


class ModelMissing(RuntimeError):
    """A model has not been prepared yet; the message says which command fixes it."""


def quiet_libraries() -> None:
    """No telemetry, no hub: set before any of these libraries is imported."""
    for key, value in {
        "ANONYMIZED_TELEMETRY": "False",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "DO_NOT_TRACK": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(key, value)


GRADIO_FOLDER_PREFIX = "kiportal-gradio-"  # the private upload folder each portal process makes in the temp dir


def gradio_upload_folder() -> Path:
    """gradio's upload and cache folder of this process, found as gradio finds it
    (``gradio.utils.get_upload_folder``): ``GRADIO_TEMP_DIR``, which the portal points at a private
    folder before it builds the interface (``ui.file_values.ensure_private_gradio_folder``), else
    gradio's default ``<tmp>/gradio``. Read from the environment here because gradio is ``ui``'s
    toolkit and ``assistant`` imports neither; a test checks that both name the same folder."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def load_limits(settings: Settings, *, file_seconds: float | None = None):
    """The loaders' limits (``ingest.loaders.LoadLimits``) from the settings: one home for the
    ingest and the Werkzeuge's file input, so an operator's ``ocr.*`` and ``limits.*`` hold for
    both. ``file_seconds``: text recognition adds nothing to a file's time limit (a reader whose
    caller waits, such as a tool in the answer queue, gets this many seconds in all)."""
    from ingest.loaders import LoadLimits
    from ingest.loaders.ocr import OcrOptions

    lim, o = settings.limits, settings.ocr
    ocr = OcrOptions(enabled=o.enabled, languages=o.languages, dpi=o.dpi, workers=o.workers,
                     page_timeout_s=o.page_timeout_s if file_seconds is None else min(o.page_timeout_s, file_seconds),
                     seconds_per_page=o.seconds_per_page,
                     max_file_seconds=o.max_file_seconds if file_seconds is None else 0.0, osd=o.osd)
    return LoadLimits(max_bytes=lim.max_bytes, max_pages=lim.max_pages, max_unzipped_bytes=lim.max_unzipped_bytes,
                      max_zip_ratio=lim.max_zip_ratio, max_image_pixels=lim.max_image_pixels,
                      max_text_chars=lim.max_text_chars, ocr=ocr)


class App:
    """Lazily built components of one kiportal installation (one data directory)."""

    def __init__(self, settings: Settings) -> None:
        quiet_libraries()
        os.umask(PRIVATE_UMASK)  # what the service creates in the data dir is its own (assistant.datadir)
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self._jobs_lock = threading.Lock()

    # -- embedding ---------------------------------------------------------
    def e5_model_dir(self) -> Path:
        return self.settings.models_dir / E5_DIR_NAME

    def prepared_e5_dir(self) -> Path:
        """The e5 folder (torch weights), or :class:`ModelMissing` before ``kiportal models prepare``."""
        path = self.e5_model_dir()
        if not (path / "modules.json").exists():
            raise ModelMissing(
                f"Embedding-Modell fehlt in {path}. Bitte zuerst `kiportal models prepare` ausführen. / "
                "Embedding model missing: run `kiportal models prepare` first."
            )
        return path

    def e5_onnx_dir(self) -> Path:
        return self.settings.models_dir / E5_ONNX_DIR_NAME

    def build_embedder(self) -> Embedder:
        emb = self.settings.embedding
        if emb.mode == "hash":
            from corpus.embeddings import HashEmbedder

            return HashEmbedder()
        if emb.mode in ONNX_FILES:
            from corpus.embeddings import OnnxEmbedder

            folder = self.e5_onnx_dir()
            if not (folder / ONNX_FILES[emb.mode]).exists():
                raise ModelMissing(
                    f"ONNX-Embedding-Modell fehlt in {folder}. Bitte zuerst `kiportal models prepare` ausführen. / "
                    "ONNX embedding model missing: run `kiportal models prepare` first."
                )
            return OnnxEmbedder(folder, model_file=ONNX_FILES[emb.mode], query_prefix=emb.query_prefix,
                                passage_prefix=emb.passage_prefix, max_seq_length=emb.max_seq_length,
                                threads=emb.threads, query_threads=emb.query_threads)
        from corpus.embeddings import SentenceTransformerEmbedder

        if emb.mode == "e5":
            path = self.prepared_e5_dir()
        else:
            path = emb.model
        return SentenceTransformerEmbedder(
            path, query_prefix=emb.query_prefix, passage_prefix=emb.passage_prefix,
            max_seq_length=emb.max_seq_length, threads=emb.threads,
            query_threads=emb.query_threads,
        )

    @property
    def index_signature(self) -> str:
        """Changes when re-indexing everything is needed (other model or chunking)."""
        s = self.settings
        # e5_onnx computes the same vectors as torch's e5 (cosine ≥ 0.9999), so switching between
        # them keeps the index; int8 vectors differ slightly and get a re-index of their own
        model = {"sentence_transformers": s.embedding.model, "e5_onnx": "e5"}.get(s.embedding.mode, s.embedding.mode)
        return f"v1|{model}|{s.embedding.passage_prefix}|{s.chunking.size_tokens}/{s.chunking.overlap_tokens}"

    def protected_folders(self) -> dict[str, Path]:
        """The portal's own folders, by German name: no admin may sync them, anything in them or a
        folder holding them (:func:`assistant.admin_rules.refused_sync_folder`). Gradio's upload
        folder holds other users' uploads and exports. Asked at every check, not kept: the portal
        chooses gradio's folder after this App is built."""
        s = self.settings
        protected = {"Datenverzeichnis des Portals": s.home, "Ablage der Originale": s.uploads_dir,
                     "Upload-Ordner des Portals": gradio_upload_folder()}
        # the other portal processes of this machine (replicas, a second portal) keep their users'
        # uploads in folders of the same making (ui.file_values.ensure_private_gradio_folder), and
        # other gradio apps in gradio's default folder
        tmp = Path(tempfile.gettempdir())
        others = sorted(tmp.glob(f"{GRADIO_FOLDER_PREFIX}*")) + [tmp / "gradio"]
        for n, folder in enumerate(others, start=1):
            protected[f"Upload-Ordner eines anderen Portal-Prozesses ({n})"] = folder.resolve()
        return protected

    # -- stores ------------------------------------------------------------
    @cached_property
    def catalog(self) -> Catalog:
        """``<home>/catalog.sqlite3``; in a cluster the tables live in the app database (PostgreSQL),
        so every replica and worker sees the same documents."""
        readers = self.settings.access.new_collection_readers
        if self.settings.cluster:
            return Catalog(self.app_db.engine, new_collection_readers=readers)
        return Catalog(self.settings.catalog_path, new_collection_readers=readers)

    @cached_property
    def writer_lock(self) -> "ReentrantLock":
        """One writer at a time for the whole installation: ingests, deletions, orphan sweeps and
        repairs. A file lock in the data directory (``ingest.lock``) by default; in a cluster the
        database lock ``kiportal-writer``, which holds across machines and is fenced (a replica whose
        lock connection broke commits nothing: :class:`corpus.db.LockLost`). ``app.writer_lock(timeout)``
        raises :class:`corpus.db.LockTimeout` when it is not free in time."""
        from corpus.db import ReentrantLock, database_lock, file_lock
        from ingest.pipeline import writer_lock_file

        if self.settings.cluster:
            engine = self.catalog.engine
            return ReentrantLock(lambda timeout: database_lock(engine, "kiportal-writer", timeout, fenced=True))
        path = writer_lock_file(self.settings.home)
        return ReentrantLock(lambda timeout: file_lock(path, timeout, what="writer"))

    @cached_property
    def vectors(self):
        v = self.settings.vector
        from corpus.vector_store import ChromaVectorIndex, MemoryVectorIndex

        if v.mode == "memory":
            return MemoryVectorIndex()
        if v.mode == "chroma_http":
            return ChromaVectorIndex.http(v.host, v.port, v.collection)
        return ChromaVectorIndex.persistent(self.settings.chroma_path, v.collection)

    @cached_property
    def kb(self) -> KnowledgeBase:
        return KnowledgeBase(self.catalog, self.vectors, self.build_embedder, self.settings.bm25_path,
                             writer_lock=self.writer_lock)

    # -- ingestion and retrieval ------------------------------------------
    @cached_property
    def ingestor(self):
        from ingest.chunking import ChunkParams
        from ingest.loaders.isolated import make_loader
        from ingest.pipeline import Ingestor

        s = self.settings
        limits = load_limits(s)
        return Ingestor(
            self.kb,
            home=s.home,
            limits=limits,
            loader=make_loader(limits, s.limits.load_timeout_s, s.limits.load_max_memory_mb),
            chunk_params=ChunkParams(s.chunking.size_tokens, s.chunking.overlap_tokens),
            default_collection=s.default_collection,
            signature=self.index_signature,
            batch_size=s.embedding.batch_size,
            storage=s.uploads_dir,
        )

    def oparl_importer(self):
        """An OParl importer writing through this installation's ingestor; what it imported
        and when each body was last synced is kept in the app database."""
        from ingest.oparl.client import ClientConfig
        from ingest.oparl.state import SyncState
        from ingest.oparl.sync import OParlImporter

        s = self.settings
        # files go to the storage folder when one is set (s.oparl_dir), so any machine reads them; the
        # lock stays on this machine's disk (flock on a network share is not reliable), and in a
        # cluster a run leaves young staging folders alone: a worker elsewhere may be using them
        return OParlImporter(self.ingestor, SyncState(self.app_db), s.oparl_dir, ClientConfig.from_settings(s.oparl),
                             overlap_s=s.oparl.overlap_s, lock_dir=s.home / "oparl",
                             stale_staging_s=86400.0 if s.cluster else 0.0)

    @cached_property
    def retriever(self):
        from assistant.retrieval import HybridRetriever

        r = self.settings.retrieval
        return HybridRetriever(self.kb, k=r.k, candidates=r.candidates, rrf_k=r.rrf_k,
                               dense_weight=r.dense_weight, bm25_weight=r.bm25_weight, late=self.late_interaction())

    def late_interaction(self):
        """The late-interaction re-ranker over the embedding model's token vectors, or None when it is
        switched off or there are no token vectors: the ``hash`` mode, or an ONNX folder exported
        before the token graph existed (a warning says to run ``kiportal models prepare``; loading
        torch's weights beside the ONNX graphs instead would cost every replica about 0.5 GB)."""
        r, emb = self.settings.retrieval, self.settings.embedding
        if not r.late_candidates or r.late_weight <= 0:
            return None
        from assistant.late_interaction import LateInteraction

        encoder = self.kb.embedder
        if not encoder.has_token_vectors():
            if emb.mode in ONNX_FILES:
                log.warning("late interaction off: no token graph in %s (kiportal models prepare exports it)",
                            self.e5_onnx_dir())
            return None
        return LateInteraction(encoder, candidates=r.late_candidates, weight=r.late_weight, k=r.late_rrf_k,
                               keep_mb=r.late_cache_mb)

    # -- answering ---------------------------------------------------------
    @cached_property
    def _chat_models(self) -> dict:
        return {}

    def chat_model(self, key: str):
        """The chat model of a profile, built once (``None`` for extractive)."""
        if key not in self._chat_models:
            from assistant.llm.backends import build_chat_model

            profile = self.settings.llm.models[key]
            self._chat_models[key] = build_chat_model(profile, models_dir=self.settings.models_dir,
                                                      threads=self.settings.llm.threads)
        return self._chat_models[key]

    @cached_property
    def assistant(self):
        from assistant.chain import Assistant

        return Assistant(self.retriever, self.settings, self.chat_model, policy=self.policy,
                         split_docs=self.split_documents)

    @cached_property
    def tools(self):
        """The Werkzeuge (plain language, summaries, drafts) behind the same Ampel as the chat."""
        from assistant.tools.service import Tools

        return Tools(self.settings, self.chat_model, self.catalog, lambda: self.retriever, self.policy,
                     split_docs=self.split_documents)

    @cached_property
    def split_documents(self):
        """Which documents' fonts split ligatures, decided once per document version for the chain
        and the tools alike (corpus.ligatures)."""
        from corpus.ligatures import SplitDocuments

        return SplitDocuments(self.catalog)

    @property
    def policy(self):
        """The Ampel policy step (None disables it: only for unit tests of the bare chain)."""
        from assistant.policy_step import PolicyStep

        return PolicyStep(self.catalog, self.settings)

    # -- app database and the services on it ---------------------------------
    @cached_property
    def app_db(self) -> "AppDB":
        """Users, chats, audit, jobs and training sessions (SQLite file or PostgreSQL)."""
        from assistant.appdb import AppDB

        return AppDB(self.settings.app_db)

    @cached_property
    def audit(self) -> "AuditLog":
        """The one audit log, with the retention and question-logging rules of the settings."""
        from assistant.audit import AuditLog

        return AuditLog.from_settings(self.app_db, self.settings)

    @cached_property
    def users(self) -> "UserStore":
        from assistant.users import UserStore

        return UserStore(self.app_db)

    @cached_property
    def sso_subjects(self) -> "SubjectBindings":
        """Which person an SSO name belongs to (header mode with ``auth.subject_header``)."""
        from assistant.sso_subjects import SubjectBindings

        return SubjectBindings(self.app_db)

    @cached_property
    def login_failures(self) -> "DBLoginFailures":
        """The login throttle's counters, shared by every process on this app database."""
        from assistant.login_failures import DBLoginFailures

        return DBLoginFailures(self.app_db)

    def heartbeat(self, role: str, address: str = ""):
        """Registers a portal (``serve``) or worker in the app database while the ``with`` block runs,
        so `kiportal status` lists it; nothing in the embedded default (assistant.cluster)."""
        from assistant.cluster import heartbeat_for

        return heartbeat_for(self, role, address)

    @cached_property
    def link_secret(self) -> bytes:
        """``auth.secret``, or the secret generated once into the data directory."""
        from assistant.links import load_secret

        return load_secret(self.settings)

    @cached_property
    def link_signer(self) -> "LinkSigner":
        """Signs the document links of chat sources, the admin table and the training tab."""
        from assistant.links import LinkSigner

        return LinkSigner(self.link_secret)

    @cached_property
    def training_store(self) -> "TrainingStore":
        """KI-Kompass sessions and quiz answers (participants pseudonymised with the link secret)."""
        from assistant.training.sessions import TrainingStore

        return TrainingStore(self.app_db, secret=self.link_secret.decode())

    @cached_property
    def departments(self) -> "Departments":
        """Who may read which collection: users' groups and collections' readers (audited changes)."""
        from assistant.access import Departments

        return Departments(self.catalog, self.users, self.audit, self.settings)

    @cached_property
    def admin(self) -> "Admin":
        """Admin operations shared by the portal and the CLI; background jobs once :meth:`start_jobs` ran."""
        from assistant.admin import Admin

        return Admin(self, self.audit)

    def start_jobs(self, *, workers: int = 2) -> "Admin":
        """Start the admin's job runner once per App and return the admin.

        Starting marks jobs of a dead process as failed (embedded; in cluster mode jobs go to the
        procrastinate queue on the app DB, see :mod:`assistant.job_queue`), recovers uploads, runs
        the audit retention purge now and schedules it daily. Later calls return the running admin."""
        with self._jobs_lock:
            if self.admin.jobs is None:
                self.admin.start_jobs(workers=workers)
        return self.admin

    def run_worker(self, *, concurrency: int | None = None) -> None:
        """``kiportal worker``: run the cluster's jobs in this process until SIGINT/SIGTERM."""
        self.admin.run_worker(concurrency=concurrency)

    def stop_jobs(self, *, wait: bool = True) -> None:
        """Stop the job runner if :meth:`start_jobs` started one (tests and shutdown)."""
        admin = self.__dict__.get("admin")
        if admin is not None and admin.jobs is not None:
            admin.jobs.shutdown(wait=wait)

    def warm_up(self, *, llm: bool = True) -> None:
        """Load models and indexes before the first request, so nobody waits for them."""
        self.kb.embedder.embed_query_vector("Aufwärmen")
        if self.retriever.late is not None:  # the token graph's session, loaded before the first question
            self.retriever.late.scores("Aufwärmen", ["Aufwärmen"])
        self.kb.refresh_keyword_index()
        if llm:
            model = self.chat_model(self.settings.llm.default)
            counter = getattr(model, "count_tokens", None)
            if counter is not None:
                counter("Aufwärmen")
