"""The running portal over HTTP: login, the chat endpoint, role checks, the document routes."""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urljoin

import httpx
import pytest
from gradio_client import Client

pytestmark = pytest.mark.integration

ZONE_Q = "Welche Zonen hat das Ampelsystem?"


def client(live_portal, user, portal_data):
    return Client(live_portal.url, auth=(user, portal_data["password"]), verbose=False)


@contextmanager
def http(live_portal, user=None, password=None) -> Iterator[httpx.Client]:
    """An HTTP client, logged in through gradio's /login when a user is given."""
    with httpx.Client(base_url=live_portal.url, follow_redirects=False, timeout=30) as c:
        if user:
            r = c.post("login", data={"username": user, "password": password})
            assert r.status_code == 200, r.text
        yield c


def text_of(message) -> str:
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


@pytest.fixture(scope="module")
def anna_answer(live_portal):
    pw = "Portal-Test-2025!"
    c = Client(live_portal.url, auth=("anna", pw), verbose=False)
    c.predict(api_name="/session")
    return c.predict(ZONE_Q, "extraktiv", [], api_name="/ask")


def test_chat_endpoint_answers_with_sources(live_portal, anna_answer):
    chatbot = anna_answer[0]
    assert [m["role"] for m in chatbot] == ["user", "assistant"]
    answer = text_of(chatbot[-1])
    assert "Laut den Dokumenten" in answer and "[1]" in answer
    assert 'class="kp-sources"' in answer and answer.count('class="kp-src-link"') >= 1
    assert "Zone" in answer
    chats = live_portal.server.handlers.chats.list_chats("anna")
    assert chats and chats[0]["title"] == ZONE_Q and chats[0]["messages"] == 2


def test_source_link_from_the_answer_opens_for_its_user_only(live_portal, anna_answer, portal_data):
    href = re.search(r'href="([^"]+)"', text_of(anna_answer[0][-1])).group(1).replace("&amp;", "&")
    path = href.split("#", 1)[0]
    with http(live_portal, "anna", portal_data["password"]) as c:
        r = c.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith(("application/pdf", "text/html"))
    with http(live_portal, "bernd", portal_data["password"]) as c:
        assert c.get(path).status_code == 403  # bound to anna
    with http(live_portal) as c:
        assert c.get(path).status_code == 401


def test_login_is_required_and_audited(live_portal, portal_data):
    with pytest.raises(Exception):
        Client(live_portal.url, verbose=False)
    with pytest.raises(Exception):
        Client(live_portal.url, auth=("anna", "falsch-falsch"), verbose=False)
    with http(live_portal) as c:
        assert c.post("login", data={"username": "anna", "password": "falsch"}).status_code == 400
        assert c.post("gradio_api/queue/join", json={"data": [ZONE_Q, "extraktiv", []], "fn_index": 0,
                                                     "session_hash": "x"}).status_code == 401
    audit = live_portal.ctx.audit
    assert any(e["actor"] == "anna" for e in audit.entries(action="login_failed"))
    assert any(e["actor"] == "anna" for e in audit.entries(action="login"))


FILE_COMPONENTS = {"File", "UploadButton", "Image", "Audio", "Video", "Gallery", "Model3D"}


def _protected_endpoints(c: Client, prefixes: tuple[str, ...], per_prefix: int = 4) -> list[tuple[str, list]]:
    """A few endpoints per prefix with harmless example arguments (never file inputs: no downloads)."""
    api = c.view_api(print_info=False, return_format="dict")["named_endpoints"]
    out = []
    for prefix in prefixes:
        found = []
        for name, info in sorted(api.items()):
            params = info["parameters"]
            if not name.startswith(prefix) or any(p.get("component") in FILE_COMPONENTS for p in params):
                continue
            args = [p["parameter_default"] if p.get("parameter_has_default") else p.get("example_input")
                    for p in params]
            found.append((name, args))
        out += sorted(found, key=lambda x: len(x[1]))[:per_prefix]
    return out


def test_admin_and_trainer_endpoints_refuse_staff(live_portal, portal_data):
    """Each endpoint refuses staff, or (page-load helpers) answers without any data."""
    c = client(live_portal, "anna", portal_data)
    endpoints = _protected_endpoints(c, ("/admin", "/trainer", "/kompass"), per_prefix=100)
    if not endpoints:
        pytest.fail("no admin or trainer endpoints found: the tabs are not built")
    secrets = [r.title for r in live_portal.ctx.app.catalog.documents()] + ["demo", "bernd", "adam", "tina"]
    refused = 0
    for name, args in endpoints:
        try:
            result = c.predict(*args, api_name=name)
        except Exception as exc:  # noqa: BLE001 - the client raises AppError with the server's message
            assert "Keine Berechtigung" in str(exc), (name, exc)
            refused += 1
            continue
        leaked = [s for s in secrets if s in str(result)]
        assert not leaked, (name, leaked)
    assert refused >= len(endpoints) // 2


def test_model_outside_the_role_is_refused(live_portal, portal_data):
    c = client(live_portal, "anna", portal_data)
    c.predict(api_name="/session")
    with pytest.raises(Exception) as err:
        c.predict(ZONE_Q, "chef", [], api_name="/ask")
    assert "chef" in str(err.value) or "Modell" in str(err.value)


def test_session_reports_role_models_and_collections(live_portal, portal_data):
    # tab visibility is a layout update and not part of the API result; the browser test checks it
    label, models, colls, _history = client(live_portal, "anna", portal_data).predict(api_name="/session")[:4]
    assert "anna" in label and "Mitarbeitende" in label
    assert [k for _, k in models["choices"]] == ["extraktiv", "gelb"] and models["value"] == "extraktiv"
    assert [k for _, k in colls["choices"]] == ["demo", "test"]
    admin_models = client(live_portal, "adam", portal_data).predict(api_name="/session")[1]
    assert "chef" in [k for _, k in admin_models["choices"]]


# -- the document routes ---------------------------------------------------------------------------
def _pdf_id(live_portal) -> str:
    return next(r.doc_id for r in live_portal.ctx.app.catalog.documents() if r.format == "pdf")


def test_doc_route_requires_login_and_a_valid_token(live_portal, portal_data):
    pdf = _pdf_id(live_portal)
    good = live_portal.sign(pdf, "anna")
    with http(live_portal) as c:
        assert c.get(f"doc/{pdf}", params={"t": good}).status_code == 401
        assert c.get(f"doc/{pdf}/text", params={"t": good}).status_code == 401
    with http(live_portal, "anna", portal_data["password"]) as c:
        assert c.get(f"doc/{pdf}").status_code == 403
        exp, sig = good.split(".")
        forged = sig[:-1] + ("A" if sig[-1] != "A" else "B")  # always differs from the real signature
        assert c.get(f"doc/{pdf}", params={"t": f"{exp}.{forged}"}).status_code == 403
        assert c.get(f"doc/{pdf}", params={"t": f"{int(exp) + 10}.{sig}"}).status_code == 403
        assert c.get(f"doc/{pdf}", params={"t": live_portal.sign(pdf, "bernd")}).status_code == 403
        other = next(r.doc_id for r in live_portal.ctx.app.catalog.documents() if r.doc_id != pdf)
        assert c.get(f"doc/{pdf}", params={"t": live_portal.sign(other, "anna")}).status_code == 403
    # a forged session cookie is no login
    with httpx.Client(base_url=live_portal.url, cookies={"access-token-unsecure-x": "abc"}) as c:
        assert c.get(f"doc/{pdf}", params={"t": good}).status_code == 401


def test_unknown_documents_and_paths_are_404(live_portal, portal_data):
    with http(live_portal, "anna", portal_data["password"]) as c:
        assert c.get("doc/0000000000000000", params={"t": live_portal.sign("0000000000000000", "anna")}).status_code == 404
        for bad in ("doc/..%2F..%2Fetc%2Fpasswd", "doc/%2Fetc%2Fpasswd/text", "doc/a.b/text"):
            assert c.get(bad, params={"t": live_portal.sign("x", "anna")}).status_code in (404, 403), bad


def test_pdf_is_served_inline(live_portal, portal_data):
    pdf = _pdf_id(live_portal)
    with http(live_portal, "anna", portal_data["password"]) as c:
        r = c.get(f"doc/{pdf}", params={"t": live_portal.sign(pdf, "anna")})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("inline")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content.startswith(b"%PDF-")


def test_text_document_is_escaped_html_with_the_passage_marked(live_portal, portal_data):
    doc = live_portal.doc_id_of(portal_data["hostile_name"])
    token = live_portal.sign(doc, "anna")
    with http(live_portal, "anna", portal_data["password"]) as c:
        r = c.get(f"doc/{doc}/text", params={"chunk": 0, "t": token})
        redirect = c.get(f"doc/{doc}", params={"t": token})
        original = c.get(f"doc/{doc}/original", params={"t": token})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'none'" in csp and "unsafe-inline" not in csp
    body = r.text
    assert "<script>" not in body and "<img" not in body
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in body
    assert '<mark id="treffer">' in body
    assert redirect.status_code == 303 and redirect.headers["location"].startswith(f"{doc}/text?")
    assert original.status_code == 200
    assert original.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in original.headers["content-security-policy"]


def test_a_pdf_source_opens_its_page_and_offers_the_text_view_with_the_quoted_sentence_marked(live_portal,
                                                                                             portal_data):
    """Issue 14: the sentences an answer rests on are marked in the source view. A PDF opens in the
    browser's viewer, which cannot mark them; its source offers the portal's text view beside it."""
    import gradio as gr

    handlers = live_portal.server.handlers
    views = list(handlers.ask(gr.Request(username="anna"), "Wie viele Sensoren sind im Reallabor im Nordpark verbaut?",
                              model="extraktiv"))
    html = views[-1].messages[-1]["content"]
    pdf_link = re.search(r'href="(doc/[^"?]+\?t=[^"#]+#page=2)"[^>]*class="kp-src-link"', html)
    text_link = re.search(r'<a href="(doc/[^"]+/text\?[^"]+)"[^>]*class="kp-src-text">Stelle im Text markiert</a>', html)
    assert pdf_link and text_link, html
    url = text_link.group(1).replace("&amp;", "&")
    assert "s=" in url and "Sensoren" not in url  # piece numbers, never document text in a URL
    with http(live_portal, "anna", portal_data["password"]) as c:
        r = c.get(url)
        forged = c.get(re.sub(r"s=[^&]+", "s=99999999%2C1", url))
    assert r.status_code == 200
    marked = re.findall(r'<mark class="zitat">(.*?)</mark>', r.text, flags=re.S)
    assert any(m.endswith("Im Reallabor sind derzeit 304 Sensoren verbaut.") for m in marked), marked
    assert not any("Seite 2 von 3" in m for m in marked)  # the page's footer is no quote
    assert r.text.index('<mark id="treffer">') < r.text.index('<mark class="zitat">') < r.text.index("</mark></div>")
    # a crafted mark list marks nothing, and is no error page
    assert forged.status_code == 200 and '<mark class="zitat">' not in forged.text and '<mark id="treffer">' in forged.text
    # the stored chat, opened again, links the same marks
    again = handlers.open_chat(gr.Request(username="anna"), views[-1].chat_id).messages[-1]["content"]
    assert text_link.group(1).split("&amp;t=")[0] in again


def test_slide_documents_open_as_text_at_the_slide(live_portal, portal_data):
    rec = next(r for r in live_portal.ctx.app.catalog.documents() if r.format == "pptx")
    with http(live_portal, "anna", portal_data["password"]) as c:
        r = c.get(f"doc/{rec.doc_id}/text", params={"page": 2, "t": live_portal.sign(rec.doc_id, "anna")})
    assert r.status_code == 200 and 'id="seite-2"' in r.text and ">Folie 2</h2>" in r.text


def test_gradio_extras_are_off(live_portal, portal_data):
    with http(live_portal, "anna", portal_data["password"]) as c:
        assert c.get("monitoring").status_code in (401, 403, 404)
        page = c.get("").text
    assert "fonts.googleapis.com" not in page and "gradio.live" not in page
    assert urljoin(live_portal.url, "doc/x").startswith("http://127.0.0.1:")


def test_the_empty_chat_offers_the_configured_example_question(live_portal, portal_data):
    """The example question of the empty chat comes from the settings (portal.example_questions; the
    live portal runs on kiportal.toml's defaults, which fit its demo documents)."""
    with http(live_portal, "anna", portal_data["password"]) as c:
        config = c.get("config").json()
    chat = next(comp for comp in config["components"] if comp.get("props", {}).get("elem_id") == "kp-chat")
    assert [e["text"] for e in chat["props"]["examples"]] == [ZONE_Q]


def test_an_example_click_over_http_gives_only_a_configured_question(live_portal, portal_data):
    """The example button's event, sent by hand: the question comes from the configured list by the
    click's place, never from the value the client sends; without a login nothing."""
    def click(c, index, value):
        config = c.get("config").json()
        fn = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "use_example")
        return c.post("gradio_api/run/predict", json={"data": [], "fn_index": fn, "session_hash": f"ex-{index}",
                                                       "event_data": {"index": index, "value": value}})

    with http(live_portal, "anna", portal_data["password"]) as c:
        r = click(c, 0, {"text": "<img src=x onerror=alert(1)>"})
        assert r.status_code == 200 and r.json()["data"] == [ZONE_Q], r.text[:300]
        r = click(c, 7, {"text": "Eingeschleust"})
        assert r.status_code == 200 and r.json()["data"] == [""], r.text[:300]
    with http(live_portal) as anonymous:
        r = anonymous.post("gradio_api/run/predict", json={"data": [], "fn_index": 0, "session_hash": "ex-anon",
                                                           "event_data": {"index": 0, "value": None}})
        assert r.status_code in (401, 403) and ZONE_Q not in r.text
