"""Readability before and after: German Flesch after Amstad and the Wiener Sachtextformel.

Both come from textstat (a maintained library, syllables by pyphen's German dictionary)
rather than own formulas. textstat keeps its language in module state; we use a private
``textstatistics`` instance set to German, so nothing else in the process is affected.

* Flesch (Amstad): 180 − ASL − 58.5 × ASW; higher is easier (60–70 "mittelschwer",
  above 80 "leicht").
* Wiener Sachtextformel (1st variant): a school grade, 4 (easy) to 15 (very hard).
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from functools import lru_cache

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Readability:
    flesch_amstad: float
    wiener_sachtextformel: float
    sentences: int
    words: int

    def as_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def _stats():
    from textstat.textstat import textstatistics

    ts = textstatistics()
    ts.set_lang("de")
    return ts


def readability(text: str) -> Readability:
    """Scores of ``text`` (an empty text scores 0 on both, with 0 sentences)."""
    text = (text or "").strip()
    if not text:
        return Readability(0.0, 0.0, 0, 0)
    with _LOCK:  # textstat caches per text inside the instance; one caller at a time
        ts = _stats()
        return Readability(
            flesch_amstad=round(float(ts.flesch_reading_ease(text)), 1),
            wiener_sachtextformel=round(float(ts.wiener_sachtextformel(text, 1)), 1),
            sentences=int(ts.sentence_count(text)),
            words=int(ts.lexicon_count(text)),
        )
