"""Compensation granted from a chat: agents alone up to the policy limit, above it a supervisor.

Every step (granted, pending, approved, rejected) is written in one transaction as a row in
`compensations`, a note on the ticket (customers see their timeline, texts from
`config/compensation_notes.yml`) and, for a chat, a handoff audit event. The limit is
`compensation.agent_limit_cny` of the service policy (500 CNY per case by default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml
from pydantic import BaseModel, Extra, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.handoff.accounts import NotAllowed, acting_agent
from bot.handoff.service import UnknownHandoff, record_handoff_event
from bot.policy import ServicePolicy, load_policy
from bot.services.tickets import (
    UnknownTicket,
    add_note,
    normalise_ticket_no,
)
from bot.settings import PROJECT_ROOT
from bot.store.db import session_scope
from bot.store.models import Agent, Compensation, Handoff, Ticket, utcnow

log = logging.getLogger(__name__)

COMPENSATION_NOTES_FILE = PROJECT_ROOT / "config" / "compensation_notes.yml"
CENT = Decimal("0.01")
# Money(10, 2): anything from here up does not fit the column.
MAX_AMOUNT = Decimal("100000000")
MAX_REASON_CHARS = 500


class CompensationError(ValueError):
    """A compensation that cannot be recorded (bad amount, no ticket, already decided…)."""


class UnknownCompensation(LookupError):
    """No compensation with this id."""


class CompensationNotes(BaseModel):
    class Config:
        extra = Extra.forbid

    granted: str
    pending: str
    approved: str
    rejected: str

    def render(self, status: str, amount: Decimal, reason: str) -> str:
        return getattr(self, status).format(amount=f"{amount:.2f}", reason=reason)


@dataclass(frozen=True)
class CompensationView:
    id: int
    ticket_no: str
    handoff_id: int | None
    amount: Decimal
    reason: str
    status: str
    requested_by: str
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None


def read_compensation_notes(path: Path = COMPENSATION_NOTES_FILE) -> CompensationNotes:
    """The ticket-note templates, checked for every status and their placeholders."""
    try:
        notes = CompensationNotes.parse_obj(yaml.safe_load(path.read_text(encoding="utf-8")))
        for status in ("granted", "pending", "approved", "rejected"):
            notes.render(status, Decimal("1"), "")
    except (OSError, yaml.YAMLError, ValidationError, KeyError, IndexError) as error:
        raise CompensationError(f"invalid compensation notes {path}:\n{error!r}") from error
    return notes


def parse_amount(raw: Decimal | str | int | float) -> Decimal:
    """A positive CNY amount with at most two decimals (floats go through str to stay exact)."""
    try:
        amount = Decimal(str(raw).strip())
    except InvalidOperation as error:
        raise CompensationError(f"not an amount: {raw!r}") from error
    if not amount.is_finite() or amount <= 0:
        raise CompensationError("the amount must be positive")
    if amount != amount.quantize(CENT):
        raise CompensationError("amounts have at most two decimals")
    if amount >= MAX_AMOUNT:
        raise CompensationError("the amount is too large")
    return amount.quantize(CENT)


def _view(row: Compensation) -> CompensationView:
    return CompensationView(
        id=row.id,
        ticket_no=row.ticket_no,
        handoff_id=row.handoff_id,
        amount=row.amount,
        reason=row.reason,
        status=row.status,
        requested_by=row.requested_by,
        decided_by=row.decided_by,
        created_at=row.created_at,
        decided_at=row.decided_at,
    )


class CompensationService:
    """Grant, approve and reject compensation, recorded on the ticket and the chat."""

    def __init__(
        self,
        session_factory: sessionmaker,
        policy: ServicePolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        notes: CompensationNotes | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._policy = policy or load_policy()
        self._clock = clock
        self._notes = notes or read_compensation_notes()

    def grant(
        self,
        amount: Decimal | str | int | float,
        reason: str,
        agent_id: int,
        *,
        handoff_id: int | None = None,
        ticket_no: str | None = None,
    ) -> CompensationView:
        """Grant compensation for a chat (its ticket) or a ticket.

        Up to the limit an agent grants alone (`granted`); above it the request is `pending`
        until a supervisor decides; supervisors and managers grant any amount directly.  The
        limit is per case: what the ticket already received (granted or approved) counts, so
        500 + 300 + 450 in three grants is no way round it.
        Raises CompensationError (bad amount, empty reason, no ticket), NotAllowed,
        UnknownHandoff or UnknownTicket.
        """
        value = parse_amount(amount)
        why = reason.strip()
        if not why:
            raise CompensationError("a reason is needed")
        if len(why) > MAX_REASON_CHARS:
            raise CompensationError(f"the reason is longer than {MAX_REASON_CHARS} characters")
        now = self._clock()
        with session_scope(self._session_factory) as session:
            agent = acting_agent(session, agent_id)
            handoff = None
            if handoff_id is not None:
                handoff = session.get(Handoff, handoff_id)
                if handoff is None:
                    raise UnknownHandoff(handoff_id)
            number = ticket_no or (None if handoff is None else handoff.ticket_no)
            if number is None:
                raise CompensationError("open a ticket first: compensation is recorded on it")
            ticket = self._ticket(session, number)
            supervisor = agent.role in ("supervisor", "manager")
            case_total = value + self._already_given(session, ticket.ticket_no)
            status = (
                "pending"
                if self._policy.needs_supervisor(case_total) and not supervisor
                else "granted"
            )
            row = Compensation(
                ticket_no=ticket.ticket_no,
                handoff_id=None if handoff is None else handoff.id,
                amount=value,
                reason=why,
                status=status,
                requested_by=agent.username,
                decided_by=agent.username if status == "granted" else None,
                created_at=now,
                decided_at=now if status == "granted" else None,
            )
            session.add(row)
            session.flush()
            self._record(session, row, ticket, handoff, agent.username, now)
            view = _view(row)
        log.info("compensation %d: %s CNY %s by %s", view.id, value, status, agent.username)
        return view

    @staticmethod
    def _already_given(session: Session, ticket_no: str) -> Decimal:
        """What the ticket has received so far (granted by an agent or approved)."""
        total = session.execute(
            select(func.coalesce(func.sum(Compensation.amount), 0)).where(
                Compensation.ticket_no == ticket_no,
                Compensation.status.in_(("granted", "approved")),
            )
        ).scalar_one()
        return Decimal(str(total))

    def approve(self, compensation_id: int, supervisor_id: int) -> CompensationView:
        """A supervisor or manager approves a pending compensation."""
        return self._decide(compensation_id, supervisor_id, "approved")

    def reject(self, compensation_id: int, supervisor_id: int) -> CompensationView:
        """A supervisor or manager turns down a pending compensation."""
        return self._decide(compensation_id, supervisor_id, "rejected")

    def list_compensations(
        self, status: str | None = None, ticket_no: str | None = None
    ) -> list[CompensationView]:
        """Compensations, oldest first (so the longest-pending comes first)."""
        statement = select(Compensation).order_by(Compensation.created_at, Compensation.id)
        if status is not None:
            statement = statement.where(Compensation.status == status)
        if ticket_no is not None:
            statement = statement.where(Compensation.ticket_no == normalise_ticket_no(ticket_no))
        with session_scope(self._session_factory) as session:
            return [_view(row) for row in session.execute(statement).scalars()]

    def get(self, compensation_id: int) -> CompensationView:
        with session_scope(self._session_factory) as session:
            row = session.get(Compensation, compensation_id)
            if row is None:
                raise UnknownCompensation(compensation_id)
            return _view(row)

    def _decide(self, compensation_id: int, supervisor_id: int, decision: str) -> CompensationView:
        now = self._clock()
        with session_scope(self._session_factory) as session:
            supervisor: Agent = acting_agent(session, supervisor_id, "supervisor")
            row = session.execute(
                select(Compensation).where(Compensation.id == compensation_id).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise UnknownCompensation(compensation_id)
            if row.status != "pending":
                raise CompensationError(f"compensation {compensation_id} is already {row.status}")
            if row.requested_by == supervisor.username:
                raise NotAllowed("a request is decided by someone other than its requester")
            row.status = decision
            row.decided_by = supervisor.username
            row.decided_at = now
            ticket = self._ticket(session, row.ticket_no)
            handoff = None if row.handoff_id is None else session.get(Handoff, row.handoff_id)
            self._record(session, row, ticket, handoff, supervisor.username, now)
            session.flush()
            view = _view(row)
        log.info("compensation %d %s by %s", compensation_id, decision, supervisor.username)
        return view

    def _record(
        self,
        session: Session,
        row: Compensation,
        ticket: Ticket,
        handoff: Handoff | None,
        actor: str,
        at: datetime,
    ) -> None:
        add_note(ticket, self._notes.render(row.status, row.amount, row.reason), actor, at)
        if handoff is not None:
            record_handoff_event(
                session,
                handoff,
                "compensation",
                actor,
                at,
                compensation_id=row.id,
                amount=f"{row.amount:.2f}",
                status=row.status,
                ticket_no=row.ticket_no,
            )

    @staticmethod
    def _ticket(session: Session, ticket_no: str) -> Ticket:
        number = normalise_ticket_no(ticket_no)
        ticket = session.execute(
            select(Ticket).where(Ticket.ticket_no == number).with_for_update()
        ).scalar_one_or_none()
        if ticket is None:
            raise UnknownTicket(number)
        return ticket
