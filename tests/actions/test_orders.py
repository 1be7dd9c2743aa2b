"""Cancelling an order: checked against the store, confirmed, then done."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import update

from actions.orders import ActionCancelOrder, ActionConfirmOrderCancel
from bot.store.db import session_scope
from bot.store.models import Order
from tests.actions.conftest import make_tracker, responses

LI_PENDING = {  # paid, not shipped: 净水器 2999 元
    "order_id": "SO20261123012",
    "phone": "13900139000",
    "verified_customer": "SO20261123012",
}


def run(action, tracker, domain):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain))
    return dispatcher, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def test_an_unshipped_order_is_cancelled_only_once_confirmed(desk, domain) -> None:
    dispatcher, slots = run(ActionCancelOrder(), make_tracker(LI_PENDING), domain)
    assert responses(dispatcher) == ["utter_ask_order_cancel_confirm"]
    assert dispatcher.messages[0]["amount"] == "2999.00"
    assert slots["order_to_cancel"] == "SO20261123012"
    assert desk.orders.delivery_status("SO20261123012").status == "paid"  # not yet

    confirmed = make_tracker({**LI_PENDING, **slots}, text="/affirm", intent="affirm")
    dispatcher, slots = run(ActionConfirmOrderCancel(), confirmed, domain)
    assert responses(dispatcher) == ["utter_order_cancel_done"]
    assert slots["order_to_cancel"] is None
    order = desk.orders.delivery_status("SO20261123012")
    assert (order.status, order.delivery_status) == ("cancelled", "cancelled")


@pytest.mark.parametrize(
    ("text", "intent", "cancelled"),
    [
        ("/deny", "deny", False),
        ("算了 先不取消了", "cancel", False),
        ("算了", "cancel", False),  # in doubt the order stays
        ("取消吧 不要了", "cancel", True),
        ("确认", "affirm", True),
    ],
)
def test_the_answer_to_the_confirmation_decides(desk, domain, text, intent, cancelled) -> None:
    waiting = make_tracker({**LI_PENDING, "order_to_cancel": "SO20261123012"}, text, intent)
    dispatcher, _ = run(ActionConfirmOrderCancel(), waiting, domain)
    assert responses(dispatcher) == ["utter_order_cancel_done" if cancelled else "utter_order_kept"]
    status = desk.orders.delivery_status("SO20261123012").status
    assert status == ("cancelled" if cancelled else "paid")


@pytest.mark.parametrize(
    ("slots", "reply"),
    [
        (  # shipped: refuse it at the door, or return it
            {"order_id": "SO20261119008", "phone": "13700137000"},
            "utter_order_cancel_shipped",
        ),
        (  # signed for: a return, offered as a button
            {"order_id": "SO20261101001", "phone": "13800138000"},
            "utter_order_cancel_delivered",
        ),
    ],
)
def test_an_order_that_left_the_warehouse_is_not_cancelled(desk, domain, slots, reply) -> None:
    verified = {**slots, "verified_customer": slots["order_id"]}
    dispatcher, events = run(ActionCancelOrder(), make_tracker(verified), domain)
    assert responses(dispatcher) == [reply]
    assert events["order_to_cancel"] is None
    assert desk.orders.delivery_status(slots["order_id"]).status != "cancelled"


def test_a_confirmation_for_an_order_that_shipped_meanwhile_says_so(
    desk, demo_factory, domain
) -> None:
    with session_scope(demo_factory) as session:
        session.execute(
            update(Order).where(Order.order_no == "SO20261123012").values(delivery_status="shipped")
        )
    waiting = make_tracker({**LI_PENDING, "order_to_cancel": "SO20261123012"}, "确认", "affirm")
    dispatcher, _ = run(ActionConfirmOrderCancel(), waiting, domain)
    assert responses(dispatcher) == ["utter_order_cancel_shipped"]
    assert desk.orders.delivery_status("SO20261123012").status == "paid"


def test_a_yes_with_no_order_waiting_cancels_nothing(desk, domain) -> None:
    dispatcher, _ = run(
        ActionConfirmOrderCancel(), make_tracker(LI_PENDING, "好的", "affirm"), domain
    )
    assert responses(dispatcher) == ["utter_deny_ack"]
    assert desk.orders.delivery_status("SO20261123012").status == "paid"
