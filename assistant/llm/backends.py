"""Build a chat model for a :class:`ModelProfile`; each backend is imported only when chosen."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from assistant.settings import ModelProfile

DEFAULT_GGUF = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def token_counter(model) -> Callable[[str], int]:
    """How a prompt's parts are counted against a token budget: the model's own tokenizer where it
    has one (the local model), else about four characters per token (remote, extractive: None)."""
    counter = getattr(model, "count_tokens", None)
    return counter if counter is not None else (lambda t: max(1, len(t) // 4))


def for_background(model):
    """``model`` for background work (the tools' parts): a model that serves one generation at a time
    in this process (the local one) steps aside for a waiting chat answer between two tokens
    (``assistant.llm.local``); any other is returned as it is (a server schedules its own requests)."""
    if getattr(model, "steps_aside_for_answers", False):
        return model.bind(background=True)
    return model


class BackendUnavailable(RuntimeError):
    """The configured model cannot be reached or loaded; the assistant falls back to extractive."""


def build_chat_model(profile: ModelProfile, *, models_dir: Path, threads: int = 2):
    """Return a LangChain chat model, or ``None`` for the extractive mode (no LLM)."""
    if profile.mode == "extractive":
        return None
    if profile.mode == "fake":
        from assistant.llm.fake import FakeChatModel

        return FakeChatModel()
    if profile.mode == "local":
        from assistant.citations import REFUSAL
        from assistant.llm.local import LocalLlamaChat

        path = profile.model or str(models_dir / DEFAULT_GGUF)
        return LocalLlamaChat(model_path=path, n_ctx=profile.context_tokens, n_threads=threads,
                              temperature=profile.temperature, max_tokens=profile.max_answer_tokens,
                              refusal_text=REFUSAL)
    if profile.mode == "openai":
        from langchain_openai import ChatOpenAI

        key = os.environ.get(profile.api_key_env, "") if profile.api_key_env else ""
        return ChatOpenAI(
            base_url=profile.base_url or None, model=profile.model, api_key=key or "not-needed",
            timeout=profile.timeout_s, max_retries=profile.retries, temperature=profile.temperature,
            max_tokens=profile.max_answer_tokens, streaming=True,
        )
    if profile.mode == "ollama":
        from langchain_ollama import ChatOllama

        # Ollama's default context of 2048 tokens silently cuts RAG prompts: always set it.
        return ChatOllama(base_url=profile.base_url or "http://127.0.0.1:11434", model=profile.model,
                          num_ctx=profile.context_tokens, temperature=profile.temperature,
                          num_predict=profile.max_answer_tokens, client_kwargs={"timeout": profile.timeout_s})
    raise ValueError(f"unknown llm mode {profile.mode!r}")
