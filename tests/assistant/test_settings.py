from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.settings import load_settings, masked_dump
from assistant.settings_doc import render_markdown, render_toml

REPO = Path(__file__).resolve().parents[2]


def test_documented_defaults_are_in_sync_with_the_code():
    assert (REPO / "kiportal.toml").read_text(encoding="utf-8") == render_toml(), "run python -m assistant.settings_doc"
    assert (REPO / "docs" / "settings.md").read_text(encoding="utf-8") == render_markdown()


def test_toml_defaults_load_to_the_same_settings(monkeypatch):
    monkeypatch.setenv("KIPORTAL_CONFIG", str(REPO / "kiportal.toml"))
    from_file = load_settings("/tmp/x").model_dump(mode="json")
    monkeypatch.delenv("KIPORTAL_CONFIG")
    assert from_file == load_settings("/tmp/x").model_dump(mode="json")


def test_precedence_env_over_file_and_data_dir_over_all(tmp_path, monkeypatch):
    cfg = tmp_path / "k.toml"
    cfg.write_text('home = "/from/file"\n[retrieval]\nk = 7\ncandidates = 11\n', encoding="utf-8")
    monkeypatch.setenv("KIPORTAL_CONFIG", str(cfg))
    monkeypatch.setenv("KIPORTAL_RETRIEVAL__K", "3")
    s = load_settings()
    assert s.retrieval.k == 3 and s.retrieval.candidates == 11 and s.home == Path("/from/file")
    monkeypatch.setenv("KIPORTAL_HOME", "/from/env")
    assert load_settings().home == Path("/from/env")
    assert load_settings("/from/flag").home == Path("/from/flag")


def test_missing_config_file_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("KIPORTAL_CONFIG", "/nope.toml")
    with pytest.raises(FileNotFoundError, match="KIPORTAL_CONFIG"):
        load_settings()


def test_config_show_masks_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("KIPORTAL_AUTH__SECRET", "streng-geheim")
    monkeypatch.setenv("KIPORTAL_APP_DB_URL", "postgresql+psycopg://kiportal:pw123@db/kiportal")
    from ui.cli import cli

    out = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "config", "show"], obj={})
    assert out.exit_code == 0, out.output
    assert "streng-geheim" not in out.output and "pw123" not in out.output
    data = json.loads(out.output)
    assert data["auth"]["secret"] == "***" and data["app_db_url"] == "postgresql+psycopg://***@db/kiportal"
    assert masked_dump(load_settings(tmp_path))["home"] == str(tmp_path)
