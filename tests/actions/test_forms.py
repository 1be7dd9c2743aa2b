"""Form validation: identity before private data, and each answer checked."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from rasa_sdk.events import ActionExecutionRejected, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import (
    MAX_IDENTITY_FAILURES,
    VALIDATION_BY_FORM,
    VALIDATIONS,
    ActionAskAddress,
    ActionAskOrderId,
    ActionAskPhone,
    ActionAskProduct,
    form_answer_taken_for_a_question,
)
from actions.handoff import ValidateCsatForm
from tests.actions.conftest import make_tracker, responses

ORDER, PHONE, OTHER_PHONE = "SO20261101001", "13800138000", "13900139000"


def validation(form: str):
    return VALIDATION_BY_FORM[form]()


def test_every_form_in_the_domain_has_a_validation_action(domain) -> None:
    names = {cls().name() for cls in (*VALIDATIONS, ValidateCsatForm)}
    assert names == {f"validate_{form}" for form in domain["forms"]}


@pytest.mark.parametrize("raw", ["12345", "SO123", "订单号我忘了", "SO2026110100"])
def test_malformed_order_number_gets_a_format_hint(raw, desk, domain) -> None:
    dispatcher = CollectingDispatcher()
    result = validation("return_form").validate_order_id(raw, dispatcher, make_tracker(), domain)
    assert result == {"order_id": None}
    assert responses(dispatcher) == ["utter_invalid_order_id"]


@pytest.mark.parametrize("said", ["我说了我要退货！！", "有帮助"])
def test_words_without_a_number_are_asked_again_without_a_format_hint(desk, domain, said):
    """QA: "我说了我要退货！！" at the order-number question got "订单号格式好像不对"."""
    dispatcher = CollectingDispatcher()
    result = validation("return_form").validate_order_id(said, dispatcher, make_tracker(), domain)
    assert result == {"order_id": None} and dispatcher.messages == []


def test_lower_case_order_number_is_accepted(desk, domain) -> None:
    result = validation("return_form").validate_order_id(
        "so20261101001", CollectingDispatcher(), make_tracker(), domain
    )
    assert result == {"order_id": ORDER}


def test_right_order_and_phone_verify_the_customer(desk, domain) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"order_id": ORDER})
    result = validation("order_status_form").validate_phone(PHONE, dispatcher, tracker, domain)
    assert result["phone"] == PHONE
    assert result["verified_customer"] == ORDER
    assert dispatcher.messages == []


@pytest.mark.parametrize(("order_no", "open_ticket"), [(ORDER, True), ("SO20261120009", False)])
def test_an_open_ticket_counts_for_the_order_asked_about(desk, domain, order_no, open_ticket):
    """Zhang's repair ticket is on his washer order: a request about his other order is no
    call for help with an open ticket (the VIP escalation trigger reads this slot)."""
    tracker = make_tracker({"order_id": order_no})
    result = validation("repair_form").validate_phone(
        PHONE, CollectingDispatcher(), tracker, domain
    )
    assert result["verified_customer"] == order_no
    assert result["has_open_ticket"] is open_ticket


def test_wrong_phone_and_unknown_order_get_the_same_reply(desk, domain) -> None:
    wrong_phone, unknown_order = CollectingDispatcher(), CollectingDispatcher()
    form = validation("repair_form")
    first = form.validate_phone(OTHER_PHONE, wrong_phone, make_tracker({"order_id": ORDER}), domain)
    second = form.validate_phone(
        PHONE, unknown_order, make_tracker({"order_id": "SO20260101999"}), domain
    )
    assert responses(wrong_phone) == responses(unknown_order) == ["utter_identity_not_found"]
    # Either way the order number given stays and only the phone is asked again.
    assert (first["order_id"], second["order_id"]) == (ORDER, "SO20260101999")
    for result in (first, second):
        assert result["phone"] is None
        assert "verified_customer" not in result


@pytest.mark.parametrize(
    ("form", "refused"),
    [
        ("return_form", True),
        ("exchange_form", True),
        ("repair_form", True),
        ("maintenance_form", True),
        ("installation_form", False),  # booked before delivery: installed when it arrives
        ("order_status_form", False),
    ],
)
def test_goods_still_on_their_way_cannot_be_returned_or_repaired_yet(
    desk, domain, form: str, refused: bool
) -> None:
    """SO20261118007 (robot vacuum) is in transit: "我要退货" hears where it is and what to
    do instead, and may name another order; an installation is booked as usual."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"order_id": "SO20261118007"})
    result = validation(form).validate_phone("15800158000", dispatcher, tracker, domain)
    if refused:
        assert responses(dispatcher) == ["utter_order_not_delivered"]
        assert dispatcher.messages[0]["delivery_label"] == "运输中"
        assert result["order_id"] is None and result["phone"] == "15800158000"
        assert "verified_customer" not in result
    else:
        assert "utter_order_not_delivered" not in responses(dispatcher)
        assert result["verified_customer"] == "SO20261118007"


@pytest.mark.parametrize("form", ["return_form", "installation_form", "repair_form"])
def test_a_cancelled_order_takes_no_return_installation_or_repair(desk, domain, form) -> None:
    """SO20261112005 was cancelled: no return ticket for it (QA: one was opened)."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"order_id": "SO20261112005"})
    result = validation(form).validate_phone("13500135000", dispatcher, tracker, domain)
    assert responses(dispatcher) == ["utter_order_cancelled"]
    assert dispatcher.messages[0]["order_no"] == "SO20261112005"
    assert result["order_id"] is None and result["phone"] == "13500135000"
    assert "verified_customer" not in result
    # the same order can still be looked up
    status = validation("order_status_form").validate_phone(
        "13500135000", CollectingDispatcher(), tracker, domain
    )
    assert status["verified_customer"] == "SO20261112005"


@pytest.mark.parametrize("said", ["我没有订单号", "没订单 就是想问个事", "忘了订单号了"])
def test_a_message_can_be_left_without_an_order_number(desk, domain, said) -> None:
    """ "没有订单" at the order question looped on 订单号格式不对; now the phone will do."""
    form = validation("message_form")
    asked = {"active_loop": "message_form", "requested_slot": "order_id"}
    tracker = make_tracker(asked, text=said)
    extracted = asyncio.run(form.extract_order_id(CollectingDispatcher(), tracker, domain))
    assert extracted == {"without_order": True}
    contact = make_tracker({**asked, "without_order": True}, text="13312345678")
    required = asyncio.run(
        form.required_slots(form.domain_slots(domain), CollectingDispatcher(), contact, domain)
    )
    assert "order_id" not in required and "phone" in required
    dispatcher = CollectingDispatcher()
    assert form.validate_phone("133 1234 5678", dispatcher, contact, domain) == {
        "phone": "13312345678"
    }
    assert dispatcher.messages == []
    # the phone question asks for a number to call back, not the one on an order
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAskPhone().run(dispatcher, contact, domain))
    assert responses(dispatcher) == ["utter_ask_contact_phone"]
    # said at the message question, it is no message but still spares the order number
    at_reason = make_tracker(
        {"active_loop": "message_form", "requested_slot": "request_reason"}, text="没有订单"
    )
    assert form.validate_request_reason("没有订单", CollectingDispatcher(), at_reason, domain) == {
        "request_reason": None,
        "without_order": True,
    }
    # a return still needs its order: the customer hears where to find it
    returning = make_tracker({"requested_slot": "order_id"}, text=said)
    dispatcher = CollectingDispatcher()
    assert asyncio.run(
        validation("return_form").extract_order_id(dispatcher, returning, domain)
    ) == {"order_id": None}
    assert responses(dispatcher) == ["utter_order_id_where_to_find"]


@pytest.mark.parametrize(
    ("text", "intent"), [("我要人工", "request_human"), ("好吧 那我等着", "affirm")]
)
def test_asking_for_a_person_again_at_the_message_question_is_the_message(
    desk, domain, text, intent
):
    """QA: "转人工" four times, four times "请留下您的问题"; "好吧 那我等着" (agreeing to
    the call-back) was filed as the problem, or read as cancel and lost the call-back."""
    asked = make_tracker(
        {"active_loop": "message_form", "requested_slot": "request_reason"},
        text=text,
        intent=intent,
    )
    form = validation("message_form")
    extracted = asyncio.run(form.extract_request_reason(CollectingDispatcher(), asked, domain))
    assert extracted["request_reason"].startswith("客户要求人工联系")


def test_a_bare_phone_at_the_message_question_is_no_message(desk, domain) -> None:
    """QA: "18600186000" at 请留下您的问题 became the message of the ticket."""
    phone = [{"entity": "phone", "value": "18600186000", "start": 0, "end": 11}]
    tracker = make_tracker(
        {"active_loop": "message_form", "requested_slot": "request_reason"},
        text="18600186000",
        entities=phone,
    )
    dispatcher = CollectingDispatcher()
    result = validation("message_form").validate_request_reason(
        "18600186000", dispatcher, tracker, domain
    )
    assert result == {"request_reason": None}
    assert responses(dispatcher) == ["utter_details_noted"]


def test_a_question_left_as_a_message_is_the_message(desk, knowledge, domain) -> None:
    """QA: "热水器能不能装在卫生间外面？" at 请留下您的问题 got "not found" and the question
    again; a button's payload ("/leave_message") was saved as the message."""
    asked = {"active_loop": "message_form", "requested_slot": "request_reason"}
    question = "我家热水器能不能装在阳台外面的墙上？"
    tracker = make_tracker(asked, text=question, intent="ask_question")
    events = form_answer_taken_for_a_question(CollectingDispatcher(), tracker, domain)
    assert events == [SlotSet("request_reason", question)]
    payload = make_tracker(asked, text="/leave_message", intent="leave_message")
    result = validation("message_form").validate_request_reason(
        "/leave_message", CollectingDispatcher(), payload, domain
    )
    assert result == {"request_reason": None}


def test_locked_out_of_lookups_a_message_is_still_taken_with_a_phone(desk, domain) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"order_id": ORDER, "identity_failures": 2.0})
    result = validation("message_form").validate_phone(OTHER_PHONE, dispatcher, tracker, domain)
    assert responses(dispatcher) == ["utter_identity_locked_contact_instead"]
    assert result["without_order"] is True and result["order_id"] is None
    # a lookup stays locked
    dispatcher = CollectingDispatcher()
    result = validation("order_status_form").validate_phone(
        OTHER_PHONE, dispatcher, tracker, domain
    )
    assert responses(dispatcher) == ["utter_identity_locked"] and "without_order" not in result


def test_a_corrected_phone_verifies_against_the_order_already_given(desk, domain) -> None:
    form = validation("repair_form")
    failed = form.validate_phone(
        OTHER_PHONE, CollectingDispatcher(), make_tracker({"order_id": ORDER}), domain
    )
    retry = make_tracker({"order_id": failed["order_id"], "identity_failures": 1.0})
    result = form.validate_phone(PHONE, CollectingDispatcher(), retry, domain)
    assert result["verified_customer"] == ORDER and result["phone"] == PHONE


def test_repeated_identity_failures_lock_the_lookup(desk, domain) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        {"order_id": ORDER, "identity_failures": float(MAX_IDENTITY_FAILURES - 1)}
    )
    result = validation("return_form").validate_phone(OTHER_PHONE, dispatcher, tracker, domain)
    assert responses(dispatcher) == ["utter_identity_locked"]
    assert result["identity_failures"] == MAX_IDENTITY_FAILURES
    locked = CollectingDispatcher()
    validation("return_form").validate_phone(
        PHONE, locked, make_tracker({"order_id": ORDER, "identity_failures": 3.0}), domain
    )
    assert responses(locked) == ["utter_identity_locked"]
    # and the form ends instead of asking for an order number nobody may check now
    # (QA: it asked again, then said "对不上" for the right pair)
    after = make_tracker({"identity_failures": 3.0, "active_loop": "return_form"})
    form = validation("return_form")
    slots = form.domain_slots(domain)
    assert asyncio.run(form.required_slots(slots, CollectingDispatcher(), after, domain)) == []


def test_malformed_phone_is_rejected(desk, domain) -> None:
    dispatcher = CollectingDispatcher()
    result = validation("return_form").validate_phone(
        "12345", dispatcher, make_tracker({"order_id": ORDER}), domain
    )
    assert result == {"phone": None}
    assert responses(dispatcher) == ["utter_invalid_phone"]


def test_database_down_during_identity_check_gets_a_useful_reply(desk, domain, monkeypatch):
    from bot.services.desk import ServiceUnavailable

    def broken(*_args):
        raise ServiceUnavailable

    monkeypatch.setattr(desk, "verify_identity", broken)
    dispatcher = CollectingDispatcher()
    result = validation("return_form").validate_phone(
        PHONE, dispatcher, make_tracker({"order_id": ORDER}), domain
    )
    assert result == {"phone": None}
    assert responses(dispatcher) == ["utter_service_unavailable"]


def test_appointment_date_understands_relative_days_and_fills_the_time_slot(desk, domain):
    tomorrow = desk.today() + timedelta(days=1)
    result = validation("repair_form").validate_appointment_date(
        "明天上午", CollectingDispatcher(), make_tracker(), domain
    )
    assert result == {"appointment_date": tomorrow.isoformat(), "time_slot": "上午"}


def test_an_installation_is_not_booked_before_the_goods_can_arrive(desk, domain) -> None:
    """QA: SO20261123012 (paid, not shipped) got an installation for tomorrow."""
    pending = {"verified_customer": "SO20261123012", "requested_slot": "appointment_date"}
    form = validation("installation_form")
    dispatcher = CollectingDispatcher()
    result = form.validate_appointment_date("明天", dispatcher, make_tracker(pending), domain)
    assert result == {"appointment_date": None}
    assert responses(dispatcher) == ["utter_date_before_arrival"]
    later = desk.today() + timedelta(days=5)
    said = f"{later.month}月{later.day}日"
    result = form.validate_appointment_date(
        said, CollectingDispatcher(), make_tracker(pending), domain
    )
    assert result["appointment_date"] == later.isoformat()


def test_a_day_given_before_the_order_is_checked_once_the_order_is_known(desk, domain) -> None:
    """QA: "油烟机约明天上午来装" booked tomorrow for goods not yet shipped: the day came with
    the opening message, before the order was known.  Checked with the identity now."""
    tomorrow = (desk.today() + timedelta(days=1)).isoformat()
    early = {"order_id": "SO20261123012", "appointment_date": tomorrow, "time_slot": "上午"}
    tracker = make_tracker({**early, "requested_slot": "phone"})
    dispatcher = CollectingDispatcher()
    result = validation("installation_form").validate_phone(
        "13900139000", dispatcher, tracker, domain
    )
    assert result["verified_customer"] == "SO20261123012"
    assert (result["appointment_date"], result["time_slot"]) == (None, None)
    assert "utter_booked_date_before_arrival" in responses(dispatcher)


def test_a_repair_of_goods_the_customer_has_is_not_held_to_the_delivery_date(desk, domain):
    """QA: "早就收到了 物流没更新而已" let the repair go on, then "明天上午" got "安装请约在
    送达之后": only an installation waits for the goods."""
    vouched = {"verified_customer": "SO20261118007", "requested_slot": "appointment_date"}
    dispatcher = CollectingDispatcher()
    result = validation("repair_form").validate_appointment_date(
        "明天", dispatcher, make_tracker(vouched), domain
    )
    assert result["appointment_date"] == (desk.today() + timedelta(days=1)).isoformat()
    assert responses(dispatcher) == []


def test_an_address_typed_at_the_fault_question_is_kept_as_the_address(desk, domain) -> None:
    """QA: "广州市天河区…28楼" at "请描述一下故障现象" became the fault description."""
    text = "广州市天河区珠江新城花城大道68号环球都会广场28楼"
    asked = make_tracker({"requested_slot": "fault_description"}, text=text)
    dispatcher = CollectingDispatcher()
    form = validation("repair_form")
    result = form.validate_fault_description(text, dispatcher, asked, domain)
    assert result == {"fault_description": None, "address": text}
    assert responses(dispatcher) == ["utter_address_noted_need_fault"]
    fault = "三楼卧室的空调不制冷 开了20分钟还是热风"
    result = form.validate_fault_description(fault, CollectingDispatcher(), asked, domain)
    assert result == {"fault_description": fault}


def test_an_order_number_at_the_phone_question_is_no_bad_phone(desk, domain) -> None:
    """QA: "哦不对 是SO20261103002" at the phone question switched the order and also said
    "手机号格式不对"."""
    asked = {"order_id": "SO20261101009", "requested_slot": "phone", "active_loop": "return_form"}
    tracker = make_tracker(asked, text="哦不对 是SO20261103002")
    form = validation("return_form")
    assert asyncio.run(form.extract_phone(CollectingDispatcher(), tracker, domain)) == {}
    typed = make_tracker(asked, text="138 0013 8000")
    extracted = asyncio.run(form.extract_phone(CollectingDispatcher(), typed, domain))
    assert extracted == {"phone": "13800138000"}


def test_a_date_cut_in_two_by_the_nlu_is_read_from_the_whole_message(desk, domain) -> None:
    """ "下周六上午吧" came as the entities "下" and "周六": next week's Saturday, not this."""
    today = desk.today()
    next_saturday = today - timedelta(days=today.weekday()) + timedelta(weeks=1, days=5)
    tracker = make_tracker({"requested_slot": "appointment_date"}, text="下周六上午吧")
    result = validation("repair_form").validate_appointment_date(
        "周六", CollectingDispatcher(), tracker, domain
    )
    assert result["appointment_date"] == next_saturday.isoformat()


@pytest.mark.parametrize("answer", ["今天", "随便哪天", "明年三月"])
def test_unbookable_dates_are_rejected(answer, desk, domain) -> None:
    dispatcher = CollectingDispatcher()
    asked = make_tracker({"requested_slot": "appointment_date"}, text=answer)
    result = validation("installation_form").validate_appointment_date(
        answer, dispatcher, asked, domain
    )
    assert result == {"appointment_date": None}
    assert responses(dispatcher) == ["utter_invalid_date"]


def test_a_past_date_said_in_passing_is_context_not_a_booking(desk, domain) -> None:
    """ "昨天开始就不制冷了" at the product question: no complaint about the date, and a day
    booked earlier in the chat stays booked."""
    booked = (desk.today() + timedelta(days=2)).isoformat()
    text = "昨天开始就不制冷了"
    tracker = make_tracker({"requested_slot": "product"}, text=text)
    tracker.events.insert(0, {"event": "slot", "name": "appointment_date", "value": booked})
    dispatcher = CollectingDispatcher()
    result = validation("repair_form").validate_appointment_date(
        "昨天", dispatcher, tracker, domain
    )
    assert result == {"appointment_date": booked} and not dispatcher.messages


def test_time_slot_is_normalised(desk, domain) -> None:
    form = validation("maintenance_form")
    assert form.validate_time_slot("下午吧", CollectingDispatcher(), make_tracker(), domain) == {
        "time_slot": "下午"
    }
    dispatcher = CollectingDispatcher()
    asked = make_tracker({"requested_slot": "time_slot"})
    assert form.validate_time_slot("凌晨", dispatcher, asked, domain) == {"time_slot": None}
    assert responses(dispatcher) == ["utter_invalid_time_slot"]
    assert form.validate_time_slot("都行", dispatcher, asked, domain) == {"time_slot": "全天均可"}


def test_the_hour_is_read_with_its_part_of_the_day(desk, domain) -> None:
    """QA: the NLU took "8点" out of "晚上8点" and the visit was booked for the morning."""
    form = validation("repair_form")
    said = make_tracker({"requested_slot": "time_slot"}, text="晚上8点")
    assert form.validate_time_slot("8点", CollectingDispatcher(), said, domain) == {
        "time_slot": "晚上"
    }
    dispatcher = CollectingDispatcher()
    late = make_tracker({"requested_slot": "time_slot"}, text="晚上10点")
    assert form.validate_time_slot("10点", dispatcher, late, domain) == {"time_slot": None}
    assert responses(dispatcher) == ["utter_invalid_time_slot"]


def test_a_stray_time_word_before_the_time_question_is_ignored(desk, domain) -> None:
    """ "快点来" at the address question: "点" is neither a time slot nor an error."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"requested_slot": "address"}, text="师傅快点来")
    result = validation("repair_form").validate_time_slot("点", dispatcher, tracker, domain)
    assert result == {"time_slot": None} and not dispatcher.messages


def verified_earlier(text: str, slots: dict | None = None):
    """A tracker whose identity was verified before the latest message (``text``)."""
    tracker = make_tracker({"order_id": ORDER, "verified_customer": ORDER, **(slots or {})}, text)
    verified = {"event": "slot", "name": "verified_customer", "value": ORDER}
    tracker.events.insert(0, verified)
    return tracker


def test_product_must_be_on_the_verified_order(desk, domain) -> None:
    form = validation("repair_form")
    ok = form.validate_product("洗衣机", CollectingDispatcher(), verified_earlier("洗衣机"), domain)
    assert ok == {"product": "滚筒洗衣机"}
    dispatcher = CollectingDispatcher()
    wrong = form.validate_product("空调", dispatcher, verified_earlier("空调"), domain)
    assert wrong == {"product": None}
    assert responses(dispatcher) == ["utter_unknown_product"]
    assert "滚筒洗衣机" in dispatcher.messages[0]["order_products"]


def test_a_product_sent_with_the_identity_is_checked_once(desk, domain) -> None:
    """ "我要退货，订单SO…，手机138…，电饭煲不想要了": the phone's identity check finds the
    rice cooker is not on the order and says so; the product's own validation, run next in
    the same turn, does not say it again."""
    text = f"我要退货，订单{ORDER}，手机{PHONE}，电饭煲不想要了"
    tracker = make_tracker({"order_id": ORDER, "product": "电饭煲"}, text=text)
    form = validation("return_form")
    dispatcher = CollectingDispatcher()
    checked = form.validate_phone(PHONE, dispatcher, tracker, domain)
    tracker.slots.update(checked)  # as rasa_sdk does between one slot's validation and the next
    assert form.validate_product("电饭煲", dispatcher, tracker, domain) == {"product": None}
    assert responses(dispatcher) == ["utter_unknown_product"]


def test_the_product_is_asked_as_a_choice_of_the_verified_orders_products(desk, domain) -> None:
    two_items = "SO20261103002"
    tracker = make_tracker({"order_id": two_items, "verified_customer": two_items})
    dispatcher = CollectingDispatcher()
    assert asyncio.run(ActionAskProduct().run(dispatcher, tracker, domain)) == []
    assert responses(dispatcher) == ["utter_ask_product_on_order"]
    assert dispatcher.messages[0]["order_no"] == two_items
    buttons = dispatcher.messages[0]["buttons"]
    names = desk.order_products(two_items)
    assert [b["title"] for b in buttons] == names and len(names) == 2
    # a tap sends the product as an entity: the NLU has nothing to guess
    assert buttons[0]["payload"] == f'/inform{{"product": "{names[0]}"}}'


def test_the_delivery_address_is_offered_for_the_visit(desk, domain) -> None:
    tracker = make_tracker({"order_id": ORDER, "verified_customer": ORDER})
    dispatcher = CollectingDispatcher()
    assert asyncio.run(ActionAskAddress().run(dispatcher, tracker, domain)) == []
    assert responses(dispatcher) == ["utter_ask_address_on_order"]
    delivered_to = desk.order_address(ORDER)
    assert delivered_to.startswith("北京市朝阳区建国路88号")
    assert dispatcher.messages[0]["address"] == delivered_to
    # the tap sends the address as if typed: the form's answer to its own question
    assert dispatcher.messages[0]["buttons"] == [{"title": delivered_to, "payload": delivered_to}]
    # not verified yet: no address from the store
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAskAddress().run(dispatcher, make_tracker({"order_id": ORDER}), domain))
    assert responses(dispatcher) == ["utter_ask_address"]


@pytest.mark.parametrize(
    "said",
    [
        "就是送货地址",
        "对",
        "地址不变",
        "送到原地址就行",
        "送貨地址",
        "就用这个地址",
        "就送货那个地址吧",
        "還是送貨的地址",
        "用这个就行",
    ],
)
def test_pointing_to_the_delivery_address_takes_it(desk, domain, said) -> None:
    tracker = make_tracker(
        {"order_id": ORDER, "verified_customer": ORDER, "requested_slot": "address"}, text=said
    )
    result = validation("installation_form").validate_address(
        said, CollectingDispatcher(), tracker, domain
    )
    assert result == {"address": desk.order_address(ORDER)}


def test_pointing_to_the_delivery_address_is_no_question_for_the_knowledge_base(
    desk, knowledge, domain
) -> None:
    """ "就是送货地址" filed as a question got the article about changing a delivery address
    and the address question again; it is the answer."""
    slots = {
        "order_id": ORDER,
        "verified_customer": ORDER,
        "active_loop": "repair_form",
        "requested_slot": "address",
    }
    tracker = make_tracker(slots, text="就是送货地址", intent="ask_question")
    dispatcher = CollectingDispatcher()
    events = form_answer_taken_for_a_question(dispatcher, tracker, domain)
    assert events == [SlotSet("address", desk.order_address(ORDER))]
    assert dispatcher.messages == []


@pytest.mark.parametrize(
    "said", ["北京市海淀区中关村大街27号", "望京花园3号楼2单元501", "浦东新区张杨路500弄"]
)
def test_a_typed_address_is_taken_as_said(desk, domain, said) -> None:
    tracker = make_tracker({"requested_slot": "address"}, text=said)
    result = validation("repair_form").validate_address(
        said, CollectingDispatcher(), tracker, domain
    )
    assert result == {"address": said}


@pytest.mark.parametrize(
    ("said", "address"),
    [
        ("不要送货地址，送到我公司：成都市高新区天府三街199号5楼", "成都市高新区天府三街199号5楼"),
        (
            "不是这个地址，我搬家了，新地址是北京市海淀区中关村大街1号院2号楼301",
            "北京市海淀区中关村大街1号院2号楼301",
        ),
        ("地址不对，是广州市越秀区北京路100号", "广州市越秀区北京路100号"),
    ],
)
def test_a_new_address_said_against_the_delivery_address_is_the_address(
    desk, domain, said, address
) -> None:
    """QA: "不要送货地址，送到我公司：…" booked the visit at the delivery address."""
    tracker = make_tracker(
        {"requested_slot": "address", "verified_customer": ORDER, "order_id": ORDER}, text=said
    )
    form = validation("repair_form")
    result = form.validate_address(said, CollectingDispatcher(), tracker, domain)
    assert result == {"address": address}


def test_words_that_name_no_place_are_no_address(desk, domain) -> None:
    """ "两台都装" at the address question: asked again, never booked as the address."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"requested_slot": "address"}, text="两台都装哈")
    form = validation("installation_form")
    assert form.validate_address("两台都装哈", dispatcher, tracker, domain) == {"address": None}
    assert responses(dispatcher) == ["utter_address_unclear"]


def test_a_question_at_the_address_question_is_answered_not_booked(desk, knowledge, domain) -> None:
    dispatcher = CollectingDispatcher()
    question = "等下，退货运费谁出？"
    tracker = make_tracker({"requested_slot": "address"}, text=question)
    form = validation("maintenance_form")
    assert form.validate_address(question, dispatcher, tracker, domain) == {"address": None}
    assert responses(dispatcher) == ["utter_kb_answer_in_passing", "utter_address_unclear"]
    assert dispatcher.messages[0]["title"] and dispatcher.messages[0]["answer"]
    dispatcher = CollectingDispatcher()
    unknown = "你们老板叫什么名字呢？"
    tracker = make_tracker({"requested_slot": "address"}, text=unknown)
    assert form.validate_address(unknown, dispatcher, tracker, domain) == {"address": None}
    assert responses(dispatcher) == ["utter_kb_not_found_in_passing", "utter_address_unclear"]


def test_before_identity_the_product_is_asked_openly(desk, domain) -> None:
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAskProduct().run(dispatcher, make_tracker({"order_id": ORDER}), domain))
    assert responses(dispatcher) == ["utter_ask_product"]


def test_a_product_named_before_identity_is_checked_once_the_order_is_known(desk, domain) -> None:
    """ "电饭煲坏了" on the washing-machine order: caught at the phone, not booked."""
    tracker = make_tracker({"order_id": ORDER, "product": "电饭煲"}, text=PHONE)
    dispatcher = CollectingDispatcher()
    result = validation("repair_form").validate_phone(PHONE, dispatcher, tracker, domain)
    assert result["verified_customer"] == ORDER and result["product"] is None
    assert responses(dispatcher) == ["utter_unknown_product"]
    # a form that asks for no product does not care
    dispatcher = CollectingDispatcher()
    result = validation("price_dispute_form").validate_phone(PHONE, dispatcher, tracker, domain)
    assert "product" not in result and dispatcher.messages == []


def test_a_one_product_order_fills_the_product_and_says_so(desk, domain) -> None:
    """Nothing to choose on a one-item order: the product is said back, not asked."""
    tracker = make_tracker({"order_id": ORDER}, text=PHONE)
    dispatcher = CollectingDispatcher()
    result = validation("maintenance_form").validate_phone(PHONE, dispatcher, tracker, domain)
    assert result["verified_customer"] == ORDER and result["product"] == "滚筒洗衣机"
    assert responses(dispatcher) == ["utter_product_from_order"]
    assert dispatcher.messages[0]["product"] == "滚筒洗衣机"
    # two products: still the customer's choice
    two_items = "SO20261103002"
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"order_id": two_items}, text=OTHER_PHONE)
    result = validation("repair_form").validate_phone(OTHER_PHONE, dispatcher, tracker, domain)
    assert result["verified_customer"] == two_items and "product" not in result
    assert dispatcher.messages == []


def test_an_order_number_typed_for_the_product_switches_orders(desk, domain) -> None:
    """The product is on another order: the customer sends that order's number."""
    form = validation("repair_form")
    tracker = make_tracker(
        {
            "requested_slot": "product",
            "order_id": "SO20261101001",
            "verified_customer": "SO20261101001",
        },
        text="是另一个订单买的 SO20261120009",
    )
    dispatcher = CollectingDispatcher()
    assert asyncio.run(form.extract_order_id(dispatcher, tracker, domain)) == {
        "order_id": "SO20261120009"
    }
    assert asyncio.run(form.extract_product(dispatcher, tracker, domain)) == {}
    result = form.validate_order_id("SO20261120009", dispatcher, tracker, domain)
    assert result == {
        "order_id": "SO20261120009",
        "product": None,
        "phone": None,
        "verified_customer": None,
    }


def corrected_order_at_the_reason(text: str, phone: str) -> object:
    """The exchange form has verified Zhang's washer order and asks for the reason; the
    customer answers with another order number."""
    verified = {"order_id": ORDER, "phone": phone, "verified_customer": ORDER}
    slots = {
        **verified,
        "product": "滚筒洗衣机",
        "active_loop": "exchange_form",
        "requested_slot": "request_reason",
        "request_reason": text,
    }
    tracker = make_tracker(slots, text=text)
    tracker.events = [
        {"event": "slot", "name": "order_id", "value": ORDER},
        *tracker.events,
        {"event": "slot", "name": "request_reason", "value": text},
    ]
    return tracker


def test_a_corrected_order_number_is_no_reason_and_the_same_phone_verifies_it(desk, domain) -> None:
    """QA: "不对 订单号错了 是SO20261120009" at the exchange reason was saved as the reason,
    the washer stayed as the product, and the phone Zhang had just given was asked again."""
    text = "不对 订单号错了 是SO20261120009"
    dispatcher = CollectingDispatcher()
    events = asyncio.run(
        validation("exchange_form").run(
            dispatcher, corrected_order_at_the_reason(text, PHONE), domain
        )
    )
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["order_id"] == slots["verified_customer"] == "SO20261120009"
    assert slots["request_reason"] is None
    assert slots["product"] is None  # two products on that order: the customer chooses
    assert "utter_identity_not_found" not in responses(dispatcher)


def test_an_exchange_right_after_a_return_ticket_keeps_its_product(desk, domain) -> None:
    """QA: "还是换货吧" just after the return ticket opened asked for the product again."""
    returned = desk.open_request(
        "return",
        desk.verify_identity("SO20261103002", OTHER_PHONE),
        {"product": "无线耳机", "request_reason": "音质一般"},
        "test-user",
        "rest",
    )
    opened = [
        {"event": "action", "name": "action_open_return_ticket"},
        {"event": "slot", "name": "ticket_id", "value": returned.ticket_no},
    ]
    verified = {"order_id": "SO20261103002", "verified_customer": "SO20261103002"}
    tracker = make_tracker(verified, text="哎 还是换货吧", intent="request_exchange")
    tracker.events = opened + tracker.events
    form = validation("exchange_form")
    extracted = asyncio.run(form.extract_product(CollectingDispatcher(), tracker, domain))
    assert extracted == {"product": "无线耳机"}
    # a later exchange in the same chat is its own request
    later = make_tracker(verified, text="再帮我换个东西", intent="request_exchange")
    later.events = opened + [{"event": "user", "text": "谢谢"}] + later.events
    assert asyncio.run(form.extract_product(CollectingDispatcher(), later, domain)) == {}


def test_the_product_named_earlier_goes_with_the_corrected_order(desk, domain) -> None:
    """ "电饭煲不加热了 要报修" with the washer's order: once the rice cooker's order is sent,
    the rice cooker is the product, not asked again."""
    tracker = corrected_order_at_the_reason("是SO20261120009", PHONE)
    named = {"entities": [{"entity": "product", "value": "电饭煲", "start": 0, "end": 3}]}
    tracker.events.insert(
        0, {"event": "user", "text": "电饭煲不加热了 要报修", "parse_data": named}
    )
    events = asyncio.run(validation("exchange_form").run(CollectingDispatcher(), tracker, domain))
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["verified_customer"] == "SO20261120009" and slots["product"] == "电饭煲"


def test_a_corrected_order_of_someone_else_asks_for_its_phone(desk, domain) -> None:
    text = "搞错了 是SO20261103002"  # Li's order: Zhang's phone does not open it
    dispatcher = CollectingDispatcher()
    events = asyncio.run(
        validation("exchange_form").run(
            dispatcher, corrected_order_at_the_reason(text, PHONE), domain
        )
    )
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["order_id"] == "SO20261103002"
    assert slots["phone"] is None and slots["verified_customer"] is None
    assert slots["request_reason"] is None
    assert dispatcher.messages == []  # no failed check counted: the phone is simply asked


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("另外SO20261120009这单发货了吗", "utter_order_status"),  # Zhang's own other order
        ("另外SO20261103002这单发货了吗", "utter_other_order_later"),  # Li's: its own check
    ],
)
def test_another_order_asked_about_in_passing_is_answered_and_the_form_goes_on(
    desk, domain, text, reply
) -> None:
    """QA: asking about another order mid-form moved the form onto that order."""
    tracker = corrected_order_at_the_reason(text, PHONE)
    asked = {"name": "query_order", "confidence": 0.9}
    tracker.latest_message.update(intent=asked, intent_ranking=[asked])
    dispatcher = CollectingDispatcher()
    events = asyncio.run(validation("exchange_form").run(dispatcher, tracker, domain))
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert responses(dispatcher)[0] == reply
    assert "order_id" not in slots and "verified_customer" not in slots
    assert slots["request_reason"] is None  # the reason is asked again


def test_a_phone_typed_for_the_order_number_is_kept_not_counted_as_a_failure(desk, domain) -> None:
    form = validation("order_status_form")
    tracker = make_tracker({"requested_slot": "order_id"}, text="138 0013 8000")
    dispatcher = CollectingDispatcher()
    assert asyncio.run(form.extract_order_id(dispatcher, tracker, domain)) == {"phone": PHONE}
    result = form.validate_phone(PHONE, dispatcher, tracker, domain)
    assert result == {"phone": PHONE}
    assert responses(dispatcher) == ["utter_phone_kept_order_needed"]
    assert dispatcher.messages[0]["masked_phone"] == "138****8000"


def phone_given_earlier(phone: str, order_text: str):
    """A tracker whose phone slot was filled before the latest message (the order number)."""
    tracker = make_tracker({"requested_slot": "order_id", "phone": phone}, text=order_text)
    earlier = {"event": "slot", "name": "phone", "value": phone}
    tracker.events = [earlier, *tracker.events]
    return tracker


def test_an_order_number_after_the_phone_checks_the_pair(desk, domain) -> None:
    form = validation("order_status_form")
    dispatcher = CollectingDispatcher()
    result = form.validate_order_id(ORDER, dispatcher, phone_given_earlier(PHONE, ORDER), domain)
    assert result["order_id"] == ORDER and result["verified_customer"] == ORDER
    assert dispatcher.messages == []
    wrong = form.validate_order_id(
        ORDER, dispatcher, phone_given_earlier(OTHER_PHONE, ORDER), domain
    )
    assert wrong["order_id"] == ORDER and wrong["phone"] is None  # only the phone again
    assert wrong["identity_failures"] == 1
    assert responses(dispatcher) == ["utter_identity_not_found"]


def test_too_short_fault_description_asks_for_more(desk, domain) -> None:
    dispatcher = CollectingDispatcher()
    form = validation("repair_form")
    assert form.validate_fault_description("坏", dispatcher, make_tracker(), domain) == {
        "fault_description": None
    }
    assert responses(dispatcher) == ["utter_text_too_short"]
    # QA: "风太小" was refused as too short
    assert form.validate_fault_description("风太小", dispatcher, make_tracker(), domain) == {
        "fault_description": "风太小"
    }


def test_a_date_given_for_the_fault_description_is_not_taken_as_one(desk, domain) -> None:
    form = validation("repair_form")
    text = "明天上午 13812345678"
    only_when = make_tracker(
        {"requested_slot": "fault_description"},
        text=text,
        entities=[
            {"entity": "date", "value": "明天", "start": 0, "end": 2},
            {"entity": "time_slot", "value": "上午", "start": 2, "end": 4},
            {"entity": "phone", "value": "13812345678", "start": 5, "end": 16},
        ],
    )
    dispatcher = CollectingDispatcher()
    result = form.validate_fault_description(text, dispatcher, only_when, domain)
    assert result == {"fault_description": None}
    assert responses(dispatcher) == ["utter_time_is_not_a_description"]

    at_address = make_tracker(
        {"requested_slot": "address"},
        text="后天上午",
        entities=[{"entity": "date", "value": "后天", "start": 0, "end": 2}],
    )
    dispatcher = CollectingDispatcher()
    assert form.validate_address("后天上午", dispatcher, at_address, domain) == {"address": None}
    assert responses(dispatcher) == ["utter_time_noted_need_address"]

    described = "明天上午来吧 洗衣机不脱水"
    with_fault = make_tracker(
        {"requested_slot": "fault_description"},
        text=described,
        entities=[{"entity": "date", "value": "明天", "start": 0, "end": 2}],
    )
    dispatcher = CollectingDispatcher()
    result = form.validate_fault_description(described, dispatcher, with_fault, domain)
    assert result == {"fault_description": described} and not dispatcher.messages


def test_a_repair_request_that_describes_the_fault_is_not_asked_for_it(desk, domain) -> None:
    form = validation("repair_form")
    opening = make_tracker(text="我家洗衣机漏水了 派人来修一下", intent="report_fault")
    extracted = asyncio.run(form.extract_fault_description(CollectingDispatcher(), opening, domain))
    assert extracted == {"fault_description": "我家洗衣机漏水了 派人来修一下"}

    vague = make_tracker(text="我的洗衣机坏了 要报修", intent="report_fault")
    assert asyncio.run(form.extract_fault_description(CollectingDispatcher(), vague, domain)) == {}
    # later messages fill it only as the answer to the form's question (the from_text mapping)
    later = make_tracker(
        {"requested_slot": "address"}, text="洗衣机漏水了 快来", intent="report_fault"
    )
    assert asyncio.run(form.extract_fault_description(CollectingDispatcher(), later, domain)) == {}


def test_the_opening_fault_description_leaves_out_the_numbers(desk, domain) -> None:
    """QA: the ticket's fault text held the customer's phone number."""
    text = "我要报修 SO20261110004 13600136000 冰箱咔咔响"
    numbers = [("order_id", "SO20261110004"), ("phone", "13600136000")]
    entities = [
        {"entity": name, "value": v, "start": text.index(v), "end": text.index(v) + len(v)}
        for name, v in numbers
    ]
    opening = make_tracker(text=text, intent="inform", entities=entities)
    form = validation("repair_form")
    extracted = asyncio.run(form.extract_fault_description(CollectingDispatcher(), opening, domain))
    assert extracted == {"fault_description": "我要报修 冰箱咔咔响"}


def test_each_form_takes_only_its_own_opening_answer(desk, knowledge, domain) -> None:
    price = make_tracker(text="买了三天降价了200 能补差价吗", intent="price_dispute")
    extract = validation("price_dispute_form").extract_request_reason
    assert asyncio.run(extract(CollectingDispatcher(), price, domain)) == {
        "request_reason": "买了三天降价了200 能补差价吗"
    }
    complaint = make_tracker(text="我要投诉 你们送货员把我家门撞坏了", intent="complain")
    extract = validation("complaint_form").extract_complaint_detail
    assert asyncio.run(extract(CollectingDispatcher(), complaint, domain)) == {
        "complaint_detail": "我要投诉 你们送货员把我家门撞坏了"
    }
    # an angry "人呢" that brought in a person is no message to leave
    angry = make_tracker(text="人呢？？？回个话行不行", intent="complain")
    extract = validation("message_form").extract_request_reason
    assert asyncio.run(extract(CollectingDispatcher(), angry, domain)) == {}
    # ...but a safety risk taken down while nobody is online is the message itself
    hazard = make_tracker(text="热水器有点漏电 手碰到麻了一下", intent="report_fault")
    hazard.latest_message["sentiment"] = {"label": "negative", "reasons": ["safety"]}
    assert asyncio.run(extract(CollectingDispatcher(), hazard, domain)) == {
        "request_reason": "热水器有点漏电 手碰到麻了一下"
    }


@pytest.mark.parametrize(
    ("text", "intent", "entities", "taken"),
    [
        ("我的维修工单T20261120-0001怎么还没修好，都两个礼拜了", "query_ticket_status", [], True),
        ("转人工，我的退款一直没到账", "request_human", [], True),
        (
            "转人工 冰箱送来就是坏的",
            "request_human",
            [{"entity": "product", "value": "冰箱"}],
            True,
        ),
        ("我要找真人客服", "request_human", [], False),
        ("我要留言 空调外机噪音太大", "leave_message", [], False),
        ("阿斯顿发送到发", "nlu_fallback", [], False),
        (
            "工单T20261124-0001 都两个礼拜了还没人理我 叫你们领导来",
            "nlu_fallback",
            [{"entity": "ticket_id", "value": "T20261124-0001"}],
            True,
        ),
    ],
    ids=[
        "upset-chase",
        "person-and-topic",
        "person-and-product",
        "person-only",
        "announce",
        "miss",
        "miss-naming-a-ticket",
    ],
)
def test_a_message_that_escalated_is_the_message_when_it_says_what_about(
    desk, knowledge, domain, text: str, intent: str, entities: list, taken: bool
) -> None:
    """With nobody online the message form takes down what the customer said as the chat
    escalated, unless it only asks for a person, announces a message or was not understood."""
    tracker = make_tracker(text=text, intent=intent, entities=entities)
    extract = validation("message_form").extract_request_reason
    result = asyncio.run(extract(CollectingDispatcher(), tracker, domain))
    assert result == ({"request_reason": text} if taken else {})


def test_a_ticket_number_given_for_the_order_number_is_acknowledged(desk, domain) -> None:
    tracker = make_tracker(
        {"requested_slot": "order_id", "ticket_id": "T20261207-0001"},
        text="T20261207-0001",
        entities=[{"entity": "ticket_id", "value": "T20261207-0001", "start": 0, "end": 14}],
    )
    dispatcher = CollectingDispatcher()
    form = validation("ticket_status_form")
    assert form.validate_order_id("T20261207-0001", dispatcher, tracker, domain) == {
        "order_id": None
    }
    assert responses(dispatcher) == ["utter_ticket_no_needs_order"]
    assert dispatcher.messages[0]["ticket_id"] == "T20261207-0001"


DEMO_TICKET = "T20261120-0001"  # the demo repair ticket on order SO20261101001


def ticket_entity(ticket_no: str) -> list[dict]:
    return [{"entity": "ticket_id", "value": ticket_no, "start": 0, "end": len(ticket_no)}]


def test_a_known_ticket_number_for_the_order_number_stands_for_its_order(desk, domain) -> None:
    tracker = make_tracker(
        {"requested_slot": "order_id"}, text=DEMO_TICKET, entities=ticket_entity(DEMO_TICKET)
    )
    dispatcher = CollectingDispatcher()
    form = validation("ticket_status_form")
    assert form.validate_order_id(DEMO_TICKET, dispatcher, tracker, domain) == {"order_id": ORDER}
    assert dispatcher.messages == []  # the phone question comes next


@pytest.mark.parametrize(
    ("slots", "entities", "expected"),
    [
        ({}, ticket_entity(DEMO_TICKET.lower()), [ORDER]),
        ({"ticket_id": DEMO_TICKET}, [], [ORDER]),
        ({}, ticket_entity("T20261207-0001"), []),  # unknown ticket: the form asks as usual
        ({"ticket_id": DEMO_TICKET, "verified_customer": ORDER}, [], []),  # already verified
        ({}, [], []),
    ],
    ids=["named-in-request", "noted-earlier", "unknown", "verified", "no-ticket"],
)
def test_a_ticket_status_request_with_a_ticket_number_needs_only_the_phone(
    desk, domain, slots: dict, entities: list, expected: list
) -> None:
    tracker = make_tracker(slots, text="工单处理到哪一步了", entities=entities)
    extracted = asyncio.run(
        validation("ticket_status_form").extract_order_id(CollectingDispatcher(), tracker, domain)
    )
    assert list(extracted.values()) == expected


def test_a_ticket_number_in_a_new_request_stands_for_its_order(desk, domain) -> None:
    """ "T20261120-0001 的洗衣机又坏了" starting a repair: the ticket's order is the order to
    check, and the form goes on to the phone on it."""
    tracker = make_tracker(text="T20261120-0001的洗衣机又坏了", entities=ticket_entity(DEMO_TICKET))
    form = validation("repair_form")
    extracted = asyncio.run(form.extract_order_id(CollectingDispatcher(), tracker, domain))
    assert extracted == {"order_id": ORDER}
    asked = make_tracker(
        {"requested_slot": "order_id"}, text="T20261120-0001", entities=ticket_entity(DEMO_TICKET)
    )
    # once the form has asked for the order number, the ticket number is the answer to check
    assert asyncio.run(form.extract_order_id(CollectingDispatcher(), asked, domain)) == {
        "order_id": "T20261120-0001"
    }


def test_typed_order_number_without_entity_is_extracted(desk, domain) -> None:
    tracker = make_tracker({"requested_slot": "order_id"}, text="订单是so20261101001哦")
    extracted = asyncio.run(
        validation("return_form").extract_order_id(CollectingDispatcher(), tracker, domain)
    )
    assert extracted == {"order_id": "so20261101001"}


def test_a_digression_is_not_taken_as_an_answer(desk, domain) -> None:
    tracker = make_tracker({"requested_slot": "phone"}, text="退货要运费吗", intent="ask_question")
    extraction = validation("return_form").extract_phone(CollectingDispatcher(), tracker, domain)
    assert asyncio.run(extraction) == {}


def test_correcting_the_date_at_the_time_slot_question_is_not_an_error(desk, domain) -> None:
    tracker = make_tracker({"requested_slot": "time_slot"}, text="不对 改成后天")
    tracker.latest_message["entities"] = [{"entity": "date", "value": "后天"}]
    dispatcher = CollectingDispatcher()
    result = validation("repair_form").validate_time_slot(
        "不对 改成后天", dispatcher, tracker, domain
    )
    assert result == {"time_slot": None}
    assert dispatcher.messages == []


def test_a_message_that_brought_in_a_person_answers_no_question(desk, domain) -> None:
    """Escalated inside a form (the customer threatened instead of typing the order number),
    the form asks again without calling the outburst a malformed order number."""
    tracker = make_tracker({"requested_slot": "order_id"}, text="再不解决我就打12315")
    form = validation("repair_form")
    assert asyncio.run(form.extract_order_id(CollectingDispatcher(), tracker, domain)) == {
        "order_id": "再不解决我就打12315"
    }
    # As Rasa's form hands it to validation: the events so far, then the form's own run.
    tracker.events += [
        {"event": "action", "name": "action_escalate"},
        {"event": "action", "name": "repair_form"},
    ]
    tracker.latest_action_name = "repair_form"
    assert asyncio.run(form.extract_order_id(CollectingDispatcher(), tracker, domain)) == {}


def test_an_order_and_phone_at_the_wish_question_are_details_not_the_wish(desk, domain) -> None:
    """ "订单SO20261110004 13600136000" at "您希望我们怎么处理？" is kept by the identity
    slots; the wish is asked again instead of a ticket opening with it as the wish."""
    text = "订单SO20261110004 13600136000"
    entities = [
        {"entity": "order_id", "value": "SO20261110004", "start": 2, "end": 15},
        {"entity": "phone", "value": "13600136000", "start": 16, "end": 27},
    ]
    tracker = make_tracker(
        {"requested_slot": "complaint_expectation"}, text=text, entities=entities
    )
    dispatcher = CollectingDispatcher()
    form = validation("complaint_form")
    assert form.validate_complaint_expectation(text, dispatcher, tracker, domain) == {
        "complaint_expectation": None
    }
    assert responses(dispatcher) == ["utter_details_noted"]
    wish = "给我道歉 再赔偿地板"
    said = make_tracker({"requested_slot": "complaint_expectation"}, text=wish)
    assert form.validate_complaint_expectation(wish, CollectingDispatcher(), said, domain) == {
        "complaint_expectation": wish
    }


def test_asking_for_another_request_mid_form_rejects_the_form(desk, domain) -> None:
    """ "还是换货吧" at the return reason answers nothing: the form is rejected so that the
    switch rule runs; "尺寸不合适" (which the NLU may read as an exchange) is the reason."""
    asked = {"active_loop": "return_form", "requested_slot": "request_reason"}
    switch = make_tracker(asked, text="还是换货吧", intent="request_exchange")
    events = asyncio.run(validation("return_form").run(CollectingDispatcher(), switch, domain))
    assert events == [ActionExecutionRejected("return_form")]
    reason = make_tracker(asked, text="尺寸不合适", intent="request_exchange")
    reason.events.append({"event": "slot", "name": "request_reason", "value": "尺寸不合适"})
    events = asyncio.run(validation("return_form").run(CollectingDispatcher(), reason, domain))
    assert {"event": "slot", "name": "request_reason", "value": "尺寸不合适"} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in events
    ]


def test_an_outburst_that_brought_in_a_person_is_no_address(desk, domain) -> None:
    """QA: "问这么多干嘛！！！赶紧派人来 再拖我就打12315" at the address question escalated,
    and was then booked as the visit address (its "12315" looks like a house number)."""
    text = "问这么多干嘛！！！赶紧派人来 再拖我就打12315"
    asked = {
        "active_loop": "repair_form",
        "requested_slot": "address",
        **{"order_id": ORDER, "phone": PHONE, "verified_customer": ORDER},
    }
    tracker = make_tracker({**asked, "address": text}, text=text, intent="nlu_fallback")
    tracker.latest_message["sentiment"] = {"label": "negative", "escalate": True}
    tracker.events += [
        {"event": "slot", "name": "address", "value": text},
        {"event": "action", "name": "action_escalate"},
    ]
    dispatcher = CollectingDispatcher()
    events = asyncio.run(
        validation("repair_form").get_validation_events(dispatcher, tracker, domain)
    )
    assert events == [SlotSet("address", None)] and dispatcher.messages == []
    # the same words with nobody brought in are checked as an address as usual
    calm = make_tracker({**asked, "address": text}, text=text)
    calm.events.append({"event": "slot", "name": "address", "value": text})
    events = asyncio.run(
        validation("repair_form").get_validation_events(CollectingDispatcher(), calm, domain)
    )
    assert SlotSet("address", None) not in events


def test_goods_the_records_show_on_their_way_can_be_said_to_have_arrived(desk, domain) -> None:
    """QA: refused as in transit, "我早就收到了 都装好用了两天了 物流没更新而已" got "格式不
    对" and the chat was stuck.  Now the order goes on, with the customer's word noted."""
    form = validation("return_form")
    refused = {"undelivered_order": "SO20261118007", "phone": "15800158000"}
    asked = {**refused, "requested_slot": "order_id", "active_loop": "return_form"}
    text = "我早就收到了 都装好用了两天了 物流没更新而已"
    tracker = make_tracker(asked, text=text)
    tracker.events.insert(0, {"event": "slot", "name": "phone", "value": "15800158000"})
    extracted = asyncio.run(form.extract_order_id(CollectingDispatcher(), tracker, domain))
    assert extracted == {"order_id": "SO20261118007"}
    dispatcher = CollectingDispatcher()
    result = form.validate_order_id("SO20261118007", dispatcher, tracker, domain)
    assert result["verified_customer"] == "SO20261118007"
    assert "运输中" in result["delivery_note"] and result["undelivered_order"] is None
    assert "utter_order_not_delivered" not in responses(dispatcher)
    # still waiting is no arrival: the answer is read as an (unknown) order number as before
    waiting = make_tracker(asked, text="还没收到呢")
    extracted = asyncio.run(form.extract_order_id(CollectingDispatcher(), waiting, domain))
    assert extracted == {"order_id": "还没收到呢"}


@pytest.mark.parametrize(
    ("form", "text", "escalates"),
    [
        # QA: brought in a person on its own; the next message became the reason instead
        ("return_form", "已经换过一次了 新换的这台还是不制冷 不想要了", True),
        # brought in a person only as the second negative turn in a row
        ("exchange_form", "噪音大 想换一台新的", False),
    ],
)
def test_an_upset_reason_that_brought_in_a_person_is_still_the_reason(
    desk, domain, form: str, text: str, escalates: bool
) -> None:
    asked = {"active_loop": form, "requested_slot": "request_reason"}
    tracker = make_tracker({**asked, "request_reason": text}, text=text)
    tracker.latest_message["sentiment"] = {"label": "negative", "escalate": escalates}
    candidate = {"event": "slot", "name": "request_reason", "value": text}
    tracker.events += [
        candidate,
        {"event": "action", "name": "action_escalate"},
        {"event": "action", "name": form},
        candidate,  # as Rasa hands the form's slot candidates to the validation
    ]
    events = asyncio.run(
        validation(form).get_validation_events(CollectingDispatcher(), tracker, domain)
    )
    assert SlotSet("request_reason", text) in events


def test_the_order_question_is_not_asked_right_after_a_reply_that_asks_it(domain) -> None:
    """QA: "订单…还没有签收…如果您说的是另一个订单，请直接发那个订单号" was followed at once
    by "为了保护您的隐私，请先提供订单号", as if the check had failed."""
    plain = make_tracker({"active_loop": "repair_form"})
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAskOrderId().run(dispatcher, plain, domain))
    assert responses(dispatcher) == ["utter_ask_order_id"]
    refused = make_tracker({"active_loop": "repair_form"})
    said = {"event": "bot", "metadata": {"utter_action": "utter_order_not_delivered"}}
    refused.events.append(said)
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAskOrderId().run(dispatcher, refused, domain))
    assert responses(dispatcher) == []


def test_a_detail_right_after_a_ticket_ends_the_new_form_at_once(desk, domain) -> None:
    """ "对了 它盖子也合不上了" after the rice cooker's repair ticket: no "哪一件商品？", the
    form ends and its ticket action adds the words to that ticket."""
    repaired = desk.open_request(
        "repair",
        desk.verify_identity("SO20261120009", "13800138000"),
        {"product": "电饭煲", "fault_description": "按键没反应"},
        "test-user",
        "rest",
    )
    opened = [
        {"event": "action", "name": "action_open_repair_ticket"},
        {"event": "slot", "name": "ticket_id", "value": repaired.ticket_no},
    ]
    verified = {"order_id": "SO20261120009", "verified_customer": "SO20261120009"}
    tracker = make_tracker(verified, text="对了 它盖子也合不上了", intent="request_return")
    tracker.events = opened + tracker.events
    events = asyncio.run(validation("return_form").run(CollectingDispatcher(), tracker, domain))
    assert events == [{"event": "slot", "name": "requested_slot", "value": None, "timestamp": None}]


def test_a_fault_asked_as_a_question_gets_the_self_help_article_then_the_repair(
    knowledge, domain
) -> None:
    """QA: "电饭煲煮饭夹生怎么办" (and "洗衣机漏水怎么办") got only "请提供订单号"."""

    def asked(text: str, just_opened: bool = True) -> list[str]:
        tracker = make_tracker({"active_loop": "repair_form"}, text=text, intent="report_fault")
        if just_opened:
            tracker.events.append({"event": "active_loop", "name": "repair_form"})
        dispatcher = CollectingDispatcher()
        asyncio.run(ActionAskOrderId().run(dispatcher, tracker, domain))
        return [m.get("title") or m["response"] for m in dispatcher.messages]

    assert asked("洗衣机漏水怎么办") == ["洗衣机漏水排查", "utter_ask_order_id"]
    assert asked("洗衣机漏水了 要报修") == ["utter_ask_order_id"]  # no question asked
    assert asked("冰箱坏了 怎么报修") == ["utter_ask_order_id"]  # how to report is no fix
    assert asked("洗衣机漏水怎么办", just_opened=False) == ["utter_ask_order_id"]  # asked again


def test_a_customer_without_the_order_number_is_told_where_to_find_it(desk, domain) -> None:
    """QA: "不记得订单号" at the order question of a return got "这个订单号格式好像不对" and
    the same question again; "订单号忘了，手机…，电视想退" got only the bare question."""
    asked = {"active_loop": "return_form", "requested_slot": "order_id"}
    tracker = make_tracker(asked, text="不记得订单号", intent="inform")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(validation("return_form").run(dispatcher, tracker, domain))
    assert responses(dispatcher) == ["utter_order_id_where_to_find"]
    assert SlotSet("order_id", None) in events
    # the form's question is not asked on top of it
    tracker.events.append(
        {"event": "bot", "metadata": {"utter_action": "utter_order_id_where_to_find"}}
    )
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAskOrderId().run(dispatcher, tracker, domain))
    assert dispatcher.messages == []
    opening = make_tracker(
        {"active_loop": "return_form"}, text="订单号忘了，手机13900139000，电视想退"
    )
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAskOrderId().run(dispatcher, opening, domain))
    assert responses(dispatcher) == ["utter_order_id_where_to_find"]
    # a complaint can do without one: the phone is enough there
    complaint = make_tracker({"active_loop": "complaint_form"}, text="订单号忘了")
    dispatcher = CollectingDispatcher()
    asyncio.run(ActionAskOrderId().run(dispatcher, complaint, domain))
    assert responses(dispatcher) == ["utter_ask_order_id"]


def test_leave_a_message_mid_request_gives_way_to_the_message_form(desk, domain) -> None:
    """QA: 留言建工单, offered when the order number cannot be found, asked for it again."""
    asked = {"active_loop": "return_form", "requested_slot": "order_id"}
    tracker = make_tracker(asked, text="/leave_message", intent="leave_message")
    events = asyncio.run(validation("return_form").run(CollectingDispatcher(), tracker, domain))
    assert events == [ActionExecutionRejected("return_form")]
    # the message form itself takes it as usual
    in_message = {"active_loop": "message_form", "requested_slot": "request_reason"}
    tracker = make_tracker(in_message, text="我要留言", intent="leave_message")
    events = asyncio.run(validation("message_form").run(CollectingDispatcher(), tracker, domain))
    assert ActionExecutionRejected("message_form") not in events
