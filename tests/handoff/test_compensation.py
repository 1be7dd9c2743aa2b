"""Compensation: agents alone up to 500 CNY, more needs a supervisor; every step on the ticket."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.orm import sessionmaker

from bot.handoff.accounts import NotAllowed
from bot.handoff.compensation import (
    CompensationError,
    CompensationService,
    UnknownCompensation,
    parse_amount,
)
from bot.handoff.service import HandoffService
from bot.services.tickets import InvalidTransition, TicketService, UnknownTicket
from tests.handoff.conftest import Clock, Team, add_customer


@pytest.fixture
def compensation(sessions: sessionmaker, clock: Clock) -> CompensationService:
    return CompensationService(sessions, clock=clock)


@pytest.fixture
def chat(handoffs: HandoffService, online: Team, sessions: sessionmaker, clock: Clock) -> int:
    """A claimed chat of a known customer with a complaint ticket attached."""
    customer_id = add_customer(sessions, "王女士", "13900000001", "gold")
    handoff_id = handoffs.request(
        "web-1", "webchat", "complaint", ["complaint"], 3, customer_id=customer_id
    ).handoff_id
    handoffs.claim(handoff_id, online.agent1.id)
    ticket = TicketService(sessions).open_ticket(
        customer_id, "complaint", "配送员态度差", sender_id="web-1", now=clock()
    )
    handoffs.attach_ticket(handoff_id, ticket.ticket_no)
    return handoff_id


def _ticket_notes(sessions: sessionmaker, handoffs: HandoffService, chat: int) -> list[str]:
    ticket = TicketService(sessions).timeline(handoffs.get(chat).ticket_no)
    return [event.note for event in ticket.events if event.note]


def test_agent_grants_up_to_the_limit_alone(
    compensation: CompensationService,
    handoffs: HandoffService,
    online: Team,
    chat: int,
    sessions: sessionmaker,
    clock: Clock,
) -> None:
    clock.advance(minutes=1)
    granted = compensation.grant("500", "配送员态度差", online.agent1.id, handoff_id=chat)
    assert (granted.status, granted.amount, granted.decided_by) == (
        "granted",
        Decimal("500.00"),
        "agent1",
    )
    assert granted.ticket_no == handoffs.get(chat).ticket_no
    notes = _ticket_notes(sessions, handoffs, chat)
    assert len(notes) == 1 and "500.00" in notes[0] and "配送员态度差" in notes[0]
    event = handoffs.events(chat)[-1]
    assert (event.kind, event.detail["status"], event.detail["amount"]) == (
        "compensation",
        "granted",
        "500.00",
    )
    assert handoffs.get(chat).updated_at == clock.now


def test_more_than_the_limit_waits_for_a_supervisor(
    compensation: CompensationService,
    handoffs: HandoffService,
    online: Team,
    chat: int,
    sessions: sessionmaker,
    clock: Clock,
) -> None:
    pending = compensation.grant("500.01", "多次上门未修好", online.agent1.id, handoff_id=chat)
    assert (pending.status, pending.decided_by) == ("pending", None)
    assert [c.id for c in compensation.list_compensations(status="pending")] == [pending.id]
    with pytest.raises(NotAllowed):
        compensation.approve(pending.id, online.agent2.id)  # agents cannot approve
    clock.advance(minutes=3)
    approved = compensation.approve(pending.id, online.lead.id)
    assert (approved.status, approved.decided_by, approved.decided_at) == (
        "approved",
        "lead1",
        clock.now,
    )
    with pytest.raises(CompensationError):
        compensation.reject(pending.id, online.boss.id)  # already decided
    assert len(_ticket_notes(sessions, handoffs, chat)) == 2  # pending, then approved
    statuses = [e.detail["status"] for e in handoffs.events(chat) if e.kind == "compensation"]
    assert statuses == ["pending", "approved"]


def test_the_limit_is_per_case_not_per_grant(
    compensation: CompensationService, online: Team, chat: int
) -> None:
    """QA: 500 + 300 + 450 in three grants on one ticket were all granted by an agent."""
    assert compensation.grant("300", "配送延误", online.agent1.id, handoff_id=chat).status == (
        "granted"
    )
    assert compensation.grant("200", "再补运费", online.agent2.id, handoff_id=chat).status == (
        "granted"
    )
    over = compensation.grant("0.01", "再补一点", online.agent1.id, handoff_id=chat)
    assert over.status == "pending"
    compensation.reject(over.id, online.lead.id)  # rejected money does not count
    assert compensation.grant("500", "主管特批", online.lead.id, handoff_id=chat).status == (
        "granted"
    )


def test_rejection_is_recorded(compensation: CompensationService, online: Team, chat: int) -> None:
    pending = compensation.grant(800, "要求高额赔偿", online.agent1.id, handoff_id=chat)
    rejected = compensation.reject(pending.id, online.boss.id)
    assert (rejected.status, rejected.decided_by) == ("rejected", "boss1")
    assert compensation.list_compensations(status="pending") == []


def test_supervisors_grant_any_amount_directly(
    compensation: CompensationService, online: Team, chat: int, handoffs: HandoffService
) -> None:
    granted = compensation.grant("1200", "重大投诉", online.lead.id, handoff_id=chat)
    assert granted.status == "granted"
    by_ticket = compensation.list_compensations(ticket_no=handoffs.get(chat).ticket_no)
    assert [c.id for c in by_ticket] == [granted.id]


def test_supervisor_cannot_approve_their_own_request(
    compensation: CompensationService, online: Team, chat: int, accounts
) -> None:
    pending = compensation.grant("600", "补偿", online.agent1.id, handoff_id=chat)
    accounts.update_agent("agent1", role="supervisor")
    with pytest.raises(NotAllowed):
        compensation.approve(pending.id, online.agent1.id)


def test_compensation_needs_a_ticket_and_valid_input(
    compensation: CompensationService,
    handoffs: HandoffService,
    online: Team,
    chat: int,
) -> None:
    bare = handoffs.request("web-2", "webchat", "request_human", [], 2).handoff_id
    with pytest.raises(CompensationError, match="ticket"):
        compensation.grant("10", "补偿", online.agent1.id, handoff_id=bare)
    with pytest.raises(UnknownTicket):
        compensation.grant("10", "补偿", online.agent1.id, ticket_no="T20261125-9999")
    for amount in ("0", "-5", "1.005", "abc", "NaN", "1e9"):
        with pytest.raises(CompensationError):
            compensation.grant(amount, "补偿", online.agent1.id, handoff_id=chat)
    with pytest.raises(CompensationError, match="reason"):
        compensation.grant("10", "  ", online.agent1.id, handoff_id=chat)
    with pytest.raises(UnknownCompensation):
        compensation.approve(999_999, online.lead.id)


def test_closed_tickets_take_no_compensation(
    compensation: CompensationService,
    handoffs: HandoffService,
    online: Team,
    chat: int,
    sessions: sessionmaker,
    clock: Clock,
) -> None:
    TicketService(sessions).advance(handoffs.get(chat).ticket_no, "cancelled", now=clock())
    with pytest.raises(InvalidTransition):
        compensation.grant("10", "补偿", online.agent1.id, handoff_id=chat)
    assert compensation.list_compensations() == []  # nothing half-recorded


def test_amounts_parse_exactly() -> None:
    assert parse_amount("88.8") == Decimal("88.80")
    assert parse_amount(0.1) == Decimal("0.10")
    assert parse_amount(" 500 ") == Decimal("500.00")
