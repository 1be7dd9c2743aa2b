"""What the console sees of a Rasa conversation, and how saved turns reach it live."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.handoff.bridge import (
    DeliveryFailed,
    delivery_for,
    learned_from,
    register_delivery,
    transcript_of,
)
from bot.handoff.live import hub
from bot.settings import PROJECT_ROOT
from bot.tracking import BoundedSQLTrackerStore

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))
SENTIMENT = {"label": "negative", "score": -0.7, "escalate": True, "reasons": ["anger"]}


def customer(text: str, intent: str, entities: list | None = None) -> UserUttered:
    parse = {"intent": {"name": intent, "confidence": 0.9}, "entities": entities or []}
    parse["sentiment"] = SENTIMENT
    return UserUttered(text, {"name": intent, "confidence": 0.9}, entities or [], parse_data=parse)


EVENTS = [
    ActionExecuted("action_listen"),
    customer("我要退货", "request_return"),
    ActiveLoop("return_form"),
    SlotSet("requested_slot", "order_id"),
    BotUttered("请提供订单号", {"buttons": [{"title": "算了", "payload": "/cancel"}]}),
    ActionExecuted("action_listen"),
    customer(
        "SO20261101001 <script>alert(1)</script>",
        "inform",
        [{"entity": "order_id", "value": "SO20261101001", "start": 0, "end": 13}],
    ),
    SlotSet("order_id", "SO20261101001"),
    SlotSet("escalation_trigger", "sentiment_escalate"),
    ConversationPaused(),
    UserUttered.create_external("csat_survey"),
    BotUttered("您好，我是客服小王", metadata={"agent": "小王"}),
]


def test_transcript_has_customer_bot_agent_and_system_turns_in_order() -> None:
    entries = transcript_of(EVENTS)
    assert [e["type"] for e in entries] == ["user", "bot", "user", "system", "agent"]
    first, bot, second, paused, agent = entries
    assert first["intent"] == "request_return" and first["sentiment"] == SENTIMENT
    assert bot["buttons"] == [{"title": "算了", "payload": "/cancel"}]
    # Text is data: the console escapes it when showing it, the bridge never alters it.
    assert second["text"] == "SO20261101001 <script>alert(1)</script>"
    assert paused["text"] == "paused"
    assert agent["agent"] == "小王" and agent["text"] == "您好，我是客服小王"
    assert all(e["at"].endswith("+00:00") for e in entries)


def test_a_tapped_button_reads_as_what_it_said_not_its_payload() -> None:
    product = [{"entity": "product", "value": "65寸智能电视", "start": 0, "end": 6}]
    tapped = [
        customer("/request_return", "request_return"),
        customer('/inform{"product": "65寸智能电视"}', "inform", product),
        customer("/unknown_intent", "unknown_intent"),
    ]
    texts = [entry["text"] for entry in transcript_of(tapped)]
    assert texts == ["申请退货", "65寸智能电视", "/unknown_intent"]


def test_learned_summary_lists_intents_entities_open_form_and_useful_slots() -> None:
    tracker = DialogueStateTracker.from_events("c", EVENTS, DOMAIN.slots)
    learned = learned_from(tracker)
    assert learned["intents"] == ["request_return", "inform"]
    assert learned["entities"] == {"order_id": "SO20261101001"}
    assert learned["active_form"] == "return_form"
    assert learned["slots"] == {"order_id": "SO20261101001"}


def test_a_channel_without_push_cannot_be_reached_by_an_agent() -> None:
    with pytest.raises(DeliveryFailed):
        delivery_for("rest")
    marker = object()
    register_delivery("test-channel", marker)  # type: ignore[arg-type]
    assert delivery_for("test-channel") is marker


def test_saved_turns_are_published_to_console_subscribers(tmp_path: Path) -> None:
    store = BoundedSQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))

    async def scenario() -> list:
        subscription = hub().subscribe()
        try:
            first = DialogueStateTracker.from_events("c1", EVENTS[:2], DOMAIN.slots)
            await store.save(first)  # a new conversation
            tracker = await store.retrieve("c1")
            assert tracker is not None
            for event in EVENTS[2:6]:
                tracker.update(event)
            await store.save(tracker)  # the next turn: only its new events are published
            return [await asyncio.wait_for(subscription.queue.get(), 1.0) for _ in range(2)]
        finally:
            subscription.close()

    customer, bot = asyncio.run(scenario())
    assert {customer.kind, bot.kind} == {"message"}
    assert {customer.data["sender_id"], bot.data["sender_id"]} == {"c1"}
    assert (customer.data["entry"]["type"], customer.data["entry"]["text"]) == ("user", "我要退货")
    assert (bot.data["entry"]["type"], bot.data["entry"]["text"]) == ("bot", "请提供订单号")
