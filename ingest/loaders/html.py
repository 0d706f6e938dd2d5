"""HTML loader: the page's own text, without site chrome, as plain text.

Saved web pages carry menus, cookie banners and footers that are identical on
every page; indexed, they drown real answers in boilerplate. Output is text
only: markup never survives, so nothing a page contains can reach the UI as
HTML (escaped text like "&lt;script&gt;" stays harmless text).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterator

from corpus.models import ExtractedDocument
from ingest.loaders.blocks import BlockBuilder, one_line, sensible_title
from ingest.loaders.limits import LoadLimits
from ingest.loaders.markdown import LIQUID_RE, parse_front_matter

log = logging.getLogger(__name__)

_DROP_TAGS = (
    "script", "style", "nav", "aside", "form", "noscript", "svg", "iframe", "template", "object",
    "embed", "canvas", "button", "select", "textarea", "input", "dialog", "map", "audio", "video", "head",
)
_CHROME_TAGS = ("header", "footer")  # dropped unless part of the article itself
_CHROME_RE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|menue|mainmenu|submenu|breadcrumbs?|cookies?|cookie\w*"
    r"|consent|gdpr|skip(?:link)?s?|sidebar|social|share|sharing|pagination|pager|banner|toolbar"
    r"|site-?header|site-?footer|newsletter|related)(?:$|[\s_-])",
    re.IGNORECASE,
)
_CHROME_ROLES = {"navigation", "banner", "contentinfo", "search", "menu", "menubar", "dialog", "alert"}
_END = object()
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCK_TAGS = frozenset({
    "p", "div", "section", "article", "main", "body", "li", "ul", "ol", "dl", "dt", "dd", "blockquote",
    "pre", "figure", "figcaption", "address", "hr", "center", "details", "summary", "caption",
    "tr", "td", "th", "tbody", "thead", "tfoot", "fieldset", "legend", "header", "footer", "html",
})
_CONTENT = ("main", "article")


def _parse(data: bytes):
    from bs4 import BeautifulSoup

    try:
        return BeautifulSoup(data, "lxml")
    except Exception as exc:  # noqa: BLE001 - lxml missing or choking: fall back to the stdlib parser
        log.debug("lxml-Parser fehlgeschlagen, nutze html.parser: %s", exc)
        return BeautifulSoup(data, "html.parser")


def _is_chrome(tag) -> bool:
    """Navigation, cookie banners, menus etc., judged by role, hidden state, class and id."""
    attrs = tag.attrs or {}
    role = attrs.get("role")
    if isinstance(role, str) and role.strip().lower() in _CHROME_ROLES:
        return True
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).strip().lower() == "true":
        return True
    cls = attrs.get("class") or []
    if isinstance(cls, str):
        cls = cls.split()
    ident = " ".join([*cls, str(attrs.get("id") or "")]).strip()
    return bool(ident) and bool(_CHROME_RE.search(ident))


def load_html(path: Path, limits: LoadLimits) -> ExtractedDocument:
    from bs4 import Comment

    data = path.read_bytes()
    # Jekyll/Hugo page sources: YAML front matter and template tags are not page text.
    fm_title = ""
    if data.lstrip(b"\xef\xbb\xbf").startswith(b"---"):
        text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
        fm_title, text = parse_front_matter(text.replace("\r\n", "\n"))
        data = LIQUID_RE.sub("", text).encode("utf-8")
    elif b"{%" in data:
        data = LIQUID_RE.sub("", data.decode("utf-8", errors="replace")).encode("utf-8")
    soup = _parse(data)

    title = sensible_title(fm_title)
    if not title and soup.title is not None:
        title = sensible_title(soup.title.get_text(" "))
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in _chrome(soup):
        tag.decompose()

    root = soup.find("main") or soup.find(attrs={"role": "main"})
    if root is None:
        articles = soup.find_all("article")
        root = articles[0] if len(articles) == 1 else None
    if root is None:
        root = soup.body or soup

    builder = BlockBuilder()
    _Walker(builder).run(root)

    if not title:
        h1 = soup.find("h1")
        title = one_line(h1.get_text(" ")) if h1 is not None else ""
    if not title:
        title = builder.first_heading()
    return ExtractedDocument(format="html", title=title[:200], blocks=tuple(builder.blocks))


def _chrome(soup) -> list:
    """The outermost elements to drop: scripts, forms, menus and the like anywhere; headers and
    footers outside the article; anything named like chrome ("cookie-banner", role "navigation")
    unless it holds the article, so a wrapper named e.g. "nav-open" never takes the content along.

    One pass down and one up over the tree, without recursion: a hostile page of 200,000 nested
    tags is read in seconds (asking bs4 per element whether it was dropped, or for its parents,
    made such a page quadratic and the reading worker ran into its time limit)."""
    from bs4 import Tag

    tags = [t for t in soup.descendants if isinstance(t, Tag)]  # document order: parents first
    holds: set[int] = set()  # ids of elements that are or contain a main/article element
    for tag in reversed(tags):
        if (tag.name in _CONTENT or id(tag) in holds) and tag.parent is not None:
            holds.add(id(tag))
            holds.add(id(tag.parent))
    dropped: set[int] = set()
    in_content: set[int] = set()  # ids of elements inside a main/article element
    out = []
    for tag in tags:
        parent = id(tag.parent)
        if parent in dropped:
            dropped.add(id(tag))  # inside a dropped element: goes with it
            continue
        inside = parent in in_content
        if tag.name in _DROP_TAGS or (tag.name in _CHROME_TAGS and not inside) or (
                id(tag) not in holds and tag.name not in ("html", "body") and _is_chrome(tag)):
            dropped.add(id(tag))
            out.append(tag)
        elif inside or tag.name in _CONTENT:
            in_content.add(id(tag))
    return out


class _Walker:
    """Flattens the DOM into blocks: inline text accumulates, block elements flush it."""

    def __init__(self, builder: BlockBuilder) -> None:
        self.builder = builder
        self.buf: list[str] = []

    def flush(self) -> None:
        if self.buf:
            self.builder.add(one_line("".join(self.buf)))
            self.buf.clear()

    def run(self, root) -> None:
        """Walk the tree with a stack of its own, not recursion: text nested however deep is kept
        (an old export that never closes its <font> tags nests every paragraph one level deeper)."""
        from bs4 import NavigableString, Tag
        from bs4.element import CData, PreformattedString

        stack: list[tuple[Iterator, bool]] = [(iter(root.children), False)]  # (children, flush at the end)
        while stack:
            children, block = stack[-1]
            child = next(children, _END)
            if child is _END:
                stack.pop()
                if block:
                    self.flush()
                continue
            if isinstance(child, NavigableString):
                # Comments, doctypes, processing instructions are not page text; CDATA is.
                if not isinstance(child, PreformattedString) or isinstance(child, CData):
                    self.buf.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = child.name
            if name in _HEADINGS:
                self.flush()
                self.builder.add(child.get_text(" "), kind="heading", level=_HEADINGS[name])
            elif name == "table" and not _is_layout_table(child):
                self.flush()
                self.builder.add_table(_table_rows(child))
            elif name == "br":
                self.buf.append(" ")
            elif name in _BLOCK_TAGS or name == "table":
                self.flush()
                stack.append((iter(child.children), True))
            else:
                stack.append((iter(child.children), False))
        self.flush()


_LAYOUT = frozenset({"p", "div", "table", "h1", "h2", "h3", "ul", "ol"})


def _is_layout_table(table) -> bool:
    """Old sites lay out whole pages with tables; those are walked as text, not rows.

    Searched by hand, stopping at the first such element: bs4's own search first walks to the
    table's last descendant, so each of 200,000 nested tables cost a walk to the bottom of the page."""
    from bs4 import Tag

    todo = [table]
    while todo:
        for child in todo.pop().contents:
            if isinstance(child, Tag):
                if child.name in _LAYOUT:
                    return True
                todo.append(child)
    return False


def _table_rows(table) -> list[list[str]]:
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue
        rows.append([cell.get_text(" ") for cell in tr.find_all(["td", "th"], recursive=False)])
    caption = table.find("caption")
    if caption is not None:
        rows.insert(0, [caption.get_text(" ")])
    return rows
