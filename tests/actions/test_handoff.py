"""action_escalate (queue and pause, or a promised call-back) and the satisfaction survey."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.handoff import (
    ActionEscalate,
    ActionLeaveQueue,
    ActionSaveCsat,
    ValidateCsatForm,
    parse_csat_score,
)
from actions.tickets import OPEN_TICKET_ACTIONS
from bot.handoff.accounts import AgentAccounts
from bot.handoff.service import HandoffService
from bot.store.db import session_scope
from bot.store.models import CsatResponse, Handoff
from tests.actions.conftest import make_tracker, responses

# A Wednesday, 10:00 in Shanghai: inside business hours.
OPEN = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)
# The same Wednesday, 23:00 in Shanghai: closed.
CLOSED = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)
VERIFIED = {
    "order_id": "SO20261101001",
    "phone": "13800138000",
    "verified_customer": "SO20261101001",
}
VERIFIED_PAIR = ("SO20261101001", "13800138000")
RICE_COOKER_ORDER = {  # Zhang's other order: no ticket under way (the washer has one)
    "order_id": "SO20261120009",
    "phone": "13800138000",
    "verified_customer": "SO20261120009",
}


def run(action, tracker, domain):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain))
    return dispatcher, events


@pytest.fixture
def clock() -> dict:
    return {"now": OPEN}


@pytest.fixture
def handoffs(demo_factory, desk, clock, monkeypatch: pytest.MonkeyPatch) -> HandoffService:
    service = HandoffService(demo_factory, clock=lambda: clock["now"])
    monkeypatch.setattr("actions.handoff.handoff_service", lambda: service)
    monkeypatch.setattr("actions.tickets.default_handoff_service", lambda: service)
    monkeypatch.setattr("actions.handoff.session_factory", lambda: demo_factory)
    return service


@pytest.fixture
def agent_online(demo_factory, clock) -> None:
    accounts = AgentAccounts(demo_factory, clock=lambda: clock["now"])
    agent = accounts.create_agent("online1", "小周", "agent", "a-long-enough-password")
    accounts.open_session(agent.id)


def open_handoffs(factory) -> list[Handoff]:
    with session_scope(factory) as session:
        rows = session.execute(select(Handoff)).scalars().all()
        session.expunge_all()
        return rows


def test_with_an_agent_online_the_chat_is_queued_and_the_bot_pauses(
    handoffs, agent_online, demo_factory, domain
) -> None:
    slots = {"escalation_trigger": "sentiment_escalate", "escalation_reasons": ["anger"]}
    dispatcher, events = run(ActionEscalate(), make_tracker(slots, channel="webchat"), domain)
    assert responses(dispatcher) == ["utter_handoff_queued_next"]
    assert dispatcher.messages[0]["queue_ahead"] == 0
    assert dispatcher.messages[0]["wait_minutes"] >= 1
    assert {"event": "pause", "timestamp": None} in events
    (handoff,) = open_handoffs(demo_factory)
    assert (handoff.status, handoff.trigger, handoff.channel) == (
        "waiting",
        "sentiment_escalate",
        "webchat",
    )
    assert list(handoff.reasons) == ["anger"]
    cleared = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert cleared["escalation_trigger"] is None


def test_a_waiting_customer_who_will_not_wait_gets_the_bot_back(
    handoffs, agent_online, demo_factory, domain
) -> None:
    run(ActionEscalate(), make_tracker(intent="request_human", channel="webchat"), domain)
    waiting = make_tracker(
        {"active_loop": "repair_form", "requested_slot": "address"},
        text="算了 不等了",
        intent="cancel",
        channel="webchat",
    )
    dispatcher, events = run(ActionLeaveQueue(), waiting, domain)
    assert responses(dispatcher) == ["utter_handoff_left_queue"]
    assert {"event": "resume", "timestamp": None} in events
    assert {"event": "active_loop", "name": None, "timestamp": None} in events
    (handoff,) = open_handoffs(demo_factory)
    assert (handoff.status, handoff.ended_at is not None) == ("handed_back", True)
    # Asked again (nothing waits now): the bot, already back, says nothing more.
    dispatcher, events = run(ActionLeaveQueue(), waiting, domain)
    assert (responses(dispatcher), events) == ([], [])


def test_leave_a_message_instead_of_waiting_starts_the_message_form(
    handoffs, agent_online, domain
) -> None:
    run(ActionEscalate(), make_tracker(intent="request_human", channel="webchat"), domain)
    tapped = make_tracker(text="/leave_message", intent="leave_message", channel="webchat")
    dispatcher, events = run(ActionLeaveQueue(), tapped, domain)
    assert responses(dispatcher) == ["utter_handoff_left_queue_for_message"]
    assert {"event": "followup", "name": "message_form", "timestamp": None} in events


def test_once_an_agent_has_the_chat_leaving_words_are_theirs_to_read(
    handoffs, agent_online, demo_factory, domain
) -> None:
    run(ActionEscalate(), make_tracker(intent="request_human", channel="webchat"), domain)
    (handoff,) = open_handoffs(demo_factory)
    accounts = AgentAccounts(demo_factory, clock=lambda: OPEN)
    handoffs.claim(handoff.id, accounts.by_username("online1").id)
    tracker = make_tracker(text="算了 不等了", intent="cancel", channel="webchat")
    dispatcher, events = run(ActionLeaveQueue(), tracker, domain)
    assert (responses(dispatcher), events) == ([], [])
    assert open_handoffs(demo_factory)[0].status == "active"


@pytest.mark.parametrize("online", [True, False])
def test_a_safety_risk_gets_safety_advice_first(
    handoffs, demo_factory, domain, online: bool, request: pytest.FixtureRequest
) -> None:
    if online:
        request.getfixturevalue("agent_online")
    slots = {"escalation_trigger": "sentiment_escalate", "escalation_reasons": ["safety"]}
    tracker = make_tracker(slots, text="热水器漏电了", channel="webchat")
    dispatcher, _ = run(ActionEscalate(), tracker, domain)
    said = responses(dispatcher)
    assert said[0] == "utter_safety_first"
    assert said[1] == ("utter_handoff_queued_next" if online else "utter_handoff_offline")


def test_a_second_escalation_of_the_same_chat_does_not_queue_it_twice(
    handoffs, agent_online, demo_factory, domain
) -> None:
    run(ActionEscalate(), make_tracker(intent="request_human", channel="webchat"), domain)
    again = make_tracker(intent="request_human", channel="webchat")
    dispatcher, _ = run(ActionEscalate(), again, domain)
    assert responses(dispatcher) == ["utter_handoff_queued_next"]
    assert len(open_handoffs(demo_factory)) == 1


def test_the_second_in_line_hears_how_many_are_ahead(handoffs, agent_online, domain) -> None:
    first = make_tracker(intent="request_human", channel="webchat", sender_id="first")
    run(ActionEscalate(), first, domain)
    second = make_tracker(intent="request_human", channel="webchat", sender_id="second")
    dispatcher, _ = run(ActionEscalate(), second, domain)
    assert responses(dispatcher) == ["utter_handoff_queued"]
    assert dispatcher.messages[0]["queue_ahead"] == 1


def test_a_chat_an_agent_could_not_answer_gets_a_call_back(
    handoffs, agent_online, demo_factory, domain
) -> None:
    """QA: a customer on the plain REST webhook was queued for a person whose replies could
    never reach them (every agent message failed with 502)."""
    dispatcher, events = run(ActionEscalate(), make_tracker(intent="request_human"), domain)
    assert responses(dispatcher)[0].startswith("utter_handoff_")
    assert not {"utter_handoff_queued", "utter_handoff_queued_next"} & set(responses(dispatcher))
    assert {"event": "pause", "timestamp": None} not in events
    (handoff,) = open_handoffs(demo_factory)
    assert (handoff.channel, handoff.status) == ("rest", "callback")


def test_a_message_taken_down_after_a_threat_runs_on_the_emotional_clock(
    handoffs, desk, clock, domain
) -> None:
    """ "骗子…再不处理我就打12315" with nobody online, then the message "退款半个月了还没到":
    the message's ticket was a plain inquiry; it is the upset customer's call-back."""
    clock["now"] = CLOSED
    slots = {"escalation_trigger": "sentiment_escalate", "escalation_reasons": ["threat"]}
    tracker = make_tracker(slots, text="你们是不是骗子 再不处理我就打12315", sender_id="angry")
    run(ActionEscalate(), tracker, domain)
    message = next(cls() for cls in OPEN_TICKET_ACTIONS if cls().kind == "message")
    answers = {**VERIFIED, "request_reason": "退了个洗衣机 退款半个月了还没到"}
    dispatcher, _ = run(message, make_tracker(answers, sender_id="angry"), domain)
    ticket = desk.tickets.timeline(dispatcher.messages[0]["ticket_id"])
    assert ticket.need_class == "emotional"
    calm = {**VERIFIED, "request_reason": "想问下以旧换新怎么弄"}
    dispatcher, _ = run(message, make_tracker(calm, sender_id="calm"), domain)
    assert desk.tickets.timeline(dispatcher.messages[0]["ticket_id"]).need_class == "normal"


def test_a_person_asked_for_by_button_calls_back_about_what_was_typed_before(
    handoffs, desk, demo_factory, domain
) -> None:
    """QA: "转人工客服" under "撤不了" opened a call-back ticket with nothing in it."""
    tracker = make_tracker(VERIFIED, text="/request_human", intent="request_human")
    typed = "工單T20261120-0001幫我取消掉"
    tracker.events = [
        {"event": "user", "text": typed},
        {"event": "bot", "text": "工单已经有专员在处理了，我这边撤不了。"},
        *tracker.events,
    ]
    dispatcher, _ = run(ActionEscalate(), tracker, domain)
    ticket = desk.tickets.timeline(dispatcher.messages[0]["ticket_id"])
    assert ticket.details == {"客户原话": typed}


def test_nobody_online_a_verified_customer_gets_a_ticket_and_call_back_time(
    handoffs, desk, demo_factory, domain
) -> None:
    tracker = make_tracker(VERIFIED, text="我要找人工 说了半天没用", intent="request_human")
    dispatcher, events = run(ActionEscalate(), tracker, domain)
    assert responses(dispatcher) == ["utter_handoff_callback"]
    ticket_no = dispatcher.messages[0]["ticket_id"]
    ticket = desk.tickets.timeline(ticket_no)
    assert (ticket.category, ticket.need_class) == ("inquiry", "normal")
    # whoever calls back reads what the customer asked for
    assert ticket.details == {"客户原话": "我要找人工 说了半天没用"}
    assert dispatcher.messages[0]["callback_due"]
    assert not any(e["event"] == "pause" for e in events)
    (handoff,) = open_handoffs(demo_factory)
    assert handoff.status == "callback" and handoff.ticket_no == ticket_no


def test_asking_again_while_a_call_back_is_owed_restates_it_without_a_second_ticket(
    handoffs, desk, demo_factory, clock, domain
) -> None:
    clock["now"] = CLOSED
    first, _ = run(
        ActionEscalate(), make_tracker(VERIFIED, text="转人工", intent="request_human"), domain
    )
    ticket_no = first.messages[0]["ticket_id"]
    again = make_tracker(VERIFIED, text="你们什么时候来人", intent="request_human")
    dispatcher, events = run(ActionEscalate(), again, domain)
    assert responses(dispatcher) == ["utter_handoff_callback_pending"]
    assert dispatcher.messages[0]["ticket_id"] == ticket_no
    assert dispatcher.messages[0]["callback_due"] == first.messages[0]["callback_due"]
    assert not any(e.get("name") == "handoff_followup" for e in events)
    (handoff,) = open_handoffs(demo_factory)
    assert handoff.ticket_no == ticket_no


@pytest.mark.parametrize(
    ("reasons", "text", "category", "need_class"),
    [
        (["safety"], "热水器外壳有点麻手 是不是漏电", "repair", "urgent"),
        (["anger"], "你们这服务太气人了！！", "inquiry", "emotional"),
    ],
    ids=["safety", "anger"],
)
def test_nobody_online_the_call_back_ticket_runs_on_the_escalations_clock(
    handoffs, desk, domain, reasons: list[str], text: str, category: str, need_class: str
) -> None:
    """A safety risk reported at night is an urgent repair ticket, anger an emotional one:
    their first-response and plan deadlines are the short ones, not a plain inquiry's."""
    slots = {**VERIFIED, "escalation_trigger": "sentiment_escalate", "escalation_reasons": reasons}
    dispatcher, _ = run(ActionEscalate(), make_tracker(slots, text=text), domain)
    callback = next(m for m in dispatcher.messages if m["response"] == "utter_handoff_callback")
    ticket = desk.tickets.timeline(callback["ticket_id"])
    assert (ticket.category, ticket.need_class) == (category, need_class)
    assert ticket.details == {"客户原话": text}
    plain = desk.open_request("human", desk.verify_identity(*VERIFIED_PAIR), {}, None, "rest")
    assert ticket.deadlines.plan - ticket.created_at < plain.deadlines.plan - plain.created_at


def test_a_button_payload_is_not_taken_for_the_customers_words(handoffs, desk, domain) -> None:
    tracker = make_tracker(VERIFIED, text="/request_human", intent="request_human")
    dispatcher, _ = run(ActionEscalate(), tracker, domain)
    assert desk.tickets.timeline(dispatcher.messages[0]["ticket_id"]).details == {}


def test_nobody_online_in_the_middle_of_a_form_the_forms_ticket_is_the_call_backs(
    handoffs, desk, demo_factory, domain
) -> None:
    """A VIP with an open ticket asking for help while booking: no second ticket is made;
    the booking's ticket, once the form opens it, is the one the call-back is about."""
    in_form = make_tracker({**VERIFIED, "active_loop": "repair_form"}, intent="request_human")
    dispatcher, events = run(ActionEscalate(), in_form, domain)
    assert responses(dispatcher) == ["utter_handoff_offline"]
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert "ticket_id" not in slots and "handoff_followup" not in slots
    (handoff,) = open_handoffs(demo_factory)
    assert handoff.status == "callback" and handoff.ticket_no is None

    promised = dispatcher.messages[0]["callback_due"]

    repair = next(cls() for cls in OPEN_TICKET_ACTIONS if cls().kind == "repair")
    answers = {**RICE_COOKER_ORDER, "product": "电饭煲", "fault_description": "底部漏水 报E3"}
    dispatcher, events = run(repair, make_tracker(answers), domain)
    ticket_no = dispatcher.messages[0]["ticket_id"]
    (handoff,) = open_handoffs(demo_factory)
    assert handoff.ticket_no == ticket_no
    # one promise in one chat: the ticket's "we will contact you by" is the call-back time
    assert dispatcher.messages[0]["first_response_due"] == promised


def test_an_outburst_that_filled_the_forms_open_question_is_asked_again(
    handoffs, desk, domain
) -> None:
    """The form runs after this action, not after the message, so it never checks what the
    message put into its free-text question: that answer is cleared and asked again."""
    outburst = "你们到底行不行啊！！"
    at_address = make_tracker(
        {
            **VERIFIED,
            "active_loop": "installation_form",
            "requested_slot": "address",
            "address": outburst,
        },
        text=outburst,
        intent="complain",
    )
    _, events = run(ActionEscalate(), at_address, domain)
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["address"] is None
    # an answer given earlier is kept
    earlier = make_tracker(
        {
            **VERIFIED,
            "active_loop": "installation_form",
            "requested_slot": "appointment_date",
            "address": "北京市朝阳区建国路88号",
        },
        text=outburst,
        intent="complain",
    )
    _, events = run(ActionEscalate(), earlier, domain)
    assert "address" not in {e["name"] for e in events if e["event"] == "slot"}
    # at the message question, the customer's words are the message, upset or not
    complaint = "我要投诉你们送货慢"
    at_message = make_tracker(
        {
            "active_loop": "message_form",
            "requested_slot": "request_reason",
            "request_reason": complaint,
        },
        text=complaint,
        intent="complain",
    )
    _, events = run(ActionEscalate(), at_message, domain)
    assert "request_reason" not in {e["name"] for e in events if e["event"] == "slot"}


def test_a_second_complaint_in_the_chat_is_added_to_the_first(
    handoffs, desk, clock, domain
) -> None:
    """ "他把我家地板刮花了还骂人" after the complaint ticket opened: one ticket, more detail."""
    clock["now"] = CLOSED
    verified = desk.verify_identity(*VERIFIED_PAIR)
    first = desk.open_request(
        "complaint",
        verified,
        {"complaint_detail": "送货师傅态度太差", "complaint_expectation": "道歉"},
        "test-user",
        "rest",
    )
    more = "他把我家地板刮花了还骂人"
    tracker = make_tracker(VERIFIED, text=more, intent="complain")
    tracker.events = [
        {"event": "user", "text": "我要投诉"},
        {"event": "action", "name": "action_open_complaint_ticket"},
        {"event": "slot", "name": "ticket_id", "value": first.ticket_no},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": more},
    ]
    dispatcher, events = run(ActionEscalate(), tracker, domain)
    assert responses(dispatcher) == ["utter_complaint_added"]
    assert dispatcher.messages[0]["ticket_id"] == first.ticket_no
    assert not any(e.get("name") == "handoff_followup" for e in events)
    notes = [e.note for e in desk.tickets.timeline(first.ticket_no).events]
    assert f"客户补充：{more}" in notes
    # with no complaint taken down yet, the complaint form takes it
    fresh = make_tracker(VERIFIED, text=more, intent="complain")
    _, events = run(ActionEscalate(), fresh, domain)
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"}[
        "handoff_followup"
    ] == "complaint_form"


def test_a_call_back_from_an_earlier_conversation_session_is_not_linked(
    handoffs, desk, demo_factory, clock, domain
) -> None:
    in_form = make_tracker({**VERIFIED, "active_loop": "repair_form"}, intent="request_human")
    run(ActionEscalate(), in_form, domain)
    minutes = domain["session_config"]["session_expiration_time"]
    clock["now"] = OPEN + timedelta(minutes=minutes + 1)
    repair = next(cls() for cls in OPEN_TICKET_ACTIONS if cls().kind == "repair")
    answers = {**RICE_COOKER_ORDER, "product": "电饭煲", "fault_description": "底部漏水 报E3"}
    dispatcher, _ = run(repair, make_tracker(answers), domain)
    assert responses(dispatcher)[0] == "utter_ticket_opened"
    (handoff,) = open_handoffs(demo_factory)
    assert handoff.status == "callback" and handoff.ticket_no is None


VIP_WITH_OPEN_TICKET = {
    "order_id": "SO20261105003",
    "phone": "13700137000",
    "verified_customer": "SO20261105003",
    "escalation_trigger": "vip_open_ticket",
}


def test_nobody_online_a_vip_question_gets_a_call_back_ticket_and_still_its_answer(
    handoffs, desk, demo_factory, domain
) -> None:
    tracker = make_tracker(VIP_WITH_OPEN_TICKET, text="退货要运费吗", intent="ask_question")
    dispatcher, events = run(ActionEscalate(), tracker, domain)
    assert responses(dispatcher) == ["utter_handoff_callback"]
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["handoff_followup"] == "action_answer_question"
    (handoff,) = open_handoffs(demo_factory)
    assert handoff.ticket_no == slots["ticket_id"]


def test_nobody_online_a_vip_repair_request_runs_its_form_and_no_second_ticket(
    handoffs, desk, demo_factory, domain
) -> None:
    vip = desk.verify_identity("SO20261105003", "13700137000").customer_id
    before = len(desk.tickets.tickets_for_customer(vip))
    tracker = make_tracker(VIP_WITH_OPEN_TICKET, text="热水器不出热水了", intent="report_fault")
    dispatcher, events = run(ActionEscalate(), tracker, domain)
    assert responses(dispatcher) == ["utter_handoff_offline"]
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["handoff_followup"] == "repair_form" and "ticket_id" not in slots
    assert len(desk.tickets.tickets_for_customer(vip)) == before  # the form's ticket will do


@pytest.mark.parametrize(
    ("reasons", "intent", "followup"),
    [
        (["strong_negative"], "request_return", "return_form"),
        (["anger"], "report_fault", "repair_form"),
        (["safety"], "report_fault", "message_form"),  # a danger is taken down at once
        (["safety"], "complain", "message_form"),  # …even when the NLU calls it a complaint
        (["anger"], "query_order", "message_form"),  # a lookup promises nothing to call about
    ],
)
def test_nobody_online_an_upset_customers_request_still_runs_its_form(
    handoffs, desk, clock, domain, reasons, intent, followup
) -> None:
    """ "我要退货…用了一个月就坏了，質量太差": the call-back is promised and the return is
    taken down by its own form, not as a message the customer has to write again."""
    clock["now"] = CLOSED
    tracker = make_tracker(
        {"escalation_trigger": "sentiment_escalate", "escalation_reasons": reasons},
        text="我要退货 用了一个月就坏了 質量太差",
        intent=intent,
    )
    dispatcher, events = run(ActionEscalate(), tracker, domain)
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["handoff_followup"] == followup
    assert "utter_handoff_offline" in responses(dispatcher)


@pytest.mark.parametrize(
    ("text", "followup"), [("洗衣机又坏了", "repair_form"), ("又来了 烦死了", "message_form")]
)
def test_nobody_online_the_words_of_a_request_the_classifier_missed_still_run_its_form(
    handoffs, desk, clock, domain, text, followup
) -> None:
    """QA: "洗衣机又坏了" (nlu_fallback, repeated failure) was asked "请留下您的问题" instead
    of taking down the repair."""
    clock["now"] = CLOSED
    tracker = make_tracker(
        {"escalation_trigger": "sentiment_escalate", "escalation_reasons": ["repeated_failure"]},
        text=text,
        intent="nlu_fallback",
    )
    _, events = run(ActionEscalate(), tracker, domain)
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["handoff_followup"] == followup


def test_nobody_online_a_complaint_chasing_one_made_before_looks_it_up(
    handoffs, desk, clock, domain
) -> None:
    """QA: "冰箱投诉的那个单子到现在都没人理我" ran the complaint form, which looped on
    "您希望我们怎么处理？"; the complaint exists and is looked up (and chased) instead."""
    clock["now"] = CLOSED
    slots = {"escalation_trigger": "complaint", "escalation_reasons": ["complaint"]}
    tracker = make_tracker(slots, text="冰箱投诉的那个单子到现在都没人理我", intent="complain")
    dispatcher, events = run(ActionEscalate(), tracker, domain)
    followup = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert followup["handoff_followup"] == "ticket_status_form"
    assert responses(dispatcher) == ["utter_handoff_offline"]
    # a new complaint is still taken down
    tracker = make_tracker(slots, text="我要投诉了 师傅把地板刮花了", intent="complain")
    _, events = run(ActionEscalate(), tracker, domain)
    followup = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert followup["handoff_followup"] == "complaint_form"


def test_out_of_hours_an_anonymous_customer_is_asked_to_leave_a_message(
    handoffs, agent_online, clock, domain
) -> None:
    clock["now"] = CLOSED
    dispatcher, events = run(ActionEscalate(), make_tracker(intent="request_human"), domain)
    assert responses(dispatcher) == ["utter_handoff_offline"]
    followup = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert followup["handoff_followup"] == "message_form"


def test_nobody_online_a_complaint_is_taken_down_by_the_complaint_form(handoffs, domain) -> None:
    dispatcher, events = run(ActionEscalate(), make_tracker(intent="complain"), domain)
    assert responses(dispatcher) == ["utter_complaint_ack"]
    followup = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert followup["handoff_followup"] == "complaint_form"


def test_a_complaint_during_a_lookup_offline_leaves_the_lookup_for_the_complaint_form(
    handoffs, domain
) -> None:
    """ "你们太慢了吧 气死了" while the order-status form asks for the order: that form opens no
    ticket, so it stops and the complaint form takes the complaint down as promised."""
    looking_up = {"active_loop": "order_status_form", "requested_slot": "order_id"}
    tracker = make_tracker(looking_up, text="你们太慢了吧 气死了", intent="complain")
    dispatcher, events = run(ActionEscalate(), tracker, domain)
    assert responses(dispatcher) == ["utter_complaint_ack"]
    assert [e["name"] for e in events if e["event"] == "active_loop"] == [None]
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["handoff_followup"] == "complaint_form" and slots["requested_slot"] is None


def test_an_angry_complaint_offline_is_taken_down_by_the_complaint_form(handoffs, domain) -> None:
    """The message escalated on its sentiment (that trigger wins the tie with "complaint"),
    yet it is a complaint: the complaint form takes it down, not the message form."""
    text = "我要投诉 你们送货员把我家门撞坏了"
    tracker = make_tracker(
        {"escalation_trigger": "sentiment_escalate"}, text=text, intent="complain"
    )
    dispatcher, events = run(ActionEscalate(), tracker, domain)
    assert responses(dispatcher) == ["utter_complaint_ack"]
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["handoff_followup"] == "complaint_form"


def test_an_unreadable_score_is_asked_again(domain) -> None:
    dispatcher = CollectingDispatcher()
    result = ValidateCsatForm().validate_csat_score("打几分啊", dispatcher, make_tracker(), domain)
    assert result == {"csat_score": None}
    assert responses(dispatcher) == ["utter_csat_invalid_score"]


@pytest.mark.parametrize(
    ("text", "intent", "taken_up_by"),
    [
        ("不想评", "deny", None),
        ("我的扫地机器人现在到哪了", "query_order", "order_status_form"),
        ("转人工", "request_human", "action_escalate"),
        ("我要退货", "request_return", "return_form"),
    ],
)
def test_anything_but_a_score_ends_the_survey_and_is_taken_up(
    domain, text, intent, taken_up_by
) -> None:
    """QA: every message after the survey got "请选择 1 到 5 颗星" again; there was no way
    out, not even asking for a person."""
    survey = ValidateCsatForm()
    dispatcher = CollectingDispatcher()
    asked = make_tracker({"requested_slot": "csat_score"}, text=text, intent=intent)
    result = survey.validate_csat_score(text, dispatcher, asked, domain)
    assert result == {"csat_score": "skipped", "csat_comment": ""} and dispatcher.messages == []
    skipped = make_tracker({"csat_score": "skipped"}, text=text, intent=intent)
    remaining = asyncio.run(
        survey.required_slots(["csat_score", "csat_comment"], dispatcher, skipped, domain)
    )
    assert remaining == []
    dispatcher, events = run(ActionSaveCsat(), skipped, domain)
    assert responses(dispatcher) == ["utter_csat_skipped"]
    assert [e["name"] for e in events if e["event"] == "followup"] == (
        [taken_up_by] if taken_up_by else []
    )


def test_the_survey_answer_is_stored_against_the_closed_chat(
    handoffs, agent_online, demo_factory, domain
) -> None:
    run(ActionEscalate(), make_tracker(intent="request_human", channel="webchat"), domain)
    (handoff,) = open_handoffs(demo_factory)
    agent = AgentAccounts(demo_factory).by_username("online1")
    handoffs.claim(handoff.id, agent.id)
    handoffs.close(handoff.id, agent.id)
    tracker = make_tracker({"csat_score": "4", "csat_comment": "师傅很专业"}, channel="webchat")
    dispatcher, events = run(ActionSaveCsat(), tracker, domain)
    assert responses(dispatcher) == ["utter_csat_thanks"]
    with session_scope(demo_factory) as session:
        (row,) = session.execute(select(CsatResponse)).scalars().all()
        assert (row.score, row.comment, row.sender_id) == (4, "师傅很专业", "test-user")
        assert row.handoff_id == handoff.id
    assert {"event": "slot", "name": "csat_score", "value": None, "timestamp": None} in events


@pytest.mark.parametrize(
    ("answer", "score"),
    [("5", 5), ("★★★", 3), ("非常满意", 5), ("不满意", 2), ("满意", 4), ("9", None), ("嗯", None)],
)
def test_survey_scores_from_buttons_digits_stars_and_words(answer: str, score) -> None:
    assert parse_csat_score(answer) == score
