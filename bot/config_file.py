"""Reading configuration files: validated YAML with errors naming the file and field."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from bot.settings import PROJECT_ROOT

Model = TypeVar("Model", bound=BaseModel)


def read_config_file(path: Path, model: type[Model], what: str, error: type[Exception]) -> Model:
    """Parse ``path`` as a YAML mapping into ``model``; any problem raises ``error``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise error(f"{what} {path} must be a YAML mapping")
    try:
        return model.parse_obj(raw)
    except ValidationError as exc:
        raise error(f"invalid {what} {path}:\n{exc}") from exc


INTENT_LABELS_FILE = PROJECT_ROOT / "config" / "intent_labels.yml"


@lru_cache(maxsize=1)
def intent_labels() -> dict[str, str]:
    """How people are told what an intent means (the fallback's guesses, the agent console)."""
    return yaml.safe_load(INTENT_LABELS_FILE.read_text(encoding="utf-8")) or {}
