"""Attack 1: a server path as a file value makes any server file a document.

Replayed as the attacker did it: an admin session calls the upload (and the replace)
function through /gradio_api/queue/join with a file value that names a server file, with no
upload before. Nothing may be copied or indexed; the refusal is audited. A real upload
through /gradio_api/upload still works, but only for the user who uploaded it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from sec_client import admin_session, audit, call, file_value, login, upload

pytestmark = pytest.mark.integration


def _names(portal) -> set[str]:
    return {Path(r.source).name for r in portal.ctx.app.catalog.documents()}


def _refused(result) -> bool:
    return result["join"] in (401, 403) or result["success"] is False


@pytest.mark.parametrize("target", ["/etc/passwd", "SECRET"])
def test_server_path_as_upload_is_refused_and_audited(pw_portal, target):
    path = str(pw_portal.home / "portal_secret") if target == "SECRET" else target
    assert Path(path).is_file()
    with login(pw_portal, "adam") as c:
        result = call(c, pw_portal, "admin_upload", [[file_value(path)], "test"], session=admin_session(c, pw_portal))
    assert _refused(result), result
    assert "übernommen und indexiert" not in str(result["output"])
    assert Path(path).name not in _names(pw_portal)
    refused = audit(pw_portal, "file_value_refused", actor="adam")
    assert any(e["target"] == path for e in refused)


def test_server_path_as_replacement_is_refused(pw_portal):
    doc_id = next(r.doc_id for r in pw_portal.ctx.app.catalog.documents())
    before = pw_portal.ctx.app.catalog.get(doc_id).sha256
    with login(pw_portal, "adam") as c:
        result = call(c, pw_portal, "admin_replace_document", [doc_id, file_value("/etc/passwd")],
                      session=admin_session(c, pw_portal))
    assert _refused(result), result
    assert "passwd" not in _names(pw_portal)
    rec = pw_portal.ctx.app.catalog.get(doc_id)
    assert rec is not None and Path(rec.source).name != "passwd" and rec.sha256 == before
    assert any(e["target"] == "/etc/passwd" for e in audit(pw_portal, "file_value_refused"))


def test_file_in_gradios_folder_uploaded_by_someone_else_is_refused(pw_portal, tmp_path):
    """Inside gradio's folder but not this user's upload: a symlink planted there, and tina's upload."""
    from ui.file_values import gradio_folder

    planted = gradio_folder() / "planted"
    planted.mkdir(exist_ok=True)
    link = planted / "passwd.txt"
    if not link.exists():
        link.symlink_to("/etc/passwd")
    with login(pw_portal, "tina") as tina:
        r = upload(tina, "tinas-notiz.txt", b"Notiz von Tina\n")
        assert r.status_code == 200, r.text
        tinas = r.json()[0]
    with login(pw_portal, "adam") as c:
        session = admin_session(c, pw_portal)
        for path in (str(link), tinas):
            result = call(c, pw_portal, "admin_upload", [[file_value(path)], "test"], session=session)
            assert _refused(result), (path, result)
    assert not {"passwd.txt", "tinas-notiz.txt"} & _names(pw_portal)


def test_a_real_upload_still_works(pw_portal):
    with login(pw_portal, "adam") as c:
        r = upload(c, "hundesteuer.txt", "Die Hundesteuer beträgt 120 Euro im Jahr.\n".encode())
        assert r.status_code == 200, r.text
        stored = r.json()[0]
        assert oct(os.stat(Path(stored).parent.parent).st_mode & 0o777) == "0o700"  # gradio's folder is private
        result = call(c, pw_portal, "admin_upload", [[file_value(stored)], "test"], session=admin_session(c, pw_portal))
    assert result["success"], result
    assert "übernommen" in str(result["output"]) and "hundesteuer.txt" in _names(pw_portal)


def test_upload_size_is_limited(pw_portal):
    with login(pw_portal, "adam") as c:
        r = upload(c, "gross.txt", b"x" * (2 * 1024 * 1024))  # max_upload_mb = 1 in this portal
    assert r.status_code in (400, 413), r.status_code


@pytest.mark.parametrize("route", ["gradio_api/file=", "gradio_api/file/"])  # the forms gradio answers
def test_an_upload_is_served_to_its_uploader_only_by_every_form_of_the_file_route(pw_portal, route):
    """gradio still answers its older route ``/file/<path>`` beside ``/file=<path>``: the same rule
    holds for both (found by an attacker's probe: the old form served anyone's upload and export)."""
    with login(pw_portal, "tina") as tina:
        r = upload(tina, "tinas-vermerk.txt", "Vermerk von Tina: Zaunkönig 4711\n".encode())
        assert r.status_code == 200, r.text
        path = r.json()[0]
        with login(pw_portal, "adam") as admin:  # logged in, even an administrator: not his upload
            refused = admin.get(route + path)
        assert refused.status_code == 404 and "4711" not in refused.text, (route, refused.status_code)
        own = tina.get(route + path)
    assert own.status_code in (200, 404), own.status_code  # gradio may not serve the old form at all …
    if route == "gradio_api/file=":
        assert own.status_code == 200 and "4711" in own.text  # … the current one it does, to its uploader
