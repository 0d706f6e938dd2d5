"""The composition root: the App builds each service once, from settings, and nothing else builds them."""
from __future__ import annotations

from assistant.settings import load_settings
from assistant.wiring import App


def make_app(home, **overrides) -> App:
    return App(load_settings(home, embedding={"mode": "hash"}, vector={"mode": "memory"}, **overrides))


def test_services_are_built_once_and_shared(hash_app):
    app = hash_app
    assert app.audit is app.audit and app.audit.db is app.app_db
    assert app.users.db is app.app_db and app.training_store.db is app.app_db
    assert app.link_signer is app.link_signer and app.admin.audit is app.audit
    token = app.link_signer.sign("doc1", "anna")
    assert app.link_signer.verify(token, "doc1", "anna") and not app.link_signer.verify(token, "doc1", "bernd")


def test_audit_log_follows_the_privacy_settings(tmp_path):
    app = make_app(tmp_path / "data", privacy={"retention_days": 7, "log_questions": "off"})
    assert app.audit.retention_days == 7 and app.audit.log_questions == "off"


def test_link_secret_survives_a_restart(tmp_path):
    first = make_app(tmp_path / "data")
    token = first.link_signer.sign("doc1", "anna")
    again = make_app(tmp_path / "data")
    assert again.link_signer.verify(token, "doc1", "anna")


def test_jobs_start_once_and_stop(hash_app):
    assert hash_app.admin.jobs is None  # the CLI's admin runs without background jobs
    admin = hash_app.start_jobs()
    try:
        assert admin is hash_app.admin and admin.jobs is not None
        runner = admin.jobs
        assert hash_app.start_jobs().jobs is runner
    finally:
        hash_app.stop_jobs()
