"""„Blick unter die Haube“: the view model and its renderers; hostile document text stays data."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from assistant.answer_checks import NOTICE_NO_ANSWER
from assistant.chain import AnswerResult, Citation, PassageTrace
from assistant.settings import ModelProfile
from assistant.escaping import md_code_block, md_esc
from assistant.training.inspect import build_view, render_answer_html, render_html, render_markdown

HOSTILE = ('<script>alert("x")</script><img src=x onerror="alert(1)"> ${alert(2)} {{constructor}} '
           '</td></tr></table><a href="javascript:alert(3)">klick</a> | **fett** [link](http://böse.example) ```')


def _result() -> AnswerResult:
    passages = [
        PassageTrace("d1", "/docs/faq.html", "FAQ <b>Portal</b>", None, "Chats werden 90 Tage gespeichert.", 0.0328, 1, 1, 0.91, True, n=1,
                     late_rank=2),
        PassageTrace("d2", "/docs/boese.pptx", HOSTILE, 3, HOSTILE, 0.0161, 2, None, None, False, removed_reason="Ampel"),
        PassageTrace("d3", "/docs/lang.pdf", "Lang", 7, "x " * 50, 0.0150, None, 4, 0.5, False),
    ]
    return AnswerResult(
        question="Und wie lange?", answer=f"Antwort {HOSTILE} [1]", model="Testmodell", zone="yellow", mode="local",
        standalone_question="Wie lange werden Chats gespeichert?", passages=passages,
        prompt=f"[system]\nRegeln\n\n[human]\nQuellen:\n[1] FAQ\n<<<\n{HOSTILE}\n>>>",
        prompt_tokens=123, completion_tokens=9, timings={"retrieve_ms": 12.5, "total_ms": 800.0},
        notices=["1 Passage wurde entfernt <i>Ampel</i>"],
        policy={"action": "allow", "pii": [{"kind": "email", "masked": "m***@***.de"}], "removed_by_class": {"vertraulich": 1}},
        citations=[Citation(1, "d1", "/docs/faq.html", "FAQ <b>Portal</b>", None, "…", 0.03)],
    )


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_view_model_explains_every_passage():
    profile = ModelProfile(mode="openai", label="Testmodell", zone="yellow", operator="EU-Anbieter", location="Frankfurt")
    view = build_view(_result(), profile, k=4)
    assert view.rewritten and view.standalone_question == "Wie lange werden Chats gespeichert?"
    assert view.operator == "EU-Anbieter" and view.zone == "yellow" and view.prompt_sent
    first, second, third = view.passages
    assert (first.bm25_rank, first.dense_rank, first.in_prompt, first.status) == (1, 1, True, "im Prompt als [1]")
    assert second.status.startswith("nicht im Prompt: Ampel")
    assert third.status == "nicht im Prompt: Budget (Token-Budget ausgeschöpft)"
    assert build_view(_result(), profile, k=1).passages[2].status == "nicht im Prompt: Budget (höchstens 1 Textstellen)"
    assert ("Suche", 12.5) in view.timings and ("Gesamt", 800.0) in view.timings
    assert [p.late_rank for p in view.passages] == [2, None, None]  # late interaction's place, where it re-ranked


def test_both_renderers_show_the_late_interaction_rank_beside_the_retrievers():
    view = build_view(_result(), None, k=4)
    html, md = render_html(view), render_markdown(view)
    assert "Abgleich-Rang" in html and "Feinabgleich Wort für Wort" in html
    first_row = next(line for line in md.splitlines() if line.startswith("| 1 |"))
    assert [c.strip() for c in first_row.split("|")][4:8] == ["1", "1", "0.0328", "2"]  # BM25, Dense, Fusion, Abgleich


def test_html_escapes_hostile_passage_text_everywhere():
    out = render_html(build_view(_result(), None, k=4)) + render_answer_html(_result())
    parser = _Collect()
    parser.feed(out)
    # only the renderer's own tags, and no attribute that could run code
    assert set(parser.tags) <= {"div", "h3", "h4", "table", "tr", "td", "th", "b", "em", "span", "br", "ul", "li",
                                "p", "pre", "ol", "code"}
    for name, value in parser.attrs:
        assert name in ("class", "style", "value"), name
        assert "javascript" not in (value or "")
    assert "<script" not in out and "onerror=" not in out.replace("onerror=&quot;", "")
    assert "&lt;script&gt;" in out and "&lt;b&gt;Portal&lt;/b&gt;" in out
    assert "Prompt (genau so an das Modell gesendet)" in out
    assert "m***@***.de" in out and "vertraulich: 1" in out


def test_markdown_escapes_hostile_text_and_keeps_the_prompt_in_its_fence():
    md = render_markdown(build_view(_result(), None))
    outside, _, fenced = md.partition("**Prompt:**")
    assert "<script>" not in outside and "<img" not in outside and "<a " not in outside
    # inside the fence the prompt is shown verbatim (a code block is never rendered as HTML)
    assert fenced.lstrip().startswith("````text\n") and HOSTILE in fenced
    assert "\\*\\*fett\\*\\*" in md and "\\[link\\]" in md
    # table rows stay rows: pipes in document text are escaped
    for line in md.splitlines():
        if line.startswith("| 2 |"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 10
    # the prompt's own ``` cannot close the fence around it
    fence = md_code_block("a ``` b ```` c")
    assert fence.startswith("`````text\n") and fence.endswith("\n`````")
    assert md_esc("# Titel\n1. Liste", cell=True) == "\\# Titel 1. Liste"


def test_the_models_own_doubt_is_shown_to_trainers_when_the_model_reported_it():
    res = _result()
    assert "Unsicherheit des Modells" not in render_html(build_view(res, None))  # extractive / other backends: nothing
    res.refusal_probability = 0.2647
    view = build_view(res, None)
    assert view.refusal_probability == 0.2647
    assert "Unsicherheit des Modells" in render_html(view) and "Ablehnung war zu 26 % wahrscheinlich" in render_html(view)
    assert "**Unsicherheit des Modells:** Ablehnung war zu 26 % wahrscheinlich" in render_markdown(view)


def test_trainers_see_the_unmentioned_term_warning_as_something_to_check():
    from assistant.grounding import warning

    res = _result()
    res.notices.append(warning(["Göppingen"]))
    view = build_view(res, None)
    assert "<li>⚠ <b>Prüfen:</b> „Göppingen“ kommt im zitierten Dokument nicht vor" in render_html(view)
    assert "<li>1 Passage wurde entfernt &lt;i&gt;Ampel&lt;/i&gt;</li>" in render_html(view)  # plain notice, escaped
    assert "- *⚠ Prüfen:* „Göppingen“ kommt im zitierten Dokument nicht vor" in render_markdown(view)


def test_trainers_see_the_quote_and_why_the_answer_was_given_or_refused():
    from assistant.quotes import Quote

    res = _result()
    res.answer = "Chats werden 90 Tage gespeichert [1]."
    res.quotes = [Quote(1, f"Chats werden 90 Tage gespeichert. {HOSTILE}", "/docs/faq.html", "FAQ", None, 0.9)]
    view = build_view(res, None, k=4)
    assert view.quotes[0]["n"] == 1 and "steht wörtlich im Zitat aus Quelle [1]" in view.why
    html_out, md_out = render_html(view), render_markdown(view)
    assert "Zitate, auf die sich die Antwort stützt" in html_out and "<script>" not in html_out
    assert "**Zitat [1]**" in md_out and "Warum diese Antwort" in md_out
    res.answer, res.quotes = "„Chats werden 90 Tage gespeichert.“ [1]", [res.quotes[0]]
    assert "selbst ist die Antwort: die Aussage des Modells stand so nicht in den Quellen" in build_view(res, None).why
    res.notices = [NOTICE_NO_ANSWER]  # the model refused: the quote answers
    assert "selbst ist die Antwort: das Modell fand keine" in build_view(res, None).why
    res.refused, res.quotes, res.notices = True, [], ["Die Angabe 2019 aus der Frage steht in keiner gefundenen Textstelle."]
    assert build_view(res, None).why == "Abgelehnt: Die Angabe 2019 aus der Frage steht in keiner gefundenen Textstelle."


@pytest.mark.parametrize("source, page, label", [
    ("/docs/satzung.pdf", 4, "Seite 4"),
    ("/docs/vortrag.pptx", 7, "Folie 7"),
])
def test_a_quote_from_a_page_or_slide_names_it_in_both_views(source, page, label):
    """Regression: every quote with a page crashed the trainer's view (an undefined helper)."""
    from assistant.quotes import Quote

    res = _result()
    res.answer = "Chats werden 90 Tage gespeichert [1]."
    res.quotes = [Quote(1, "Chats werden 90 Tage gespeichert.", source, "FAQ", page, 0.9)]
    view = build_view(res, None, k=4)
    assert f"FAQ, {label}: <q>Chats werden 90 Tage gespeichert.</q>" in render_html(view)
    assert f"**Zitat [1]** FAQ, {label}: „Chats werden 90 Tage gespeichert.“" in render_markdown(view)
