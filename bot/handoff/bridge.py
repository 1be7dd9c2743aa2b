"""The agent console's only way into a Rasa conversation (runs inside the Rasa server process).

The console never touches Rasa objects itself: it asks a :class:`ConversationBridge` for the
transcript and what the bot learned, and to send an agent's message, hand the chat back or
close it with a satisfaction survey.  Every change goes through the Rasa processor under the
conversation's lock, so an agent's message and a customer's message never race, and every
message an agent sends is recorded in the tracker (the customer's history shows it, and the
transcript stays whole).

Channels that can push a message outside a request/response cycle register a
:class:`ChannelDelivery` under their input-channel name with :func:`register_delivery` when
Rasa mounts them (the web widget over socket.io, WeChat through the customer-service API).
A customer on a channel without one (Rasa's plain REST webhook) cannot be reached by an agent:
:class:`DeliveryFailed` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, Protocol

from rasa.core.channels.channel import CollectingOutputChannel, OutputChannel
from rasa.core.policies.policy import PolicyPrediction
from rasa.shared.core.constants import ACTION_LISTEN_NAME, IS_EXTERNAL
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    Event,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.config_file import intent_labels

log = logging.getLogger(__name__)

BOT_BACK_RESPONSE = "utter_bot_back"
AGENT_JOINED_RESPONSE = "utter_handoff_agent_joined"
TRANSFERRED_RESPONSE = "utter_handoff_transferred"
RELEASED_RESPONSE = "utter_handoff_released"
SURVEY_FORM = "csat_form"
# Slots that are bookkeeping, not something the bot learned about the customer's problem.
INTERNAL_SLOTS = frozenset(
    {"requested_slot", "identity_failures", "escalation_trigger", "escalation_reasons"}
)


class DeliveryFailed(Exception):
    """The customer's channel cannot take a message now (no push channel, or it refused)."""


class ChannelDelivery(Protocol):
    """How to reach a customer of one input channel outside their own request."""

    def output_channel(self, sender_id: str) -> OutputChannel:
        """A Rasa output channel addressed to ``sender_id``."""

    async def flush(self, sender_id: str, output: OutputChannel) -> None:
        """Send what a collecting ``output`` gathered (no-op for channels that send at once)."""


_DELIVERIES: dict[str, ChannelDelivery] = {}


def register_delivery(input_channel: str, delivery: ChannelDelivery) -> None:
    """Called by an input channel when Rasa mounts it."""
    _DELIVERIES[input_channel] = delivery


def delivery_for(input_channel: str | None) -> ChannelDelivery:
    delivery = _DELIVERIES.get(input_channel or "")
    if delivery is None:
        raise DeliveryFailed(f"channel {input_channel!r} cannot receive pushed messages")
    return delivery


def is_external(event: UserUttered) -> bool:
    """Intents triggered by the system (reminders, the API) are not something a customer said."""
    return event.text is None or bool((event.metadata or {}).get(IS_EXTERNAL))


def _iso(timestamp: float | None) -> str:
    moment = datetime.fromtimestamp(timestamp or 0, tz=timezone.utc)
    return moment.isoformat(timespec="seconds")


def _as_tapped(event: UserUttered) -> str:
    """What a tapped button said, for the agent: the values it carried ('/inform{"product":
    "65寸智能电视"}' → "65寸智能电视") or the request it stands for ("/request_return" →
    "申请退货"), instead of the payload."""
    values = [str(e.get("value")) for e in event.entities or [] if e.get("value")]
    if values:
        return " ".join(values)
    intent = (event.intent or {}).get("name") or ""
    return intent_labels().get(intent) or event.text or ""


def transcript_entry(event: Event) -> dict[str, Any] | None:
    """One event as the console shows it; None for events that are not part of the chat."""
    if isinstance(event, UserUttered):
        if is_external(event):
            return None
        parse = event.parse_data or {}
        metadata = getattr(event, "metadata", None) or {}
        return {
            "type": "user",
            "text": _as_tapped(event) if (event.text or "").startswith("/") else event.text,
            "at": _iso(event.timestamp),
            "intent": (event.intent or {}).get("name"),
            "sentiment": parse.get("sentiment"),
            "buttons": [],
            "image": (metadata.get("wechat") or {}).get("pic_url") or metadata.get("image"),
            "agent": None,
        }
    if isinstance(event, BotUttered):
        agent = (event.metadata or {}).get("agent")
        data = event.data or {}
        return {
            "type": "agent" if agent else "bot",
            "text": event.text or "",
            "at": _iso(event.timestamp),
            "intent": None,
            "sentiment": None,
            "buttons": [
                {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                for b in data.get("buttons") or []
            ],
            "image": data.get("image"),
            "agent": agent,
        }
    if isinstance(event, (ConversationPaused, ConversationResumed)):
        return {
            "type": "system",
            "text": "paused" if isinstance(event, ConversationPaused) else "resumed",
            "at": _iso(event.timestamp),
            "intent": None,
            "sentiment": None,
            "buttons": [],
            "image": None,
            "agent": None,
        }
    return None


def transcript_of(events: Iterable[Event]) -> list[dict[str, Any]]:
    return [entry for entry in map(transcript_entry, events) if entry is not None]


def learned_from(tracker: DialogueStateTracker) -> dict[str, Any]:
    """Intents, entities, the open form and the filled slots of a conversation."""
    intents: list[str] = []
    entities: dict[str, Any] = {}
    for event in tracker.events:
        if isinstance(event, UserUttered) and not is_external(event):
            name = (event.intent or {}).get("name")
            if name and name not in intents:
                intents.append(name)
            for entity in event.entities or []:
                entities[entity["entity"]] = entity.get("value")
    slots = {
        name: slot.value
        for name, slot in tracker.slots.items()
        if name not in INTERNAL_SLOTS and slot.value not in (None, "", [], slot.initial_value)
    }
    return {
        "intents": intents,
        "entities": entities,
        "active_form": tracker.active_loop_name,
        "slots": slots,
    }


class ConversationBridge:
    """Reads and changes one Rasa agent's conversations on behalf of the agent console."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    @property
    def processor(self) -> Any:
        if self.agent.processor is None:
            raise DeliveryFailed("the assistant has no model loaded")
        return self.agent.processor

    async def _full_tracker(self, sender_id: str) -> DialogueStateTracker | None:
        return await self.agent.tracker_store.retrieve_full_tracker(sender_id)

    async def transcript(self, sender_id: str) -> list[dict[str, Any]]:
        tracker = await self._full_tracker(sender_id)
        return [] if tracker is None else transcript_of(tracker.events)

    async def learned_summary(self, sender_id: str) -> dict[str, Any]:
        tracker = await self._full_tracker(sender_id)
        if tracker is None:
            return {"intents": [], "entities": {}, "active_form": None, "slots": {}}
        return learned_from(tracker)

    async def send_agent_message(
        self, sender_id: str, text: str, agent_display_name: str
    ) -> dict[str, Any]:
        """Deliver ``text`` on the customer's channel and record it as the agent's turn."""
        async with self.agent.lock_store.lock(sender_id):
            tracker = await self.processor.get_tracker(sender_id)
            delivery = delivery_for(tracker.get_latest_input_channel())
            output = delivery.output_channel(sender_id)
            try:
                await output.send_text_message(sender_id, text)
                await delivery.flush(sender_id, output)
            except DeliveryFailed:
                raise
            except Exception as exc:
                log.warning("delivering an agent message failed: %s", type(exc).__name__)
                raise DeliveryFailed(str(exc) or type(exc).__name__) from exc
            event = BotUttered(text, metadata={"agent": agent_display_name})
            tracker.update(event)
            await self.processor.save_tracker(tracker)
        entry = transcript_entry(event)
        assert entry is not None
        return entry

    async def pause(self, sender_id: str) -> None:
        """Keep the bot quiet in this conversation (an agent owns it)."""
        async with self.agent.lock_store.lock(sender_id):
            tracker = await self.processor.get_tracker(sender_id)
            if not tracker.is_paused():
                tracker.update(ConversationPaused())
                await self.processor.save_tracker(tracker)

    async def tell(self, sender_id: str, response: str, **values: Any) -> None:
        """Say one of the domain's responses in a chat an agent holds ("客服 … 已接入"), so the
        customer knows a person, not the bot, answers from now on.  The bot stays paused."""
        async with self.agent.lock_store.lock(sender_id):
            tracker = await self.processor.get_tracker(sender_id)
            output, delivery = self._output_for(tracker, sender_id)
            await self._utter(tracker, response, output, sender_id, **values)
            await self.processor.save_tracker(tracker)
            await self._flush(delivery, sender_id, output)

    async def hand_back(self, sender_id: str) -> None:
        """Give the chat back to the bot: it keeps the slots (identity, order) it had learned.

        A form the customer was in when the agent took over is closed: the agent has dealt
        with it, and the bot greets the customer again instead of re-asking an old question.
        """
        async with self.agent.lock_store.lock(sender_id):
            tracker = await self._resumed(sender_id)
            output, delivery = self._output_for(tracker, sender_id)
            await self._utter(tracker, BOT_BACK_RESPONSE, output, sender_id)
            await self.processor.save_tracker(tracker)
            await self._flush(delivery, sender_id, output)

    async def release_to_callback(self, sender_id: str, callback_due: str) -> None:
        """Nobody can take the chat any more: the bot is back, and the customer hears that a
        person will call back by ``callback_due`` (the released handoff is the call-back)."""
        async with self.agent.lock_store.lock(sender_id):
            tracker = await self._resumed(sender_id)
            output, delivery = self._output_for(tracker, sender_id)
            await self._utter(
                tracker, RELEASED_RESPONSE, output, sender_id, callback_due=callback_due
            )
            await self.processor.save_tracker(tracker)
            await self._flush(delivery, sender_id, output)

    async def close_with_survey(self, sender_id: str) -> None:
        """Resume the bot and start the satisfaction survey (five stars + one open question)."""
        async with self.agent.lock_store.lock(sender_id):
            tracker = await self._resumed(sender_id)
            await self.processor.save_tracker(tracker)
            output, delivery = self._output_for(tracker, sender_id)
            prediction = PolicyPrediction.for_action_name(
                self.processor.domain, SURVEY_FORM, "agent_console", 1.0
            )
            await self.processor.execute_action(
                sender_id, SURVEY_FORM, output, self.processor.nlg, prediction
            )
            tracker = await self.processor.get_tracker(sender_id)
            tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
            await self.processor.save_tracker(tracker)
            await self._flush(delivery, sender_id, output)

    # -- helpers ---------------------------------------------------------------------------
    async def _resumed(self, sender_id: str) -> DialogueStateTracker:
        tracker = await self.processor.get_tracker(sender_id)
        events: list[Event] = []
        if tracker.is_paused():
            events.append(ConversationResumed())
        if tracker.active_loop_name:
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        for event in events:
            tracker.update(event)
        return tracker

    def _output_for(
        self, tracker: DialogueStateTracker, sender_id: str
    ) -> tuple[OutputChannel, ChannelDelivery | None]:
        try:
            delivery = delivery_for(tracker.get_latest_input_channel())
        except DeliveryFailed:
            # Recorded in the history all the same; the customer sees it on their next turn.
            return CollectingOutputChannel(), None
        return delivery.output_channel(sender_id), delivery

    async def _utter(
        self,
        tracker: DialogueStateTracker,
        response: str,
        output: OutputChannel,
        sender_id: str,
        **values: Any,
    ) -> None:
        message = await self.processor.nlg.generate(response, tracker, output.name(), **values)
        if message is None:
            raise DeliveryFailed(f"the domain has no response {response}")
        await output.send_response(sender_id, message)
        tracker.update(ActionExecuted(response))
        tracker.update(BotUttered(message.get("text"), data={"buttons": message.get("buttons")}))
        # Rules expect each customer turn to follow the bot listening.
        tracker.update(ActionExecuted(ACTION_LISTEN_NAME))

    @staticmethod
    async def _flush(
        delivery: ChannelDelivery | None, sender_id: str, output: OutputChannel
    ) -> None:
        if delivery is None:
            return
        try:
            await delivery.flush(sender_id, output)
        except Exception as exc:  # the conversation state is saved; only the push failed
            log.warning("pushing to %s failed: %s", sender_id[:6], type(exc).__name__)
            raise DeliveryFailed(str(exc) or type(exc).__name__) from exc


def bridge_for(app: Any) -> ConversationBridge:
    """The bridge for the Rasa agent of a Sanic app (``request.app``)."""
    bridge = getattr(app.ctx, "conversation_bridge", None)
    if bridge is None or bridge.agent is not app.ctx.agent:
        bridge = ConversationBridge(app.ctx.agent)
        app.ctx.conversation_bridge = bridge
    return bridge
