"""Conversation-level actions: fallback and cancelling (a request, or something that exists)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.forms import entity_value, value_before_latest_message, words_beyond
from actions.knowledge import ActionAnswerQuestion, last_bot_response
from actions.tickets import (
    REQUEST_FORMS,
    add_detail_to_ticket,
    clear_request_slots,
    request_named_by_words,
    ticket_a_detail_adds_to,
    ticket_opened_in_this_chat,
    verified_customer,
    withdraw_ticket,
)
from bot.config_file import intent_labels
from bot.kb.service import (
    KnowledgeUnavailable,
    default_knowledge_service,
    is_follow_up,
    looks_like_question,
)
from bot.nlu.text import normalise_text
from bot.services.customers import (
    is_valid_order_no,
    mask_phone,
    normalise_order_no,
    normalise_phone,
)
from bot.services.desk import ServiceUnavailable, default_desk, load_request_config
from bot.services.tickets import normalise_ticket_no
from bot.settings import project_domain

CLARIFY_CHOICES = 2
_ORDER_NO_ATTEMPT = re.compile(r"[sS][oO]\s*\d{6,}")
"""Something typed as an order number, of any length."""
# What a customer is likely to want done with an order (or their phone) or a ticket they name.
ORDER_NEXT_STEPS = (
    "query_order",
    "request_return",
    "request_exchange",
    "report_fault",
    "request_installation",
)
TICKET_NEXT_STEPS = ("query_ticket_status", "leave_message")
ACTION_LISTEN = "action_listen"
MIN_REQUEST_CONFIDENCE = 0.1
"""How sure the NLU must be of a request read beside an order number it took for an inform."""


def missed_just_before(tracker: Tracker) -> bool:
    """Whether the customer's previous message also went unrecognised.

    The fallback action rewinds the message it could not place, so "the turn before" is
    simply: going back from the current message past one ``action_listen``, the last action
    the bot ran was the fallback itself.
    """
    seen_current_message = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user" and not seen_current_message:
            seen_current_message = True
        elif kind == "action" and seen_current_message:
            if event.get("name") == ACTION_LISTEN:
                continue
            return event.get("name") == ActionClarifyFallback.NAME
        elif kind == "user":
            return False
    return False


def _taken_as_answer(tracker: Tracker, intent: str | None) -> bool:
    """Whether the form under way takes the latest message as the answer to its open question:
    the question's slot maps from any text of this intent (domain.yml), for this form."""
    form, asked = tracker.active_loop.get("name"), tracker.get_slot("requested_slot")
    slot = project_domain()["slots"].get(str(asked)) or {}
    for mapping in slot.get("mappings") or []:
        if mapping.get("type") != "from_text" or intent in (mapping.get("not_intent") or []):
            continue
        if mapping.get("intent") and intent not in mapping["intent"]:
            continue
        conditions = mapping.get("conditions") or [{"active_loop": form}]
        if any(
            c.get("active_loop") == form and c.get("requested_slot", asked) == asked
            for c in conditions
        ):
            return True
    return False


class ActionReplyOffTopic(Action):
    """An off-topic or unclear message during a form.  When the open question takes any
    words ("重新上门" or "道歉加补偿" as what a complainant wants, an unusual fault), the form
    takes it and nothing is said here ("没明白您的意思" next to "记下了" contradicted
    itself); otherwise the usual reply, and the form asks its question again."""

    def name(self) -> str:
        return "action_reply_off_topic"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if not _taken_as_answer(tracker, intent):
            reply = "utter_out_of_scope" if intent == "out_of_scope" else "utter_default"
            dispatcher.utter_message(response=reply)
        return []


class ActionAcknowledge(Action):
    """A plain yes with nothing asked ("好吧 那我等着") is acknowledged; one that adds to the
    ticket just opened ("对了 它外机还有很大的噪音", which the classifier may read as a yes) is
    added to that ticket (QA: "好的。还有别的需要…" and nothing noted)."""

    def name(self) -> str:
        return "action_acknowledge"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        detail_for = ticket_a_detail_adds_to(tracker, None)
        if detail_for is not None:
            return add_detail_to_ticket(detail_for, tracker, default_desk(), dispatcher)
        dispatcher.utter_message(response="utter_affirm_ack")
        return []


class ActionClarifyFallback(Action):
    """First miss: suggest the likeliest intents; a second miss: offer a ticket or a person."""

    NAME = "action_clarify_fallback"

    def name(self) -> str:
        return self.NAME

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        detail_for = ticket_a_detail_adds_to(tracker, None)
        if detail_for is not None:
            # "对了 它还会自己重启" right after the TV's repair ticket: no riddle, a detail.
            return add_detail_to_ticket(detail_for, tracker, default_desk(), dispatcher)
        if _numbers_only(tracker):
            # "SO20261122011" alone: the classifier is unsure of bare numbers (nlu_fallback at
            # 0.55 for some, inform at 1.0 for others); it is a detail to keep, not a riddle.
            return await ActionNoteDetails().run(dispatcher, tracker, domain)
        answered_before = last_bot_response(tracker) == "utter_kb_answer"
        if (
            looks_like_question(text)
            or _described_in_an_article(text)
            or (answered_before and is_follow_up(text))  # "冰箱的" after "保修期多久啊"
        ):
            answered = await ActionAnswerQuestion().run(dispatcher, tracker, domain)
            if dispatcher.messages and dispatcher.messages[-1].get("response") == "utter_kb_answer":
                return answered
            dispatcher.messages.clear()  # nothing found: clarify instead
        # No answer shown now: a "no" to what follows must not rate an earlier answer.
        forget_answer = [SlotSet("kb_search_id", None), SlotSet("kb_candidates", None)]
        attempt = _ORDER_NO_ATTEMPT.search(text)
        if attempt and not is_valid_order_no(attempt.group(0)):
            # "SO2026110100": an order number with a digit missing, not a riddle.
            dispatcher.utter_message(response="utter_invalid_order_id")
            return [UserUtteranceReverted(), *forget_answer]
        if missed_just_before(tracker):
            dispatcher.utter_message(response="utter_offer_help")
            return [UserUtteranceReverted(), *forget_answer]
        labels = intent_labels()
        ranking = tracker.latest_message.get("intent_ranking") or []
        candidates = [r["name"] for r in ranking if r.get("name") in labels][:CLARIFY_CHOICES]
        buttons = _intent_buttons(candidates, labels)
        none_title = domain.get("responses", {}).get("utter_clarify_none", [{}])[0].get("text")
        buttons.append({"title": none_title or "—", "payload": "/out_of_scope"})
        dispatcher.utter_message(response="utter_clarify", buttons=buttons)
        return [UserUtteranceReverted(), *forget_answer, *_details_kept(tracker)]


class ActionNoteDetails(Action):
    """An order, ticket or phone number with nothing under way ("SO20261101001"): keep it, so
    the request that follows does not ask for it again, and offer what can be done with it.
    A bare detail the bot cannot place (a time, an address) is a miss like any other."""

    def name(self) -> str:
        return "action_note_details"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        form = _request_with_details(tracker)
        if form:
            return [*_details_kept(tracker), FollowupAction(form)]
        found = _numbers_in(tracker)
        if found.get("ticket_id") and last_bot_response(tracker) == "utter_ask_ticket_to_withdraw":
            # "我想撤销之前提交的工单", asked which one: the number answers that question.
            return withdraw_named_ticket(found["ticket_id"], dispatcher, tracker)
        phone = found.get("phone")
        kept: list[EventType] = [SlotSet("phone", phone)] if phone else []
        if found.get("ticket_id"):
            ticket_no = found["ticket_id"]
            response, values, steps = (
                "utter_noted_ticket",
                {"ticket_id": ticket_no},
                TICKET_NEXT_STEPS,
            )
            kept = [SlotSet("ticket_id", ticket_no)]
        elif found.get("order_id"):
            order_no = found["order_id"]
            response, values, steps = "utter_noted_order", {"order_id": order_no}, ORDER_NEXT_STEPS
            kept = [SlotSet("order_id", order_no), *kept]
        elif phone:
            response, values = "utter_noted_phone", {"masked_phone": mask_phone(phone)}
            steps = ORDER_NEXT_STEPS
        else:
            return [FollowupAction(ActionClarifyFallback.NAME)]
        buttons = _intent_buttons(steps, intent_labels())
        dispatcher.utter_message(response=response, buttons=buttons, **values)
        return kept


def _numbers_in(tracker: Tracker) -> dict[str, str]:
    """The order, ticket and phone numbers the NLU found in the latest message, normalised."""
    found = {
        e.get("entity"): str(e.get("value") or "")
        for e in tracker.latest_message.get("entities") or []
    }
    numbers = {
        "order_id": normalise_order_no(found.get("order_id") or ""),
        "ticket_id": normalise_ticket_no(found.get("ticket_id") or ""),
        "phone": normalise_phone(found.get("phone") or "") or "",
    }
    return {slot: value for slot, value in numbers.items() if value}


_NUMBER_LABELS = re.compile(
    r"订单号?|单号|工单号?|手机号?码?|电话号?码?|号码|我的|这个|就是|是|呢|吧|啊"
)
"""What may stand beside a number that is only a number ("我的订单号是SO…", "手机13800138000")."""


def _numbers_only(tracker: Tracker) -> bool:
    """Whether the latest message is an order, ticket or phone number with at most its label
    ("SO…", "订单号是SO…"), not a request ("SO…到哪了", "退货 SO…")."""
    if not _numbers_in(tracker):
        return False
    text = str(tracker.latest_message.get("text") or "")
    numbers = [
        e
        for e in tracker.latest_message.get("entities") or []
        if e.get("entity") in ("order_id", "ticket_id", "phone")
    ]
    return not _NUMBER_LABELS.sub("", words_beyond(text, numbers))


def _request_with_details(tracker: Tracker) -> str | None:
    """The form to start for "我要报修 SO20261110004 13600136000 冰箱咔咔响": the NLU takes a
    message full of numbers for an inform, yet its words ask for a service, the likeliest
    request after the inform.  Numbers alone ask for nothing."""
    if not _numbers_in(tracker).get("order_id") or _numbers_only(tracker):
        return None
    ranking = [
        r
        for r in tracker.latest_message.get("intent_ranking") or []
        if r.get("name") not in ("inform", "nlu_fallback")
    ]
    if ranking and float(ranking[0].get("confidence") or 0) >= MIN_REQUEST_CONFIDENCE:
        return REQUEST_FORMS.get(str(ranking[0].get("name")))
    # The classifier unsure, the words may still ask for exactly one service ("电视报修
    # SO20261103002 13900139000 这周日晚上"; QA: asked "需要办理什么" instead).
    asked = request_named_by_words(str(tracker.latest_message.get("text") or ""))
    return REQUEST_FORMS.get(asked or "")


def _details_kept(tracker: Tracker) -> list[EventType]:
    """The numbers in a message the bot could not place ("扫地机器人到哪了 SO20261118007
    15800158000"): rewinding the message must not lose them, or the request picked next
    asks for them again."""
    return [SlotSet(slot, value) for slot, value in _numbers_in(tracker).items()]


def _intent_buttons(intents: Sequence[str], labels: dict[str, str]) -> list[dict[str, str]]:
    """A button per intent, titled as intent_labels.yml names it, sending the intent itself."""
    return [{"title": labels[name], "payload": f"/{name}"} for name in intents if name in labels]


def _described_in_an_article(text: str) -> bool:
    """A statement an article plainly answers (a symptom: "空调滴水"); best effort."""
    try:
        return default_knowledge_service().answers_confidently(text)
    except KnowledgeUnavailable:
        return False


def ticket_taken_back(tracker: Tracker, text: str) -> str | None:
    """The ticket this chat just opened, when the customer takes the request back: "算了，
    不退了" as the very next message, or later naming the ticket ("把工单取消掉")."""
    opened, messages_since = ticket_opened_in_this_chat(tracker)
    if opened and (messages_since <= 1 or load_request_config().is_about_a_ticket(text)):
        return opened
    return None


def _request_switched_to(text: str) -> str | None:
    """The request a cancelling message asks for instead of one it refuses ("算了不退了，
    换一台吧" → request_exchange); None for a plain "不要了" or an order to cancel."""
    config = load_request_config()
    if config.names_an_order_to_cancel(text):
        return None
    folded = normalise_text(text)
    for intent in config.switch_words:
        refused = (
            word
            for other, other_words in config.switch_words.items()
            if other != intent
            for word in other_words.unless
        )
        if config.names_request(intent, text) and any(word in folded for word in refused):
            return intent
    return None


class ActionCancelOutsideForm(Action):
    """ "算了" with nothing under way: let it go.  "取消预约" asks how to cancel something
    that exists: the knowledge base answers when it is sure.  A ticket taken back is
    withdrawn: this chat's own at once, one named by number once the customer has proved it
    is theirs.  An order is cancelled through order_cancel_form ("帮我取消订单")."""

    def name(self) -> str:
        return "action_cancel_outside_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        named = entity_value(tracker, "ticket_id")
        named = normalise_ticket_no(named) if named else None
        opened, _ = ticket_opened_in_this_chat(tracker)
        if named and named != opened:
            return withdraw_named_ticket(named, dispatcher, tracker)
        switch_to = _request_switched_to(text)
        if switch_to in REQUEST_FORMS:
            # "算了不退了，换一台吧" lets nothing go: it asks for the other request, whose
            # ticket replaces the one taken back when it opens (QA: only "好的" was said).
            return [FollowupAction(REQUEST_FORMS[switch_to])]
        ticket_no = ticket_taken_back(tracker, text)
        if ticket_no:
            return withdraw_ticket(dispatcher, ticket_no)
        if load_request_config().is_about_a_ticket(text):
            # "我想撤销之前提交的工单": which one is needed before anything is withdrawn.
            dispatcher.utter_message(response="utter_ask_ticket_to_withdraw")
            return []
        order_no = entity_value(tracker, "order_id")
        if order_no or load_request_config().names_an_order_to_cancel(text):
            # "拍错了 帮我把订单取消": checked, confirmed, and done if it has not shipped.
            named = [SlotSet("order_id", order_no)] if order_no else []
            return [*named, FollowupAction("order_cancel_form")]
        if load_request_config().names_what_to_cancel(text) and _described_in_an_article(text):
            return await ActionAnswerQuestion().run(dispatcher, tracker, domain)
        dispatcher.utter_message(response="utter_deny_ack")
        return []


def withdraw_named_ticket(
    ticket_no: str, dispatcher: CollectingDispatcher, tracker: Tracker
) -> list[EventType]:
    """A ticket the customer names to take back: this chat's own at once; one from an earlier
    chat for the customer this chat verified, or after the ticket-status form has checked
    the phone on the ticket's order."""
    ticket_no = normalise_ticket_no(ticket_no)
    if ticket_no == ticket_opened_in_this_chat(tracker)[0]:
        return withdraw_ticket(dispatcher, ticket_no)
    if tracker.get_slot("verified_customer"):
        try:
            verified = verified_customer(default_desk(), tracker)
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        if verified is not None:
            withdraw_ticket(dispatcher, ticket_no, verified.customer_id)
            return []  # the ticket_id slot still holds whatever this chat opened
    dispatcher.utter_message(response="utter_ticket_withdraw_needs_identity", ticket_id=ticket_no)
    return [
        SlotSet("ticket_id", ticket_no),
        SlotSet("withdraw_ticket", ticket_no),
        FollowupAction("ticket_status_form"),
    ]


class ActionCancelRequest(Action):
    """ "算了": drop the half-filled request; identity stays verified for the next one."""

    response = "utter_cancelled"

    def name(self) -> str:
        return "action_cancel_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response=self.response)
        return clear_request_slots()


class ActionLeaveRequest(ActionCancelRequest):
    """ "再见" in the middle of a request: the customer is leaving, so the form stops asking,
    and the goodbye says that nothing was sent rather than leaving them to think it was."""

    response = "utter_goodbye_request_unsent"

    def name(self) -> str:
        return "action_leave_request"


class ActionSwitchRequest(Action):
    """ "还是换货吧" at the return reason, "不修了 直接换一台" during a repair, "算了还是修一
    下吧" during a return: the request changes (rules in data/rules.yml start the new form).
    The verified order and product carry over; the reason is asked afresh, except that a
    fault already described for the repair is the reason for the return or exchange, and
    their reason the fault to repair."""

    def name(self) -> str:
        return "action_switch_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        intent = tracker.get_intent_of_latest_message()
        label = intent_labels().get(str(intent), "")
        dispatcher.utter_message(response="utter_request_switched", request_label=label)
        # Whatever the switching message filled (it answered no question of the new form)
        # is dropped; only a fault described before it is carried over as the reason, and a
        # return or exchange reason ("画面有条竖线") as the fault to repair.
        fault = value_before_latest_message(tracker, "fault_description")
        if intent == "report_fault":
            reason = value_before_latest_message(tracker, "request_reason")
            return [SlotSet("fault_description", reason or None), SlotSet("request_reason", None)]
        return [SlotSet("request_reason", fault or None)]
