"""Training plans ("Schulungspläne"): YAML files in ``corpus/training/`` validated with pydantic.

Plans are written by trainers, not developers, so a broken plan must produce a German
message that names the place in the file ("Modul 2 › Quizfrage 1 › correct") and says
what is wrong, instead of a pydantic traceback. The schema is documented in
``corpus/training/schema.md``; the models below are its single source of truth.

Model keys in a plan are not checked against the installation at load time: a plan
written for a city with an EU model must still load where only the local model exists.
:func:`unknown_models` reports them, and the trainer tab falls back to the default model.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assistant.settings import ZONE

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "corpus" / "training"
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
COMPARE_KINDS = ("documents", "models", "k", "budget")


class PlanError(ValueError):
    """A plan file that cannot be used; ``problems`` are German, one per finding."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  – {p}" for p in problems)
        super().__init__(f"Schulungsplan {source} ist ungültig:\n{lines}")


class _Strict(BaseModel):
    # unknown keys are almost always typos ("discusion"); silently ignoring them would lose content
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError("id_format")
    return value


class Compare(_Strict):
    """A side-by-side comparison for an exercise. ``left``/``right`` depend on ``kind``."""

    kind: Literal["documents", "models", "k", "budget"]
    left: str | int | None = None
    right: str | int | None = None

    @model_validator(mode="after")
    def _sides(self) -> "Compare":
        if self.kind == "documents":
            if self.left is not None or self.right is not None:
                raise ValueError("compare_documents_sides")
        elif self.kind == "models":
            if not isinstance(self.left, str) or not isinstance(self.right, str) or not self.left or not self.right:
                raise ValueError("compare_models_sides")
        else:
            lo, hi = (1, 20) if self.kind == "k" else (50, 8000)
            for side in (self.left, self.right):
                if not isinstance(side, int) or isinstance(side, bool) or not lo <= side <= hi:
                    raise ValueError(f"compare_range:{self.kind}:{lo}:{hi}")
        return self


class Exercise(_Strict):
    """One question the trainer asks the assistant in front of the group."""

    id: str
    question: str = Field(min_length=3, max_length=1000)
    observe: str = Field(min_length=3)
    discuss: list[str] = Field(default_factory=list)
    model: str | None = None
    zone: ZONE | None = None
    compare: Compare | None = None

    _id = field_validator("id")(_check_id)


class QuizItem(_Strict):
    id: str
    question: str = Field(min_length=3)
    options: list[str] = Field(min_length=2, max_length=8)
    correct: int | list[int]
    explanation: str = ""

    _id = field_validator("id")(_check_id)

    @field_validator("options")
    @classmethod
    def _options_not_empty(cls, value: list[str]) -> list[str]:
        if any(not o.strip() for o in value):
            raise ValueError("option_empty")
        if len({o.strip().lower() for o in value}) != len(value):
            raise ValueError("option_duplicate")
        return value

    @model_validator(mode="after")
    def _correct_in_range(self) -> "QuizItem":
        indexes = self.correct_indexes
        if not indexes:
            raise ValueError("correct_empty")
        if any(isinstance(i, bool) or not 0 <= i < len(self.options) for i in indexes):
            raise ValueError(f"correct_range:{len(self.options) - 1}")
        if len(set(indexes)) != len(indexes):
            raise ValueError("correct_duplicate")
        return self

    @property
    def correct_indexes(self) -> list[int]:
        return [self.correct] if isinstance(self.correct, int) else list(self.correct)

    @property
    def multiple(self) -> bool:
        """Several correct options: participants choose with checkboxes, scored as a set."""
        return isinstance(self.correct, list)

    def is_correct(self, choice: list[int]) -> bool:
        return sorted(set(choice)) == sorted(self.correct_indexes)


class Module(_Strict):
    id: str
    title: str = Field(min_length=2)
    goal: str = Field(min_length=3)
    exercises: list[Exercise] = Field(default_factory=list)
    quiz: list[QuizItem] = Field(default_factory=list)

    _id = field_validator("id")(_check_id)

    @model_validator(mode="after")
    def _not_empty(self) -> "Module":
        if not self.exercises and not self.quiz:
            raise ValueError("module_empty")
        return self


class Plan(_Strict):
    id: str = ""
    title: str = Field(min_length=3)
    audience: str = Field(min_length=2)
    duration_minutes: int = Field(ge=5, le=8 * 60)
    description: str = ""
    modules: list[Module] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> "Plan":
        seen: dict[str, str] = {}
        for m in self.modules:
            for kind, ident in [("Modul", m.id)] + [("Übung", e.id) for e in m.exercises] + [("Quizfrage", q.id) for q in m.quiz]:
                if ident in seen:
                    raise ValueError(f"duplicate_id:{ident}")
                seen[ident] = kind
        return self

    def quiz_item(self, item_id: str) -> QuizItem:
        for m in self.modules:
            for q in m.quiz:
                if q.id == item_id:
                    return q
        raise KeyError(item_id)

    def exercise(self, exercise_id: str) -> tuple[Module, Exercise]:
        for m in self.modules:
            for e in m.exercises:
                if e.id == exercise_id:
                    return m, e
        raise KeyError(exercise_id)

    def quiz_items(self) -> list[QuizItem]:
        return [q for m in self.modules for q in m.quiz]

    def exercises(self) -> list[tuple[Module, Exercise]]:
        return [(m, e) for m in self.modules for e in m.exercises]


# -- German error messages ------------------------------------------------------------
_FIELD_DE = {
    "title": "Titel (title)", "audience": "Zielgruppe (audience)", "duration_minutes": "Dauer in Minuten (duration_minutes)",
    "modules": "Module (modules)", "goal": "Lernziel (goal)", "exercises": "Übungen (exercises)", "quiz": "Quizfragen (quiz)",
    "question": "Frage (question)", "observe": "Beobachtungsauftrag (observe)", "discuss": "Diskussionsfragen (discuss)",
    "options": "Antwortmöglichkeiten (options)", "correct": "richtige Antwort(en) (correct)",
    "explanation": "Erklärung (explanation)", "compare": "Vergleich (compare)", "kind": "Art (kind)",
    "model": "Modell (model)", "zone": "Zone (zone)", "id": "Kennung (id)", "description": "Beschreibung (description)",
    "left": "linke Seite (left)", "right": "rechte Seite (right)",
}
_CONTAINER_DE = {"modules": "Modul", "exercises": "Übung", "quiz": "Quizfrage", "options": "Antwort", "discuss": "Diskussionsfrage"}


def _where(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    i = 0
    while i < len(loc):
        key = loc[i]
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if isinstance(key, str) and key in _CONTAINER_DE and isinstance(nxt, int):
            parts.append(f"{_CONTAINER_DE[key]} {nxt + 1}")
            i += 2
            continue
        if isinstance(key, str) and not key.startswith(("function-", "int", "list[", "str", "literal")):
            parts.append(_FIELD_DE.get(key, key))
        i += 1
    return " › ".join(parts) or "Plan"


_CUSTOM_DE = {
    "id_format": "nur Kleinbuchstaben, Ziffern, „-“ und „_“ erlaubt (höchstens 64 Zeichen), z. B. „modul-1“.",
    "option_empty": "Eine Antwortmöglichkeit ist leer.",
    "option_duplicate": "Zwei Antwortmöglichkeiten sind gleich.",
    "correct_empty": "Es ist keine richtige Antwort angegeben (correct).",
    "correct_range": "Die richtige Antwort (correct) muss eine Nummer zwischen 0 und {arg} sein – gezählt wird ab 0.",
    "correct_duplicate": "Eine richtige Antwort ist doppelt angegeben (correct).",
    "module_empty": "Das Modul hat weder Übungen (exercises) noch Quizfragen (quiz).",
    "duplicate_id": "Die Kennung „{arg}“ kommt mehrfach vor; jede id muss im Plan eindeutig sein.",
    "compare_documents_sides": "Beim Vergleich „documents“ (mit/ohne Dokumente) bitte kein left/right angeben.",
    "compare_models_sides": "Beim Vergleich „models“ müssen left und right je einen Modell-Schlüssel nennen, "
                            "z. B. left: lokal, right: extraktiv.",
}


def _custom(code: str) -> str:
    """German text for our own validation codes (``name`` or ``name:argument``)."""
    name, _, arg = code.partition(":")
    if name == "compare_range":
        kind, lo, hi = arg.split(":")
        what = "Anzahl Textstellen (k)" if kind == "k" else "Token-Budget"
        return f"Beim Vergleich „{kind}“ müssen left und right ganze Zahlen für {what} zwischen {lo} und {hi} sein."
    template = _CUSTOM_DE.get(name)
    return template.format(arg=arg) if template else code


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "fehlt."
    if kind == "extra_forbidden":
        return "ist kein bekanntes Feld (Tippfehler?). Erlaubte Felder stehen in corpus/training/schema.md."
    if kind in ("string_type",):
        return "muss ein Text sein."
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "muss eine ganze Zahl sein."
    if kind == "list_type":
        return "muss eine Liste sein (Zeilen mit „- “)."
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "muss ein Abschnitt mit Feldern sein (key: value)."
    if kind == "string_too_short":
        return "ist leer oder zu kurz." if ctx.get("min_length", 1) <= 3 else f"braucht mindestens {ctx['min_length']} Zeichen."
    if kind == "string_too_long":
        return f"ist zu lang (höchstens {ctx.get('max_length')} Zeichen)."
    if kind == "too_short":
        return f"braucht mindestens {ctx.get('min_length')} Einträge."
    if kind == "too_long":
        return f"darf höchstens {ctx.get('max_length')} Einträge haben."
    if kind in ("greater_than_equal", "greater_than"):
        return f"muss mindestens {ctx.get('ge', ctx.get('gt'))} sein."
    if kind in ("less_than_equal", "less_than"):
        return f"darf höchstens {ctx.get('le', ctx.get('lt'))} sein."
    if kind == "literal_error":
        return f"muss einer dieser Werte sein: {ctx.get('expected')}."
    if kind == "value_error":
        return _custom(str(ctx.get("error", err.get("msg", ""))))
    return f"ist ungültig ({err.get('msg')})."


def german_errors(exc: ValidationError) -> list[str]:
    """One German line per problem; union alternatives (int | list) are merged into one line."""
    out: list[str] = []
    seen_locs: set[tuple] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        # "correct: int | list[int]" reports once per alternative; show one message per place
        base = tuple(p for p in loc if not (isinstance(p, str) and (p in ("int", "str", "none") or p.startswith(("list[", "function-")))))
        if base in seen_locs:
            continue
        seen_locs.add(base)
        where = _where(base)
        msg = _message(err)
        out.append(f"{where}: {msg}" if err["type"] == "value_error" else f"{where} {msg}")
    return out


def parse_plan(text: str, source: str = "<text>", *, default_id: str = "") -> Plan:
    """Parse and validate plan YAML; raises :class:`PlanError` with German messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" in Zeile {mark.line + 1}, Spalte {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "unbekannter Fehler"
        raise PlanError(source, [f"Die Datei ist kein gültiges YAML{where}: {problem}. Häufig: Einrückung oder ein Doppelpunkt im Text (dann Text in Anführungszeichen setzen)."]) from None
    if not isinstance(data, dict):
        raise PlanError(source, ["Die Datei muss mit den Feldern title, audience, duration_minutes und modules beginnen."])
    if not data.get("id") and default_id:
        data["id"] = default_id
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(source, german_errors(exc)) from None
    if not _ID.match(plan.id or ""):
        raise PlanError(source, ["Kennung (id) des Plans darf nur Kleinbuchstaben, Ziffern, „-“ und „_“ enthalten."])
    return plan


def load_plan(path: Path | str) -> Plan:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PlanError(path.name, ["Die Datei ist nicht in UTF-8 gespeichert."]) from None
    except OSError as exc:
        raise PlanError(path.name, [f"Die Datei kann nicht gelesen werden: {exc.strerror or exc}"]) from None
    return parse_plan(text, path.name, default_id=re.sub(r"[^a-z0-9_-]", "-", path.stem.lower())[:64])


def plan_dirs(home: Path | None = None) -> list[Path]:
    """Bundled plans first, then the installation's own (``<data dir>/training``)."""
    dirs = [BUNDLED_DIR]
    if home is not None:
        dirs.append(Path(home) / "training")
    return dirs


def discover(dirs: list[Path]) -> tuple[dict[str, tuple[Path, Plan]], list[PlanError]]:
    """All valid plans by id, and the errors of invalid ones (shown to trainers, never fatal)."""
    plans: dict[str, tuple[Path, Plan]] = {}
    errors: list[PlanError] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            try:
                plan = load_plan(path)
            except PlanError as exc:
                log.warning("invalid training plan %s: %d problem(s)", path, len(exc.problems))
                errors.append(exc)
                continue
            if plan.id in plans:
                log.info("training plan %s in %s overrides %s", plan.id, path, plans[plan.id][0])
            plans[plan.id] = (path, plan)
    return plans, errors


def unknown_models(plan: Plan, known: set[str] | list[str]) -> list[str]:
    """Model keys named by the plan that this installation does not have."""
    names: set[str] = set()
    for _, e in plan.exercises():
        if e.model:
            names.add(e.model)
        if e.compare and e.compare.kind == "models":
            names.update({str(e.compare.left), str(e.compare.right)})
    return sorted(names - set(known))
