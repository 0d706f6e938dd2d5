"""How long a model will read a prompt before its first word, from how fast it read the last ones.

Why: on two cores the local model reads the found passages for 5 to 27 seconds before it writes
(about 100 prompt tokens a second on an AVX-512 machine, 40 on an AVX2-only one; docs/results.md,
session 52), and the chat bubble said only "Das Modell liest …". With an estimate staff know
whether to wait or to read the sources meanwhile. The rate is the median of the last few answers
of the same model (prompt tokens ÷ seconds to the first word), so one answer that waited behind a
tool's part or read a cold cache moves it little; it is per process, and needs no setting.
"""
from __future__ import annotations

import statistics
import threading
from collections import deque

#: answers per model whose reading rate is kept
KEEP = 9


class ReadingSpeed:
    """Prompt tokens per second of each model, as measured on its last :data:`KEEP` answers."""

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._rates: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def record(self, model: str, prompt_tokens: int, seconds: float) -> None:
        """One answer's prompt, read in ``seconds`` (to its first word); nothing is learnt from an
        empty prompt or a time of zero."""
        if prompt_tokens <= 0 or seconds <= 0:
            return
        with self._lock:
            self._rates.setdefault(model, deque(maxlen=self._keep)).append(prompt_tokens / seconds)

    def estimate_s(self, model: str, prompt_tokens: int) -> float | None:
        """Seconds the model will read ``prompt_tokens``; None before it has answered once."""
        with self._lock:
            rates = list(self._rates.get(model, ()))
        if not rates or prompt_tokens <= 0:
            return None
        return prompt_tokens / statistics.median(rates)
