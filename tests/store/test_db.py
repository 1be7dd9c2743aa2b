"""Engine settings, the UTC datetime column and the one-transaction-per-change guarantee."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.store.db import make_engine, make_session_factory, session_scope, upgrade_database
from bot.store.models import Customer, Ticket, TicketEvent

OPENED_AT = datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker]:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def _count(sessions: sessionmaker, model: type) -> int:
    with session_scope(sessions) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() > 0
    finally:
        engine.dispose()


def test_session_scope_commits_on_success(sessions: sessionmaker) -> None:
    with session_scope(sessions) as session:
        session.add(Customer(name="测试", phone="13800000001", tier="normal"))
    assert _count(sessions, Customer) == 1


def test_error_rolls_back_everything_already_flushed(sessions: sessionmaker) -> None:
    with pytest.raises(RuntimeError), session_scope(sessions) as session:
        session.add(Customer(name="测试", phone="13800000001", tier="normal"))
        session.flush()
        raise RuntimeError("failure after a write")
    assert _count(sessions, Customer) == 0


def test_failed_event_insert_leaves_no_ticket_behind(sessions: sessionmaker) -> None:
    with session_scope(sessions) as session:
        customer = Customer(name="测试", phone="13800000001", tier="normal")
        session.add(customer)
    with pytest.raises(IntegrityError), session_scope(sessions) as session:
        ticket = Ticket(
            ticket_no="T20261123-0001",
            customer_id=customer.id,
            category="repair",
            need_class="normal",
            priority=4,
            status="opened",
            channel="rest",
            summary="洗衣机异响",
            details={},
            created_at=OPENED_AT,
            first_response_due=OPENED_AT,
            plan_due=OPENED_AT,
            close_due=OPENED_AT,
            updated_at=OPENED_AT,
        )
        ticket.events.append(
            TicketEvent(status="not-a-status", note="", actor="test", created_at=OPENED_AT)
        )
        session.add(ticket)
    assert _count(sessions, Ticket) == 0
    assert _count(sessions, TicketEvent) == 0


def test_foreign_keys_are_enforced(sessions: sessionmaker) -> None:
    with pytest.raises(IntegrityError), session_scope(sessions) as session:
        session.add(
            TicketEvent(ticket_id=999, status="opened", note="", actor="test", created_at=OPENED_AT)
        )


def test_datetimes_come_back_as_aware_utc(sessions: sessionmaker) -> None:
    with session_scope(sessions) as session:
        session.add(Customer(name="测试", phone="13800000001", tier="vip", created_at=OPENED_AT))
    with session_scope(sessions) as session:
        customer = session.execute(select(Customer)).scalar_one()
    assert customer.created_at == OPENED_AT
    assert customer.created_at.tzinfo == timezone.utc
    assert customer.annual_spend == Decimal("0")


def test_naive_datetimes_are_refused(sessions: sessionmaker) -> None:
    with pytest.raises(Exception, match="naive datetime"), session_scope(sessions) as session:
        session.add(
            Customer(
                name="测试", phone="13800000001", tier="vip", created_at=datetime(2026, 11, 23)
            )
        )
    assert _count(sessions, Customer) == 0
