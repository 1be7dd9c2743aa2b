"""After-sales tickets (工单): opening, forward-only status changes, timelines and SLA state."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from bot.handoff.policy import BusinessHours
from bot.policy import ServicePolicy, SlaDeadlines, SlaStatus, load_policy
from bot.services.customers import normalise_order_no
from bot.services.orders import UnknownOrder
from bot.store.db import session_scope
from bot.store.models import (
    NEED_CLASSES,
    TERMINAL_TICKET_STATUSES,
    TICKET_CATEGORIES,
    TICKET_FLOW,
    TICKET_STATUSES,
    Customer,
    Order,
    Ticket,
    TicketEvent,
    utcnow,
)

log = logging.getLogger(__name__)

TICKET_NO_PATTERN = re.compile(r"T\d{8}-\d{4,}")
# Two openers may pick the same daily number (SQLite, or a number taken by a direct insert):
# the unique constraint refuses the second, which retries after a jittered, growing pause.
MAX_NUMBERING_ATTEMPTS = 30
MAX_RETRY_PAUSE_SECONDS = 0.1
# First key of our PostgreSQL advisory locks ("TICK"), keeping them apart from anyone else's.
NUMBERING_LOCK_NAMESPACE = 0x5449434B


class InvalidTransition(ValueError):
    """A status change that is backwards, unknown, or leaves a terminal status."""


class UnknownTicket(LookupError):
    """No ticket with this number."""


class UnknownCustomer(LookupError):
    """No customer with this id."""


@dataclass(frozen=True)
class TicketEventView:
    status: str
    status_label: str
    note: str
    actor: str
    created_at: datetime


@dataclass(frozen=True)
class SlaReport:
    """State of each SLA clock of one ticket at one moment."""

    first_response: SlaStatus
    plan: SlaStatus
    close: SlaStatus

    @property
    def breached(self) -> tuple[str, ...]:
        """Names of the clocks that were missed, for escalation."""
        return tuple(
            name
            for name in ("first_response", "plan", "close")
            if getattr(self, name) is SlaStatus.BREACHED
        )


@dataclass(frozen=True)
class TicketView:
    ticket_no: str
    customer_id: int
    customer_name: str
    order_no: str | None
    category: str
    category_label: str
    need_class: str
    priority: int
    status: str
    status_label: str
    channel: str
    sender_id: str | None
    summary: str
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deadlines: SlaDeadlines
    events: tuple[TicketEventView, ...]
    next_step: str
    next_step_text: str


def normalise_ticket_no(raw: str) -> str:
    return re.sub(r"\s+", "", raw).upper()


def is_valid_ticket_no(raw: str) -> bool:
    """`T` + date YYYYMMDD + `-` + daily sequence of at least 4 digits, after normalisation."""
    return TICKET_NO_PATTERN.fullmatch(normalise_ticket_no(raw)) is not None


def ticket_no_prefix(day: date) -> str:
    """What every ticket number opened on `day` (business time zone) starts with."""
    return f"T{day:%Y%m%d}-"


def format_ticket_no(day: date, sequence: int) -> str:
    return f"{ticket_no_prefix(day)}{sequence:04d}"


def check_transition(current: str, new: str) -> None:
    """Statuses only move forward (steps may be skipped); cancel from any non-terminal one."""
    if new not in TICKET_STATUSES:
        raise InvalidTransition(f"unknown ticket status {new!r}")
    if current in TERMINAL_TICKET_STATUSES:
        raise InvalidTransition(f"ticket is already {current}")
    if new == "cancelled":
        return
    if TICKET_FLOW.index(new) <= TICKET_FLOW.index(current):
        raise InvalidTransition(f"cannot move a ticket from {current} back to {new}")


def new_ticket(
    session: Session,
    policy: ServicePolicy,
    *,
    ticket_no: str,
    customer: Customer,
    order: Order | None,
    category: str,
    need_class: str,
    summary: str,
    details: Mapping[str, Any],
    channel: str,
    sender_id: str | None,
    opened_at: datetime,
    actor: str,
    sla_start: datetime | None = None,
) -> Ticket:
    """Add a ticket with its SLA clocks and its `opened` event to `session` (not committed).

    The clocks run from `sla_start` (default: `opened_at`), e.g. the desk's next opening.
    """
    deadlines = policy.deadlines(sla_start or opened_at, customer.tier, need_class)
    ticket = Ticket(
        ticket_no=ticket_no,
        customer=customer,
        order=order,
        category=category,
        need_class=need_class,
        priority=policy.priority_for(customer.tier, need_class),
        status="opened",
        channel=channel,
        sender_id=sender_id,
        summary=summary,
        details=dict(details),
        created_at=opened_at,
        first_response_due=deadlines.first_response,
        plan_due=deadlines.plan,
        close_due=deadlines.close,
        updated_at=opened_at,
    )
    ticket.events.append(TicketEvent(status="opened", note="", actor=actor, created_at=opened_at))
    session.add(ticket)
    return ticket


def add_transition(ticket: Ticket, new_status: str, note: str, actor: str, at: datetime) -> None:
    """Move `ticket` forward and record the event; raises InvalidTransition otherwise."""
    check_transition(ticket.status, new_status)
    if at < ticket.updated_at:
        raise InvalidTransition(f"{ticket.ticket_no}: event time {at} precedes the last change")
    ticket.status = new_status
    ticket.updated_at = at
    ticket.events.append(TicketEvent(status=new_status, note=note, actor=actor, created_at=at))


def add_note(ticket: Ticket, note: str, actor: str, at: datetime) -> None:
    """Record something that happened on `ticket` (e.g. a compensation) without moving it.

    The event repeats the current status, so timelines and SLA clocks read it as no change.
    Terminal tickets take no notes: a cancelled ticket's last event is its cancellation time.
    """
    if not note.strip():
        raise ValueError("a note needs text")
    if ticket.status in TERMINAL_TICKET_STATUSES:
        raise InvalidTransition(f"ticket {ticket.ticket_no} is already {ticket.status}")
    if at < ticket.updated_at:
        raise InvalidTransition(f"{ticket.ticket_no}: event time {at} precedes the last change")
    ticket.updated_at = at
    ticket.events.append(
        TicketEvent(status=ticket.status, note=note.strip(), actor=actor, created_at=at)
    )


def _aware(moment: datetime | None) -> datetime:
    """`moment`, or the current time; naive datetimes are refused rather than guessed."""
    if moment is None:
        return utcnow()
    if moment.tzinfo is None:
        raise ValueError(f"refusing naive datetime {moment!r}: pass a timezone-aware value")
    return moment


def _reached_at(view: TicketView, milestone: str) -> datetime | None:
    rank = TICKET_FLOW.index(milestone)
    return next(
        (
            event.created_at
            for event in view.events
            if event.status in TICKET_FLOW and TICKET_FLOW.index(event.status) >= rank
        ),
        None,
    )


def _clock_state(view: TicketView, milestone: str, due: datetime, now: datetime) -> SlaStatus:
    reached = _reached_at(view, milestone)
    if reached is not None:
        return SlaStatus.MET if reached <= due else SlaStatus.BREACHED
    if view.status == "cancelled":
        cancelled_at = view.events[-1].created_at
        return SlaStatus.BREACHED if cancelled_at > due else SlaStatus.WAIVED
    return SlaStatus.BREACHED if now > due else SlaStatus.PENDING


_TICKET_RELATIONS = (
    selectinload(Ticket.events),
    selectinload(Ticket.customer),
    selectinload(Ticket.order),
)


class TicketService:
    """Ticket lifecycle backed by the store and governed by the service policy.

    With `business_hours`, a ticket opened while the desk is closed starts its SLA clocks at the
    next opening: at 2 a.m. nobody can respond within 5 minutes, and the customer is not
    promised that.  Without them (an agent opening a ticket from a chat) clocks run from now.
    """

    def __init__(
        self,
        session_factory: sessionmaker,
        policy: ServicePolicy | None = None,
        business_hours: BusinessHours | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._policy = policy or load_policy()
        self._business_hours = business_hours

    def open_ticket(
        self,
        customer_id: int,
        category: str,
        summary: str,
        details: Mapping[str, Any] | None = None,
        order_no: str | None = None,
        need_class: str | None = None,
        channel: str = "rest",
        sender_id: str | None = None,
        now: datetime | None = None,
        actor: str = "assistant",
    ) -> TicketView:
        """Open a ticket and its first event in one transaction, with a unique daily number.

        Need class defaults by category; priority and SLA deadlines follow the policy.
        Raises ValueError for bad input, UnknownCustomer, or UnknownOrder when the order is
        missing or belongs to someone else.
        """
        if category not in TICKET_CATEGORIES:
            raise ValueError(f"unknown ticket category {category!r}")
        need_class = need_class or self._policy.default_need_class(category)
        if need_class not in NEED_CLASSES:
            raise ValueError(f"unknown need class {need_class!r}")
        if not summary.strip():
            raise ValueError("a ticket needs a summary")
        opened_at = _aware(now)
        day = opened_at.astimezone(self._policy.timezone).date()
        sla_start = self._business_hours.next_opening(opened_at) if self._business_hours else None

        def insert() -> TicketView:
            with session_scope(self._session_factory) as session:
                customer = session.get(Customer, customer_id)
                if customer is None:
                    raise UnknownCustomer(customer_id)
                ticket = new_ticket(
                    session,
                    self._policy,
                    ticket_no=self._next_ticket_no(session, day),
                    customer=customer,
                    order=self._customers_order(session, customer, order_no),
                    category=category,
                    need_class=need_class,
                    summary=summary.strip(),
                    details=details or {},
                    channel=channel,
                    sender_id=sender_id,
                    opened_at=opened_at,
                    actor=actor,
                    sla_start=sla_start,
                )
                session.flush()
                return self._view(ticket)

        for attempt in range(1, MAX_NUMBERING_ATTEMPTS):
            try:
                view = insert()
                break
            except IntegrityError:
                time.sleep(random.uniform(0, min(MAX_RETRY_PAUSE_SECONDS, 0.002 * 2**attempt)))
        else:
            view = insert()  # last attempt: let a persistent error surface
        log.info(
            "opened ticket %s (%s, priority %d) for customer %d",
            view.ticket_no,
            category,
            view.priority,
            customer_id,
        )
        return view

    def advance(
        self,
        ticket_no: str,
        new_status: str,
        note: str = "",
        actor: str = "system",
        now: datetime | None = None,
    ) -> TicketView:
        """Move a ticket forward; raises InvalidTransition or UnknownTicket."""
        with session_scope(self._session_factory) as session:
            ticket = self._load(session, ticket_no, for_update=True)
            add_transition(ticket, new_status, note, actor, _aware(now))
            session.flush()
            view = self._view(ticket)
        log.info("ticket %s moved to %s by %s", view.ticket_no, new_status, actor)
        return view

    def add_note(
        self, ticket_no: str, note: str, actor: str = "system", now: datetime | None = None
    ) -> TicketView:
        """Append a note event without a status change; raises InvalidTransition, UnknownTicket."""
        with session_scope(self._session_factory) as session:
            ticket = self._load(session, ticket_no, for_update=True)
            add_note(ticket, note, actor, _aware(now))
            session.flush()
            return self._view(ticket)

    def timeline(self, ticket_no: str) -> TicketView:
        """The ticket with its events, deadlines and next step; raises UnknownTicket."""
        with session_scope(self._session_factory) as session:
            return self._view(self._load(session, ticket_no))

    def tickets_for_customer(self, customer_id: int) -> list[TicketView]:
        """A customer's own tickets, newest first."""
        return self._query(Ticket.customer_id == customer_id)

    def tickets_for_sender(self, sender_id: str) -> list[TicketView]:
        """Tickets opened from one conversation, newest first."""
        return self._query(Ticket.sender_id == sender_id)

    def list_tickets(self, status: str | None = None, limit: int = 50) -> list[TicketView]:
        """Newest tickets, optionally only those in `status`."""
        if status is not None and status not in TICKET_STATUSES:
            raise ValueError(f"unknown ticket status {status!r}")
        if limit < 1:
            raise ValueError("limit must be positive")
        criteria = () if status is None else (Ticket.status == status,)
        return self._query(*criteria, limit=limit)

    def sla_state(self, ticket: TicketView, now: datetime | None = None) -> SlaReport:
        """Which deadlines of `ticket` are met, breached or still pending at `now`."""
        moment = _aware(now)
        return SlaReport(
            first_response=_clock_state(
                ticket, "acknowledged", ticket.deadlines.first_response, moment
            ),
            plan=_clock_state(ticket, "plan_given", ticket.deadlines.plan, moment),
            close=_clock_state(ticket, "resolved", ticket.deadlines.close, moment),
        )

    @staticmethod
    def _customers_order(
        session: Session, customer: Customer, order_no: str | None
    ) -> Order | None:
        if order_no is None:
            return None
        normalised = normalise_order_no(order_no)
        order = session.execute(
            select(Order).where(Order.order_no == normalised, Order.customer_id == customer.id)
        ).scalar_one_or_none()
        if order is None:
            raise UnknownOrder(normalised)
        return order

    @staticmethod
    def _next_ticket_no(session: Session, day: date) -> str:
        if session.get_bind().dialect.name == "postgresql":
            # Openers of the same day queue here until the holder commits, so they never
            # compute the same number. SQLite's single writer makes collisions rare anyway.
            session.execute(
                select(func.pg_advisory_xact_lock(NUMBERING_LOCK_NAMESPACE, int(f"{day:%Y%m%d}")))
            )
        prefix = ticket_no_prefix(day)
        # Longest first, so the order stays numeric past 9999 tickets a day.
        latest = session.execute(
            select(Ticket.ticket_no)
            .where(Ticket.ticket_no.startswith(prefix))
            .order_by(func.length(Ticket.ticket_no).desc(), Ticket.ticket_no.desc())
            .limit(1)
        ).scalar_one_or_none()
        sequence = 1 if latest is None else int(latest[len(prefix) :]) + 1
        return format_ticket_no(day, sequence)

    @staticmethod
    def _load(session: Session, ticket_no: str, for_update: bool = False) -> Ticket:
        statement = select(Ticket).options(*_TICKET_RELATIONS)
        statement = statement.where(Ticket.ticket_no == normalise_ticket_no(ticket_no))
        if for_update:
            statement = statement.with_for_update(of=Ticket)
        ticket = session.execute(statement).scalar_one_or_none()
        if ticket is None:
            raise UnknownTicket(ticket_no)
        return ticket

    def _query(self, *criteria: Any, limit: int | None = None) -> list[TicketView]:
        statement = (
            select(Ticket)
            .options(*_TICKET_RELATIONS)
            .where(*criteria)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(limit)
        )
        with session_scope(self._session_factory) as session:
            return [self._view(ticket) for ticket in session.execute(statement).scalars()]

    def _view(self, ticket: Ticket) -> TicketView:
        policy = self._policy
        next_step = policy.next_step_key(ticket.status)
        return TicketView(
            ticket_no=ticket.ticket_no,
            customer_id=ticket.customer_id,
            customer_name=ticket.customer.name,
            order_no=None if ticket.order is None else ticket.order.order_no,
            category=ticket.category,
            category_label=policy.texts.categories[ticket.category],
            need_class=ticket.need_class,
            priority=ticket.priority,
            status=ticket.status,
            status_label=policy.status_label(ticket.status),
            channel=ticket.channel,
            sender_id=ticket.sender_id,
            summary=ticket.summary,
            details=dict(ticket.details),
            created_at=ticket.created_at,
            updated_at=ticket.updated_at,
            deadlines=SlaDeadlines(
                first_response=ticket.first_response_due,
                plan=ticket.plan_due,
                close=ticket.close_due,
            ),
            events=tuple(
                TicketEventView(
                    status=event.status,
                    status_label=policy.status_label(event.status),
                    note=event.note,
                    actor=event.actor,
                    created_at=event.created_at,
                )
                for event in ticket.events
            ),
            next_step=next_step,
            next_step_text=policy.next_step_text(next_step),
        )
