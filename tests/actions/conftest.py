"""Action fixtures: a demo database behind the actions' service desk, and tracker builders."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.handoff.service import HandoffService
from bot.kb.search import KnowledgeBaseCache
from bot.kb.service import KnowledgeService
from bot.services.desk import ServiceDesk
from bot.settings import project_domain

DOMAIN = project_domain()
SLOT_NAMES = list(DOMAIN["slots"])


@pytest.fixture
def domain() -> dict:
    return DOMAIN


@pytest.fixture
def desk(demo_factory, monkeypatch: pytest.MonkeyPatch) -> ServiceDesk:
    """Point every action module at a desk over the per-test demo database."""
    desk = ServiceDesk(demo_factory)
    modules = ("forms", "tickets", "handoff", "conversation", "orders")
    for module in (f"actions.{name}" for name in modules):
        monkeypatch.setattr(f"{module}.default_desk", lambda: desk)
    handoffs = HandoffService(demo_factory)  # opened tickets look for a call-back to join
    monkeypatch.setattr("actions.tickets.default_handoff_service", lambda: handoffs)
    return desk


@pytest.fixture
def knowledge(demo_factory, monkeypatch: pytest.MonkeyPatch) -> KnowledgeService:
    service = KnowledgeService(demo_factory, KnowledgeBaseCache())
    monkeypatch.setattr("actions.knowledge.default_knowledge_service", lambda: service)
    monkeypatch.setattr("actions.conversation.default_knowledge_service", lambda: service)
    monkeypatch.setattr("actions.forms.default_knowledge_service", lambda: service)
    return service


def make_tracker(
    slots: dict[str, Any] | None = None,
    text: str = "",
    intent: str = "inform",
    ranking: list[dict] | None = None,
    sender_id: str = "test-user",
    channel: str = "rest",
    entities: list[dict] | None = None,
) -> Tracker:
    """A tracker as the action server receives it."""
    all_slots = dict.fromkeys(SLOT_NAMES)
    all_slots.update(slots or {})
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "intent_ranking": ranking or [{"name": intent, "confidence": 0.9}],
        "entities": entities or [],
    }
    events = [{"event": "user", "text": text, "parse_data": latest, "input_channel": channel}]
    return Tracker(
        sender_id,
        all_slots,
        latest,
        events,
        False,
        None,
        {"name": all_slots.get("active_loop")},
        "action_listen",
    )


def responses(dispatcher: CollectingDispatcher) -> list[str]:
    return [m.get("response") for m in dispatcher.messages]
