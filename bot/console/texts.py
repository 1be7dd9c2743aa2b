"""The console's Chinese labels (config/console_texts.yml) and the summary of what the bot learned.

Labels for tickets, tiers and orders are not repeated here: they come from the service policy,
so the console and the customer-facing texts never disagree.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.config_file import intent_labels
from bot.policy import ServicePolicy
from bot.settings import PROJECT_ROOT

TEXTS_FILE = PROJECT_ROOT / "config" / "console_texts.yml"
REQUIRED_GROUPS = (
    "labels",
    "roles",
    "handoff_statuses",
    "triggers",
    "channels",
    "sentiments",
    "compensation_statuses",
    "summary",
    "errors",
)
REQUIRED_SUMMARY_KEYS = ("intents", "entities", "active_form", "nothing", "separator", "pair")


@lru_cache(maxsize=4)
def load_console_texts(path: Path = TEXTS_FILE) -> dict[str, Any]:
    """The texts file, refused with the file and group named when a group is missing."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [group for group in REQUIRED_GROUPS if not isinstance(raw.get(group), dict)]
    if missing:
        raise ValueError(f"{path}: missing text groups {missing}")
    lacking = [key for key in REQUIRED_SUMMARY_KEYS if key not in raw["summary"]]
    if lacking:
        raise ValueError(f"{path}: summary lacks {lacking}")
    return raw


def page_texts(policy: ServicePolicy, path: Path = TEXTS_FILE) -> dict[str, Any]:
    """Everything console.js labels the page with: console texts plus the policy's labels."""
    texts = dict(load_console_texts(path))
    labels = policy.texts
    texts.update(
        {
            "tiers": dict(labels.tiers),
            "ticket_categories": dict(labels.categories),
            "ticket_statuses": {name: text.label for name, text in labels.ticket_statuses.items()},
            "order_statuses": dict(labels.order_statuses),
            "delivery_statuses": dict(labels.delivery_statuses),
        }
    )
    return texts


def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "/".join(str(item) for item in value)
    return str(value)


def learned_paragraph(learned: dict[str, Any], path: Path = TEXTS_FILE) -> str:
    """One paragraph for the agent from ``ConversationBridge.learned_summary()``.

    Intents in the order the customer raised them, then entities and slots (slots win when
    both name the same thing: they hold the confirmed value), then the form left open.
    """
    texts = load_console_texts(path)["summary"]
    separator = texts["separator"]
    parts: list[str] = []
    intents = [intent for intent in learned.get("intents") or [] if intent]
    if intents:
        labels = intent_labels()
        named = [labels.get(intent, intent) for intent in intents]
        parts.append(texts["intents"].format(intents=separator.join(named)))
    facts: dict[str, Any] = {}
    facts.update(learned.get("entities") or {})
    facts.update(learned.get("slots") or {})
    if facts:
        pairs = separator.join(
            texts["pair"].format(name=name, value=_value_text(value))
            for name, value in facts.items()
            if value not in (None, "", [])
        )
        if pairs:
            parts.append(texts["entities"].format(entities=pairs))
    if learned.get("active_form"):
        parts.append(texts["active_form"].format(form=learned["active_form"]))
    return "".join(parts) or texts["nothing"]
