"""Fallback and cancel."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.conversation import (
    ActionAcknowledge,
    ActionCancelOutsideForm,
    ActionCancelRequest,
    ActionClarifyFallback,
    ActionLeaveRequest,
    ActionNoteDetails,
    ActionReplyOffTopic,
    ActionSwitchRequest,
    intent_labels,
)
from actions.tickets import ActionShowTicketStatus, ticket_a_detail_adds_to
from tests.actions.conftest import make_tracker, responses

RANKING = [
    {"name": "nlu_fallback", "confidence": 0.6},
    {"name": "request_return", "confidence": 0.3},
    {"name": "greet", "confidence": 0.05},
    {"name": "query_order", "confidence": 0.04},
]


def run(action, tracker, domain):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain))
    return dispatcher, events


def with_events(tracker, events):
    tracker.events = events
    return tracker


VERIFIED = {
    "order_id": "SO20261101001",
    "phone": "13800138000",
    "verified_customer": "SO20261101001",
}
USER = {"event": "user", "text": "那个东西"}
LISTEN = {"event": "action", "name": "action_listen"}
FALLBACK = {"event": "action", "name": "action_clarify_fallback"}
REWIND = {"event": "rewind"}


def test_a_mistyped_order_number_gets_the_format_not_guesses(knowledge, domain) -> None:
    """QA: "SO2026110100" (a digit short) got 申请换货 / 查询工单进度 as guesses."""
    tracker = make_tracker(text="SO2026110100", intent="nlu_fallback", ranking=RANKING)
    dispatcher, events = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_invalid_order_id"]
    assert events[0]["event"] == "rewind"


def test_first_miss_suggests_the_likeliest_service_intents(knowledge, domain) -> None:
    tracker = make_tracker(
        {"kb_search_id": 7, "kb_candidates": ["invoice"]},
        text="那个东西",
        intent="nlu_fallback",
        ranking=RANKING,
    )
    dispatcher, events = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_clarify"]
    payloads = [b["payload"] for b in dispatcher.messages[0]["buttons"]]
    # Only intents with a customer-facing label are offered (not greet), plus "none of these".
    assert payloads == ["/request_return", "/query_order", "/out_of_scope"]
    titles = [b["title"] for b in dispatcher.messages[0]["buttons"]]
    assert titles[0] == intent_labels()["request_return"]
    assert events[0]["event"] == "rewind"
    # A "no" to these suggestions must not rate (and follow up) the earlier answer.
    assert {e["name"]: e["value"] for e in events[1:]} == {
        "kb_search_id": None,
        "kb_candidates": None,
    }


def test_second_miss_in_a_row_offers_a_ticket_or_a_person(knowledge, domain) -> None:
    tracker = make_tracker(intent="nlu_fallback", ranking=RANKING)
    with_events(
        tracker, [LISTEN, USER, FALLBACK, {"event": "bot", "text": "?"}, REWIND, LISTEN, USER]
    )
    dispatcher, events = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_offer_help"]
    assert [e["event"] for e in events] == ["rewind", "slot", "slot"]


def test_a_recognised_message_in_between_starts_counting_again(domain) -> None:
    tracker = make_tracker(intent="nlu_fallback", ranking=RANKING)
    greet = {"event": "user", "text": "你好"}
    with_events(
        tracker,
        [
            LISTEN,
            USER,
            FALLBACK,
            REWIND,
            LISTEN,
            greet,
            {"event": "action", "name": "utter_greet"},
            LISTEN,
            USER,
        ],
    )
    dispatcher, _ = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_clarify"]


def test_cancel_clears_the_request_but_keeps_identity(domain) -> None:
    dispatcher, events = run(ActionCancelRequest(), make_tracker({"request_reason": "x"}), domain)
    assert responses(dispatcher) == ["utter_cancelled"]
    cleared = {e["name"] for e in events}
    assert "request_reason" in cleared and "order_id" not in cleared


def test_goodbye_mid_request_says_nothing_was_sent(domain) -> None:
    dispatcher, events = run(ActionLeaveRequest(), make_tracker({"product": "冰箱"}), domain)
    assert responses(dispatcher) == ["utter_goodbye_request_unsent"]
    assert "product" in {e["name"] for e in events}
    assert "没有提交" in domain["responses"]["utter_goodbye_request_unsent"][0]["text"]


def test_an_unplaced_message_that_reads_like_a_question_is_answered_from_the_kb(
    knowledge, domain
) -> None:
    tracker = make_tracker(text="退货的运费谁来出呢", intent="nlu_fallback", ranking=RANKING)
    dispatcher, events = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_kb_answer"]
    assert not any(e["event"] == "rewind" for e in events)


def test_an_unplaced_symptom_an_article_plainly_answers_gets_that_answer(knowledge, domain):
    tracker = make_tracker(text="冰箱晚上嗡嗡响吵得睡不着", intent="nlu_fallback", ranking=RANKING)
    dispatcher, events = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_kb_answer"]
    assert "冰箱" in dispatcher.messages[0]["title"]


def test_the_product_named_after_an_answer_asks_the_same_question_about_it(knowledge, domain):
    """QA: "保修期多久啊" was answered, then "冰箱的" got "不太确定您的意思"."""
    tracker = make_tracker(text="冰箱的", intent="inform", ranking=RANKING)
    answered = {"event": "bot", "metadata": {"utter_action": "utter_kb_answer"}}
    tracker.events[:0] = [{"event": "user", "text": "保修期多久啊"}, answered]
    dispatcher, _ = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_kb_answer"]
    assert "保修" in dispatcher.messages[0]["title"]
    alone = make_tracker(text="冰箱的", intent="inform", ranking=RANKING)
    dispatcher, _ = run(ActionClarifyFallback(), alone, domain)
    assert responses(dispatcher) == ["utter_clarify"]


def test_an_unanswerable_question_still_gets_the_clarifying_suggestion(knowledge, domain):
    tracker = make_tracker(text="你们卖二手车吗", intent="nlu_fallback", ranking=RANKING)
    dispatcher, _ = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_clarify"]


def test_cancelling_with_nothing_under_way_is_let_go(knowledge, domain) -> None:
    for text in ("算了", "取消吧", "我改主意了 不要了"):
        dispatcher, events = run(ActionCancelOutsideForm(), make_tracker(text=text), domain)
        assert responses(dispatcher) == ["utter_deny_ack"], text
        assert events == []


def test_taking_back_one_request_for_another_starts_the_other(knowledge, domain) -> None:
    """QA: "算了不退了，换一台吧" after a return ticket got only "好的"; it asks for an
    exchange (whose ticket replaces the return when it opens)."""
    tracker = make_tracker(text="算了不退了，换一台吧", intent="cancel")
    dispatcher, events = run(ActionCancelOutsideForm(), tracker, domain)
    assert dispatcher.messages == []
    assert events == [{"event": "followup", "name": "exchange_form", "timestamp": None}]
    tracker = make_tracker(text="不换了 还是修一下吧", intent="cancel")
    _, events = run(ActionCancelOutsideForm(), tracker, domain)
    assert events[-1]["name"] == "repair_form"


def test_cancelling_something_that_exists_is_answered_from_the_knowledge_base(
    knowledge, domain
) -> None:
    """ "取消预约" outside a form is no request to drop: it asks how to cancel a booking."""
    tracker = make_tracker(text="取消预约", intent="cancel")
    dispatcher, events = run(ActionCancelOutsideForm(), tracker, domain)
    assert responses(dispatcher) == ["utter_kb_answer"]
    assert "预约" in dispatcher.messages[0]["title"]
    assert any(e.get("name") == "kb_search_id" and e.get("value") for e in events)


@pytest.mark.parametrize(
    ("text", "entities", "order_slot"),
    [
        ("帮我取消订单", [], []),
        ("拍错了 取消一下", [], []),
        ("SO20261123012 取消", [("order_id", "SO20261123012")], ["SO20261123012"]),
    ],
)
def test_cancelling_an_order_starts_the_order_cancellation(
    knowledge, domain, text, entities, order_slot
) -> None:
    tracker = make_tracker(text=text, intent="cancel", entities=[entity(*e) for e in entities])
    dispatcher, events = run(ActionCancelOutsideForm(), tracker, domain)
    assert dispatcher.messages == []
    assert [e["value"] for e in events if e.get("name") == "order_id"] == order_slot
    assert events[-1] == {"event": "followup", "name": "order_cancel_form", "timestamp": None}


def entity(name: str, value: str) -> dict:
    return {"entity": name, "value": value, "start": 0, "end": len(value)}


def slots_set(events: list[dict]) -> dict:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def test_an_order_number_with_nothing_under_way_is_kept_and_next_steps_offered(domain) -> None:
    """ "so20261101001" on its own: the request the customer picks next will not ask again."""
    tracker = make_tracker(text="so 20261101001", entities=[entity("order_id", "so 20261101001")])
    dispatcher, events = run(ActionNoteDetails(), tracker, domain)
    assert responses(dispatcher) == ["utter_noted_order"]
    assert dispatcher.messages[0]["order_id"] == "SO20261101001"
    payloads = [b["payload"] for b in dispatcher.messages[0]["buttons"]]
    assert payloads[:3] == ["/query_order", "/request_return", "/request_exchange"]
    titles = [b["title"] for b in dispatcher.messages[0]["buttons"]]
    assert titles[0] == intent_labels()["query_order"]
    assert slots_set(events) == {"order_id": "SO20261101001"}


def test_an_order_and_phone_together_keep_both(domain) -> None:
    found = [entity("order_id", "SO20261101001"), entity("phone", "138-0013-8000")]
    dispatcher, events = run(ActionNoteDetails(), make_tracker(entities=found), domain)
    assert responses(dispatcher) == ["utter_noted_order"]
    assert slots_set(events) == {"order_id": "SO20261101001", "phone": "13800138000"}


def test_a_phone_alone_is_kept_and_shown_masked(domain) -> None:
    tracker = make_tracker(entities=[entity("phone", "13800138000")])
    dispatcher, events = run(ActionNoteDetails(), tracker, domain)
    assert responses(dispatcher) == ["utter_noted_phone"]
    assert dispatcher.messages[0]["masked_phone"] == "138****8000"
    assert "13800138000" not in str(dispatcher.messages)
    assert slots_set(events) == {"phone": "13800138000"}


def test_a_ticket_number_offers_its_status_or_a_message(domain) -> None:
    tracker = make_tracker(entities=[entity("ticket_id", "t20261120-0001")])
    dispatcher, events = run(ActionNoteDetails(), tracker, domain)
    assert responses(dispatcher) == ["utter_noted_ticket"]
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == [
        "/query_ticket_status",
        "/leave_message",
    ]
    assert slots_set(events) == {"ticket_id": "T20261120-0001"}


def test_a_detail_the_bot_cannot_place_is_a_miss_like_any_other(domain) -> None:
    dispatcher, events = run(ActionNoteDetails(), make_tracker(text="明天上午"), domain)
    assert dispatcher.messages == []
    assert events == [{"event": "followup", "timestamp": None, "name": "action_clarify_fallback"}]


def _after_a_ticket(ticket_no: str, *messages: str) -> list[dict]:
    """Events of a chat whose form just opened ``ticket_no``, then ``messages`` (the last one
    being the message now answered)."""
    events = [
        {"event": "user", "text": "我要退货"},
        {"event": "action", "name": "action_open_return_ticket"},
        {"event": "slot", "name": "ticket_id", "value": ticket_no},
        LISTEN,
    ]
    for text in messages:
        events += [{"event": "user", "text": text}, LISTEN]
    return events[:-1]


def _return_ticket(desk):
    """A return ticket opened for the demo customer, as the return form would."""
    verified = desk.verify_identity("SO20261101001", "13800138000")
    reason = {"request_reason": "不想要了"}
    return desk.open_request("return", verified, reason, "test-user", "rest")


def test_taking_back_a_request_just_made_withdraws_its_ticket(desk, domain) -> None:
    """ "诶等一下，我还是不退了" right after the ticket opened: it is cancelled, and said so."""
    opened = _return_ticket(desk)
    text = "诶等一下，我还是不退了"
    tracker = with_events(
        make_tracker(text=text, intent="cancel"), _after_a_ticket(opened.ticket_no, text)
    )
    dispatcher, events = run(ActionCancelOutsideForm(), tracker, domain)
    assert responses(dispatcher) == ["utter_ticket_withdrawn"]
    assert dispatcher.messages[0]["ticket_id"] == opened.ticket_no
    assert desk.tickets.timeline(opened.ticket_no).status == "cancelled"
    assert slots_set(events) == {"ticket_id": None}


def test_a_ticket_already_in_hand_is_not_withdrawn(desk, domain) -> None:
    opened = _return_ticket(desk)
    desk.tickets.advance(opened.ticket_no, "acknowledged")
    text = "我说取消工单"
    events = _after_a_ticket(opened.ticket_no, "好的", text)
    dispatcher, _ = run(
        ActionCancelOutsideForm(), with_events(make_tracker(text=text), events), domain
    )
    assert responses(dispatcher) == ["utter_ticket_in_hand"]
    assert desk.tickets.timeline(opened.ticket_no).status == "acknowledged"


def test_letting_go_later_in_the_chat_leaves_the_ticket_alone(desk, knowledge, domain) -> None:
    """ "算了" two messages after the ticket, about something else, withdraws nothing."""
    opened = _return_ticket(desk)
    events = _after_a_ticket(opened.ticket_no, "积分怎么用", "算了")
    dispatcher, _ = run(
        ActionCancelOutsideForm(), with_events(make_tracker(text="算了"), events), domain
    )
    assert responses(dispatcher) == ["utter_deny_ack"]
    assert desk.tickets.timeline(opened.ticket_no).status == "opened"


def _cancel_ticket(ticket_no: str, slots: dict | None = None):
    text = f"帮我把工单{ticket_no}取消了"
    entity = {"entity": "ticket_id", "value": ticket_no, "start": 5, "end": 5 + len(ticket_no)}
    return make_tracker(slots, text=text, intent="cancel", entities=[entity])


def test_a_ticket_from_an_earlier_chat_is_withdrawn_after_the_identity_check(desk, domain) -> None:
    """ "帮我把工单T… 取消了" in a new chat: nothing is cancelled on a number alone; the
    ticket-status form checks the phone on the ticket's order, then the ticket is withdrawn."""
    opened = _return_ticket(desk)
    dispatcher, events = run(ActionCancelOutsideForm(), _cancel_ticket(opened.ticket_no), domain)
    assert responses(dispatcher) == ["utter_ticket_withdraw_needs_identity"]
    assert slots_set(events) == {"ticket_id": opened.ticket_no, "withdraw_ticket": opened.ticket_no}
    assert [e["name"] for e in events if e["event"] == "followup"] == ["ticket_status_form"]
    assert desk.tickets.timeline(opened.ticket_no).status == "opened"

    verified = {**VERIFIED, "ticket_id": opened.ticket_no, "withdraw_ticket": opened.ticket_no}
    dispatcher, events = run(ActionShowTicketStatus(), make_tracker(verified), domain)
    assert responses(dispatcher) == ["utter_ticket_withdrawn"]
    assert desk.tickets.timeline(opened.ticket_no).status == "cancelled"
    assert slots_set(events) == {"ticket_id": None, "withdraw_ticket": None}


def test_a_named_ticket_in_a_verified_chat_is_withdrawn_only_when_it_is_theirs(
    desk, domain
) -> None:
    mine = _return_ticket(desk)
    dispatcher, _ = run(ActionCancelOutsideForm(), _cancel_ticket(mine.ticket_no, VERIFIED), domain)
    assert responses(dispatcher) == ["utter_ticket_withdrawn"]
    assert desk.tickets.timeline(mine.ticket_no).status == "cancelled"
    # asked again: already settled, nothing to undo
    dispatcher, _ = run(ActionCancelOutsideForm(), _cancel_ticket(mine.ticket_no, VERIFIED), domain)
    assert responses(dispatcher) == ["utter_ticket_settled"]
    # somebody else's ticket (the demo return of 139…) reads as unknown and stays as it is
    dispatcher, _ = run(
        ActionCancelOutsideForm(), _cancel_ticket("T20261110-0001", VERIFIED), domain
    )
    assert responses(dispatcher) == ["utter_ticket_not_yours"]
    assert desk.tickets.timeline("T20261110-0001").status == "resolved"
    # the customer's own repair ticket, already with a technician, needs a person
    dispatcher, _ = run(
        ActionCancelOutsideForm(), _cancel_ticket("T20261120-0001", VERIFIED), domain
    )
    assert responses(dispatcher) == ["utter_ticket_in_hand"]
    assert desk.tickets.timeline("T20261120-0001").status == "in_progress"


def test_switching_a_return_to_an_exchange_asks_the_reason_afresh(domain) -> None:
    """ "还是换货吧" at the return reason: said to be an exchange now, and the words that
    switched are not kept as the exchange reason."""
    text = "还是换货吧"
    tracker = make_tracker({"request_reason": text}, text=text, intent="request_exchange")
    tracker.events += [{"event": "slot", "name": "request_reason", "value": text}]
    dispatcher, events = run(ActionSwitchRequest(), tracker, domain)
    assert responses(dispatcher) == ["utter_request_switched"]
    assert dispatcher.messages[0]["request_label"] == "申请换货"
    assert slots_set(events) == {"request_reason": None}


def test_a_repair_switched_to_an_exchange_keeps_the_fault_as_the_reason(domain) -> None:
    """ "不修了 直接换一台" after "洗衣机漏水了" was described: the fault is the reason."""
    text = "不修了 直接换一台"
    tracker = make_tracker(
        {"fault_description": "洗衣机漏水了"}, text=text, intent="request_exchange"
    )
    described = {"event": "slot", "name": "fault_description", "value": "洗衣机漏水了"}
    tracker.events.insert(0, described)
    _, events = run(ActionSwitchRequest(), tracker, domain)
    assert slots_set(events) == {"request_reason": "洗衣机漏水了"}


def test_a_return_switched_to_a_repair_keeps_the_reason_as_the_fault(domain) -> None:
    """QA: "…算了还是修一下吧" at the return reason stayed a return."""
    text = "算了还是修一下吧"
    tracker = make_tracker({"request_reason": "画面有条竖线"}, text=text, intent="report_fault")
    tracker.events.insert(0, {"event": "slot", "name": "request_reason", "value": "画面有条竖线"})
    dispatcher, events = run(ActionSwitchRequest(), tracker, domain)
    assert dispatcher.messages[0]["request_label"] == "报修"
    assert slots_set(events) == {"fault_description": "画面有条竖线", "request_reason": None}


def test_a_withdrawal_given_up_is_not_left_for_a_later_lookup(desk, domain) -> None:
    """Identity never checked (locked out): the withdrawal asked for is dropped, so a later
    "T… 到哪了" in the chat shows the ticket rather than cancelling it."""
    opened = _return_ticket(desk)
    asked = {"ticket_id": opened.ticket_no, "withdraw_ticket": opened.ticket_no}
    _, events = run(ActionShowTicketStatus(), make_tracker(asked), domain)
    assert slots_set(events)["withdraw_ticket"] is None
    later = {**VERIFIED, "ticket_id": opened.ticket_no}
    named = [entity("ticket_id", opened.ticket_no)]
    said = make_tracker(later, text=f"{opened.ticket_no} 到哪了", entities=named)
    dispatcher, _ = run(ActionShowTicketStatus(), said, domain)
    assert responses(dispatcher) == ["utter_ticket_timeline"]
    assert desk.tickets.timeline(opened.ticket_no).status == "opened"


def test_withdrawing_a_ticket_without_its_number_asks_for_it(desk, knowledge, domain) -> None:
    """QA: "我想撤销之前提交的工单" got "好的，还有什么需要帮忙的吗？" and nothing happened."""
    tracker = make_tracker(text="我想撤销之前提交的工单", intent="cancel")
    dispatcher, events = run(ActionCancelOutsideForm(), tracker, domain)
    assert responses(dispatcher) == ["utter_ask_ticket_to_withdraw"] and events == []


def test_the_ticket_number_given_when_asked_which_to_withdraw_withdraws_it(desk, domain) -> None:
    """QA: asked which ticket to withdraw, "T…" alone got "工单号已记下。需要我帮您查进度，
    还是给客服留言？" and the withdrawal was forgotten."""
    opened = _return_ticket(desk)
    named = [entity("ticket_id", opened.ticket_no)]
    tracker = make_tracker(VERIFIED, text=opened.ticket_no, entities=named)
    asked = {"event": "bot", "metadata": {"utter_action": "utter_ask_ticket_to_withdraw"}}
    tracker.events.insert(0, asked)
    tracker.events.insert(0, {"event": "user", "text": "我想撤销之前提交的工单"})
    dispatcher, _ = run(ActionNoteDetails(), tracker, domain)
    assert responses(dispatcher) == ["utter_ticket_withdrawn"]
    assert desk.tickets.timeline(opened.ticket_no).status == "cancelled"
    # the same number with no withdrawal asked for is only noted
    other = _return_ticket(desk)
    plain = make_tracker(
        VERIFIED, text=other.ticket_no, entities=[entity("ticket_id", other.ticket_no)]
    )
    dispatcher, _ = run(ActionNoteDetails(), plain, domain)
    assert responses(dispatcher) == ["utter_noted_ticket"]
    assert desk.tickets.timeline(other.ticket_no).status == "opened"


def test_a_withdrawn_ticket_owes_no_call_back(desk, demo_factory, domain) -> None:
    """QA: the ticket was withdrawn but its call-back stayed on the agents' list."""
    from bot.handoff.service import HandoffService

    handoffs = HandoffService(demo_factory)
    owed = handoffs.request("test-user", "rest", "request_human", [], 2)
    assert owed.callback_due is not None  # nobody online: a call-back is owed
    opened = _return_ticket(desk)
    handoffs.attach_ticket(owed.handoff_id, opened.ticket_no)
    text = "诶等一下，我还是不退了"
    tracker = with_events(
        make_tracker(text=text, intent="cancel"), _after_a_ticket(opened.ticket_no, text)
    )
    dispatcher, _ = run(ActionCancelOutsideForm(), tracker, domain)
    assert responses(dispatcher) == ["utter_ticket_withdrawn"]
    assert handoffs.get(owed.handoff_id).status == "closed"
    assert all(c.ticket_no != opened.ticket_no for c in handoffs.callbacks())


def test_a_request_sent_with_its_order_and_phone_starts_its_form(desk, domain) -> None:
    """QA: "我要报修 SO20261110004 13600136000 冰箱咔咔响" read as an inform got "这个订单需要
    办理什么？"; the words ask for a repair, the NLU's runner-up."""
    text = "我要报修 SO20261110004 13600136000 冰箱咔咔响"
    entities = [entity("order_id", "SO20261110004"), entity("phone", "13600136000")]
    ranking = [
        {"name": "inform", "confidence": 0.85},
        {"name": "report_fault", "confidence": 0.14},
        {"name": "greet", "confidence": 0.01},
    ]
    tracker = make_tracker(text=text, ranking=ranking, entities=entities)
    dispatcher, events = run(ActionNoteDetails(), tracker, domain)
    assert dispatcher.messages == []
    assert events[-1]["name"] == "repair_form"
    assert slots_set(events) == {"order_id": "SO20261110004", "phone": "13600136000"}
    # the numbers alone are only noted
    alone = [{"name": "inform", "confidence": 0.97}, {"name": "report_fault", "confidence": 0.02}]
    tracker = make_tracker(text="SO20261110004", ranking=alone, entities=entities[:1])
    dispatcher, _ = run(ActionNoteDetails(), tracker, domain)
    assert responses(dispatcher) == ["utter_noted_order"]


def test_the_words_of_a_request_start_its_form_when_the_classifier_is_unsure(desk, domain) -> None:
    """QA: "电视报修 SO20261103002 13900139000 这周日晚上" (inform, the runner-up far behind)
    got "这个订单需要办理什么？"; the words ask for one service, a repair."""
    entities = [entity("order_id", "SO20261103002"), entity("phone", "13900139000")]
    unsure = [{"name": "inform", "confidence": 0.96}, {"name": "greet", "confidence": 0.02}]
    text = "电视报修 SO20261103002 13900139000 这周日晚上"
    tracker = make_tracker(text=text, ranking=unsure, entities=entities)
    dispatcher, events = run(ActionNoteDetails(), tracker, domain)
    assert dispatcher.messages == [] and events[-1]["name"] == "repair_form"
    # words for two services choose neither: the customer is asked
    text = "SO20261103002 13900139000 退货还是换货好"
    tracker = make_tracker(text=text, ranking=unsure, entities=entities)
    dispatcher, _ = run(ActionNoteDetails(), tracker, domain)
    assert responses(dispatcher) == ["utter_noted_order"]


@pytest.mark.parametrize("text", ["SO20261122011", "订单号是SO20261122011"])
def test_a_bare_order_number_the_nlu_was_unsure_of_is_noted(desk, domain, text) -> None:
    """QA: "SO20261122011" (nlu_fallback 0.55, request_return 0.25 behind) got "不太确定您的
    意思" with 申请退货 / 申请换货 buttons; it is a detail to keep, and no return is started."""
    start = text.index("SO")
    number = {"entity": "order_id", "value": text[start:], "start": start, "end": len(text)}
    ranking = [
        {"name": "nlu_fallback", "confidence": 0.55},
        {"name": "inform", "confidence": 0.5},
        {"name": "request_return", "confidence": 0.25},
    ]
    tracker = make_tracker(text=text, intent="nlu_fallback", ranking=ranking, entities=[number])
    dispatcher, events = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_noted_order"]
    assert slots_set(events) == {"order_id": "SO20261122011"}
    assert not any(e["event"] == "followup" for e in events)


def test_numbers_in_a_message_the_bot_could_not_place_are_kept(domain) -> None:
    """QA: "扫地机器人到哪了 SO20261118007 15800158000" went to "您是想…"; the order lookup
    picked next asked for the order number again."""
    entities = [
        {"entity": "order_id", "value": "SO20261118007"},
        {"entity": "phone", "value": "15800158000"},
    ]
    text = "扫地机器人到哪了 SO20261118007 15800158000"
    tracker = make_tracker(text=text, intent="nlu_fallback", ranking=RANKING, entities=entities)
    dispatcher, events = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_clarify"]
    assert events[0]["event"] == "rewind"
    kept = slots_set(events)
    assert kept["order_id"] == "SO20261118007" and kept["phone"] == "15800158000"


@pytest.mark.parametrize(
    ("form", "asked", "intent", "said"),
    [
        # QA: "道歉加补偿" as what a complainant wants got "超出了我的服务范围" and the
        # question again; the form takes any words there.
        ("complaint_form", "complaint_expectation", "out_of_scope", []),
        ("complaint_form", "complaint_detail", "nlu_fallback", []),
        # An odd fault description is taken down, not answered with "没明白您的意思".
        ("repair_form", "fault_description", "nlu_fallback", []),
        ("repair_form", "fault_description", "out_of_scope", ["utter_out_of_scope"]),
        ("repair_form", "order_id", "nlu_fallback", ["utter_default"]),
        ("return_form", "order_id", "out_of_scope", ["utter_out_of_scope"]),
    ],
)
def test_an_off_topic_message_in_a_form_is_answered_only_when_not_taken(
    domain, form, asked, intent, said
) -> None:
    tracker = make_tracker(
        {"active_loop": form, "requested_slot": asked}, text="道歉加补偿", intent=intent
    )
    dispatcher, events = run(ActionReplyOffTopic(), tracker, domain)
    assert (responses(dispatcher), events) == (said, [])


def _after_a_repair_ticket(desk, text: str, intent: str):
    """A tracker whose latest message ``text`` comes right after the TV's repair ticket."""
    verified = desk.verify_identity("SO20261103002", "13900139000")
    ticket = desk.open_request(
        "repair", verified, {"product": "65寸智能电视", "fault_description": "黑屏"}, None, "rest"
    )
    slots = {"order_id": "SO20261103002", "verified_customer": "SO20261103002"}
    tracker = make_tracker(slots, text=text, intent=intent)
    tracker.events = [
        {"event": "action", "name": "action_open_repair_ticket"},
        {"event": "slot", "name": "ticket_id", "value": ticket.ticket_no},
        *tracker.events,
    ]
    return ticket.ticket_no, tracker


def test_a_detail_the_classifier_could_not_place_is_added_to_the_ticket_just_opened(
    desk, knowledge, domain
) -> None:
    """QA: "对了 它还会自己重启" right after the TV's repair ticket got "您是想：申请退货 |
    报修"; "对了 它外机还有很大的噪音" read as a yes got "好的。还有别的需要…"."""
    ticket_no, tracker = _after_a_repair_ticket(desk, "对了 它还会自己重启", "nlu_fallback")
    dispatcher, events = run(ActionClarifyFallback(), tracker, domain)
    assert responses(dispatcher) == ["utter_detail_added_to_ticket"]
    assert slots_set(events)["ticket_id"] == ticket_no
    ticket_no, tracker = _after_a_repair_ticket(desk, "对了 它外机还有很大的噪音", "affirm")
    dispatcher, _ = run(ActionAcknowledge(), tracker, domain)
    assert responses(dispatcher) == ["utter_detail_added_to_ticket"]
    # details in a row: each one is added (QA: the second started a new repair form)
    tracker.events += [
        {"event": "action", "name": "action_acknowledge"},
        {"event": "slot", "name": "ticket_id", "value": ticket_no},
        {"event": "user", "text": "还有就是遥控器有时候失灵"},
    ]
    assert ticket_a_detail_adds_to(tracker, "repair") == ticket_no
    # a plain yes is only acknowledged
    _, tracker = _after_a_repair_ticket(desk, "好的 谢谢", "affirm")
    dispatcher, events = run(ActionAcknowledge(), tracker, domain)
    assert responses(dispatcher) == ["utter_affirm_ack"] and events == []
