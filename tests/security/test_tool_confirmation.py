"""„Trotzdem senden“ in the Werkzeuge confirms only what the server warned about (an attacker's probe).

Einfache Sprache and Entwurf warn before personal data goes to a yellow-zone model; the confirmed
events took the text from the request, so a crafted client called ``tool_einfach_confirmed`` /
``tool_entwurf_confirmed`` directly and skipped the warning for any text. Now the warning run leaves
a fingerprint of the warned input in the tab's server-side ``gr.State`` and the confirmed run takes
it once (ui/tools_tab.py); the decision is the pure :func:`ui.tool_input.confirmation`, tabled here.
The attack itself is replayed over HTTP against a running portal in tests/ui/test_tools_api.py
(``test_a_confirmed_run_without_a_warning_…``, ``…_goes_out_once…``, ``test_an_input_changed_…``).
"""
from __future__ import annotations

import pytest

from ui.tool_input import CHANGED, CONFIRMED, NOT_WARNED, confirmation, input_fingerprint

TEXT = "Bescheid an Frau Petra Schulz, Lindenstraße 12, 47906 Kempenrath."
EINFACH = dict(source="Text einfügen", text=TEXT, doc=None, pages=None, leicht=False)
DRAFT = dict(kind="email", text=TEXT, use_docs=True, collections=["satzungen"])


def einfach(user: str = "anna", model: str = "gelb", **changed) -> str:
    return input_fingerprint("einfach", user, model, **(EINFACH | changed))


def draft(user: str = "anna", model: str = "gelb", **changed) -> str:
    return input_fingerprint("entwurf", user, model, **(DRAFT | changed))


WARNED = einfach()


@pytest.mark.parametrize("warned, current, verdict", [
    (WARNED, einfach(), CONFIRMED),                                  # the warned input, in its tab
    (None, einfach(), NOT_WARNED),                                   # no warning in this tab (a direct call)
    ("", einfach(), NOT_WARNED),                                     # the warning already used
    (WARNED, einfach(text=TEXT + " Und mehr."), CHANGED),           # other text
    (WARNED, einfach(text=TEXT.replace("Petra", "Jürgen")), CHANGED),
    (WARNED, einfach(model="rot"), CHANGED),                         # another model (also the red zone)
    (WARNED, einfach(model="lokal"), CHANGED),
    (WARNED, einfach(user="bernd"), CHANGED),                        # another user
    (WARNED, einfach(leicht=True), CHANGED),                         # Leichte instead of Einfache Sprache
    (WARNED, einfach(source="Datei hochladen"), CHANGED),
    (WARNED, draft(text=TEXT, use_docs=False, collections=None), CHANGED),  # another tool
    (einfach(source="Dokument der Wissensbasis", text="", doc="d1", pages=(3, 5)),
     einfach(source="Dokument der Wissensbasis", text="", doc="d1", pages=(3, 5)), CONFIRMED),
    (einfach(source="Dokument der Wissensbasis", text="", doc="d1", pages=(3, 5)),
     einfach(source="Dokument der Wissensbasis", text="", doc="d1", pages=(3, 6)), CHANGED),  # other pages
    (einfach(source="Dokument der Wissensbasis", text="", doc="d1", pages=None),
     einfach(source="Dokument der Wissensbasis", text="", doc="d2", pages=None), CHANGED),    # other document
    (draft(), draft(), CONFIRMED),
    (draft(), draft(kind="vermerk"), CHANGED),
    (draft(), draft(use_docs=False), CHANGED),
    (draft(), draft(collections=["satzungen", "personal"]), CHANGED),
    (draft(), draft(model="rot"), CHANGED),
])
def test_only_the_warned_input_is_confirmed(warned, current, verdict):
    assert confirmation(warned, current) == verdict


def test_the_fingerprint_is_a_hash_that_holds_no_text():
    fingerprint = einfach()
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert "Petra" not in fingerprint and einfach() == fingerprint  # stable for the same input
    # the order of the fields does not matter, their values do
    assert input_fingerprint("entwurf", "anna", "gelb", use_docs=True, kind="email", text=TEXT,
                             collections=["satzungen"]) == draft()


def test_the_warned_input_is_taken_once():
    """The state is emptied as the confirmed run reads it; a value a client might send is no holder."""
    from ui.tools_tab import WarnedInput, take_warned

    held = WarnedInput(WARNED)
    assert take_warned(held) == WARNED
    assert take_warned(held) is None and confirmation(take_warned(held), WARNED) == NOT_WARNED
    for sent in (None, WARNED, {"fingerprint": WARNED}):
        assert take_warned(sent) is None
