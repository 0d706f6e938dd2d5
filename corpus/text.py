"""German text basics shared by chunking, retrieval checks and answer checks: one home each.

Sentence splitting (aware of "z. B.", "Abs." and ordinals), the Snowball stemmer, the
stopword list, content stems and the model-free token estimate. Everything that splits,
stems or counts German text uses these, so chunk boundaries, evidence selection and
answer checks agree on what a sentence and a word are.
"""
from __future__ import annotations

import re
from functools import lru_cache

# Abbreviations after which a period does not end a sentence.
_ABBREV = {
    "z", "b", "bzw", "ca", "d", "h", "dr", "nr", "abs", "art", "s", "vgl", "u", "a", "usw", "etc", "ggf",
    "inkl", "evtl", "str", "tel", "bspw", "i", "v", "m", "gem", "lt", "sog", "zzgl", "max", "min", "mio",
    "mrd", "prof", "hr", "fr", "bd", "kap", "ziff", "lfd", "anl", "o", "e", "g", "st", "jh", "gemäß",
}
_SENT_END = re.compile(r"(?<=[.!?…])[\"'»«“”)]*\s+(?=[A-ZÄÖÜ0-9„\"(§])")
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_LAST_WORD = re.compile(r"(\w+)[.]$")


# explicit direction controls (embeddings, overrides, isolates): "Rechnung\u202efdp.exe" shows as
# "Rechnungexe.pdf". Text the portal shows is data, so its order on screen is the order it has.
DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def without_direction_controls(text: str) -> str:
    return DIRECTION_CONTROLS.sub("", text)


# a page's number as a running header or footer prints it: "Seite 2 von 3", "Page 2 of 3", "S. 2/3",
# after the document's title or not; a bare "Seite 4" line too. A sentence that names a page
# ("siehe Seite 3.") ends otherwise.
_PAGE_FURNITURE = re.compile(
    r"(?:^|[\s|–—-])(?:Seite|Page|S\.)\s*\d{1,4}\s*(?:(?:von|of|/)\s*\d{1,4})\s*$|^(?:Seite|Page)\s*\d{1,4}$",
    re.IGNORECASE)


# a page's number alone on its line: "12", "Seite 3", "3 / 8", "Page 2 of 5"
_PAGE_NUMBER_ALONE = re.compile(r"^(?:(?:seite|page|s\.)\s*)?\d{1,4}(?:\s*(?:/|von|of)\s*\d{1,4})?$", re.IGNORECASE)


def page_number_alone(line: str) -> bool:
    """Whether ``line`` is a page's number and nothing else ("12", "Seite 3 von 8"). Only a line at a
    page's top or bottom is one (the page reader asks for those): a bare number inside a page is a
    table's cell or a list's count. Titled footers are :func:`page_furniture`."""
    return bool(_PAGE_NUMBER_ALONE.match(line.strip()))


def page_furniture(line: str) -> bool:
    """Whether ``line`` is a page's running header or footer ("Bericht … – Seite 1 von 3"): no
    evidence and never a quote. Such a line shares the document's title words with every question
    about it and, with its figures, passed for the answer to a "Wie viele …?" (a demo question got
    "… Nordpark Mönchengladbach - Seite 1 von 3" as its quote)."""
    line = line.strip()
    # a sentence that runs into the footer ("… per E-Mail. Programm … - Seite 1 von 3", a PDF's text
    # flattened into one line) is text: split it first (split_sentences), then ask for each piece
    return len(line) <= 160 and bool(_PAGE_FURNITURE.search(line)) and len(split_sentences(line)) == 1


# an outline number before a heading has a dot ("2.3 Ziele", "3. Kosten") or a letter before it
# ("B 3.1.1 Frequenzbereich"); a bare "24" starts a figure ("24 Monate Gewährleistung")
_OUTLINE = re.compile(r"^(?:[A-Z]\s+\d{1,3}(?:\.\d{1,3})*\.?|\d{1,3}(?:\.\d{1,3})+\.?|\d{1,3}\.)\s+")
_BULLET = re.compile(r"^[●•▪◦‣∙·*–-]\s*")
_NO_HEADING_END = (".", "!", "?", ":", ";", ",", "…", ")", "\"", "“", "”", "«", "»")
# the small words a German heading has between its nouns ("Bürgertelefon in Gebärdensprache")
_HEADING_SMALL_WORDS = frozenset("der die das des dem den ein eine einer eines einem einen und oder für von vom im in "
                                 "zu zur zum mit über bei nach auf aus an am vor als".split())


def bare_heading(line: str) -> bool:
    """Whether ``line`` is a heading alone ("Zukunftsbilder", "B 3.1.1 Frequenzbereich", "USE CASES"):
    at most six words, each a capitalised (German: a noun) or a small joining word, no sentence end,
    no label with its value (": ", ", "), no figure but an outline number, no table cells. It names
    what follows it and states nothing: it matched a question's words better than any sentence and
    became the whole answer (blind_dev: 3 of 40 extractive answers). A lower-case word makes a
    statement ("Nutzung kostenlos und ohne Anmeldung", "Hunde sind anzuleinen", a review), and a
    list's item ("● Open Definition") is none either."""
    line = line.strip()
    if _BULLET.match(line):
        return False
    line = _OUTLINE.sub("", line)
    if (not line or line.endswith(_NO_HEADING_END) or "|" in line or any(ch.isdigit() for ch in line)
            or re.search(r"[:,;]\s", line)):
        return False
    words = line.split()
    return (len(words) <= 6 and sum(ch.isalpha() for ch in line) >= 3
            and all(w[:1].isupper() or w in _HEADING_SMALL_WORDS for w in words))


def estimate_tokens(text: str) -> int:
    """Cheap token estimate close to XLM-R counts on German text (words × 1.3 + punctuation). A
    "word" longer than 100 characters (a run without spaces: a hash, a pasted string; no German
    compound is that long) counts one token per 4 characters, as a subword tokenizer splits it;
    else an 18 MB run would pass as one word and become one chunk."""
    found = re.findall(r"\w+", text)
    words = len(found)
    runs = sum(len(w) // 4 for w in found if len(w) > 100)
    return int(words * 1.3) + runs + max(0, len(_WORD.findall(text)) - words) // 2


def split_sentences(text: str) -> list[str]:
    """Split German text into sentences, respecting common abbreviations and ordinals."""
    parts: list[str] = []
    start = 0
    for m in _SENT_END.finditer(text):
        # the word before the period, read from the end: searching the whole text since the last
        # sentence end at every "z. B." made a long run-on line quadratic (an attacker's probe: a
        # 150 KB line took 50 s, and the text view splits its passage on every request)
        window = max(start, m.start() - 64)
        before = text[window : m.start()].rstrip("\"'»«“”)")
        last = _LAST_WORD.search(before)
        if last and last.start() == 0 and window > start:
            last = None  # a word longer than the window: no abbreviation, no initial
        if last and (last.group(1).lower() in _ABBREV or len(last.group(1)) == 1 and last.group(1).isalpha()
                     or last.group(1).isdigit() and len(last.group(1)) <= 2):
            continue  # "z. B.", "Abs.", "K. McCandless" (an initial), "3. Oktober"
        parts.append(text[start : m.start() + len(m.group(0))].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return [p for p in parts if p]


_CONTENT_WORD = re.compile(r"\w+", re.UNICODE)


def new_stemmer():
    """A German Snowball stemmer of its own (for an index that stems on its own thread)."""
    import Stemmer

    return Stemmer.Stemmer("german")


@lru_cache(maxsize=1)
def stemmer():
    """The shared German Snowball stemmer."""
    return new_stemmer()


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_GERMAN

    extra = {"gibt", "wer", "wie", "was", "wann", "wo", "welche", "welcher", "welches", "viele", "viel",
             "steht", "sagt", "bitte", "eigentlich", "genau", "denn", "mal", "man", "kann", "können", "muss"}
    return frozenset(set(STOPWORDS_GERMAN) | extra)


# a separable verb's zu-infinitive ("aufzubauen", "einzureichen") carries "zu" inside the word, so
# its stem never met the noun or the finite verb ("Aufbau", "reichen … ein"); the questions staff
# ask use this form often ("Wie lange braucht man, um … aufzubauen?")
_ZU_INFINITIVE = re.compile(
    r"^(ab|an|auf|aus|bei|dar|durch|ein|fest|frei|her|hin|los|mit|nach|teil|um|vor|weg|zurück|zusammen)"
    r"zu(?!gs)([a-zäöüß]{3,}en)$")


def _unzu(word: str) -> str:
    """"aufzubauen" → "aufbauen"; other words unchanged."""
    m = _ZU_INFINITIVE.match(word)
    return m.group(1) + m.group(2) if m else word


def content_stems(text: str) -> list[str]:
    """Lower-cased, stemmed content words (stopwords removed), in order; a separable verb's
    zu-infinitive counts as its plain infinitive."""
    words = [_unzu(w) for w in _CONTENT_WORD.findall(text.lower()) if w not in stopwords() and (len(w) > 1 or w.isdigit())]
    return stemmer().stemWords(words)


_UNIT_WORDS = {"ein": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9}
_TEEN_WORDS = {"zehn": 10, "elf": 11, "zwölf": 12, "dreizehn": 13, "vierzehn": 14, "fünfzehn": 15, "sechzehn": 16,
               "siebzehn": 17, "achtzehn": 18, "neunzehn": 19}
_TEN_WORDS = {"zwanzig": 20, "dreißig": 30, "vierzig": 40, "fünfzig": 50, "sechzig": 60, "siebzig": 70,
              "achtzig": 80, "neunzig": 90}


@lru_cache(maxsize=1)
def _number_words() -> dict[str, int]:
    """Every German cardinal from "zwei" to "neunhundertneunundneunzig", plus "tausend"."""
    below_100 = {w: n for w, n in _UNIT_WORDS.items() if n > 1} | _TEEN_WORDS | _TEN_WORDS
    below_100 |= {f"{u}und{t}": un + tn for t, tn in _TEN_WORDS.items() for u, un in _UNIT_WORDS.items()}
    words = dict(below_100)
    for prefix, hundreds in [("", 1)] + list(_UNIT_WORDS.items()):
        words[f"{prefix}hundert"] = hundreds * 100
        words |= {f"{prefix}hundert{w}": hundreds * 100 + n for w, n in below_100.items()}
    words |= {"tausend": 1000, "eintausend": 1000}
    ascii_spelt = str.maketrans({"ß": "ss", "ä": "ae", "ö": "oe", "ü": "ue"})  # "dreissig", "fuenf", "zwoelf"
    return words | {w.translate(ascii_spelt): n for w, n in words.items()}


_LETTERS = re.compile(r"(?<![\w-])[^\W\d_]+(?![\w-])", re.UNICODE)
#: number words that are nouns when capitalised ("die Elf" of a club, "in Acht nehmen")
_NOUNS_WHEN_CAPITALISED = frozenset({"Elf", "Acht"})


def _number_word(word: str, smallest: int) -> int | None:
    if word in _NOUNS_WHEN_CAPITALISED:
        return None
    n = _number_words().get(word.lower())
    return n if n is not None and n >= smallest else None


def number_word_values(text: str, smallest: int = 2) -> set[int]:
    """The German cardinals of at least ``smallest`` written as words in ``text`` ("zwanzig" → 20).

    Only whole words count: "ein"/"eine" are articles, "Jahrzehnt", "Achtung", "elfte" and
    "vierzig-jährig" stay words. text2num's ``alpha2digit`` was measured for this and not taken:
    it also turns "achten" into "8." and leaves a capitalised "Zwei" alone."""
    return {n for m in _LETTERS.finditer(text) if (n := _number_word(m.group(0), smallest)) is not None}


def number_words_as_digits(text: str, smallest: int = 2) -> str:
    """``text`` with its number words (as :func:`number_word_values` reads them) written as digits,
    so that a figure written out in one text and in digits in another match as text."""
    def spell(m: re.Match) -> str:
        n = _number_word(m.group(0), smallest)
        return m.group(0) if n is None else str(n)

    return _LETTERS.sub(spell, text)
