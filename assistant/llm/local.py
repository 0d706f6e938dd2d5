"""In-process llama.cpp chat model (mode ``local``, the green zone) as a LangChain chat model.

llama-cpp-python is imported only when the model is first used. One model instance
serves one generation at a time (a lock): on 2 cores parallel generations would only
slow each other down; the portal queues requests instead. The lock serves in arrival order
(:mod:`assistant.llm.fair_lock`), and chat and tools queue apart (ui/tools_tab.py).

Answers go first. A generation streamed with ``background=True`` (the tools' parts,
``assistant.llm.backends.for_background``) steps aside between two tokens when an answer waits for
the model: it keeps a copy of llama.cpp's state (the KV cache of its prompt and of what it wrote, its
sampler), lets the answer in, and goes on from that copy exactly where it stopped (the same text as
without the pause). Before, a chat question waited for the whole part a tool was writing, 70-80 s on
a loaded 2-core machine (docs/results.md, session 50); now it waits for at most
:data:`TOKENS_BEFORE_STEPPING_ASIDE_AGAIN` tokens and the copy.

With ``refusal_text`` set, the first answer chunk reports in its ``response_metadata`` how
likely the model was to begin with that text (``refusal_probability``, the softmax
probability of its first token at the first answer position). It costs one softmax over the
vocabulary per answer, and tells the chain how close a confident-looking answer came to being
a refusal.

The prompt is read in parts of :data:`STOP_CHECK_TOKENS` tokens, and between two parts (and
between two generated tokens) the model stops when the user left the answer
(:mod:`assistant.stopping`). llama.cpp's own abort callback would stop sooner, but it calls into
Python for every operation of the graph: with another Python thread busy, generation ran 5–7 times
slower (measured, docs/results.md).
"""
from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from assistant import stopping
from assistant.llm.fair_lock import FairLock

log = logging.getLogger(__name__)

_ROLE = {"human": "user", "ai": "assistant", "system": "system"}

STOP_CHECK_TOKENS = 128  # prompt tokens read between two looks at the stop signal: 1-4 % slower than 512 (measured)
# tokens background work reads or writes after it went on before it steps aside again: under a steady
# stream of chat questions a tool still moves (at least this much per answer), and an answer waits at
# most this many tokens (1-2 s on 2 cores) for its turn
TOKENS_BEFORE_STEPPING_ASIDE_AGAIN = 16


class _Snapshot:
    """What a generation needs to go on after another one used the model: llama.cpp's state (its KV
    cache and last logits), the tokens it holds and the sampler of the generation (llama-cpp-python
    keeps one sampler per instance, and the other generation sets its own).

    Not ``Llama.save_state``: that also copies the score matrix (n_batch × vocabulary, 311 MB for
    Qwen2.5) that sampling inside llama.cpp never reads."""

    def __init__(self, llama) -> None:
        import llama_cpp

        ctx = llama._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        self.data = (ctypes.c_uint8 * size)()
        self.size = llama_cpp.llama_state_get_data(ctx, self.data, size)
        self.n_tokens = llama.n_tokens
        self.input_ids = llama.input_ids[: llama.n_tokens].copy()
        self.sampler = llama._sampler

    def restore(self, llama) -> None:
        import llama_cpp

        if llama_cpp.llama_state_set_data(llama._ctx.ctx, self.data, self.size) != self.size:
            llama.n_tokens = 0  # the cache is undefined now: the next prompt is read from its start
            raise RuntimeError("llama.cpp state could not be restored")
        llama.input_ids[: self.n_tokens] = self.input_ids
        llama.n_tokens = self.n_tokens
        llama._sampler = self.sampler


class _Turn:
    """One generation's hold on the model's lock: taken while the user still waits for it, given
    back once, taken again after stepping aside. Whoever holds the lock owns the model's
    ``between_parts`` hook: taking sets this generation's (None for an answer), giving back clears it."""

    def __init__(self, lock: FairLock, urgent: bool, llama=None, between_parts=None) -> None:
        self.lock, self.urgent, self.held = lock, urgent, False
        self.llama, self.between_parts = llama, between_parts

    def take(self) -> None:
        if not self.lock.acquire(urgent=self.urgent, cancelled=stopping.stop_requested):
            raise stopping.Stopped
        self.held = True
        if self.llama is not None:
            self.llama.between_parts = self.between_parts

    def give_back(self) -> None:
        if self.held:
            self.held = False
            if self.llama is not None:
                self.llama.between_parts = None
            self.lock.release()


def _stoppable_llama():
    """llama_cpp.Llama whose ``eval`` (prompt reading and each generated token) looks at the stop
    signal between parts. Built on first use: llama-cpp-python is imported only then.

    A stop raises :class:`assistant.stopping.Stopped` between two ``llama_decode`` calls, so
    llama.cpp's state stays whole: ``eval`` counts only the parts it read, and the next prompt
    re-uses them from the KV cache (checked in tests/assistant/llm/test_llm_local.py). At the same
    places a background generation may step aside (``between_parts``, set by the lock's holder)."""
    from llama_cpp import Llama

    class StoppableLlama(Llama):
        between_parts = None

        def eval(self, tokens):
            for i in range(0, len(tokens), STOP_CHECK_TOKENS):
                stopping.check()
                if self.between_parts is not None:
                    self.between_parts()
                super().eval(tokens[i : i + STOP_CHECK_TOKENS])

    return StoppableLlama


class LocalLlamaChat(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    steps_aside_for_answers: ClassVar[bool] = True  # understands ``background=True`` (module docstring)

    model_path: str
    n_ctx: int = 4096
    n_threads: int = 2
    temperature: float = 0.0
    max_tokens: int = 300
    refusal_text: str = ""
    _llama: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=FairLock)  # in arrival order: a tool run of many parts lets a chat answer in
    _load_lock: Any = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def llama(self):
        if self._llama is None:
            with self._load_lock:
                if self._llama is None:
                    if not Path(self.model_path).is_file():
                        raise FileNotFoundError(
                            f"Sprachmodell fehlt: {self.model_path}. Bitte `kiportal models prepare` ausführen."
                        )
                    log.info("loading GGUF %s", self.model_path)
                    self._llama = _stoppable_llama()(
                        model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                        n_batch=512, verbose=False, seed=0,
                        # flash attention reads prompts 3-8 % faster on 2 cores: on a host reading
                        # ~100 tokens/s the frozen blind set's first token p95 is 9.6 s with it; answers
                        # differ only by rounding (docs/results.md, session 40)
                        flash_attn=True,
                    )
        return self._llama

    def _first_token(self, text: str) -> int | None:
        ids = self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return ids[0] if ids else None

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    @staticmethod
    def _messages(messages: list[BaseMessage]) -> list[dict]:
        return [{"role": _ROLE.get(m.type, "user"), "content": str(m.content)} for m in messages]

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text = "".join(c.message.content for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        llama = self.llama
        watched = self._first_token(self.refusal_text) if self.refusal_text else None
        first: dict[str, float] = {}
        first_chunk = True

        def record(_ids, scores):  # a llama.cpp logits processor: looks, changes nothing
            if watched is not None and not first:
                z = scores.astype("float64")
                z = np.exp(z - z.max())
                first["refusal_probability"] = round(float(z[watched] / z.sum()), 4)
            return scores

        went_on_at = -TOKENS_BEFORE_STEPPING_ASIDE_AGAIN  # llama.n_tokens when it last went on

        def step_aside() -> None:
            """Between two parts of background work: let a waiting answer use the model, then go on."""
            nonlocal went_on_at
            if llama.n_tokens - went_on_at < TOKENS_BEFORE_STEPPING_ASIDE_AGAIN or not self._lock.urgent_waiting():
                return
            snapshot = _Snapshot(llama)
            turn.give_back()
            turn.take()
            snapshot.restore(llama)
            went_on_at = llama.n_tokens
            log.debug("background generation went on after an answer (%d tokens kept)", snapshot.n_tokens)

        background = bool(kwargs.get("background"))
        turn = _Turn(self._lock, urgent=not background, llama=llama, between_parts=step_aside if background else None)
        turn.take()
        try:
            for part in llama.create_chat_completion(
                messages=self._messages(messages), stream=True, temperature=self.temperature,
                max_tokens=kwargs.get("max_tokens", self.max_tokens), stop=stop, seed=0,
                logits_processor=[record] if watched is not None else None,
            ):
                delta = part["choices"][0]["delta"].get("content")
                if delta:
                    meta, first_chunk = (dict(first) if first_chunk else {}), False
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta, response_metadata=meta))
                    if run_manager:
                        run_manager.on_llm_new_token(delta, chunk=chunk)
                    yield chunk
        finally:
            turn.give_back()
