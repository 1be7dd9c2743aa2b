"""Actions that open tickets from submitted forms and show ticket and order status."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from bot.config_file import intent_labels
from bot.handoff.policy import need_class_for
from bot.handoff.service import default_handoff_service
from bot.nlu.catalogue import product_mentions, skus_mentioned
from bot.nlu.text import normalise_text
from bot.sentiment import default_analyzer
from bot.services.customers import VerifiedOrder
from bot.services.desk import (
    Chase,
    ServiceDesk,
    ServiceUnavailable,
    Withdrawal,
    default_desk,
    format_time,
    load_request_config,
)
from bot.services.orders import UnknownOrder
from bot.services.scheduling import format_day
from bot.services.tickets import TicketView, normalise_ticket_no
from bot.settings import project_domain

WINDOW_PASSED_RESPONSES = {
    "no_reason_return": "utter_no_reason_return_window_passed",
    "defect_exchange": "utter_defect_exchange_window_passed",
    "price_protection": "utter_price_protection_window_passed",
}
"""What the customer is told when a request falls outside its policy window."""

REQUEST_SLOTS = (
    "product",
    "fault_description",
    "address",
    "appointment_date",
    "time_slot",
    "request_reason",
    "complaint_detail",
    "complaint_expectation",
    "withdraw_ticket",
    "delivery_note",
)
"""Slots that belong to one request; cleared once it is submitted or cancelled."""
WITHDRAWAL_RESPONSES = {
    Withdrawal.WITHDRAWN: "utter_ticket_withdrawn",
    Withdrawal.IN_HAND: "utter_ticket_in_hand",
    Withdrawal.SETTLED: "utter_ticket_settled",
    Withdrawal.NOT_FOUND: "utter_ticket_not_yours",
}
"""What the customer is told when asking to withdraw a ticket."""
REPLACES = {"return": "exchange", "exchange": "return"}

CHASE_RESPONSES = {Chase.OVERDUE: "utter_ticket_overdue", Chase.NOTED: "utter_ticket_chase_noted"}
"""A request that replaces one of the other kind just opened for the same goods."""
MAX_IDENTITY_FAILURES = 3
"""Failed order/phone checks before lookups stop for the conversation."""
FREE_TEXT_SLOTS = frozenset(
    {"request_reason", "fault_description", "address", "complaint_detail", "complaint_expectation"}
)
"""Slots whose answer is the customer's own words, whatever they are about."""
UPSET_ANSWERS_COUNT = frozenset({"request_reason", "fault_description", "complaint_detail"})
"""Free-text answers that stand however upset the words ("已经换过一次了 新换的这台还是不制
冷 不想要了" is the return reason); an outburst at the address question is no address."""

log = logging.getLogger(__name__)


def channel_of(tracker: Tracker) -> str:
    return (tracker.get_latest_input_channel() or "rest").lower()


def clear_request_slots() -> list[EventType]:
    return [SlotSet(slot, None) for slot in REQUEST_SLOTS]


def verified_customer(desk: ServiceDesk, tracker: Tracker) -> VerifiedOrder | None:
    """Re-check the order/phone pair the form verified (the store is the truth, not slots);
    for a message left without an order number, whom the phone to call back belongs to."""
    order_no, phone = tracker.get_slot("order_id") or "", tracker.get_slot("phone") or ""
    if not order_no and tracker.get_slot("without_order"):
        return desk.contact_by_phone(phone) if phone else None
    return desk.verify_identity(order_no, phone)


def link_pending_callback(sender_id: str, ticket_no: str) -> datetime | None:
    """A chat escalated while its form was under way, with nobody online, waits for a call-back
    about this form's ticket: link the two (best effort; the ticket stands either way) and
    return the call-back time promised.  Only a call-back promised within the conversation
    session (domain.yml ``session_config``) counts."""
    minutes = project_domain()["session_config"]["session_expiration_time"]
    try:
        linked = default_handoff_service().attach_ticket_to_recent_callback(
            sender_id, ticket_no, timedelta(minutes=float(minutes))
        )
    except SQLAlchemyError as exc:
        log.error("could not link ticket %s to its call-back: %s", ticket_no, type(exc).__name__)
        return None
    return linked.callback_due if linked else None


def withdraw_ticket(
    dispatcher: CollectingDispatcher, ticket_no: str, customer_id: int | None = None
) -> list[EventType]:
    """Withdraw ``ticket_no`` and say how it went; ``customer_id`` when the ticket was not
    opened in this chat and must be the verified customer's."""
    try:
        outcome = default_desk().withdraw_request(ticket_no, customer_id)
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return []
    dispatcher.utter_message(response=WITHDRAWAL_RESPONSES[outcome], ticket_id=ticket_no)
    if outcome is not Withdrawal.WITHDRAWN:
        return []
    try:  # best effort: the withdrawal stands either way
        default_handoff_service().settle_callbacks_for_ticket(ticket_no)
    except SQLAlchemyError as exc:
        log.error("could not settle call-backs of %s: %s", ticket_no, type(exc).__name__)
    return [SlotSet("ticket_id", None)]


def previous_customer_text(tracker: Tracker) -> str | None:
    """What the customer typed before the latest message in this session (button payloads
    skipped): the problem a bare "现在怎么办" is about."""
    seen_latest = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "session_started":
            return None
        if kind != "user":
            continue
        if not seen_latest:
            seen_latest = True
            continue
        text = (event.get("text") or "").strip()
        if text and not text.startswith("/"):
            return text
    return None


def identity_lost(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Same reply as a wrong pair; the customer starts the identity check again.  After the
    lock-out the form ended without an identity and the customer was already told why: no
    second, contradicting "对不上"."""
    if int(tracker.get_slot("identity_failures") or 0) < MAX_IDENTITY_FAILURES:
        dispatcher.utter_message(response="utter_identity_not_found")
    elif not any(
        event.get("event") == "bot"
        and (event.get("metadata") or {}).get("utter_action") == "utter_identity_locked"
        for event in events_since_last_message(tracker)
    ):
        dispatcher.utter_message(response="utter_identity_locked")
    return [SlotSet("order_id", None), SlotSet("phone", None)]


def events_since_last_message(tracker: Tracker) -> Iterator[dict[str, Any]]:
    """The events after the customer's latest message, newest first."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return
        yield event


class OpenTicketAction(Action, ABC):
    """Open the ticket for a completed form; identity was verified by the form."""

    @property
    @abstractmethod
    def kind(self) -> str:
        """The request kind in config/service_requests.yml."""

    def name(self) -> str:
        return f"action_open_{self.kind}_ticket"

    def _kind_for(self, answers: dict[str, Any], sender_id: str) -> tuple[str, str | None]:
        """The request kind and SLA class to open: a message that names a danger (taken down
        while nobody was online after "厨房有很大的煤气味") is an urgent safety call-back,
        a repair, not an inquiry; a message taken down for a call-back owed after anger or a
        threat ("骗子…再不处理我就打12315") runs on that call-back's emotional clock."""
        if self.kind != "message":
            return self.kind, None
        if _safety_risk(str(answers.get("request_reason") or "")):
            return "safety_callback", "urgent"
        return self.kind, _owed_callback_need_class(sender_id)

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        desk = default_desk()
        detail_for = ticket_a_detail_adds_to(tracker, self.kind)
        if detail_for is not None:
            return add_detail_to_ticket(detail_for, tracker, desk, dispatcher)
        answers: dict[str, Any] = {slot: tracker.get_slot(slot) for slot in REQUEST_SLOTS}
        booked = _booked_day(answers) if "appointment" in self._fields() else None
        if booked is None:
            answers["appointment_date"] = None  # a day said in passing is no booking
        else:
            answers["appointment"] = (
                f"{answers['appointment_date']} {answers.get('time_slot') or ''}"
            )
        kind, need_class = self._kind_for(answers, tracker.sender_id)
        window = load_request_config().kinds[kind].window
        days = None
        try:
            verified = verified_customer(desk, tracker)
            if verified is None:
                return identity_lost(dispatcher, tracker)
            existing = desk.open_duplicate(kind, verified, answers)
            if existing is not None:
                return self._added_to_existing(existing, answers, desk, dispatcher, tracker)
            if kind == "message":
                named = desk.open_ticket_named_in(verified, str(answers["request_reason"]))
                if named is not None:
                    return self._message_on_ticket(named, answers, desk, dispatcher, tracker)
            related = None
            if kind == "complaint":
                open_complaint = desk.open_complaint(verified)
                if open_complaint is not None:
                    # A complaint about this order is already being handled: the same
                    # complaint handler takes what the customer says now.
                    return self._added_to_existing(
                        open_complaint, answers, desk, dispatcher, tracker
                    )
                # "报修一周了还没人来 我要投诉": the complaint is its own ticket (its own team
                # and clock), linked both ways with the ticket it is about.
                said = str(answers.get("complaint_detail") or "")
                related = desk.ticket_complained_about(verified, said)
                answers["related_ticket"] = related.ticket_no if related else None
            if window:
                days = desk.days_since_delivery(verified.order_no)
                answers["days_since_delivery"] = days
            ticket = desk.open_request(
                kind,
                verified,
                answers,
                tracker.sender_id,
                channel_of(tracker),
                need_class,
                intent=intent_when_set(tracker, "request_reason"),
            )
            replaced = self._replaced(tracker, desk, verified, answers)
            if related is not None:
                desk.note_complaint_about(related, ticket.ticket_no)
        except ServiceUnavailable:
            # Slots are kept: the customer can simply try again without re-typing.
            dispatcher.utter_message(response="utter_ticket_failed")
            return []
        reply = desk.ticket_reply(ticket)
        callback_due = link_pending_callback(tracker.sender_id, ticket.ticket_no)
        if callback_due is not None:
            # The call-back already promised in this chat is the first contact: one promise.
            reply["first_response_due"] = format_time(callback_due, desk.policy)
        dispatcher.utter_message(response="utter_ticket_opened", **reply)
        if replaced:
            dispatcher.utter_message(response="utter_request_replaced", ticket_id=replaced)
        if related is not None:
            dispatcher.utter_message(
                response="utter_complaint_linked",
                ticket_id=related.ticket_no,
                category_label=related.category_label,
            )
        if window and desk.window_passed(window, days):
            # Still taken down (a defect has other routes), but the customer hears it now.
            windows = desk.policy.return_windows
            dispatcher.utter_message(
                response=WINDOW_PASSED_RESPONSES[window],
                days=days,
                limit=getattr(windows, window),
                exchange_limit=windows.defect_exchange,
            )
        if booked is not None:
            day = format_day(booked)
            dispatcher.utter_message(
                response="utter_appointment_booked",
                appointment=f"{day}{answers.get('time_slot') or ''}",
                address=answers.get("address") or "",
            )
            self._tell_goods_still_coming(verified.order_no, desk, dispatcher)
        waiting = self._request_still_waiting(tracker, answers.get("product"))
        if waiting:
            intent, product = waiting
            titles = project_domain()["responses"]
            dispatcher.utter_message(
                response="utter_other_request_offer",
                product=product,
                request_label=intent_labels().get(intent, intent),
                buttons=[
                    {
                        "title": titles["utter_other_request_go_on"][0]["text"],
                        "payload": f'/{intent}{{"product": "{product}"}}',
                    },
                    {"title": titles["utter_other_request_not_now"][0]["text"], "payload": "/deny"},
                ],
            )
        return [*clear_request_slots(), SlotSet("ticket_id", ticket.ticket_no)]

    @staticmethod
    def _tell_goods_still_coming(
        order_no: str | None, desk: ServiceDesk, dispatcher: CollectingDispatcher
    ) -> None:
        """A visit booked for goods not yet delivered (an installation may be): where they
        are, and late if they are, so the day is not a surprise (QA: booked with no word that
        the order was eleven days late)."""
        if not order_no:
            return
        try:
            label = desk.undelivered_label(order_no)
            late = desk.days_overdue(order_no) if label else None
        except (ServiceUnavailable, UnknownOrder):
            return
        if label and late:
            dispatcher.utter_message(
                response="utter_visit_before_late_delivery", delivery_status=label, days_late=late
            )
        elif label:
            dispatcher.utter_message(response="utter_visit_before_delivery", delivery_status=label)

    def _request_still_waiting(self, tracker: Tracker, product: Any) -> tuple[str, str] | None:
        """The other request of a first message that asked for two things about two products
        ("冰箱不制冷要报修，洗衣机想退货", "空调和热水器都要装"): (intent, product word)."""
        intent = KIND_INTENTS.get(self.kind)
        opening = _message_that_started(tracker, f"{self.kind}_form") if intent else None
        if not intent or not opening:
            return None
        named = load_request_config().requests_named(opening, intent)
        if len({word for _, word in named}) < 2:
            return None  # one product: the request is whatever the form took down
        done = skus_mentioned(str(product or ""))
        for asked, word in named:
            this_one = asked == intent and bool(done & skus_mentioned(word))
            if asked in KIND_INTENTS.values() and not this_one:
                return asked, word
        return None

    def _replaced(
        self, tracker: Tracker, desk: ServiceDesk, verified: VerifiedOrder, answers: dict
    ) -> str | None:
        """The request of the other kind this chat opened for the same order and product,
        withdrawn now that the customer changed it into this one ("哎 还是换货吧")."""
        other = REPLACES.get(self.kind)
        opening = _message_that_started(tracker, f"{self.kind}_form") or ""
        if not other or not load_request_config().names_request(KIND_INTENTS[self.kind], opening):
            # QA: "有坏点 屏幕中间一个亮点" after an exchange read as a return to the NLU and
            # withdrew the exchange; only a customer who asks for the other request changes it.
            return None
        earlier = ticket_opened_in_this_chat(tracker, other)[0]
        if earlier and desk.replaced_request(earlier, verified, answers.get("product")):
            return earlier
        return None

    def _fields(self) -> dict[str, str]:
        return load_request_config().kinds[self.kind].fields

    @staticmethod
    def _added_to_existing(
        ticket: TicketView,
        answers: dict[str, Any],
        desk: ServiceDesk,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> list[EventType]:
        """The same request is already under way: what the customer said this time goes onto
        that ticket as a note, and no second ticket is opened; a call-back promised in this
        chat is about that ticket."""
        said = "；".join(
            str(answers[slot])
            for slot in (
                "fault_description",
                "request_reason",
                "complaint_detail",
                "complaint_expectation",
                "address",
                "appointment",
            )
            if answers.get(slot)
        )
        desk.add_to_request(ticket.ticket_no, said)
        if ticket.category == "complaint":
            dispatcher.utter_message(response="utter_complaint_added", ticket_id=ticket.ticket_no)
        else:
            dispatcher.utter_message(
                response="utter_request_already_open",
                ticket_id=ticket.ticket_no,
                category_label=ticket.category_label,
                status_label=ticket.status_label,
            )
        _tell_pending_callback(tracker, ticket.ticket_no, desk, dispatcher)
        return [*clear_request_slots(), SlotSet("ticket_id", ticket.ticket_no)]

    @staticmethod
    def _message_on_ticket(
        ticket: TicketView,
        answers: dict[str, Any],
        desk: ServiceDesk,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
    ) -> list[EventType]:
        """A message about a ticket still under way ("工单T… 两个礼拜了还没修好") goes onto
        that ticket, chased when it is late; a call-back promised in this chat is about it."""
        desk.add_to_request(ticket.ticket_no, str(answers["request_reason"]))
        desk.chase_if_overdue(ticket)
        dispatcher.utter_message(
            response="utter_message_added_to_ticket",
            ticket_id=ticket.ticket_no,
            category_label=ticket.category_label,
            status_label=ticket.status_label,
        )
        _tell_pending_callback(tracker, ticket.ticket_no, desk, dispatcher)
        return [*clear_request_slots(), SlotSet("ticket_id", ticket.ticket_no)]


def _tell_pending_callback(
    tracker: Tracker, ticket_no: str, desk: ServiceDesk, dispatcher: CollectingDispatcher
) -> None:
    """A call-back promised in this chat is about ``ticket_no`` now: linked, its time said."""
    callback_due = link_pending_callback(tracker.sender_id, ticket_no)
    if callback_due is not None:
        dispatcher.utter_message(
            response="utter_handoff_callback_pending",
            ticket_id=ticket_no,
            callback_due=format_time(callback_due, desk.policy),
        )


REQUEST_FORMS = {
    "report_fault": "repair_form",
    "request_return": "return_form",
    "request_exchange": "exchange_form",
    "request_installation": "installation_form",
    "book_maintenance": "maintenance_form",
    "price_dispute": "price_dispute_form",
    "query_order": "order_status_form",
}
"""The form each request intent starts (data/rules.yml starts them the same way)."""

KIND_INTENTS = {
    "return": "request_return",
    "exchange": "request_exchange",
    "repair": "report_fault",
    "installation": "request_installation",
    "maintenance": "book_maintenance",
}
"""The request intent behind each form about a product (its kind in service_requests.yml)."""


def _message_that_started(tracker: Tracker, form: str) -> str | None:
    """What the customer wrote in the turn ``form`` last became active."""
    text, started = None, None
    for event in tracker.events:
        if event.get("event") == "user":
            text = str(event.get("text") or "")
        elif event.get("event") == "active_loop" and event.get("name") == form:
            started = text
        elif event.get("event") == "session_started":
            started = None
    return started


def intent_when_set(tracker: Tracker, slot: str) -> str | None:
    """The NLU intent of the customer message in whose turn ``slot`` got its value: what the
    words of a message left for a call-back were about ("洗衣机漏水了" is report_fault)."""
    intent = found = None
    for event in tracker.events:
        if event.get("event") == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        elif event.get("event") == "slot" and event.get("name") == slot:
            found = intent if event.get("value") else None
    return found


DETAIL_ACTIONS = frozenset({"action_clarify_fallback", "action_acknowledge"})
"""Actions that add a detail to the ticket just opened without opening one (see
ticket_a_detail_adds_to)."""


def ticket_opened_in_this_chat(tracker: Tracker, kind: str | None = None) -> tuple[str | None, int]:
    """The last ticket a form opened in this conversation session (of ``kind`` when given)
    and how many customer messages came since, the one being answered included."""
    ticket_no, _, messages_since = _last_ticket_opened(tracker, kind)
    return ticket_no, messages_since


def _last_ticket_opened(tracker: Tracker, kind: str | None) -> tuple[str | None, str, int]:
    """(ticket, kind it was opened as, customer messages since) — see
    ticket_opened_in_this_chat."""
    opened, opened_as, last_action, messages_since = None, "", None, 0
    wanted = f"action_open_{kind}_ticket" if kind else None
    for event in tracker.events:
        name = event.get("event")
        if name == "session_started":
            opened, messages_since = None, 0
        elif name == "action":
            last_action = event.get("name")
        elif name == "slot" and event.get("name") == "ticket_id":
            action = str(last_action or "")
            if action.startswith("action_open_") and (wanted is None or action == wanted):
                if event.get("value") != opened:  # a detail added keeps the ticket's kind
                    opened_as = action.removeprefix("action_open_").removesuffix("_ticket")
                opened, messages_since = event.get("value"), 0
            elif action in DETAIL_ACTIONS and opened and event.get("value") == opened:
                messages_since = 0  # a detail just added: the ticket is as fresh as ever
            elif action == "action_cancel_outside_form" and opened:
                opened = None  # withdrawn
        elif name == "user":
            messages_since += 1
    return (str(opened) if opened else None), opened_as, messages_since


def chases_a_complaint(text: str) -> bool:
    """Whether ``text`` is about a complaint made before ("冰箱投诉的那个单子…没人理我";
    ``follow_up_words.complaint`` in config/service_requests.yml), not a new one."""
    return "complaint" in load_request_config().categories_named(text)


def request_named_by_words(text: str) -> str | None:
    """The one service a message asks for in so many words (``request_words`` in
    config/service_requests.yml: "电视报修…", "洗衣机又坏了"), for when the classifier is
    unsure; None for none or several ("退货还是换货好")."""
    folded = normalise_text(text).lower()
    asked = {
        intent
        for intent, words in load_request_config().request_words.items()
        if any(word in folded for word in words)
    }
    return asked.pop() if len(asked) == 1 else None


def ticket_a_detail_adds_to(tracker: Tracker, form_kind: str | None) -> str | None:
    """The ticket opened just before this message when the message only says more about it
    ("对了 它盖子也合不上了" after the rice cooker's repair ticket, which the NLU may even
    read as a return): no words asking for another kind of request ("还要退货"), no other
    product ("吹风机也坏了"), typed rather than tapped.  Only between requests about goods
    (``form_kind``, the kind of the form the message started, and the ticket's): a complaint
    or a price question is never a detail of a repair.  A message that started no form
    (``form_kind`` None: read as a plain yes, or not placed) counts when it opens with a word
    that adds ("对了 它外机还有很大的噪音").  None otherwise: a new request."""
    ticket_no, kind, messages_since = _last_ticket_opened(tracker, None)
    text = str(tracker.latest_message.get("text") or "").strip()
    config = load_request_config()
    if form_kind is None and not config.adds_a_detail(text):
        return None  # no request read into it: only "对了 …" / "还有 …" says it adds
    if (form_kind is not None and form_kind not in KIND_INTENTS) or kind not in KIND_INTENTS:
        return None
    if not ticket_no or messages_since != 1 or not text or text.startswith("/"):
        return None
    folded = normalise_text(text).lower()
    # Fault words after a repair ticket ("对了 它还漏水") describe the same repair.
    other_requests = (
        words for intent, words in config.request_words.items() if intent != KIND_INTENTS.get(kind)
    )
    if any(word in folded for words in other_requests for word in words):
        return None
    named = skus_mentioned(" ".join(product_mentions(text)))
    if named:
        try:
            product = default_desk().ticket_product(ticket_no)
        except ServiceUnavailable:
            return None
        if not named & skus_mentioned(product or ""):
            return None
    return ticket_no


def add_detail_to_ticket(
    ticket_no: str, tracker: Tracker, desk: ServiceDesk, dispatcher: CollectingDispatcher
) -> list[EventType]:
    """Add the customer's words to the ticket opened just before (see ticket_a_detail_adds_to)."""
    text = str(tracker.latest_message.get("text") or "").strip()[:500]
    try:
        added = desk.add_to_request(ticket_no, text)
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return clear_request_slots()
    if not added:  # settled meanwhile
        dispatcher.utter_message(response="utter_ticket_settled", ticket_id=ticket_no)
        return [*clear_request_slots(), SlotSet("ticket_id", ticket_no)]
    _, kind, _ = _last_ticket_opened(tracker, None)
    if load_request_config().names_request(KIND_INTENTS.get(kind, ""), text):
        # "吹风机不出热风了 要报修" again: the same request, already under way.
        ticket = desk.tickets.timeline(ticket_no)
        dispatcher.utter_message(
            response="utter_request_already_open",
            ticket_id=ticket_no,
            category_label=ticket.category_label,
            status_label=ticket.status_label,
        )
    else:
        dispatcher.utter_message(
            response="utter_detail_added_to_ticket", ticket_id=ticket_no, detail=text
        )
    _tell_pending_callback(tracker, ticket_no, desk, dispatcher)
    return [*clear_request_slots(), SlotSet("ticket_id", ticket_no)]


def _booked_day(answers: dict[str, Any]) -> date | None:
    """The appointment day the form checked (ISO), or None: the slot also takes days said in
    passing ("门店周末开不开" in a message), which forms without a visit never check."""
    try:
        return date.fromisoformat(str(answers.get("appointment_date") or ""))
    except ValueError:
        return None


def _owed_callback_need_class(sender_id: str) -> str | None:
    """The SLA class of the call-back this chat is owed and no ticket carries yet (None when
    there is none, or it is a plain one)."""
    try:
        handoff = default_handoff_service().latest_for_sender(sender_id)
    except SQLAlchemyError:
        return None
    if handoff is None or handoff.status != "callback" or handoff.ticket_no:
        return None
    need_class = need_class_for(handoff.trigger, list(handoff.reasons))
    return None if need_class == "normal" else need_class


def _safety_risk(text: str) -> bool:
    """Whether the customer's words name a danger (gas, smoke, a live casing...)."""
    return bool(text) and "safety" in default_analyzer().analyse(text).reasons


def _ticket_action(kind: str) -> type[OpenTicketAction]:
    return type(
        f"Open{kind.title()}Ticket",
        (OpenTicketAction,),
        {"kind": kind, "__module__": __name__},
    )


OPEN_TICKET_ACTIONS = [
    _ticket_action(kind)
    for kind in (
        "return",
        "exchange",
        "repair",
        "installation",
        "maintenance",
        "complaint",
        "price",
        "message",
    )
]


class ActionShowTicketStatus(Action):
    """Timeline, SLA deadlines and next step of the verified customer's tickets."""

    MAX_SHOWN = 3

    def name(self) -> str:
        return "action_show_ticket_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = self._show(dispatcher, tracker)
        if tracker.get_slot("withdraw_ticket"):
            # A withdrawal asked for is done, or given up, with this run: never left to turn
            # a later look at a ticket into a cancellation.
            events.append(SlotSet("withdraw_ticket", None))
        return events

    def _show(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        desk = default_desk()
        try:
            verified = verified_customer(desk, tracker)
            if verified is None:
                return identity_lost(dispatcher, tracker)
            ticket_no = tracker.get_slot("ticket_id")
            if ticket_no and tracker.get_slot("withdraw_ticket") == ticket_no:
                # "把工单T… 取消了" in a chat that had to verify the customer first.
                withdraw_ticket(dispatcher, ticket_no, verified.customer_id)
                return [SlotSet("ticket_id", None)]
            asked = _words_of_the_question(tracker)
            tickets = desk.customer_tickets(verified, ticket_no, asked)
            if tickets and ticket_no and not _named_now(tracker, ticket_no):
                # "查工单" after a ticket opened in this chat: that one first, then the others
                # still under way (QA: the overdue repair went unseen behind a new complaint).
                tickets += [
                    other
                    for other in desk.tickets_under_way(verified.customer_id)
                    if other.ticket_no != tickets[0].ticket_no
                ]
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        if not tickets:
            dispatcher.utter_message(
                response="utter_ticket_not_yours" if ticket_no else "utter_no_tickets"
            )
            return [SlotSet("ticket_id", None)]
        shown = tickets[: self.MAX_SHOWN]
        config = load_request_config()
        hurried = config.asks_to_hurry(str(tracker.latest_message.get("text") or "")) or (
            not ticket_no and config.asks_to_hurry(asked)
        )
        for index, ticket in enumerate(shown):
            dispatcher.utter_message(response="utter_ticket_timeline", **desk.ticket_reply(ticket))
            if index > 0 or (not ticket_no and len(shown) > 1 and not hurried):
                # Only the ticket asked about is chased, not a general look; "催一下" chases
                # the first shown (the one most under way).
                continue
            try:
                chased = desk.chase(ticket, hurried)
            except ServiceUnavailable:
                chased = Chase.NONE
            if chased is not Chase.NONE:
                dispatcher.utter_message(
                    response=CHASE_RESPONSES[chased], ticket_id=ticket.ticket_no
                )
        return [SlotSet("ticket_id", None)]


def _words_of_the_question(tracker: Tracker) -> str:
    """What the customer asked when the lookup started ("我的报修到哪一步了", or a complaint
    chasing one made before), not the phone number that answered the form's last question.
    A later "能不能快点" that names nothing keeps the earlier question's ticket kind and
    product ("洗衣机维修工单…")."""
    asked = ""
    config = load_request_config()
    for event in tracker.events:
        if event.get("event") == "user":
            text = str(event.get("text") or "")
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            complaint_chased = intent == "complain" and chases_a_complaint(text)
            if (intent == "query_ticket_status" or complaint_chased) and not text.startswith("/"):
                only_hurries = config.asks_to_hurry(text) and not (
                    config.categories_named(text) or skus_mentioned(text)
                )
                asked = asked if only_hurries and asked else text
        elif event.get("event") == "session_started":
            asked = ""
    return asked


def _named_now(tracker: Tracker, ticket_no: str) -> bool:
    """Whether the latest message names ``ticket_no`` (rather than the slot remembering it)."""
    return any(
        e.get("entity") == "ticket_id"
        and normalise_ticket_no(str(e.get("value"))) == normalise_ticket_no(ticket_no)
        for e in tracker.latest_message.get("entities") or []
    )


def tell_order_status(desk: ServiceDesk, order_no: str, dispatcher: CollectingDispatcher) -> None:
    """Where an order is; past its promised day, that too, with what can be done."""
    try:
        dispatcher.utter_message(response="utter_order_status", **desk.order_reply(order_no))
        late = desk.days_overdue(order_no)
    except (ServiceUnavailable, UnknownOrder):
        dispatcher.utter_message(response="utter_service_unavailable")
        return
    if late:
        dispatcher.utter_message(response="utter_order_overdue", days=late)


class ActionShowOrderStatus(Action):
    """Delivery status of the verified order."""

    def name(self) -> str:
        return "action_show_order_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        desk = default_desk()
        try:
            verified = verified_customer(desk, tracker)
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        if verified is None:
            return identity_lost(dispatcher, tracker)
        tell_order_status(desk, verified.order_no, dispatcher)
        return []
