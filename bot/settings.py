"""Runtime settings read from the environment, so deployments differ by configuration only."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATABASE_URL_ENV = "ASSISTANT_DATABASE_URL"
POLICY_FILE_ENV = "ASSISTANT_POLICY_FILE"

DEFAULT_SQLITE_FILE = PROJECT_ROOT / "var" / "assistant.db"
DEFAULT_POLICY_FILE = PROJECT_ROOT / "config" / "service_policy.yml"
DOMAIN_FILE = PROJECT_ROOT / "domain.yml"


def database_url() -> str:
    """Database URL; a local SQLite file keeps development setup-free."""
    configured = os.environ.get(DATABASE_URL_ENV, "").strip()
    if configured:
        return configured
    DEFAULT_SQLITE_FILE.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_SQLITE_FILE}"


def policy_file() -> Path:
    """Service policy file; relative paths are resolved against the project root."""
    configured = os.environ.get(POLICY_FILE_ENV, "").strip()
    if not configured:
        return DEFAULT_POLICY_FILE
    path = Path(configured).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


@lru_cache(maxsize=1)
def project_domain() -> dict[str, Any]:
    """domain.yml as plain data, for the few actions that need it: Rasa sends the domain only
    to actions marked ``send_domain``."""
    return yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))
