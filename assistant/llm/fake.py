"""A scripted chat model that records every prompt it receives (unit tests, policy proofs)."""
from __future__ import annotations

from typing import Any, Callable, Iterator

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field


class FakeChatModel(BaseChatModel):
    """Answers from ``responses`` in turn (or ``respond(prompt_text)``); ``calls`` keeps what it got."""

    responses: list[str] = Field(default_factory=lambda: ["Antwort laut Quelle [1]."])
    respond: Callable[[str], str] | None = None
    calls: list[str] = Field(default_factory=list)
    fail_with: Exception | None = None
    refusal_probability: float | None = None  # reported with the first chunk, as the local model does

    @property
    def _llm_type(self) -> str:
        return "fake"

    def _reply(self, messages: list[BaseMessage]) -> str:
        prompt = "\n\n".join(f"{m.type}: {m.content}" for m in messages)
        self.calls.append(prompt)
        if self.fail_with is not None:
            raise self.fail_with
        if self.respond is not None:
            return self.respond(prompt)
        return self.responses[(len(self.calls) - 1) % len(self.responses)]

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._reply(messages)))])

    def _stream(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        text = self._reply(messages)
        for i in range(0, len(text), 8):
            meta = {"refusal_probability": self.refusal_probability} if i == 0 and self.refusal_probability is not None else {}
            yield ChatGenerationChunk(message=AIMessageChunk(content=text[i : i + 8], response_metadata=meta))
