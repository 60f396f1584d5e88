"""Settings from the environment: data directory, secret key, regional rule overrides."""

from __future__ import annotations

import json

import pytest

from bidding.policy import RULEBOOK_KEY
from bidding.rules import RuleConfigError
from core.config import Settings
from ebid.app import create_app


def test_secret_key_is_generated_once_and_kept_private(tmp_path, monkeypatch):
    monkeypatch.delenv("EBID_SECRET_KEY", raising=False)
    first = Settings.from_env(data_dir=tmp_path)
    second = Settings.from_env(data_dir=tmp_path)
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert first.database_url == f"sqlite:///{tmp_path / 'ebid.sqlite3'}"


def test_postgres_urls_use_psycopg3(tmp_path):
    settings = Settings.from_env(data_dir=tmp_path, database_url="postgresql://u@h/db")
    assert settings.database_url == "postgresql+psycopg://u@h/db"


def test_regional_rules_file_tightens_limits(tmp_path, monkeypatch):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"370200": {"bid_period_min_days": 25}}))
    monkeypatch.setenv("EBID_RULES_FILE", str(rules))
    app = create_app(Settings.from_env(data_dir=tmp_path, testing=True))
    book = app.extensions[RULEBOOK_KEY]
    assert book.get(region="370211").bid_period_min_days == 25
    assert book.get(region="110000").bid_period_min_days == 20


def test_looser_regional_rule_is_refused_at_start(tmp_path, monkeypatch):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"370200": {"bid_period_min_days": 10}}))
    monkeypatch.setenv("EBID_RULES_FILE", str(rules))
    with pytest.raises(RuleConfigError, match="only be stricter"):
        create_app(Settings.from_env(data_dir=tmp_path, testing=True))


def test_unreadable_rules_file_names_the_problem(tmp_path, monkeypatch):
    rules = tmp_path / "rules.json"
    rules.write_text("{not json")
    monkeypatch.setenv("EBID_RULES_FILE", str(rules))
    with pytest.raises(SystemExit, match="cannot read it as JSON"):
        Settings.from_env(data_dir=tmp_path)
