"""The Ampel vocabulary: zone names, document classifications and how people see them.

One home for these words, so the settings, the policy, the trainer views, the CLI and the
portal can never disagree about what a zone is called or in which order zones are shown.
Pure data and formatting; imports nothing of kiportal (the settings import it).
"""
from __future__ import annotations

#: The Ampel zones, safest first: green = the city's own machine, yellow = EU-hosted under a
#: data-processing agreement, red = commercial, public data only.
ZONES = ("green", "yellow", "red")
ZONE_ORDER = {zone: n for n, zone in enumerate(ZONES)}
ZONE_LABELS_DE = {"green": "Grün", "yellow": "Gelb", "red": "Rot"}
ZONE_COLORS = {"green": "#1b7f3b", "yellow": "#9a6b00", "red": "#b3261e"}
#: Where a model of the zone runs, in a few words (zone pickers).
ZONE_HINTS_DE = {"green": "lokal", "yellow": "EU, AVV", "red": "kommerziell"}

#: What the Ampel does with a request, in German.
ACTION_LABELS_DE = {"allow": "erlaubt", "warn": "Warnung – Bestätigung nötig", "block": "blockiert"}

#: Document classifications, least sensitive first.
CLASSIFICATIONS = ("oeffentlich", "intern", "vertraulich", "personenbezogen")
CLASSIFICATION_LABELS_DE = {
    "oeffentlich": "öffentlich",
    "intern": "intern",
    "vertraulich": "vertraulich",
    "personenbezogen": "personenbezogen",
}
#: What a model of each zone may see unless ``policy.zone_access`` says otherwise.
DEFAULT_ZONE_ACCESS: dict[str, tuple[str, ...]] = {
    "green": CLASSIFICATIONS,
    "yellow": ("oeffentlich", "intern"),
    "red": ("oeffentlich",),
}


def zone_label(zone: str) -> str:
    """"Grün": the zone's German name (an unknown zone shows as itself). No coloured emoji: without an
    emoji font (Debian's chromium, many thin clients) they render as empty boxes; where HTML is shown
    the name is set in the zone's colour (``ZONE_COLORS``)."""
    return ZONE_LABELS_DE.get(zone, zone)


def zone_choices() -> list[tuple[str, str]]:
    """(label, zone) for a zone picker: "Zone Grün (lokal)", …"""
    return [(f"Zone {zone_label(z)} ({ZONE_HINTS_DE[z]})", z) for z in ZONES]
