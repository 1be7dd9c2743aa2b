"""The demo data set: complete, consistent and safe to load repeatedly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from bot.demo import DEMO_DATA_FILE, DemoDataError, load_demo_data
from bot.policy import ServicePolicy
from bot.services.customers import CustomerService
from bot.services.tickets import TicketService
from bot.store.db import session_scope
from bot.store.models import Customer, Order, OrderItem, Product, Ticket, TicketEvent

MODELS = (Product, Customer, Order, OrderItem, Ticket, TicketEvent)


def _counts(sessions: sessionmaker) -> dict[str, int]:
    with session_scope(sessions) as session:
        return {
            model.__tablename__: session.execute(
                select(func.count()).select_from(model)
            ).scalar_one()
            for model in MODELS
        }


def test_loading_twice_adds_nothing_the_second_time(
    sessions: sessionmaker, policy: ServicePolicy
) -> None:
    first = load_demo_data(sessions, policy)
    counts = _counts(sessions)
    second = load_demo_data(sessions, policy)
    assert (first.products_added, first.customers_added) == (16, 7)
    assert (first.orders_added, first.tickets_added) == (13, 3)
    assert (second.products_added, second.customers_added) == (0, 0)
    assert (second.orders_added, second.tickets_added) == (0, 0)
    assert _counts(sessions) == counts


def test_demo_covers_tiers_delivery_states_and_ticket_stories(
    demo_sessions: sessionmaker, policy: ServicePolicy
) -> None:
    customers = CustomerService(demo_sessions).list_customers()
    assert len(customers) >= 6
    assert {customer.tier for customer in customers} == {"normal", "silver", "gold", "vip"}
    with session_scope(demo_sessions) as session:
        orders = session.execute(select(Order)).scalars().all()
        assert len(orders) >= 12
        assert {order.delivery_status for order in orders} == {
            "pending",
            "shipped",
            "in_transit",
            "out_for_delivery",
            "delivered",
            "cancelled",
        }
        for order in orders:
            assert order.order_no[2:10] == order.placed_at.astimezone(policy.timezone).strftime(
                "%Y%m%d"
            )
            assert order.total_amount == sum(i.unit_price * i.quantity for i in order.items)
    tickets = {
        (ticket.category, ticket.status)
        for ticket in TicketService(demo_sessions, policy).list_tickets()
    }
    assert tickets == {
        ("repair", "in_progress"),
        ("return_exchange", "resolved"),
        ("complaint", "opened"),
    }


def test_repair_ticket_timeline(demo_sessions: sessionmaker, policy: ServicePolicy) -> None:
    ticket = TicketService(demo_sessions, policy).timeline("T20261120-0001")
    assert [event.status for event in ticket.events] == [
        "opened",
        "acknowledged",
        "plan_given",
        "in_progress",
    ]
    assert ticket.customer_name == "张伟"
    assert all(event.note for event in ticket.events[1:])


def test_a_broken_demo_file_changes_nothing(
    sessions: sessionmaker, policy: ServicePolicy, tmp_path: Path
) -> None:
    raw = yaml.safe_load(DEMO_DATA_FILE.read_text(encoding="utf-8"))
    raw["tickets"][0]["timeline"].append(
        {"status": "opened", "at": raw["tickets"][0]["timeline"][-1]["at"], "actor": "x"}
    )
    broken = tmp_path / "demo.yml"
    broken.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DemoDataError, match="T20261120-0001"):
        load_demo_data(sessions, policy, path=broken)
    assert set(_counts(sessions).values()) == {0}


def test_invalid_demo_values_name_the_file(sessions: sessionmaker, tmp_path: Path) -> None:
    raw = yaml.safe_load(DEMO_DATA_FILE.read_text(encoding="utf-8"))
    raw["customers"][0]["tier"] = "platinum"
    broken = tmp_path / "demo.yml"
    broken.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DemoDataError, match="platinum") as raised:
        load_demo_data(sessions, path=broken)
    assert str(broken) in str(raised.value)
