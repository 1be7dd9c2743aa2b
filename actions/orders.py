"""Cancelling an order in the chat: checked against the store, confirmed, then done.

``order_cancel_form`` verifies the order and phone; ``action_cancel_order`` says whether the
order can still be cancelled and asks for confirmation; ``action_confirm_order_cancel`` runs on
the answer (rules in data/rules.yml).  Nothing is cancelled without that confirmation, and an
order that ships in between is not cancelled (one conditional update in the store).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.tickets import identity_lost, verified_customer
from bot.services.desk import ServiceDesk, ServiceUnavailable, default_desk, load_request_config
from bot.services.orders import OrderCancellation, UnknownOrder

PENDING_SLOT = "order_to_cancel"
"""The order waiting for the customer's "确认取消"."""

REFUSAL_RESPONSES = {
    OrderCancellation.ALREADY_CANCELLED: "utter_order_already_cancelled",
    OrderCancellation.SHIPPED: "utter_order_cancel_shipped",
    OrderCancellation.DELIVERED: "utter_order_cancel_delivered",
}
"""Why an order cannot be cancelled any more, and what can be done instead."""


def _order_values(desk: ServiceDesk, order_no: str) -> dict[str, Any]:
    reply = desk.order_reply(order_no)
    return {
        "order_no": order_no,
        **{key: reply[key] for key in ("items", "delivery_label", "amount")},
    }


class ActionCancelOrder(Action):
    """After the identity check: cancellable orders are confirmed first; the others get why
    not and what to do instead (refuse the parcel, or return it)."""

    def name(self) -> str:
        return "action_cancel_order"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        desk = default_desk()
        try:
            verified = verified_customer(desk, tracker)
            if verified is None or verified.order_no is None:
                return identity_lost(dispatcher, tracker)
            state = desk.order_cancellation(verified.order_no)
            values = _order_values(desk, verified.order_no)
        except (ServiceUnavailable, UnknownOrder):
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        if state is OrderCancellation.CANCELLABLE:
            dispatcher.utter_message(response="utter_ask_order_cancel_confirm", **values)
            return [SlotSet(PENDING_SLOT, verified.order_no)]
        dispatcher.utter_message(response=REFUSAL_RESPONSES[state], **values)
        return [SlotSet(PENDING_SLOT, None)]


class ActionConfirmOrderCancel(Action):
    """The answer to "确认取消吗？": cancel ("确认", "取消吧", "不要了") or keep ("不取消了",
    "算了", "再想想"); see order_cancel_answers in config/service_requests.yml."""

    def name(self) -> str:
        return "action_confirm_order_cancel"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        order_no = tracker.get_slot(PENDING_SLOT)
        if not order_no:
            dispatcher.utter_message(response="utter_deny_ack")
            return []
        intent = tracker.get_intent_of_latest_message()
        text = str(tracker.latest_message.get("text") or "")
        if not load_request_config().confirms_order_cancel(str(intent), text):
            dispatcher.utter_message(response="utter_order_kept", order_no=order_no)
            return [SlotSet(PENDING_SLOT, None)]
        desk = default_desk()
        try:
            verified = verified_customer(desk, tracker)
            if verified is None or verified.order_no != order_no:
                return [SlotSet(PENDING_SLOT, None), *identity_lost(dispatcher, tracker)]
            values = _order_values(desk, order_no)
            outcome = desk.cancel_order(verified)
        except (ServiceUnavailable, UnknownOrder):
            # The order stays pending confirmation: "确认" again once the store is back.
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        if outcome is OrderCancellation.CANCELLED:
            dispatcher.utter_message(response="utter_order_cancel_done", **values)
        else:  # shipped (or changed) while the customer was deciding
            try:
                values = _order_values(desk, order_no)
            except (ServiceUnavailable, UnknownOrder):
                pass  # the reply still says why; only the delivery label may be older
            dispatcher.utter_message(response=REFUSAL_RESPONSES[outcome], **values)
        return [SlotSet(PENDING_SLOT, None)]
