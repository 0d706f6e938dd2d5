"""Markdown escaping: text from documents, answers and users is shown, never interpreted."""
from __future__ import annotations

import pytest

from assistant.escaping import esc, md_esc


@pytest.mark.parametrize("text, shown", [
    ("<b>fett</b>", "&lt;b&gt;fett&lt;/b&gt;"),
    ("[x](javascript:alert(1))", "\\[x\\]\\(javascript:alert\\(1\\)\\)"),  # no link
    ("![bild](http://example.org/a.png)", "!\\[bild\\]\\(http\\://example.org/a.png\\)"),  # no image
    ("**fett** _kursiv_ `code`", "\\*\\*fett\\*\\* \\_kursiv\\_ \\`code\\`"),
    ("1. Punkt\n# Titel", "1\\. Punkt\n\\# Titel"),
    ("A & B = C", "A &amp; B = C"),
    ("Titel\n===", "Titel\n\\==="),
    ("$$x^2$$", "\\$\\$x^2\\$\\$"),  # no formula in the chatbot
    # no link without markup (GFM autolinks), also inside a word; times and a lone "@" untouched
    ("siehe https://p.example/a und ftp://f.example", "siehe https\\://p.example/a und ftp\\://f.example"),
    ("www.p.example, xwww.p.example, HTTP://P.EXAMPLE", "www\\.p.example, xwww\\.p.example, HTTP\\://P.EXAMPLE"),
    ("info@stadt.de, a.b-@c.de", "info\\@stadt.de, a.b-\\@c.de"),
    ("Ab 9:00 Uhr @ Rathaus, https:nichts", "Ab 9:00 Uhr @ Rathaus, https:nichts"),
    # a direction override would show "Rechnungexe.pdf" (an attacker's probe): the text's own order
    ("Rechnung\u202efdp.exe", "Rechnungfdp.exe"), ("\u2067a\u2069 \u202ab\u202c", "a b"),
    ("شارع النيل 5", "شارع النيل 5"),  # right-to-left text itself stays as it is
])
def test_md_esc_shows_text_literally(text, shown):
    assert md_esc(text) == shown


def test_esc_escapes_attributes_too():
    assert esc('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;" and esc(None) == ""
    assert esc("Bescheid\u202eFDP.exe") == "BescheidFDP.exe"
