"""Bringing in a person, and the satisfaction survey after one has helped.

``action_escalate`` runs when the escalation policy fires (bot/handoff/rasa_policy.py) or the
customer asks for a person.  With an agent online the chat joins the queue, the customer hears
roughly how long, and the bot pauses until an agent hands the chat back.  With nobody online
the customer gets a ticket and the promised call-back time instead of a dead wait: at once
when identity is known, otherwise through the form that captures their request.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import yaml
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import (
    ActiveLoop,
    ConversationPaused,
    ConversationResumed,
    EventType,
    FollowupAction,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions.tickets import (
    FREE_TEXT_SLOTS,
    REQUEST_FORMS,
    UPSET_ANSWERS_COUNT,
    channel_of,
    chases_a_complaint,
    previous_customer_text,
    request_named_by_words,
    ticket_opened_in_this_chat,
    verified_customer,
)
from bot.handoff.csat import CsatError, CsatService, parse_score
from bot.handoff.policy import EscalationPolicy, load_escalation_policy, need_class_for
from bot.handoff.service import default_handoff_service as handoff_service
from bot.services.desk import ServiceUnavailable, default_desk, format_time
from bot.settings import PROJECT_ROOT
from bot.store.db import session_factory
from bot.store.models import CSAT_MAX_SCORE

CSAT_WORDS_FILE = PROJECT_ROOT / "config" / "csat_words.yml"
# Which form takes the customer's request down when nobody can take the chat.
COMPLAINT_FORM, MESSAGE_FORM = "complaint_form", "message_form"
LOOKUP_FORMS = frozenset({"order_status_form", "ticket_status_form", "order_cancel_form"})
"""Forms that look something up and open no ticket: a request raised during one (nobody
online) is taken down by its own form instead."""
UPSET_TRIGGERS = frozenset({"sentiment_escalate", "negative_streak"})
"""Triggers raised by how the customer feels, not by what they asked for."""


@lru_cache(maxsize=1)
def csat_words() -> list[tuple[str, int]]:
    """Words customers use for a score, longest first (so 不满意 wins over 满意)."""
    raw = yaml.safe_load(CSAT_WORDS_FILE.read_text(encoding="utf-8")) or {}
    words = {str(word): int(score) for word, score in (raw.get("score_words") or {}).items()}
    return sorted(words.items(), key=lambda item: -len(item[0]))


def parse_csat_score(value: Any) -> int | None:
    """1..5 from a button payload, a digit, stars, or words such as 非常满意."""
    text = str(value or "").strip()
    if not text:
        return None
    stars = text.count("★") + text.count("⭐")
    if stars:
        return min(stars, CSAT_MAX_SCORE)
    digits = re.findall(r"\d+", text)
    if digits:
        try:
            return parse_score(digits[0])
        except CsatError:
            return None
    for word, score in csat_words():
        if word in text:
            return score
    return None


def customer_words(tracker: Tracker) -> str:
    """What the customer wrote last, for the call-back ticket ("" for a button's payload)."""
    text = str(tracker.latest_message.get("text") or "").strip()
    return "" if text.startswith("/") else text[:500]


def _latest_intent(tracker: Tracker) -> str | None:
    """The NLU's intent for the latest message, as parsed (nlu_fallback included)."""
    return (tracker.latest_message.get("intent") or {}).get("name")


def _trigger_of(tracker: Tracker) -> str:
    trigger = tracker.get_slot("escalation_trigger")
    if trigger:
        return str(trigger)
    return "complaint" if _latest_intent(tracker) == "complain" else "request_human"


def _offline_form(
    trigger: str, reasons: list[str], tracker: Tracker, policy: EscalationPolicy
) -> str:
    """The complaint form for a complaint, even when an angrier trigger won the tie
    ("我要投诉 你们送货员把我家门撞坏了" escalates on its sentiment); else a message.  A
    safety risk ("厨房里煤气味很大", which the NLU may file as a complaint) is always a
    message: it becomes an urgent safety call-back, not a complaint asking what we should do."""
    if "safety" in reasons:
        return MESSAGE_FORM
    if trigger == "complaint" or _latest_intent(tracker) in policy.triggers.complaint.intents:
        return COMPLAINT_FORM
    return MESSAGE_FORM


def _offline_carry_on(
    trigger: str, reasons: list[str], tracker: Tracker, policy: EscalationPolicy
) -> str | None:
    """What the bot still does for the request when nobody can take the chat
    (``offline_carry_on`` in the escalation policy): for a VIP, answer the question or run the
    request's form; for an upset customer who asked for a service ("我要退货…用了一个月就坏
    了，質量太差"), run that service's form, whose ticket the call-back is about.  A safety
    risk is taken down as a message at once instead, and a lookup gives way to it too."""
    intent = _latest_intent(tracker)
    if intent == "nlu_fallback":
        # "洗衣机又坏了" (repeated failure: a person, but the classifier unsure): the
        # words still ask for a repair, whose form takes the request down.
        intent = request_named_by_words(str(tracker.latest_message.get("text") or ""))
    followup = policy.triggers.vip_open_ticket.offline_carry_on.get(intent)
    if trigger == "vip_open_ticket":
        return followup
    if (
        trigger in UPSET_TRIGGERS
        and "safety" not in reasons
        and followup
        and followup.endswith("_form")
        and followup not in LOOKUP_FORMS
    ):
        return followup
    return None


ACTION_ESCALATE = "action_escalate"


def _unchecked_answer_dropped(tracker: Tracker) -> list[EventType]:
    """The message that brought a person in mid-form ("两台都装！！你们到底行不行" at the
    address question) also filled the question's free-text slot, but the form, run after this
    action rather than after the message, never checks it: clear it so it is asked again
    instead of booking the outburst as the address."""
    slot = tracker.get_slot("requested_slot")
    if tracker.active_loop_name == MESSAGE_FORM:
        return []  # the message is whatever the customer has to say, outburst or not
    text = str(tracker.latest_message.get("text") or "").strip()
    if (
        slot in FREE_TEXT_SLOTS - UPSET_ANSWERS_COUNT
        and text
        and str(tracker.get_slot(slot) or "").strip() == text
    ):
        return [SlotSet(slot, None)]
    return []


class ActionEscalate(Action):
    """Queue the chat for a person, or promise a call-back when nobody is online."""

    def name(self) -> str:
        return ACTION_ESCALATE

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        trigger = _trigger_of(tracker)
        reasons = [str(reason) for reason in tracker.get_slot("escalation_reasons") or []]
        policy = load_escalation_policy()
        events: list[EventType] = [
            SlotSet("escalation_trigger", None),
            SlotSet("escalation_reasons", None),
        ]
        if "safety" in reasons:
            # Whoever answers and whenever, what keeps the customer safe comes first.
            dispatcher.utter_message(response="utter_safety_first")
        desk = default_desk()
        try:
            verified = verified_customer(desk, tracker) if tracker.get_slot("phone") else None
            outcome = handoff_service().request(
                sender_id=tracker.sender_id,
                channel=channel_of(tracker),
                trigger=trigger,
                reasons=reasons,
                severity=policy.severity_for(trigger, reasons),
                customer_id=verified.customer_id if verified else None,
                need_class=need_class_for(trigger, reasons),
            )
        except (ServiceUnavailable, SQLAlchemyError):
            dispatcher.utter_message(response="utter_service_unavailable")
            return events
        if outcome.queued:
            ahead = max((outcome.position or 1) - 1, 0)
            dispatcher.utter_message(
                # "您前面还有 0 位客户" read oddly: the first in line is told they are next.
                response="utter_handoff_queued" if ahead else "utter_handoff_queued_next",
                queue_ahead=ahead,
                wait_minutes=outcome.estimated_wait_minutes or 1,
            )
            return [*events, ConversationPaused()]
        callback_due = format_time(outcome.callback_due, desk.policy)
        active_form = tracker.active_loop.get("name")
        in_form = bool(active_form) and active_form not in LOOKUP_FORMS
        carry_on = _offline_carry_on(trigger, reasons, tracker, policy)
        if (
            carry_on is None
            and not in_form
            and "safety" not in reasons
            and chases_a_complaint(str(tracker.latest_message.get("text") or ""))
        ):
            # "冰箱投诉的那个单子到现在都没人理我": the complaint exists; it is looked up and
            # chased rather than taken down a second time (QA: the complaint form looped).
            carry_on = "ticket_status_form"
        followup = carry_on or _offline_form(trigger, reasons, tracker, policy)
        if not outcome.created and outcome.ticket_no and followup == MESSAGE_FORM:
            # A call-back is already owed in this chat, with its ticket: the same promise is
            # restated, never a second ticket for the same wait ("现在怎么办", "什么时候来人").
            dispatcher.utter_message(
                response="utter_handoff_callback_pending",
                ticket_id=outcome.ticket_no,
                callback_due=callback_due,
            )
            return events
        earlier = None
        if followup == COMPLAINT_FORM and not in_form:
            earlier = ticket_opened_in_this_chat(tracker, "complaint")[0]
        if earlier:
            # A second complaint in the same chat ("他还骂人", "你们到底管不管") adds to the
            # complaint already taken down instead of opening another one.
            try:
                added = desk.add_to_request(earlier, customer_words(tracker))
            except ServiceUnavailable:
                added = False
            if added:
                dispatcher.utter_message(response="utter_complaint_added", ticket_id=earlier)
                return events
        if followup == COMPLAINT_FORM:
            dispatcher.utter_message(response="utter_complaint_ack")
        elif verified is not None and not in_form and not (carry_on or "").endswith("_form"):
            # Nothing will take the request down as a ticket: open one for the call-back.
            try:
                ticket = desk.open_request(
                    "safety_callback" if "safety" in reasons else "human",
                    verified,
                    # A button ("转人工客服" under "撤不了") says nothing: what the customer
                    # typed before it is what the call-back is about.
                    {"request_reason": customer_words(tracker) or previous_customer_text(tracker)},
                    tracker.sender_id,
                    channel_of(tracker),
                    need_class=need_class_for(trigger, reasons),
                    intent=_latest_intent(tracker) if customer_words(tracker) else None,
                )
            except ServiceUnavailable:
                dispatcher.utter_message(response="utter_service_unavailable")
                return events
            handoff_service().attach_ticket(outcome.handoff_id, ticket.ticket_no)
            dispatcher.utter_message(
                response="utter_handoff_callback",
                ticket_id=ticket.ticket_no,
                callback_due=callback_due,
            )
            events.append(SlotSet("ticket_id", ticket.ticket_no))
            if carry_on is None:
                return events
        else:
            dispatcher.utter_message(response="utter_handoff_offline", callback_due=callback_due)
        if in_form:
            # The form under way takes the request down; its ticket is the call-back's ticket
            # (linked when it opens), so no second ticket is made for the same request.
            return events + _unchecked_answer_dropped(tracker)
        if active_form:
            # A lookup under way ("到哪了") gives way to the form that takes the request down.
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        return [*events, SlotSet("handoff_followup", followup)]


CSAT_SKIPPED = "skipped"
"""The survey's score when the customer answered something else instead."""
_SCORE_LIKE = re.compile(r"\d|星|分|★|⭐")
"""An attempt at a score the parser could not read ("打几分"): asked again."""
TAKEN_UP_AFTER_SURVEY = {
    **REQUEST_FORMS,
    "query_ticket_status": "ticket_status_form",
    "ask_question": "action_answer_question",
    "request_human": ACTION_ESCALATE,
    "complain": ACTION_ESCALATE,
}
"""What runs for a message sent instead of a score ("我的扫地机器人到哪了", "转人工")."""


class ActionLeaveQueue(Action):
    """A customer waiting for a person who will not wait ("算了 不等了", the queued message's
    buttons) leaves the queue and the bot answers again; "留言回电" takes their message down
    for a call-back instead.  Once an agent has the chat, the message is the agent's to read
    and the bot stays quiet."""

    def name(self) -> str:
        return "action_leave_queue"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        try:
            left = handoff_service().leave_queue(tracker.sender_id)
        except SQLAlchemyError:
            return []  # still queued: the agent who takes the chat reads the message
        if left is None:
            return []
        events: list[EventType] = [ConversationResumed()]
        if tracker.active_loop.get("name"):
            # Whatever form the escalation interrupted, the customer starts afresh with the bot.
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        if _latest_intent(tracker) == "leave_message":
            dispatcher.utter_message(response="utter_handoff_left_queue_for_message")
            return [*events, FollowupAction(MESSAGE_FORM)]
        dispatcher.utter_message(response="utter_handoff_left_queue")
        return events


class ValidateCsatForm(FormValidationAction):
    """The survey's score is 1..5 (stars, digits or words); the comment may be skipped.  Any
    other answer ends the survey (QA: "不想评", "转人工" and "我要退货" got "请选择 1 到 5 颗星"
    again and again): the customer is never held by it."""

    def name(self) -> str:
        return "validate_csat_form"

    def validate_csat_score(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        score = parse_csat_score(value)
        if score is not None:
            return {"csat_score": str(score)}
        if _SCORE_LIKE.search(str(value or "")):
            dispatcher.utter_message(response="utter_csat_invalid_score")
            return {"csat_score": None}
        return {"csat_score": CSAT_SKIPPED, "csat_comment": ""}

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """No comment is asked for a survey the customer did not answer."""
        return [] if tracker.get_slot("csat_score") == CSAT_SKIPPED else domain_slots

    def validate_csat_comment(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"csat_comment": str(value or "").strip()[:1000]}


class ActionSaveCsat(Action):
    """Store the survey answer against the chat the agent just closed."""

    def name(self) -> str:
        return "action_save_csat"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        cleared = [SlotSet("csat_score", None), SlotSet("csat_comment", None)]
        if tracker.get_slot("csat_score") == CSAT_SKIPPED:
            # Something else instead of a score: no survey answer, and the message is taken
            # up as it would have been without the survey.
            dispatcher.utter_message(response="utter_csat_skipped")
            follow_up = TAKEN_UP_AFTER_SURVEY.get(str(_latest_intent(tracker)))
            return [*cleared, *([FollowupAction(follow_up)] if follow_up else [])]
        score = parse_csat_score(tracker.get_slot("csat_score"))
        if score is not None:
            handoff = handoff_service().latest_for_sender(tracker.sender_id)
            CsatService(session_factory()).record(
                sender_id=tracker.sender_id,
                channel=channel_of(tracker),
                score=score,
                comment=str(tracker.get_slot("csat_comment") or ""),
                handoff_id=handoff.id if handoff is not None else None,
            )
        dispatcher.utter_message(response="utter_csat_thanks")
        return cleared
