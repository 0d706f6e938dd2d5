"""Evaluation datasets: one JSON object per line, loaded into typed :class:`EvalQuestion` s.

Sources are compared by file *basename* everywhere in the harness, because the same
document sits under different folders on different machines (``../shared/corpus/docs``
on a developer's box, a copy in CI); the name is the stable identity the dataset
authors can write down.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalQuestion:
    """One question with what a correct retrieval/answer must contain."""

    id: str
    question: str
    expected_source: str | None
    expected_page: int | None
    key_terms: tuple[str, ...] = ()
    answerable: bool = True
    kind: str | None = None
    alt_sources: tuple[str, ...] = field(default_factory=tuple)

    @property
    def relevant_sources(self) -> frozenset[str]:
        """Every basename that counts as the right document (e.g. the PDF and its DOCX twin)."""
        names = {basename(s) for s in (self.expected_source, *self.alt_sources) if s}
        return frozenset(names)


def basename(source: str | Path | None) -> str:
    """The comparison key for a source: its file name, whatever folder it was ingested from."""
    return Path(source).name if source else ""


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: invalid JSON: {exc}") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{path}:{lineno}: not a JSON object")
        records.append(rec)
    return records


def is_pii_dataset(path: str | Path) -> bool:
    """PII examples carry a ``kinds`` list per line; question datasets never do."""
    return any("kinds" in rec for rec in _read_jsonl(Path(path)))


def load_dataset(path: str | Path) -> list[EvalQuestion]:
    """Parse a question dataset; a malformed line fails loudly with its line number,
    because a silently skipped question would quietly change every metric."""
    path = Path(path)
    out: list[EvalQuestion] = []
    for i, rec in enumerate(_read_jsonl(path), start=1):
        try:
            src = rec.get("expected_source")
            out.append(EvalQuestion(
                id=str(rec["id"]),
                question=str(rec["question"]),
                expected_source=basename(src) or None,
                expected_page=rec.get("expected_page"),
                key_terms=tuple(rec.get("key_terms") or ()),
                answerable=bool(rec.get("answerable", src is not None)),
                kind=rec.get("kind"),
                alt_sources=tuple(basename(a) for a in rec.get("alt_sources") or ()),
            ))
        except KeyError as exc:
            raise ValueError(f"{path}: record {i} lacks field {exc}") from None
    log.info("loaded %d questions from %s", len(out), path)
    return out
