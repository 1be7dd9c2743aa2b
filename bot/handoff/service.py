"""The handoff queue: escalated chats wait here, agents claim, transfer, hand back or close them.

Everything is in the database, so no chat is lost when a process restarts, and every change
is a conditional UPDATE on the status it expects, so two agents can never own one chat.

`NotAllowed` (re-exported from accounts) is raised for role or ownership problems.

Actors: methods that change a chat take `actor`, either an agent id (int; checked: the owner,
or a supervisor/manager) or a system name (str, e.g. "assistant"; trusted, for the bot's own
steps). Every change writes a `handoff_events` row and bumps `updated_at`, which the console's
live hub watches.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from bot.handoff.accounts import SUPERVISOR_ROLES, NotAllowed, acting_agent, online_agent_ids
from bot.handoff.policy import EscalationPolicy, load_escalation_policy, need_class_for
from bot.policy import ServicePolicy, load_policy
from bot.services.tickets import UnknownTicket, normalise_ticket_no
from bot.store.db import session_factory, session_scope
from bot.store.models import (
    NEED_CLASSES,
    OPEN_HANDOFF_STATUSES,
    Agent,
    Customer,
    Handoff,
    HandoffEvent,
    Ticket,
    utcnow,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Actor = int | str

# Two processes escalating one sender at once: the unique index refuses the second insert,
# which then finds the first one's row.
MAX_REQUEST_ATTEMPTS = 5
# Agents may transfer chats to these roles (managers watch, they do not take chats).
TRANSFER_TARGET_ROLES = ("agent", "supervisor")


class HandoffError(Exception):
    """A handoff change that is not possible in the chat's current state."""


class UnknownHandoff(LookupError):
    """No handoff with this id."""


class AlreadyClaimed(HandoffError):
    """Someone else claimed the chat first (or it is no longer waiting)."""


class AgentOffline(HandoffError):
    """A chat cannot go to someone whose console is not open: the customer would wait on
    nobody."""


@dataclass(frozen=True)
class HandoffView:
    """One handoff as the console and the actions see it; priority is computed at `as_of`."""

    id: int
    sender_id: str
    channel: str
    status: str
    trigger: str
    reasons: tuple[str, ...]
    severity: int
    customer_id: int | None
    customer_name: str | None
    customer_tier: str | None
    ticket_no: str | None
    agent_id: int | None
    agent_display_name: str | None
    queued_at: datetime
    claimed_at: datetime | None
    ended_at: datetime | None
    callback_due: datetime | None
    updated_at: datetime
    priority: float
    waiting_seconds: int

    @property
    def is_open(self) -> bool:
        """Queued or with an agent: the bot keeps quiet."""
        return self.status in OPEN_HANDOFF_STATUSES


@dataclass(frozen=True)
class HandoffOutcome:
    """What `request` did: queued for a person (with place and wait) or a call-back promised."""

    handoff_id: int
    status: str
    queued: bool
    created: bool
    position: int | None
    estimated_wait_minutes: int | None
    callback_due: datetime | None
    agents_online: int
    ticket_no: str | None = None
    """The ticket already linked to this handoff (an owed call-back that has one)."""


@dataclass(frozen=True)
class HandoffEventView:
    kind: str
    actor: str
    detail: dict[str, Any]
    created_at: datetime


def _pending() -> Any:
    """Rows the partial unique index allows only once per sender."""
    return or_(
        Handoff.status.in_(OPEN_HANDOFF_STATUSES),
        and_(Handoff.status == "callback", Handoff.ended_at.is_(None)),
    )


def record_handoff_event(
    session: Session, handoff: Handoff, kind: str, actor: str, at: datetime, **detail: Any
) -> None:
    """Add an audit row and bump `updated_at` (which the console's live hub watches).

    For other services changing a handoff inside their own transaction (e.g. compensation).
    """
    handoff.updated_at = max(handoff.updated_at, at)
    session.add(
        HandoffEvent(handoff_id=handoff.id, kind=kind, actor=actor, detail=detail, created_at=at)
    )


class HandoffService:
    """Queue, ownership and audit trail of chats escalated to people."""

    def __init__(
        self,
        session_factory: sessionmaker,
        policy: EscalationPolicy | None = None,
        clock: Clock = utcnow,
        service_policy: ServicePolicy | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._policy = policy or load_escalation_policy()
        self._clock = clock
        self._service_policy = service_policy or load_policy()

    # --- escalation

    def request(
        self,
        sender_id: str,
        channel: str,
        trigger: str,
        reasons: Sequence[str],
        severity: int,
        customer_id: int | None = None,
        need_class: str = "normal",
    ) -> HandoffOutcome:
        """Escalate a conversation; idempotent while one is pending for the sender.

        With people at work (business hours and an agent online) the chat is queued; otherwise
        a call-back is promised within the first-response SLA of the customer's tier (counted
        from the next opening time outside business hours). `need_class` picks the SLA clock.
        """
        if not sender_id:
            raise ValueError("a handoff needs a sender id")
        if need_class not in NEED_CLASSES:
            raise ValueError(f"unknown need class {need_class!r}")
        for attempt in range(1, MAX_REQUEST_ATTEMPTS + 1):
            try:
                return self._request_once(
                    sender_id, channel, trigger, tuple(reasons), severity, customer_id, need_class
                )
            except IntegrityError:
                if attempt == MAX_REQUEST_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.01 * attempt))
        raise AssertionError("unreachable")

    def _request_once(
        self,
        sender_id: str,
        channel: str,
        trigger: str,
        reasons: tuple[str, ...],
        severity: int,
        customer_id: int | None,
        need_class: str,
    ) -> HandoffOutcome:
        now = self._clock()
        with session_scope(self._session_factory) as session:
            agents_online = len(online_agent_ids(session, now, self._policy.presence_timeout))
            staffed = (
                agents_online > 0
                and self._policy.business_hours.is_open(now)
                and channel in self._policy.live_channels
            )
            existing = session.execute(
                select(Handoff).where(Handoff.sender_id == sender_id, _pending())
            ).scalar_one_or_none()
            if existing is not None and existing.status in OPEN_HANDOFF_STATUSES:
                return self._outcome(session, existing, now, agents_online, created=False)
            if existing is not None:  # a call-back is owed
                if staffed:
                    # People are here now: the owed call-back becomes a place in the queue.
                    existing.status = "waiting"
                    existing.queued_at = now
                    existing.updated_at = now
                    self._event(session, existing, "queued", "assistant", now, trigger=trigger)
                    session.flush()
                    return self._outcome(session, existing, now, agents_online, created=False)
                if existing.callback_due is not None and existing.callback_due >= now:
                    return self._outcome(session, existing, now, agents_online, created=False)
                existing.ended_at = now  # promise lapsed: replaced by a fresh one below
                existing.updated_at = now
                session.flush()
            customer = None if customer_id is None else session.get(Customer, customer_id)
            if customer_id is not None and customer is None:
                raise ValueError(f"unknown customer {customer_id}")
            handoff = Handoff(
                sender_id=sender_id,
                channel=channel,
                status="waiting" if staffed else "callback",
                trigger=trigger,
                reasons=list(reasons),
                severity=severity,
                customer=customer,
                queued_at=now,
                updated_at=now,
            )
            if not staffed:
                tier = "normal" if customer is None else customer.tier
                handoff.callback_due = self._callback_due(now, tier, need_class)
            session.add(handoff)
            session.flush()
            self._event(
                session,
                handoff,
                "queued" if staffed else "callback",
                "assistant",
                now,
                trigger=trigger,
                reasons=list(reasons),
                severity=severity,
            )
            session.flush()
            outcome = self._outcome(session, handoff, now, agents_online, created=True)
        log.info(
            "handoff %d for %s: %s (trigger %s, severity %d)",
            outcome.handoff_id,
            sender_id,
            outcome.status,
            trigger,
            severity,
        )
        return outcome

    def _callback_due(self, now: datetime, tier: str, need_class: str) -> datetime:
        opening = self._policy.business_hours.next_opening(now) or now
        return self._service_policy.deadlines(opening, tier, need_class).first_response

    def _outcome(
        self, session: Session, handoff: Handoff, now: datetime, agents_online: int, created: bool
    ) -> HandoffOutcome:
        queued = handoff.status in OPEN_HANDOFF_STATUSES
        position = None
        wait = None
        if handoff.status == "waiting":
            waiting = [view.id for view in self._waiting(session, now)]
            position = waiting.index(handoff.id) + 1
            wait = self._policy.estimated_wait_minutes(position, agents_online)
        return HandoffOutcome(
            handoff_id=handoff.id,
            status=handoff.status,
            queued=queued,
            created=created,
            position=position,
            estimated_wait_minutes=wait,
            callback_due=handoff.callback_due,
            agents_online=agents_online,
            ticket_no=handoff.ticket_no,
        )

    # --- reading

    def queue(self, viewer: int | None = None) -> list[HandoffView]:
        """Waiting chats by priority (then first come), then chats with an agent.

        An agent (`viewer` id) sees the waiting chats and their own; supervisors, managers and
        the system (`viewer` None) see every chat.
        """
        now = self._clock()
        with session_scope(self._session_factory) as session:
            waiting = self._waiting(session, now)
            active_rows = session.execute(
                self._select()
                .where(Handoff.status == "active")
                .order_by(Handoff.claimed_at, Handoff.id)
            ).scalars()
            active = [self._view(row, now) for row in active_rows]
            if viewer is not None:
                agent = self._agent(session, viewer)
                if agent.role not in SUPERVISOR_ROLES:
                    active = [view for view in active if view.agent_id == agent.id]
        return [*waiting, *active]

    def release_unattended(self) -> list[HandoffView]:
        """Waiting chats nobody can take any more (the last agent's console closed, or the
        desk closed) become call-backs, due as a fresh one would be: a customer never waits
        in a queue nobody serves (QA: two chats hung for good).  Returns those released, for
        the customer to be told."""
        now = self._clock()
        with session_scope(self._session_factory) as session:
            agents_online = online_agent_ids(session, now, self._policy.presence_timeout)
            if agents_online and self._policy.business_hours.is_open(now):
                return []
            waiting = session.execute(
                select(Handoff).where(Handoff.status == "waiting").order_by(Handoff.id)
            ).scalars()
            released = []
            for handoff in waiting:
                tier = "normal" if handoff.customer is None else handoff.customer.tier
                need_class = need_class_for(handoff.trigger, list(handoff.reasons or ()))
                handoff.status = "callback"
                handoff.callback_due = self._callback_due(now, tier, need_class)
                handoff.updated_at = now
                self._event(session, handoff, "callback", "assistant", now, released=True)
                released.append(handoff)
            session.flush()
            views = [self._view(handoff, now) for handoff in released]
        for view in views:
            log.info("handoff %d for %s: nobody online, now a call-back", view.id, view.sender_id)
        return views

    def callbacks(self) -> list[HandoffView]:
        """Call-backs still owed, soonest due first."""
        now = self._clock()
        with session_scope(self._session_factory) as session:
            rows = session.execute(
                self._select()
                .where(Handoff.status == "callback", Handoff.ended_at.is_(None))
                .order_by(Handoff.callback_due, Handoff.id)
            ).scalars()
            return [self._view(row, now) for row in rows]

    def settle_callbacks_for_ticket(self, ticket_no: str, actor: Actor = "customer") -> int:
        """Close the call-backs still owed about a ticket the customer withdrew: nobody should
        phone about a request that no longer exists.  Returns how many were closed."""
        number = normalise_ticket_no(ticket_no)
        with session_scope(self._session_factory) as session:
            owed = session.execute(
                select(Handoff.id).where(
                    Handoff.ticket_no == number,
                    Handoff.status == "callback",
                    Handoff.ended_at.is_(None),
                )
            ).scalars()
            ids = list(owed)
        closed = 0
        for handoff_id in ids:
            try:
                self._end(handoff_id, actor, "closed", ("callback",))
            except HandoffError:
                continue  # taken up by an agent meanwhile: theirs to settle
            closed += 1
        return closed

    def get(self, handoff_id: int) -> HandoffView:
        """One handoff; raises UnknownHandoff."""
        now = self._clock()
        with session_scope(self._session_factory) as session:
            return self._view(self._load(session, handoff_id), now)

    def open_for_sender(self, sender_id: str) -> HandoffView | None:
        """The conversation's waiting or active handoff: while there is one, the bot is quiet."""
        now = self._clock()
        with session_scope(self._session_factory) as session:
            row = session.execute(
                self._select().where(
                    Handoff.sender_id == sender_id, Handoff.status.in_(OPEN_HANDOFF_STATUSES)
                )
            ).scalar_one_or_none()
            return None if row is None else self._view(row, now)

    def attach_ticket_to_recent_callback(
        self, sender_id: str, ticket_no: str, within: timedelta
    ) -> HandoffView | None:
        """Link a ticket to the conversation's owed call-back if it has none yet and was
        promised within ``within`` (the same conversation session): a call-back left from an
        earlier conversation is about something else.  Returns the call-back linked."""
        handoff = self.latest_for_sender(sender_id)
        if (
            handoff is None
            or handoff.status != "callback"
            or handoff.ticket_no
            or handoff.queued_at < self._clock() - within
        ):
            return None
        self.attach_ticket(handoff.id, ticket_no)
        return handoff

    def latest_for_sender(self, sender_id: str) -> HandoffView | None:
        """The conversation's most recent handoff in any status (e.g. for the CSAT survey)."""
        now = self._clock()
        with session_scope(self._session_factory) as session:
            row = session.execute(
                self._select()
                .where(Handoff.sender_id == sender_id)
                .order_by(Handoff.queued_at.desc(), Handoff.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            return None if row is None else self._view(row, now)

    def events(self, handoff_id: int) -> list[HandoffEventView]:
        """The audit trail, oldest first; raises UnknownHandoff."""
        with session_scope(self._session_factory) as session:
            self._load(session, handoff_id)
            rows = session.execute(
                select(HandoffEvent)
                .where(HandoffEvent.handoff_id == handoff_id)
                .order_by(HandoffEvent.id)
            ).scalars()
            return [
                HandoffEventView(row.kind, row.actor, dict(row.detail), row.created_at)
                for row in rows
            ]

    def can_reply(self, handoff_id: int, agent_id: int) -> bool:
        """Only the agent who owns an active chat writes to the customer."""
        with session_scope(self._session_factory) as session:
            handoff = self._load(session, handoff_id)
            return handoff.status == "active" and handoff.agent_id == agent_id

    # --- changes

    def claim(self, handoff_id: int, agent_id: int) -> HandoffView:
        """Take a waiting chat; raises AlreadyClaimed when someone was faster."""
        now = self._clock()
        with session_scope(self._session_factory) as session:
            agent = self._agent(session, agent_id)
            won = session.execute(
                update(Handoff)
                .where(Handoff.id == handoff_id, Handoff.status == "waiting")
                .values(status="active", agent_id=agent.id, claimed_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not won:
                handoff = self._load(session, handoff_id)
                raise AlreadyClaimed(f"chat {handoff_id} is {handoff.status}")
            handoff = self._load(session, handoff_id, refresh=True)
            self._event(session, handoff, "claimed", agent.username, now)
            session.flush()
            view = self._view(handoff, now)
        log.info("handoff %d claimed by %s", handoff_id, agent.username)
        return view

    def transfer(self, handoff_id: int, from_agent_id: int, to_agent_id: int) -> HandoffView:
        """Give a chat to another active agent or supervisor.

        The owner or a supervisor/manager may transfer an active chat; a supervisor/manager
        may also assign a waiting one.
        """
        now = self._clock()
        with session_scope(self._session_factory) as session:
            actor = self._agent(session, from_agent_id)
            target = self._agent(session, to_agent_id)
            if target.role not in TRANSFER_TARGET_ROLES:
                raise NotAllowed(f"chats go to agents or supervisors, not a {target.role}")
            handoff = self._load(session, handoff_id)
            if handoff.status == "waiting" and actor.role not in SUPERVISOR_ROLES:
                raise NotAllowed("claim the chat before transferring it")
            if handoff.status == "active":
                self._check_may_act(actor, handoff)
            elif handoff.status != "waiting":
                raise HandoffError(f"chat {handoff_id} is {handoff.status}")
            if handoff.agent_id == target.id:
                raise HandoffError(f"chat {handoff_id} is already with {target.username}")
            if target.id not in online_agent_ids(session, now, self._policy.presence_timeout):
                raise AgentOffline(f"{target.username} is not online")
            previous_owner = handoff.agent_id
            moved = session.execute(
                update(Handoff)
                .where(
                    Handoff.id == handoff_id,
                    Handoff.status == handoff.status,
                    Handoff.agent_id.is_(None)
                    if previous_owner is None
                    else Handoff.agent_id == previous_owner,
                )
                .values(
                    status="active",
                    agent_id=target.id,
                    claimed_at=now if handoff.claimed_at is None else handoff.claimed_at,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            if not moved:
                raise AlreadyClaimed(f"chat {handoff_id} changed hands meanwhile")
            handoff = self._load(session, handoff_id, refresh=True)
            previous = None if previous_owner is None else session.get(Agent, previous_owner)
            self._event(
                session,
                handoff,
                "transferred",
                actor.username,
                now,
                to=target.username,
                **({} if previous is None else {"from": previous.username}),
            )
            session.flush()
            view = self._view(handoff, now)
        log.info("handoff %d transferred to %s by %s", handoff_id, target.username, actor.username)
        return view

    def hand_back(self, handoff_id: int, actor: Actor) -> HandoffView:
        """Return the chat to the bot (it answers the customer's next message again)."""
        return self._end(handoff_id, actor, "handed_back", OPEN_HANDOFF_STATUSES)

    def leave_queue(self, sender_id: str) -> HandoffView | None:
        """The customer will not wait: their waiting chat goes back to the bot (handed back by
        the customer).  None when nothing is waiting any more: an agent has the chat (theirs
        to read the message) or it was never queued."""
        waiting = self.open_for_sender(sender_id)
        if waiting is None or waiting.status != "waiting":
            return None
        try:
            return self._end(waiting.id, "customer", "handed_back", ("waiting",), left_queue=True)
        except HandoffError:
            return None  # claimed in the meantime

    def close(self, handoff_id: int, actor: Actor) -> HandoffView:
        """End the chat (the console then sends the CSAT survey); also settles a call-back."""
        return self._end(handoff_id, actor, "closed", (*OPEN_HANDOFF_STATUSES, "callback"))

    def record_reply(self, handoff_id: int, agent_id: int, length: int) -> None:
        """Audit an agent's message (its length; the text itself is in the transcript)."""
        now = self._clock()
        with session_scope(self._session_factory) as session:
            agent = self._agent(session, agent_id)
            handoff = self._load(session, handoff_id)
            if handoff.status != "active" or handoff.agent_id != agent.id:
                raise NotAllowed(f"only the agent who owns chat {handoff_id} can reply")
            handoff.updated_at = now
            self._event(session, handoff, "reply", agent.username, now, length=length)

    def attach_ticket(
        self, handoff_id: int, ticket_no: str, actor: Actor = "assistant"
    ) -> HandoffView:
        """Link the ticket opened for this chat (the console and the call-back desk show it)."""
        now = self._clock()
        number = normalise_ticket_no(ticket_no)
        with session_scope(self._session_factory) as session:
            handoff = self._load(session, handoff_id)
            label = self._actor_label(session, actor)
            if session.execute(select(Ticket.id).where(Ticket.ticket_no == number)).first() is None:
                raise UnknownTicket(number)
            handoff.ticket_no = number
            handoff.updated_at = now
            self._event(session, handoff, "ticket", label, now, ticket_no=number)
            session.flush()
            return self._view(handoff, now)

    def record_event(self, handoff_id: int, kind: str, actor: Actor, **detail: Any) -> None:
        """Add an audit row from another service (e.g. compensation) and bump `updated_at`."""
        now = self._clock()
        with session_scope(self._session_factory) as session:
            handoff = self._load(session, handoff_id)
            handoff.updated_at = now
            self._event(session, handoff, kind, self._actor_label(session, actor), now, **detail)

    # --- internals

    def _end(
        self,
        handoff_id: int,
        actor: Actor,
        new_status: str,
        from_statuses: Sequence[str],
        **detail: Any,
    ) -> HandoffView:
        now = self._clock()
        with session_scope(self._session_factory) as session:
            handoff = self._load(session, handoff_id)
            label = self._actor_label(session, actor)
            if isinstance(actor, int):
                self._check_may_act(self._agent(session, actor), handoff)
            ended = session.execute(
                update(Handoff)
                .where(
                    Handoff.id == handoff_id,
                    Handoff.status.in_(from_statuses),
                    Handoff.ended_at.is_(None),
                    Handoff.agent_id.is_(None)
                    if handoff.agent_id is None
                    else Handoff.agent_id == handoff.agent_id,
                )
                .values(status=new_status, ended_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            if not ended:
                current = self._load(session, handoff_id, refresh=True)
                raise HandoffError(f"chat {handoff_id} is {current.status}")
            handoff = self._load(session, handoff_id, refresh=True)
            self._event(session, handoff, new_status, label, now, **detail)
            session.flush()
            view = self._view(handoff, now)
        log.info("handoff %d %s by %s", handoff_id, new_status, label)
        return view

    @staticmethod
    def _check_may_act(agent: Agent, handoff: Handoff) -> None:
        if agent.role in SUPERVISOR_ROLES or handoff.agent_id == agent.id:
            return
        raise NotAllowed(f"chat {handoff.id} belongs to someone else")

    @staticmethod
    def _agent(session: Session, agent_id: int) -> Agent:
        return acting_agent(session, agent_id)

    def _actor_label(self, session: Session, actor: Actor) -> str:
        if isinstance(actor, int):
            return self._agent(session, actor).username
        if not actor:
            raise ValueError("an actor name is needed")
        return actor

    @staticmethod
    def _event(
        session: Session, handoff: Handoff, kind: str, actor: str, at: datetime, **detail: Any
    ) -> None:
        record_handoff_event(session, handoff, kind, actor, at, **detail)

    @staticmethod
    def _select() -> Any:
        return select(Handoff).options(selectinload(Handoff.customer), selectinload(Handoff.agent))

    def _load(self, session: Session, handoff_id: int, refresh: bool = False) -> Handoff:
        statement = self._select().where(Handoff.id == handoff_id)
        if refresh:
            statement = statement.execution_options(populate_existing=True)
        handoff = session.execute(statement).scalar_one_or_none()
        if handoff is None:
            raise UnknownHandoff(handoff_id)
        return handoff

    def _waiting(self, session: Session, now: datetime) -> list[HandoffView]:
        rows = session.execute(self._select().where(Handoff.status == "waiting")).scalars()
        views = [self._view(row, now) for row in rows]
        return sorted(views, key=lambda view: (-view.priority, view.queued_at, view.id))

    def _view(self, handoff: Handoff, now: datetime) -> HandoffView:
        customer = handoff.customer
        tier = None if customer is None else customer.tier
        end = handoff.claimed_at or handoff.ended_at or now
        waited = max(end - handoff.queued_at, timedelta(0))
        return HandoffView(
            id=handoff.id,
            sender_id=handoff.sender_id,
            channel=handoff.channel,
            status=handoff.status,
            trigger=handoff.trigger,
            reasons=tuple(handoff.reasons),
            severity=handoff.severity,
            customer_id=handoff.customer_id,
            customer_name=None if customer is None else customer.name,
            customer_tier=tier,
            ticket_no=handoff.ticket_no,
            agent_id=handoff.agent_id,
            agent_display_name=None if handoff.agent is None else handoff.agent.display_name,
            queued_at=handoff.queued_at,
            claimed_at=handoff.claimed_at,
            ended_at=handoff.ended_at,
            callback_due=handoff.callback_due,
            updated_at=handoff.updated_at,
            priority=self._policy.priority_score(tier, handoff.severity, waited),
            waiting_seconds=int(waited.total_seconds()),
        )


@lru_cache(maxsize=1)
def default_handoff_service() -> HandoffService:
    """The handoff service over the configured database and escalation policy."""
    return HandoffService(session_factory(), load_escalation_policy())
