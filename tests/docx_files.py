"""Reading Word files back in tests (a plain module: see tests/portal_world.py on why not a conftest)."""
from __future__ import annotations


def docx_text(data: bytes) -> str:
    """The paragraphs of a .docx file's body, one per line."""
    from io import BytesIO

    from docx import Document

    return "\n".join(p.text for p in Document(BytesIO(data)).paragraphs)
