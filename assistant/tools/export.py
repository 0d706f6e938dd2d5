"""A tool run as Markdown or as a Word document (python-docx), for download.

Titles, outputs and sources carry document text, which is data (assistant.escaping): in the
Markdown file every string is escaped, so a document's HTML, images or links stay text in any
viewer (found by an attacker's probe: a tracking image in a summarised document reached the
file); the output's own bullet points stay a list. In the DOCX text is written as plain runs,
never interpreted, so it cannot add fields, links or macros.
"""
from __future__ import annotations

import io
import re
import time
from typing import Any

from assistant.escaping import md_esc, md_text, xml_text
from assistant.tools.result import TOOL_LABELS_DE


def _sources_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for c in result.get("citations") or []:
        where = c.get("label") or (f"S. {c['page']}" if c.get("page") else "")
        lines.append(f"[{c.get('n')}] {c.get('title') or c.get('source', '')}" + (f" – {where}" if where else ""))
    return lines


def _facts_lines(result: dict[str, Any]) -> list[str]:
    out = []
    for f in result.get("facts_changed") or []:
        now = f"„{f['found']}“" if f.get("found") else "fehlt"
        out.append(f"{f.get('label', f['kind'])}: „{f['expected']}“ → {now}")
    return out


def _readability_lines(result: dict[str, Any]) -> list[str]:
    b, a = result.get("readability_before"), result.get("readability_after")
    if not b or not a:
        return []
    return [f"Lesbarkeit (Flesch nach Amstad, höher = leichter): {b['flesch_amstad']} → {a['flesch_amstad']}",
            f"Wiener Sachtextformel (Schulstufe, niedriger = leichter): {b['wiener_sachtextformel']} → "
            f"{a['wiener_sachtextformel']}"]


def file_stem(run: dict[str, Any]) -> str:
    day = time.strftime("%Y-%m-%d", time.localtime(run.get("created_at") or time.time()))
    stem = re.sub(r"[^\w-]+", "-", run.get("title") or run.get("tool") or "werkzeug", flags=re.UNICODE).strip("-")
    return f"{day}-{run.get('tool', 'werkzeug')}-{stem[:40] or 'ergebnis'}"


def _heading(run: dict[str, Any]) -> str:
    return f"{TOOL_LABELS_DE.get(run['tool'], run['tool'])}: {run.get('title') or ''}".rstrip(": ")


def _sections(result: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(heading, items) for heading, items in (
        ("Hinweise", result.get("notices") or []), ("Lesbarkeit", _readability_lines(result)),
        ("Geänderte oder fehlende Angaben", _facts_lines(result)), ("Quellen", _sources_lines(result))) if items]


def _md_output(text: str) -> list[str]:
    """The output's lines escaped; its bullet points ("- …", as summaries write them) stay a list."""
    return [("- " + md_text(line[2:])) if line.startswith("- ") else md_text(line) for line in text.split("\n")]


def to_markdown(run: dict[str, Any]) -> str:
    """``run``: a stored run (``ToolRunStore.get``) – its result dict carries everything shown."""
    result = run["result"]
    lines = [f"# {md_esc(_heading(run), cell=True)}", "",
             md_esc(f"Modell: {result.get('model', '')} (Zone {result.get('zone', '')})", cell=True), "",
             *_md_output(result.get("output") or ""), ""]
    for heading, items in _sections(result):
        lines += [f"## {heading}", ""] + [f"- {md_text(' '.join(i.split()))}" for i in items] + [""]
    return "\n".join(lines).rstrip() + "\n"


def to_docx(run: dict[str, Any]) -> bytes:
    from docx import Document

    result = run["result"]
    doc = Document()
    doc.core_properties.title = xml_text(run.get("title") or "")
    doc.add_heading(xml_text(_heading(run)), level=1)
    doc.add_paragraph(xml_text(f"Modell: {result.get('model', '')} (Zone {result.get('zone', '')})"))
    for block in xml_text(result.get("output") or "").split("\n"):
        if block.startswith("- "):
            doc.add_paragraph(block[2:], style="List Bullet")
        elif block.strip():
            doc.add_paragraph(block)
    for heading, items in _sections(result):
        doc.add_heading(heading, level=2)
        for item in items:
            doc.add_paragraph(xml_text(item), style="List Bullet")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
