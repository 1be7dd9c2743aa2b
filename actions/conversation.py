"""Conversation-level actions: fallback, cancelling a request, asking for a person."""

from __future__ import annotations

from functools import lru_cache

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.tickets import channel_of, clear_request_slots
from bot.services.desk import ServiceUnavailable, default_desk
from bot.settings import PROJECT_ROOT

INTENT_LABELS_FILE = PROJECT_ROOT / "config" / "intent_labels.yml"
CLARIFY_CHOICES = 2


@lru_cache(maxsize=1)
def intent_labels() -> dict[str, str]:
    return yaml.safe_load(INTENT_LABELS_FILE.read_text(encoding="utf-8")) or {}


class ActionClarifyFallback(Action):
    """First miss: suggest the likeliest intents; a second miss: offer a ticket or a person."""

    def name(self) -> str:
        return "action_clarify_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        misses = int(tracker.get_slot("fallback_count") or 0) + 1
        if misses >= 2:
            dispatcher.utter_message(response="utter_offer_help")
            return [UserUtteranceReverted(), SlotSet("fallback_count", 0.0)]
        labels = intent_labels()
        ranking = tracker.latest_message.get("intent_ranking") or []
        candidates = [r["name"] for r in ranking if r.get("name") in labels][:CLARIFY_CHOICES]
        buttons = [{"title": labels[name], "payload": f"/{name}"} for name in candidates]
        none_title = domain.get("responses", {}).get("utter_clarify_none", [{}])[0].get("text")
        buttons.append({"title": none_title or "—", "payload": "/out_of_scope"})
        dispatcher.utter_message(response="utter_clarify", buttons=buttons)
        return [UserUtteranceReverted(), SlotSet("fallback_count", float(misses))]


class ActionResetFallbackCount(Action):
    """A recognised request ends a run of misunderstandings."""

    def name(self) -> str:
        return "action_reset_fallback_count"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return [SlotSet("fallback_count", 0.0)] if tracker.get_slot("fallback_count") else []


class ActionCancelRequest(Action):
    """ "算了": drop the half-filled request; identity stays verified for the next one."""

    def name(self) -> str:
        return "action_cancel_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_cancelled")
        return clear_request_slots()


class ActionRequestHuman(Action):
    """Register that the customer wants a person; a verified customer gets a call-back ticket."""

    def name(self) -> str:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_handoff")
        if not tracker.get_slot("verified_customer"):
            return []
        desk = default_desk()
        try:
            verified = desk.verify_identity(
                tracker.get_slot("order_id") or "", tracker.get_slot("phone") or ""
            )
            if verified is None:
                return []
            ticket = desk.open_request(
                "human", verified, {}, tracker.sender_id, channel_of(tracker)
            )
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        dispatcher.utter_message(response="utter_handoff_ticket", **desk.ticket_reply(ticket))
        return [SlotSet("ticket_id", ticket.ticket_no)]
