"""Which models a role may choose, which one is preselected, and how a model is named.

One rule for the chat, the trainer tab and the CLI: roles are ordered (an admin may do
what a trainer may, a trainer what staff may), so a model open to staff is open to
everyone. Choices list green models first, so the safe choice is the first one seen.
"""
from __future__ import annotations

from assistant.policy.zones import ZONE_ORDER, zone_label
from assistant.settings import ModelProfile, Settings
from assistant.users import RANK


def model_profile(settings: Settings, key: str | None) -> tuple[str, ModelProfile]:
    """(key, profile) of the named model, the configured default for None; unknown keys are a ValueError."""
    key = key or settings.llm.default
    try:
        return key, settings.llm.models[key]
    except KeyError:
        raise ValueError(f"Unbekanntes Modell / unknown model: {key}") from None


def may_use(role: str, profile: ModelProfile) -> bool:
    """Whether ``role`` may choose the model: its rank reaches the lowest role the model lists."""
    mine = RANK.get(role, -1)
    return any(mine >= RANK[r] for r in profile.roles if r in RANK)


def model_label(key: str, profile: ModelProfile) -> str:
    """How a model is shown wherever it can be chosen: zone first (a drop-down may cut the end),
    then name, operator and location."""
    return f"{zone_label(profile.zone)} · {profile.label or key} · {profile.operator}, {profile.location}"


def model_choices(settings: Settings, role: str) -> list[tuple[str, str]]:
    """(label, key) for the models ``role`` may use; green models first, the default first among them."""
    default = settings.llm.default
    items = [(k, p) for k, p in settings.llm.models.items() if may_use(role, p)]
    items.sort(key=lambda kp: (ZONE_ORDER.get(kp[1].zone, len(ZONE_ORDER)), kp[0] != default))
    return [(model_label(k, p), k) for k, p in items]


def default_model(settings: Settings, role: str) -> str | None:
    """The configured default if it is green and allowed for the role, else the first green one
    (else the first allowed one; None when the role may use no model)."""
    keys = [k for _, k in model_choices(settings, role)]
    d = settings.llm.default
    if d in keys and settings.llm.models[d].zone == "green":
        return d
    greens = [k for k in keys if settings.llm.models[k].zone == "green"]
    return greens[0] if greens else (keys[0] if keys else None)
