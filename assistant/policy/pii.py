"""Rule-based detector for personal data in German municipal text, and the per-zone decision.

Why rules and not a model: the detector guards what leaves the city's machine, so it
has to run offline, in microseconds, before every request, and its behaviour has to be
explainable to a data-protection officer line by line. Structured identifiers (IBAN,
tax ID) are validated with their check digits by python-stdnum, and the length of an
international phone number by libphonenumber (phonenumbers), so a random number is not
reported as one; the context rules around them are ours. Names, birth dates and street addresses are only recognised next to the markers
that official German writing uses (``Herr``/``Frau``/``geb.``/``Geburtsdatum``/street
suffix + house number). A bare name without any marker ("Jürgen Becker hat …") is out
of scope: catching it would need a named-entity model and would flag every place,
company and street name, which would make the red zone unusable.

Decisions worth knowing (each is covered by a test or an eval example):

* Role words alone are not names: "Frau Bürgermeisterin" or "Herr Vorsitzender"
  refer to a public office, not to a person who can be identified from the text. If a
  name follows the role ("Frau Bürgermeisterin Schmitz"), the name is detected.
* A street name without a house number ("die Hauptstraße wird saniert") is not an
  address; a street with a house number always is, even when it is a public building
  (the detector cannot know who lives there, and failing closed is the safe side).
  Federal/state/district roads with a number ("Bundesstraße 221") are road numbers.
* Every e-mail address is reported, including function mailboxes such as
  ``poststelle@…``: the detector cannot tell a function mailbox from a personal one.
* A date is a birth date only next to a birth marker; a meeting date is not.
* Raw values never appear in :attr:`Detection.masked`, in ``repr()`` of a detection, in
  the German messages or in log records. Only kinds, counts and masked values do.
"""
from __future__ import annotations

import bisect
import logging
import re
import string
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import numdb
from stdnum.de import idnr
from stdnum.exceptions import ValidationError

logger = logging.getLogger(__name__)

KINDS = ("email", "phone", "iban", "tax_id", "birth_date", "address", "person_name")

# Order matters when two findings overlap: the more specific, checksum-validated kind wins.
_PRIORITY = {
    kind: rank
    for rank, kind in enumerate(("email", "iban", "tax_id", "phone", "birth_date", "address", "person_name"))
}

KIND_LABELS_DE = {
    "email": "E-Mail-Adresse",
    "phone": "Telefonnummer",
    "iban": "IBAN",
    "tax_id": "Steuer-Identifikationsnummer",
    "birth_date": "Geburtsdatum",
    "address": "Anschrift",
    "person_name": "Personenname",
}

# How personal data in the question is handled per Ampel zone (a test checks the keys are the ZONES).
ZONE_ACTIONS: dict[str, Literal["allow", "warn", "block"]] = {"green": "allow", "yellow": "warn", "red": "block"}

_UP = "A-ZÄÖÜ"
_LOW = "a-zäöüß"


@dataclass(frozen=True)
class Detection:
    """One finding: ``text`` is the raw value and must never be logged or shown; use ``masked``."""

    kind: str
    start: int
    end: int
    text: str

    @property
    def masked(self) -> str:
        """A display form that lets a person recognise *what* was found without revealing it."""
        return _mask(self.kind, self.text)

    def __repr__(self) -> str:
        # The default dataclass repr would put the raw value into every log line and traceback.
        return f"Detection(kind={self.kind!r}, start={self.start}, end={self.end}, masked={self.masked!r})"


@dataclass(frozen=True)
class PiiDecision:
    """What to do with a question in a zone, with a German explanation for the person asking."""

    action: Literal["allow", "warn", "block"]
    detections: list[Detection]
    message_de: str

    @property
    def kinds(self) -> list[str]:
        """Distinct kinds found, in the fixed order of :data:`KINDS`."""
        found = {d.kind for d in self.detections}
        return [k for k in KINDS if k in found]


# --------------------------------------------------------------------------- masking


def _mask_keep_tail(value: str, keep: int, keep_head: int = 0) -> str:
    """Star out alphanumerics except the first ``keep_head`` and the last ``keep`` ones."""
    positions = [i for i, ch in enumerate(value) if ch.isalnum()]
    visible = set(positions[:keep_head]) | set(positions[len(positions) - keep:] if keep else [])
    return "".join(ch if (i in visible or not ch.isalnum()) else "*" for i, ch in enumerate(value))


def _mask_words(value: str) -> str:
    """First letter of each word, then ``***``; numbers become ``***``. Length is not revealed."""
    def repl(m: re.Match[str]) -> str:
        token = m.group(0)
        return "***" if token[0].isdigit() else token[0] + "***"

    return re.sub(r"[^\W_]+", repl, value)


def _mask(kind: str, value: str) -> str:
    if kind == "email":
        local, _, domain = value.partition("@")
        labels = domain.split(".")
        masked_domain = ".".join([_mask_words(x) for x in labels[:-1]] + labels[-1:])
        return f"{local[:1]}***@{masked_domain}"
    if kind in ("phone", "tax_id"):
        return _mask_keep_tail(value, keep=2)
    if kind == "iban":
        return _mask_keep_tail(value, keep=2, keep_head=2)
    if kind == "birth_date":
        return re.sub(r"[^\W_]+", lambda m: "*" * min(len(m.group(0)), 4), value)
    return _mask_words(value)


# --------------------------------------------------------------------------- e-mail

_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}(?![\w-])")


def _find_emails(text: str) -> list[Detection]:
    return [Detection("email", m.start(), m.end(), m.group(0)) for m in _EMAIL.finditer(text)]


# --------------------------------------------------------------------------- IBAN

def _registry_lengths() -> dict[str, int]:
    """IBAN length per country, from python-stdnum's copy of the SWIFT registry (BBAN structure + 4)."""
    db = numdb.get("iban")
    lengths = {}
    for first in string.ascii_uppercase:
        for second in string.ascii_uppercase:
            bban = db.info(first + second + "00")[0][1].get("bban")
            if bban:
                lengths[first + second] = 4 + sum(int(n) for n in re.findall(r"(\d+)!?[nac]", bban))
    return lengths


# an unknown country code is not treated as an IBAN
_IBAN_LENGTHS = _registry_lengths()

# Anything shaped like an IBAN, valid or not. Its span is kept free of phone and tax-ID
# findings so that the digits of a mistyped IBAN are not re-reported as something else.
_IBAN_SHAPE = re.compile(
    r"(?<![A-Za-z0-9])(?:[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){10,30}|[a-z]{2}\d{2}(?:[ ]?[a-z0-9]){10,30})(?![A-Za-z0-9])"
)
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}")


def iban_is_valid(iban: str) -> bool:
    """ISO 13616 via python-stdnum: known country, the country's BBAN structure and the mod-97
    check. National check digits inside the BBAN are not required: an account number with a
    typo in them is still somebody's account number (fail closed)."""
    try:
        stdnum_iban.validate(iban, check_country=False)
    except ValidationError:
        return False
    return True


def _find_ibans(text: str) -> list[Detection]:
    found = []
    for m in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(m.group(0)[:2].upper())
        if length is None:
            continue
        # Walk forward over alphanumerics and single spaces until the registry length is reached.
        i, count = m.end(), 4
        while count < length and i < len(text):
            ch = text[i]
            if ch.isascii() and ch.isalnum():
                count += 1
                i += 1
            elif ch == " " and i + 1 < len(text) and text[i + 1].isascii() and text[i + 1].isalnum():
                i += 1
            else:
                break
        if count != length or (i < len(text) and text[i].isascii() and text[i].isalnum()):
            continue
        candidate = text[m.start():i]
        if iban_is_valid(candidate):
            found.append(Detection("iban", m.start(), i, candidate))
    return found


# --------------------------------------------------------------------------- tax ID

_TAX_ID = re.compile(r"(?<![\d+])(?<!\d )([1-9](?:[ ]?\d){10})(?![ ]?\d)")


def tax_id_is_valid(value: str) -> bool:
    """Steuer-Identifikationsnummer: 11 digits, no leading zero, digit-frequency rule, MOD 11,10.

    python-stdnum checks length, leading digit, the frequency rule (within the first ten
    digits exactly one digit occurs twice or three times) and the ISO 7064 MOD 11,10 check
    digit; the BZSt rule since 2016 that a triple must not be three in a row is added here.
    """
    digits = re.sub(r"\s", "", value)
    if not idnr.is_valid(digits):
        return False
    body = digits[:10]
    return not any(d * 3 in body for d in set(body))


def _find_tax_ids(text: str) -> list[Detection]:
    return [
        Detection("tax_id", m.start(1), m.end(1), m.group(1))
        for m in _TAX_ID.finditer(text)
        if tax_id_is_valid(m.group(1))
    ]


# --------------------------------------------------------------------------- phone

# A run that starts like a phone number (+CC, 00CC, 0 + area code, or "(0…") and continues
# with digits and the separators people use in phone numbers. Dots and commas are not
# separators, so dates, amounts and version numbers never start or extend a run.
_PHONE_RUN = re.compile(
    r"(?<![\w+/.,-])(?<!\d )(?:\+[1-9]|00[1-9]|\(0[1-9]|0[1-9])"
    r"(?:[\d()/–-]|[ \t](?=[\d(]))*\d(?![\w]|[.,]\d)"
)
_PHONE_MARKER = re.compile(
    r"(?:\b(?:Tel(?:efon)?|Fax|Telefax|Mobil(?:funk)?|Handy|Ruf|Durchwahl|Hotline|Festnetz)\.?"
    r"(?:[\s-]*(?:Nr\.?|nummer|-Nummer))?"
    r"|\b(?:Telefon|Fax|Mobil|Ruf|Handy)nummer|\berreichbar|\banrufen|\bunter\b|☎)",
    re.IGNORECASE,
)
_PHONE_NEGATIVE = re.compile(
    r"\b(?:Rechnungs\w*|Re\.-?Nr|Aktenz\w*|Az|Kassenz\w*|Kunden\w*|Vorgangs\w*|Bestell\w*|Auftrags\w*|"
    r"Vertrags\w*|Steuernummer|St\.?-?Nr|Personal\w*|Beleg\w*|Drucksache\w*|Vorlage\w*|Flurst\w*|"
    r"Gemarkung|Seite|S|Nr|Nummer|BLZ|Konto\w*|Zähler\w*|Kennzeichen|Register\w*|HRB|Ticket\w*|"
    r"Antrags\w*|Bescheid\w*|Geschäftszeichen|Zeichen|Mandats\w*|Gläubiger\w*|Objekt\w*"
    r"|\w+nummer|\w+-?Nr)\b\.?",
    re.IGNORECASE,
)
_CONTEXT_WINDOW = 30


def _phone_context(text: str, start: int) -> str:
    """'pos' if a phone marker is the nearest keyword before ``start``, 'neg' for an ID keyword, else ''."""
    window_start = max(0, start - _CONTEXT_WINDOW)
    window = text[window_start:start]
    best, best_end = "", -1
    for label, pattern in (("neg", _PHONE_NEGATIVE), ("pos", _PHONE_MARKER)):
        for m in pattern.finditer(window):
            if m.end() >= best_end:  # ties go to 'pos' (checked second): "Tel.-Nr."
                best, best_end = label, m.end()
    return best


def _possible_number(value: str) -> bool:
    """Whether libphonenumber (phonenumbers) accepts the number's length for its country;
    without a country code it is read as a German number."""
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(value, "DE"))
    except phonenumbers.NumberParseException:
        return False


def _find_phones(text: str) -> list[Detection]:
    found = []
    for m in _PHONE_RUN.finditer(text):
        value = m.group(0)
        if value.startswith("(") and ")" not in value:
            value = value[1:]
        if value.count("(") != value.count(")"):
            continue
        start = m.end() - len(value)
        digits = re.sub(r"\D", "", value)
        context = _phone_context(text, start)
        if context == "neg" and not value.startswith("+"):
            continue
        international = value.startswith("+") or digits.startswith("00")
        has_separator = bool(re.search(r"[ \t/()–-]", value))
        if international:  # at least 9 digits after the prefix (our precision rule), a length the country has
            ok = len(digits.lstrip("0")) >= 9 and _possible_number(value)
        elif context == "pos":
            ok = 6 <= len(digits) <= 13
        elif has_separator:
            ok = 9 <= len(digits) <= 13
        else:  # one unbroken block of digits without any phone marker: only if mobile-length
            ok = 10 <= len(digits) <= 12
        if ok:
            found.append(Detection("phone", start, m.end(), value))
    return found


# --------------------------------------------------------------------------- dates / birth dates

_MONTHS = (
    r"(?:Januar|Jänner|Februar|März|Maerz|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember|"
    r"Jan\.|Feb\.|Febr\.|Mär\.|Apr\.|Jun\.|Jul\.|Aug\.|Sep\.|Sept\.|Okt\.|Nov\.|Dez\.)"
)
_DATE = (
    r"(?:(?:0?[1-9]|[12]\d|3[01])\.[ ]?(?:0?[1-9]|1[0-2])\.[ ]?(?:(?:19|20)\d{2}|\d{2})(?!\d)"
    rf"|(?:0?[1-9]|[12]\d|3[01])\.[ ]?{_MONTHS}[ ](?:19|20)\d{{2}}(?!\d)"
    r"|(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?!\d))"
)
_BIRTH = re.compile(
    r"(?P<marker>\bgeb\.|\bgeboren\b|\bGeburtsdatum\b|\bGeb\.[ -]?(?:Datum|Dat\.)|\bGeb\.datum\b|\bGeburtstag\s*:"
    r"|(?<![\w*])\*)"
    rf"(?P<fill>[^\d\n.!?;*]{{0,40}}?)(?P<date>{_DATE})",
    re.IGNORECASE,
)


# "… ist am 7. Juni 1979 geboren." – the marker after the date, within the same clause.
_BIRTH_AFTER = re.compile(rf"(?P<date>{_DATE})(?P<fill>[^\d\n.!?;]{{0,30}}?)\bgeboren\b", re.IGNORECASE)


def _find_birth_dates(text: str) -> list[Detection]:
    found = [
        Detection("birth_date", m.start("date"), m.end("date"), m.group("date")) for m in _BIRTH_AFTER.finditer(text)
    ]
    for m in _BIRTH.finditer(text):
        if m.group("marker") == "*":
            # "* 12.03.1961" next to a name means born; a bullet at the start of a line does not.
            line_start = text.rfind("\n", 0, m.start()) + 1
            if not text[line_start:m.start()].strip() or m.group("fill").strip():
                continue
        found.append(Detection("birth_date", m.start("date"), m.end("date"), m.group("date")))
    return found


# --------------------------------------------------------------------------- addresses

_STREET_TYPES = (
    "straße strasse str\\. weg allee platz ring gasse damm ufer chaussee pfad steig stieg markt wall graben promenade"
)
_STREET_SUFFIX = "(?:" + "|".join(_STREET_TYPES.split()) + ")"  # "Lindenstraße"
_STREET_WORD = "(?:" + "|".join(t.capitalize() for t in _STREET_TYPES.split()) + ")"  # "Krefelder Straße"
_W = rf"[{_UP}][{_LOW}]+"
_COMPOUND = rf"(?:{_W}-)*[{_UP}][{_LOW}]+?{_STREET_SUFFIX}(?![{_LOW}])"
_HYPHENATED = rf"{_W}-(?:[{_UP}{_LOW}][{_LOW}]*-)*{_STREET_WORD}(?![{_LOW}])"
_ARTICLES = (
    r"(?:Der|Die|Das|Den|Dem|Des|Ein|Eine|Einer|Diese|Dieser|Jede|Jeder|Unsere|Ihre|Seine|Meine|Alle|Beide|"
    r"Neben|Ohne|Ende|Entlang)"
)
# "Krefelder Straße", "Breite Straße": any adjective before a separate street word; before a
# compound ("Alte Poststraße") only a closed list, so "Becker Lindenstraße" is not one street.
_ADJECTIVE = rf"(?!{_ARTICLES}\s)[{_UP}][{_LOW}]+(?:er|e|es|en)"
_COMPOUND_ADJECTIVE = (
    r"(?:Alte|Alter|Altes|Neue|Neuer|Neues|Obere|Untere|Große|Kleine|Lange|Kurze|Hohe|Breite|Schmale|"
    r"Innere|Äußere|Vordere|Hintere|Mittlere|Heilige)"
)
_PREPOSITION = (
    r"(?:[Aa]m|[Ii]m|[Zz]um|[Zz]ur|[Aa]n\sde[rnm]|[Aa]uf\sde[rnm]|[Ii]n\sde[rn]|[Hh]inter\sde[rnm]|"
    r"[Uu]nter\sde[rnm]|[Vv]or\sde[rnm]|[Bb]ei\sde[rnm]|[Üü]ber\sde[rnm])"
)
_HOUSE_NO_PART = r"[1-9]\d{0,2}(?:[ ]?[a-hA-H](?!\w))?"  # 12, 5a, 21 b
_HOUSE_NO = rf"{_HOUSE_NO_PART}(?:[ ]?[-–/][ ]?{_HOUSE_NO_PART})?(?!\d)(?![.,]\d)"  # 44-46
_CITY = rf"{_W}(?:-{_W})*(?:\s(?:an\sder|am|im|in\sder|bei|ob\sder|vor\sder)\s{_W})?"
_ADDRESS = re.compile(
    rf"(?P<street>(?<![\w-])(?:"
    rf"(?P<prep>{_PREPOSITION})\s(?P<noun>{_W}(?:-{_W})*)"
    rf"|(?:{_COMPOUND_ADJECTIVE}[ ])?(?:{_HYPHENATED}|{_COMPOUND})"
    rf"|{_ADJECTIVE}[ ]{_STREET_WORD}(?![{_LOW}])"
    rf"))[ ]?(?P<no>{_HOUSE_NO})"
    rf"(?P<tail>\s*,?\s*(?:D-)?\d{{5}}\s+{_CITY})?"
)
_PLACE_NOUNS = frozenset(
    "Markt Rathaus Bahnhof Kirche Friedhof Park Anger Deich Hafen Wall Graben Berg Brunnen Wald Feld Hof "
    "Tor Turm Kamp Busch Bruch Schloss Weiher See Teich Ufer Kanal Dom Bach Damm Steg Bleiche Kreuz "
    "Heide Wiese Weide Mühle Schlag Stein Dorf Hang Siepen Rain Hain Brink Esch Wiedenhof Kapellchen "
    "Kapelle Schule Sportplatz Wasserturm Stadtgarten Stadtpark Stadtwald Mühlenbach Kirchplatz".split()
)
_PLACE_SUFFIX = re.compile(
    r"(?:straße|strasse|weg|allee|platz|ring|gasse|damm|ufer|pfad|steig|markt|wall|graben|berg|feld|grund|"
    r"garten|weide|wiese|heide|busch|bruch|kamp|mühle|höhe|kreuz|bach|deich|anger|acker|wald|park|hain|hof|"
    r"brunnen|brink|pfuhl|dyk|dyck|siepen|hütte|kirche|kapelle|schule|tal|weiher|teich|see)$"
)
# Words ending like a place that are abstract nouns in administrative prose ("im Handlungsfeld 3").
_ABSTRACT_PLACE = re.compile(
    r"(?:ungs|ions|itäts|heits|keits|schafts|Um|Vor|Themen|Aufgaben|Arbeits|Tätigkeits|Berufs|Spannungs)feld$"
)
_NOT_STREETS = frozenset(
    "Arbeitsplatz Parkplatz Stellplatz Sitzplatz Tabellenplatz Kitaplatz Betreuungsplatz Ausbildungsplatz "
    "Studienplatz Spielplatz Rechtsweg Dienstweg Verwaltungsweg Umweg Bildungsweg Lösungsweg Staudamm "
    "Bundesstraße Landesstraße Kreisstraße Staatsstraße Gemeindestraße Ortsstraße Bundesstrasse "
    "Kreisstrasse Landesstrasse Arbeitsmarkt Wohnungsmarkt Binnenmarkt Kapitalmarkt Immobilienmarkt".split()
)
_AFTER_NUMBER_NOT_HOUSE = re.compile(
    r"\s*(?:Euro\b|EUR\b|€|Prozent|%|Uhr\b|Jahre|Jahren|Meter|m\b|km\b|qm\b|m²|ha\b|Teilnehm|Personen|Stück|"
    r"Mio|Millionen|Tage|Wochen|Monate|Minuten|Stunden|Fälle|Plätze|Kinder|Stimmen|Mitglieder)"
    r"|\.\s*(?:Bauabschnitt|Abschnitt|BA\b|Änderung|Sitzung|Etage|OG\b|Obergeschoss|Stock|Jahrhundert|Quartal|"
    rf"Halbjahr|{_MONTHS})"
)


def _find_addresses(text: str) -> list[Detection]:
    found = []
    for m in _ADDRESS.finditer(text):
        street = m.group("street")
        if street.split()[-1] in _NOT_STREETS:  # "Bundesstraße 221" is a road number, "Parkplatz 12" a bay
            continue
        if m.group("prep"):
            noun = m.group("noun")
            # "Am Markt 5" yes, "Am Montag 12" / "Im Jahr 2024" no – unless a postcode follows.
            place = noun in _PLACE_NOUNS or (_PLACE_SUFFIX.search(noun) and not _ABSTRACT_PLACE.search(noun))
            if not place and not m.group("tail"):
                continue
        if not m.group("tail") and _AFTER_NUMBER_NOT_HOUSE.match(text, m.end()):
            continue
        start = m.start("street")
        # "Am Markt 5": keep the preposition only when it is part of the street's name.
        if m.group("prep") and m.group("prep")[0].islower():
            start = m.start("noun")
        found.append(Detection("address", start, m.end(), text[start:m.end()]))
    return found


# --------------------------------------------------------------------------- person names

_NAME_MARKER = re.compile(
    r"(?<![\w-])(?:(?P<word>Herrn?|Frau|geborene|verwitwete|Eheleute"
    r"|Familienname|Geburtsname|Nachname|Vorname|Name)"
    r"|(?P<abbr>Hr\.|Fr\.|Dr\.|Prof\.|geb\.|verw\.))"
)
_NAME_TOKEN = re.compile(rf"[{_UP}][^\W\d_]+(?:-[{_UP}][^\W\d_]+)*(?![\w-])")
_INITIAL = re.compile(rf"[{_UP}]\.(?=\s)")
_NAME_TOKEN_OR_INITIAL = re.compile(rf"[{_UP}]\.(?=\s)|[{_UP}][^\W\d_]+(?:-[{_UP}][^\W\d_]+)*(?![\w-])")
_TITLE = re.compile(
    r"(?:Dr\.-Ing\.|Dr\.|Prof\.|Dipl\.-\w+\.?|med\.|dent\.|rer\.\s?nat\.|jur\.|phil\.|h\.\s?c\.|Mag\."
    r"|von\s+und\s+zu)\s*"
)
_PARTICLES = re.compile(
    rf"(?:(?:von|van|de|der|den|dem|zu|vom|zum|zur|ten|ter|la|le|di|da|del|dos)[ \t]+)+(?=[{_UP}])"
)
_INDEFINITE = re.compile(
    r"(?:\b(?:ein|eine|einer|einem|einen|keine|keiner|jede|jeder|jedem|welche|junge|ältere|alte)\s+)$", re.IGNORECASE
)
_ROLE_WORDS = frozenset(
    """
    Bürgermeister Bürgermeisterin Oberbürgermeister Oberbürgermeisterin Vorsitzende Vorsitzender
    Ausschussvorsitzende Ausschussvorsitzender Fraktionsvorsitzende Fraktionsvorsitzender Kollege Kollegin
    Präsident Präsidentin Minister Ministerin Ministerpräsident Ministerpräsidentin Abgeordnete Abgeordneter
    Stadtdirektor Stadtdirektorin Kämmerer Kämmerin Kämmerin Beigeordnete Beigeordneter Dezernent Dezernentin
    Landrat Landrätin Amtsleiter Amtsleiterin Sachbearbeiter Sachbearbeiterin Antragsteller Antragstellerin
    Ratsmitglied Ratsfrau Ratsherr Stadtrat Stadträtin Pfarrer Pfarrerin Direktor Direktorin Richter Richterin
    Rechtsanwalt Rechtsanwältin Notar Notarin Professor Professorin Doktor Stadtverordnete Stadtverordneter
    Ortsvorsteher Ortsvorsteherin Schriftführer Schriftführerin Geschäftsführer Geschäftsführerin Leiter
    Leiterin Bürger Bürgerin Mieter Mieterin Eigentümer Eigentümerin Nachbar Nachbarin Kunde Kundin
    Vermieter Vermieterin Beschwerdeführer Beschwerdeführerin Einwender Einwenderin Petent Petentin
    Klient Klientin Schulleiter Schulleiterin Amtsrat Amtsrätin Inspektor Inspektorin Baurat Baurätin
    Verwaltungsleiter Verwaltungsleiterin Gleichstellungsbeauftragte Datenschutzbeauftragte
    Datenschutzbeauftragter Beauftragte Beauftragter Sprecher Sprecherin Referent Referentin Ober Pastor
    Pastorin Generalsekretär Generalsekretärin Staatssekretär Staatssekretärin Kanzler Kanzlerin
    """.split()
)
_NOT_NAMES = _ROLE_WORDS | frozenset(
    """
    Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag Januar Februar März April Mai Juni Juli
    August September Oktober November Dezember Mitte Anfang Ende Vormittag Nachmittag Morgen Abend
    Damen Herren Sowieso Stadt Gemeinde Verwaltung Rat Ausschuss Sitzung Name Vorname Nachname
    """.split()
)


_BLANKS = re.compile(r"[ \t]+")
_COLON = re.compile(r"[ \t]*:")
_GAP_AFTER_WORD = re.compile(r"[ \t]+|[ \t]*\n[ \t]*")  # "Herrn\nJürgen Becker" in an address block
_GAP_AFTER_ABBR = re.compile(r"\s*:?\s*")


def _scan_name(text: str, pos: int, needs_space: bool) -> tuple[int, int] | None:
    """Read titles, role words and name tokens after a marker; return the span of the name tokens."""
    gap = (_GAP_AFTER_WORD if needs_space else _GAP_AFTER_ABBR).match(text, pos)
    if needs_space and not gap:
        return None
    i = gap.end() if gap else pos
    while True:  # titles and role words may precede the name: "Herrn Dr. med. Bürgermeister …"
        t = _TITLE.match(text, i)
        if t:
            i = t.end()
            continue
        r = _NAME_TOKEN.match(text, i)
        if r and r.group(0) in _ROLE_WORDS:
            i = r.end()
            s = _BLANKS.match(text, i)
            if not s:
                return None
            i = s.end()
            continue
        break
    start = end = None
    tokens = 0
    while tokens < 4:
        m = _INITIAL.match(text, i) or _NAME_TOKEN.match(text, i)
        if not m or m.group(0) in _NOT_NAMES:
            break
        if start is None:
            start = i
        end, tokens, i = m.end(), tokens + 1, m.end()
        s = _BLANKS.match(text, i)
        if not s:
            break
        particles = _PARTICLES.match(text, s.end())  # "Anna von der Heide"
        i = particles.end() if particles else s.end()
    if start is None or end is None:
        return None
    if _INITIAL.fullmatch(text[start:end]):  # an initial alone ("Fr. M.") identifies no one
        return None
    return start, end


def _find_person_names(text: str) -> list[Detection]:
    found = []
    for m in _NAME_MARKER.finditer(text):
        word = m.group("word")
        if word in ("Herr", "Herrn", "Frau") and _INDEFINITE.search(text[max(0, m.start() - 20):m.start()]):
            continue  # "eine Frau Mitte 40", "jeder Herr" – the noun, not a salutation
        if word in ("Name", "Vorname", "Nachname", "Familienname", "Geburtsname"):
            if not _COLON.match(text, m.end()):
                continue
            span = _scan_name(text, m.end(), needs_space=False)
        else:
            span = _scan_name(text, m.end(), needs_space=word is not None)
        if span:
            found.append(Detection("person_name", span[0], span[1], text[span[0]:span[1]]))
    return found


# --------------------------------------------------------------------------- public API


class _Spans:
    """Non-overlapping half-open intervals with O(log n) overlap checks (long documents have thousands)."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self._starts, end)
        return i > 0 and self._ends[i - 1] > start

    def add(self, start: int, end: int) -> None:
        """Insert, merging with any overlapping intervals so the invariant holds."""
        i = bisect.bisect_left(self._starts, end)
        while i > 0 and self._ends[i - 1] > start:
            i -= 1
            start, end = min(start, self._starts[i]), max(end, self._ends[i])
            del self._starts[i], self._ends[i]
        self._starts.insert(i, start)
        self._ends.insert(i, end)


def _trim_name(text: str, det: Detection, taken: _Spans) -> Detection | None:
    """Shorten a name that ran into an accepted finding (e.g. an address) to the words before it."""
    end = det.start
    for m in _NAME_TOKEN_OR_INITIAL.finditer(text, det.start, det.end):
        if taken.overlaps(det.start, m.end()):
            break
        end = m.end()
    if end == det.start or _INITIAL.fullmatch(text[det.start:end]):
        return None
    return Detection("person_name", det.start, end, text[det.start:end])


def detect_pii(text: str) -> list[Detection]:
    """All personal data found in ``text``, ordered by position, without overlaps.

    When two findings overlap, the more specific kind wins (validated identifiers before
    phone numbers before dates, names and addresses). Spans shaped like an e-mail address
    or IBAN – valid or not – are not searched for phone numbers or tax IDs, so the digits
    of a mistyped IBAN are not reported as a phone number.
    """
    if not text:
        return []
    shielded = _Spans()
    for pattern in (_EMAIL, _IBAN_SHAPE):
        for m in pattern.finditer(text):
            shielded.add(m.start(), m.end())
    numeric = _find_tax_ids(text) + _find_phones(text)
    candidates = _find_emails(text) + _find_ibans(text)
    candidates += [d for d in numeric if not shielded.overlaps(d.start, d.end)]
    candidates += _find_birth_dates(text) + _find_addresses(text) + _find_person_names(text)
    accepted: list[Detection] = []
    taken = _Spans()
    for det in sorted(candidates, key=lambda d: (_PRIORITY[d.kind], d.start, -(d.end - d.start))):
        if det.kind == "person_name" and taken.overlaps(det.start, det.end):
            det = _trim_name(text, det, taken)  # "Herrn Becker Krefelder Straße 12": keep "Becker"
        if det is not None and not taken.overlaps(det.start, det.end):
            taken.add(det.start, det.end)
            accepted.append(det)
    return sorted(accepted, key=lambda d: d.start)


def _describe(detections: list[Detection]) -> str:
    """"Telefonnummer (**** ***67), Personenname (J*** B***)" – masked values only."""
    parts = []
    for kind in KINDS:
        values = [d.masked for d in detections if d.kind == kind]
        if values:
            parts.append(f"{KIND_LABELS_DE[kind]} ({', '.join(dict.fromkeys(values))})")
    return "; ".join(parts)


def assess(text: str, zone: str) -> PiiDecision:
    """Decide what personal data in a question means for a model in ``zone``.

    green: allowed (the model runs on the city's own machine), findings are listed;
    yellow: warn – the person must confirm before data goes to the EU-hosted processor;
    red: block – commercial models must never receive personal data.
    Unknown zones raise ``ValueError``: guessing a zone would mean guessing a legal basis.
    """
    if zone not in ZONE_ACTIONS:
        raise ValueError(f"unknown zone {zone!r}; expected one of {tuple(ZONE_ACTIONS)}")
    detections = detect_pii(text)
    if not detections:
        return PiiDecision("allow", [], "")
    action = ZONE_ACTIONS[zone]
    found = _describe(detections)
    if action == "allow":
        message = (
            f"Hinweis: Die Anfrage enthält personenbezogene Daten – {found}. "
            "Das Modell der Zone Grün läuft auf dem eigenen Server der Verwaltung und darf sie verarbeiten."
        )
    elif action == "warn":
        message = (
            f"Die Anfrage enthält vermutlich personenbezogene Daten – {found}. "
            "Das gewählte Modell der Zone Gelb wird in der EU im Auftrag der Verwaltung betrieben "
            "(Auftragsverarbeitung). Bitte bestätigen Sie, dass diese Angaben übermittelt werden dürfen, "
            "oder entfernen Sie sie aus der Frage."
        )
    else:
        message = (
            f"Die Anfrage wurde nicht gesendet: Sie enthält vermutlich personenbezogene Daten – {found}. "
            "Modelle der Zone Rot (große kommerzielle Modelle) dürfen keine personenbezogenen Daten erhalten. "
            "Bitte entfernen Sie diese Angaben oder wählen Sie das lokale Modell (Zone Grün)."
        )
    decision = PiiDecision(action, detections, message)
    logger.info("PII check: zone=%s action=%s kinds=%s count=%d", zone, action, decision.kinds, len(detections))
    return decision
