"""outermost(): the nested parts a paragraph reads itself, each once."""
from __future__ import annotations

import pytest
from lxml import etree

from ingest.loaders.nesting import outermost

DOC = etree.fromstring(
    "<p><box id='a'><q><box id='a1'/></q></box><fallback><box id='f'/></fallback><note id='n'><box id='n1'/></note>"
    "<span><box id='b'/></span></p>")


@pytest.mark.parametrize("tags, barriers, ids", [
    (("box",), (), ["a", "f", "n1", "b"]),  # a1 lies inside a: read with a's own content
    (("box",), ("fallback",), ["a", "n1", "b"]),  # a copy behind a barrier is never read
    (("box", "note"), (), ["a", "f", "n", "b"]),  # a box inside a note goes with the note
])
def test_outermost(tags, barriers, ids):
    assert [el.get("id") for el in outermost(DOC, tags, barriers)] == ids
