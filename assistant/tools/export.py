"""A tool run as Markdown or as a Word document (python-docx), for download.

The output is written as plain text paragraphs (runs), never interpreted: document text
cannot add fields, links or macros to the DOCX.
"""
from __future__ import annotations

import io
import re
import time
from typing import Any

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


def to_markdown(run: dict[str, Any]) -> str:
    """``run``: a stored run (``ToolRunStore.get``) – its result dict carries everything shown."""
    result = run["result"]
    lines = [f"# {TOOL_LABELS_DE.get(run['tool'], run['tool'])}: {run.get('title') or ''}".rstrip(": "), "",
             f"Modell: {result.get('model', '')} (Zone {result.get('zone', '')})", "", result.get("output", ""), ""]
    for heading, items in (("Hinweise", result.get("notices") or []), ("Lesbarkeit", _readability_lines(result)),
                           ("Geänderte oder fehlende Angaben", _facts_lines(result)),
                           ("Quellen", _sources_lines(result))):
        if items:
            lines += [f"## {heading}", ""] + [f"- {i}" for i in items] + [""]
    return "\n".join(lines).rstrip() + "\n"


def to_docx(run: dict[str, Any]) -> bytes:
    from docx import Document

    result = run["result"]
    doc = Document()
    doc.core_properties.title = run.get("title") or ""
    doc.add_heading(f"{TOOL_LABELS_DE.get(run['tool'], run['tool'])}: {run.get('title') or ''}".rstrip(": "), level=1)
    doc.add_paragraph(f"Modell: {result.get('model', '')} (Zone {result.get('zone', '')})")
    for block in (result.get("output") or "").split("\n"):
        if block.startswith("- "):
            doc.add_paragraph(block[2:], style="List Bullet")
        elif block.strip():
            doc.add_paragraph(block)
    for heading, items in (("Hinweise", result.get("notices") or []), ("Lesbarkeit", _readability_lines(result)),
                           ("Geänderte oder fehlende Angaben", _facts_lines(result)),
                           ("Quellen", _sources_lines(result))):
        if items:
            doc.add_heading(heading, level=2)
            for item in items:
                doc.add_paragraph(item, style="List Bullet")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
