"""Order and delivery views."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy.orm import sessionmaker

from bot.services.orders import OrderService, UnknownOrder

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
