"""Order and delivery views."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from bot.services.orders import OrderCancellation, OrderService, UnknownOrder
from bot.store.db import session_scope
from bot.store.models import Customer, Order

BEIJING = timezone(timedelta(hours=8))


def test_delivery_status_shows_items_carrier_and_eta(demo_sessions: sessionmaker) -> None:
    order = OrderService(demo_sessions).delivery_status("so20261119008")
    assert order.order_no == "SO20261119008"
    assert (order.delivery_status, order.carrier, order.tracking_no) == (
        "shipped",
        "日日顺物流",
        "RRS202611190008",
    )
    assert order.eta == datetime(2026, 11, 27, 18, 0, tzinfo=BEIJING)
    assert [(item.sku, item.product_name, item.quantity) for item in order.items] == [
        ("WH-E60", "电热水器", 1),
        ("RH-G30", "油烟机", 1),
    ]
    assert order.total_amount == Decimal("5898.00")
    assert order.items[0].unit_price == Decimal("2599.00")
    assert order.items[0].warranty_months == 48


def test_pending_order_has_no_carrier_yet(demo_sessions: sessionmaker) -> None:
    order = OrderService(demo_sessions).delivery_status("SO20261123012")
    assert (order.delivery_status, order.carrier, order.tracking_no) == ("pending", None, None)


def test_unknown_order_raises(demo_sessions: sessionmaker) -> None:
    with pytest.raises(UnknownOrder):
        OrderService(demo_sessions).delivery_status("SO20991231999")


def test_orders_for_customer_newest_first(demo_sessions: sessionmaker) -> None:
    service = OrderService(demo_sessions)
    customer_id = service.delivery_status("SO20261101001").customer_id
    orders = service.orders_for_customer(customer_id)
    assert [order.order_no for order in orders] == ["SO20261120009", "SO20261101001"]
    assert service.orders_for_customer(999_999) == []


def _customer_id(sessions: sessionmaker, phone: str) -> int:
    with session_scope(sessions) as session:
        return session.execute(select(Customer.id).where(Customer.phone == phone)).scalar_one()


def test_an_unshipped_order_is_cancelled_once(demo_sessions: sessionmaker) -> None:
    orders, li = OrderService(demo_sessions), _customer_id(demo_sessions, "13900139000")
    assert orders.cancel("so20261123012", li) is OrderCancellation.CANCELLED
    order = orders.delivery_status("SO20261123012")
    assert (order.status, order.delivery_status, order.eta) == ("cancelled", "cancelled", None)
    assert orders.cancel("SO20261123012", li) is OrderCancellation.ALREADY_CANCELLED


def test_an_order_that_shipped_meanwhile_is_not_cancelled(demo_sessions: sessionmaker) -> None:
    orders, li = OrderService(demo_sessions), _customer_id(demo_sessions, "13900139000")
    with session_scope(demo_sessions) as session:
        session.execute(
            update(Order).where(Order.order_no == "SO20261123012").values(delivery_status="shipped")
        )
    assert orders.cancel("SO20261123012", li) is OrderCancellation.SHIPPED
    assert orders.delivery_status("SO20261123012").status == "paid"


def test_a_delivered_order_is_returned_not_cancelled(demo_sessions: sessionmaker) -> None:
    orders, zhang = OrderService(demo_sessions), _customer_id(demo_sessions, "13800138000")
    assert orders.cancel("SO20261101001", zhang) is OrderCancellation.DELIVERED


def test_nobody_cancels_another_customers_order(demo_sessions: sessionmaker) -> None:
    orders, zhang = OrderService(demo_sessions), _customer_id(demo_sessions, "13800138000")
    with pytest.raises(UnknownOrder):
        orders.cancel("SO20261123012", zhang)
    with pytest.raises(UnknownOrder):
        orders.cancel("SO20991231999", zhang)
    assert orders.delivery_status("SO20261123012").status == "paid"
