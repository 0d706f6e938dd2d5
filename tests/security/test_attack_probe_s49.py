"""Attacks of session 49's probe, sent as raw HTTP against the real portal.

gradio streams an upload's progress, with the names of the files on their way, to whoever names
its ``upload_id`` (``/gradio_api/upload_progress``); the first user to send an id now owns it.
The probe's other findings are replayed where the features are: a long scan uploaded to a tool
(tests/ui/test_tools_api.py) and tabs pushed out by a flood of new ones (tests/ui/test_tab_owners.py).
"""
from __future__ import annotations

import pytest

from sec_client import audit, login

pytestmark = pytest.mark.integration


def test_another_users_upload_progress_is_refused(pw_portal):
    upload_id = "s49-probe-upload"
    with login(pw_portal, "anna") as anna:
        r = anna.post(f"gradio_api/upload?upload_id={upload_id}",
                      files=[("files", ("personalakte-mueller.md", b"# Akte\n\nText.\n", "text/markdown"))])
        assert r.status_code == 200, r.text[:200]
    with login(pw_portal, "sam") as sam:
        for query in (f"upload_id={upload_id}", f"upload_id=mine&upload_id={upload_id}"):
            r = sam.get(f"gradio_api/upload_progress?{query}", timeout=10)
            assert r.status_code == 403 and "personalakte" not in r.text, (r.status_code, r.text[:200])
    assert audit(pw_portal, "upload_refused", actor="sam")
    with login(pw_portal, "anna") as anna, anna.stream("GET", f"gradio_api/upload_progress?upload_id={upload_id}",
                                                      timeout=10) as r:
        assert r.status_code == 200  # the uploader still follows her own
