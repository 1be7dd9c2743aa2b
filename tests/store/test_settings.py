"""Settings come from the environment, with project-relative defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import settings


def test_database_url_defaults_to_a_sqlite_file_whose_directory_is_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(settings.DATABASE_URL_ENV, raising=False)
    database_file = tmp_path / "var" / "assistant.db"
    monkeypatch.setattr(settings, "DEFAULT_SQLITE_FILE", database_file)
    assert settings.database_url() == f"sqlite:///{database_file}"
    assert database_file.parent.is_dir()


def test_default_locations_are_under_the_project_root() -> None:
    assert settings.PROJECT_ROOT == Path(settings.__file__).resolve().parent.parent
    assert settings.DEFAULT_SQLITE_FILE == settings.PROJECT_ROOT / "var" / "assistant.db"


def test_database_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.DATABASE_URL_ENV, "postgresql+psycopg2://u@db/assistant")
    assert settings.database_url() == "postgresql+psycopg2://u@db/assistant"


def test_policy_file_default_and_relative_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.POLICY_FILE_ENV, raising=False)
    assert settings.policy_file() == settings.PROJECT_ROOT / "config" / "service_policy.yml"
    monkeypatch.setenv(settings.POLICY_FILE_ENV, "config/other.yml")
    assert settings.policy_file() == settings.PROJECT_ROOT / "config" / "other.yml"
