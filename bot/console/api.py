"""What the console's HTTP handlers do, without HTTP: role rules, visibility and JSON shapes.

Handlers in :mod:`bot.console.channel` call these synchronous methods off the event loop; the
services they use (:mod:`bot.handoff`, :mod:`bot.services`) own the data rules, this layer owns
who may see and do what in the console and how it looks as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from bot.attachments import AttachmentService
from bot.console.texts import learned_paragraph, load_console_texts, page_texts
from bot.handoff import accounts as accounts_module
from bot.handoff.accounts import AgentAccounts, LoginThrottled, NotAllowed
from bot.handoff.canned import CannedReplies, CannedReplyError, UnknownCannedReply
from bot.handoff.compensation import CompensationError, CompensationService, UnknownCompensation
from bot.handoff.policy import EscalationPolicy, load_escalation_policy
from bot.handoff.service import (
    TRANSFER_TARGET_ROLES,
    AgentOffline,
    AlreadyClaimed,
    HandoffError,
    HandoffService,
    HandoffView,
    UnknownHandoff,
)
from bot.policy import ServicePolicy, load_policy
from bot.services.customers import CustomerService, mask_phone
from bot.services.orders import OrderService
from bot.services.tickets import InvalidTransition, TicketService, UnknownTicket
from bot.store.models import (
    COMPENSATION_STATUSES,
    OPEN_HANDOFF_STATUSES,
    TICKET_CATEGORIES,
    utcnow,
)

WIDGET_PHOTO_PREFIX = "/widget/uploads/"
CONSOLE_PHOTO_PREFIX = "/console/api/photos/"
Clock = Callable[[], datetime]
MAX_SUMMARY_CHARS = 500


@contextmanager
def handoff_errors() -> Iterator[None]:
    """The handoff service's refusals as console answers."""
    try:
        yield
    except AlreadyClaimed as exc:
        raise ApiError(409, "already_claimed") from exc
    except AgentOffline as exc:
        raise ApiError(409, "agent_offline") from exc
    except NotAllowed as exc:
        raise ApiError(403, "not_owner") from exc
    except HandoffError as exc:
        raise ApiError(409, "chat_closed") from exc
    except UnknownHandoff as exc:
        raise ApiError(404, "not_found") from exc


@contextmanager
def canned_errors() -> Iterator[None]:
    try:
        yield
    except NotAllowed as exc:
        raise ApiError(403, "forbidden") from exc
    except UnknownCannedReply as exc:
        raise ApiError(404, "not_found") from exc
    except CannedReplyError as exc:
        raise ApiError(400, "bad_canned") from exc


class ApiError(Exception):
    """An answer other than success: HTTP status and the key of the message in the texts."""

    def __init__(self, status: int, code: str, **values: Any) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.values = values

    @property
    def message(self) -> str:
        template = load_console_texts()["errors"].get(self.code, self.code)
        return template.format(**self.values)


@dataclass(frozen=True)
class Viewer:
    """The agent making a request, from their session."""

    id: int
    username: str
    display_name: str
    role: str
    csrf_token: str

    @property
    def is_supervisor(self) -> bool:
        return accounts_module.has_role(self.role, "supervisor")

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role,
        }


@dataclass(frozen=True)
class LoginResult:
    agent: dict[str, Any]
    token: str
    csrf_token: str
    max_age_seconds: int


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def sentiment_points(transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The customer's sentiment per message, oldest first, from the transcript's user turns."""
    points = []
    for entry in transcript:
        sentiment = entry.get("sentiment")
        if entry.get("type") != "user" or not isinstance(sentiment, dict):
            continue
        label = sentiment.get("label")
        if not label:
            continue
        score = sentiment.get("score")
        points.append(
            {
                "at": entry.get("at"),
                "label": str(label),
                "score": float(score) if isinstance(score, (int, float)) else None,
            }
        )
    return points


def console_photo_url(url: str | None) -> str | None:
    """Widget photo URLs only work for the customer's own session: agents get the console's."""
    if url and url.startswith(WIDGET_PHOTO_PREFIX):
        filename = url[len(WIDGET_PHOTO_PREFIX) :].split("?", 1)[0]
        return CONSOLE_PHOTO_PREFIX + filename
    return url


class ConsoleApi:
    """The console's operations for one database, each checked against the viewer's role."""

    def __init__(
        self,
        accounts: AgentAccounts,
        handoffs: HandoffService,
        canned: CannedReplies,
        compensation: CompensationService,
        tickets: TicketService,
        customers: CustomerService,
        orders: OrderService,
        attachments: AttachmentService,
        policy: EscalationPolicy,
        service_policy: ServicePolicy,
        session_factory: sessionmaker | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.accounts = accounts
        self.handoffs = handoffs
        self.canned_replies = canned
        self.compensation = compensation
        self.tickets = tickets
        self.customers = customers
        self.orders = orders
        self.attachments = attachments
        self.policy = policy
        self.service_policy = service_policy

    @classmethod
    def create(
        cls, session_factory: sessionmaker | None = None, clock: Clock = utcnow
    ) -> ConsoleApi:
        """Wired to one database (default: the configured one) and the configured policies."""
        from bot.store.db import session_factory as default_factory

        factory = session_factory or default_factory()
        policy = load_escalation_policy()
        service_policy = load_policy()
        return cls(
            accounts=AgentAccounts(factory, policy, clock=clock),
            handoffs=HandoffService(factory, policy, clock=clock, service_policy=service_policy),
            canned=CannedReplies(factory, clock=clock),
            compensation=CompensationService(factory, service_policy, clock=clock),
            tickets=TicketService(factory, service_policy),
            customers=CustomerService(factory),
            orders=OrderService(factory),
            attachments=AttachmentService(factory),
            policy=policy,
            service_policy=service_policy,
            session_factory=factory,
            clock=clock,
        )

    # ------------------------------------------------------------------ sessions

    def page_texts(self) -> dict[str, Any]:
        texts = page_texts(self.service_policy)
        texts["compensation_limit"] = str(self.service_policy.compensation.agent_limit_cny)
        return texts

    def login(self, username: str, password: str) -> LoginResult:
        try:
            agent = self.accounts.authenticate(username, password)
        except LoginThrottled as exc:
            raise ApiError(429, "throttled") from exc
        if agent is None:
            raise ApiError(401, "login_failed")
        token, csrf_token = self.accounts.open_session(agent.id)
        viewer = Viewer(agent.id, agent.username, agent.display_name, agent.role, csrf_token)
        return LoginResult(
            agent=viewer.public(),
            token=token,
            csrf_token=csrf_token,
            max_age_seconds=int(self.policy.console.session_hours * 3600),
        )

    def viewer_for(self, token: str) -> Viewer | None:
        session = self.accounts.session_for(token)
        if session is None:
            return None
        agent = session.agent
        return Viewer(agent.id, agent.username, agent.display_name, agent.role, session.csrf_token)

    def logout(self, token: str) -> None:
        self.accounts.close_session(token)

    def touch(self, token: str) -> bool:
        return self.accounts.touch(token)

    # ------------------------------------------------------------------ queue and chats

    @staticmethod
    def may_see(viewer: Viewer, handoff: HandoffView) -> bool:
        """Agents see waiting chats and their own; supervisors and managers see every chat."""
        if viewer.is_supervisor:
            return True
        return handoff.status == "waiting" or handoff.agent_id == viewer.id

    def queue(self, viewer: Viewer) -> dict[str, Any]:
        agents = self.accounts.list_agents(include_inactive=False)
        online = {agent.id for agent in self.accounts.online_agents()}
        chats = [
            self.chat_json(handoff)
            for handoff in self.handoffs.queue(viewer.id)
            if self.may_see(viewer, handoff)
        ]
        return {
            "chats": chats,
            "agents": [
                {
                    "id": agent.id,
                    "display_name": agent.display_name,
                    "role": agent.role,
                    "online": agent.id in online,
                }
                for agent in agents
            ],
        }

    @staticmethod
    def chat_json(handoff: HandoffView) -> dict[str, Any]:
        return {
            "id": handoff.id,
            "sender_id": handoff.sender_id,
            "channel": handoff.channel,
            "status": handoff.status,
            "trigger": handoff.trigger,
            "reasons": list(handoff.reasons),
            "priority": handoff.priority,
            "severity": handoff.severity,
            "customer": None
            if handoff.customer_id is None
            else {
                "id": handoff.customer_id,
                "name": handoff.customer_name,
                "tier": handoff.customer_tier,
            },
            "agent": None
            if handoff.agent_id is None
            else {"id": handoff.agent_id, "display_name": handoff.agent_display_name},
            "queued_at": _iso(handoff.queued_at),
            "claimed_at": _iso(handoff.claimed_at),
            "waiting_seconds": handoff.waiting_seconds,
            "ticket_no": handoff.ticket_no,
        }

    def _handoff(self, handoff_id: int) -> HandoffView:
        with handoff_errors():
            return self.handoffs.get(handoff_id)

    def visible_chat(self, viewer: Viewer, handoff_id: int) -> HandoffView:
        handoff = self._handoff(handoff_id)
        if not self.may_see(viewer, handoff):
            raise ApiError(403, "forbidden")
        return handoff

    def owned_chat(self, viewer: Viewer, handoff_id: int) -> HandoffView:
        """The chat, if it is active and this agent owns it (only the owner replies)."""
        handoff = self._handoff(handoff_id)
        if handoff.status not in OPEN_HANDOFF_STATUSES:
            raise ApiError(409, "chat_closed")
        if handoff.status != "active" or handoff.agent_id != viewer.id:
            raise ApiError(409, "not_owner")
        return handoff

    def may_end(self, viewer: Viewer, handoff_id: int) -> HandoffView:
        """The chat, if this viewer may hand it back or close it: its owner or a supervisor."""
        handoff = self._handoff(handoff_id)
        if handoff.status not in OPEN_HANDOFF_STATUSES:
            raise ApiError(409, "chat_closed")
        if handoff.agent_id != viewer.id and not viewer.is_supervisor:
            raise ApiError(409 if handoff.status == "active" else 403, "not_owner")
        return handoff

    def visible_chats_by_sender(self, viewer: Viewer) -> dict[str, int]:
        """Open chats this viewer may see, by sender (routes live messages to consoles)."""
        return {
            handoff.sender_id: handoff.id
            for handoff in self.handoffs.queue(viewer.id)
            if self.may_see(viewer, handoff)
        }

    def chat_detail(
        self,
        viewer: Viewer,
        handoff: HandoffView,
        transcript: list[dict[str, Any]],
        learned: dict[str, Any],
    ) -> dict[str, Any]:
        entries = [
            {**entry, "image": console_photo_url(entry.get("image"))} for entry in transcript
        ]
        return {
            "chat": self.chat_json(handoff),
            "transcript": entries,
            "sentiment": sentiment_points(entries),
            "customer": self.customer_json(handoff.customer_id),
            "photos": [
                {"url": CONSOLE_PHOTO_PREFIX + photo.filename, "at": _iso(photo.created_at)}
                for photo in self.attachments.for_sender(handoff.sender_id)
            ],
            "summary": learned_paragraph(learned),
            "can_reply": handoff.status == "active" and handoff.agent_id == viewer.id,
        }

    def customer_json(self, customer_id: int | None) -> dict[str, Any] | None:
        if customer_id is None:
            return None
        customer = self.customers.get_customer(customer_id)
        if customer is None:
            return None
        return {
            "id": customer.id,
            "name": customer.name,
            "tier": customer.tier,
            "phone_masked": mask_phone(customer.phone),
            "orders": [
                {
                    "order_no": order.order_no,
                    "status": order.status,
                    "delivery_status": order.delivery_status,
                    "items": [
                        f"{item.product_name} × {item.quantity}"
                        if item.quantity > 1
                        else item.product_name
                        for item in order.items
                    ],
                }
                for order in self.orders.orders_for_customer(customer.id)
            ],
            "tickets": [
                {
                    "ticket_no": ticket.ticket_no,
                    "status": ticket.status,
                    "category": ticket.category,
                    "summary": ticket.summary,
                }
                for ticket in self.tickets.tickets_for_customer(customer.id)
            ],
        }

    # ------------------------------------------------------------------ chat actions

    def claim(self, viewer: Viewer, handoff_id: int) -> dict[str, Any]:
        if self._handoff(handoff_id).status != "waiting":
            raise ApiError(409, "already_claimed")
        with handoff_errors():  # someone may still be faster: the service decides atomically
            return self.chat_json(self.handoffs.claim(handoff_id, viewer.id))

    def transfer(self, viewer: Viewer, handoff_id: int, target_id: int) -> dict[str, Any]:
        self.visible_chat(viewer, handoff_id)
        try:
            target = self.accounts.get(target_id)
        except LookupError as exc:
            raise ApiError(400, "bad_transfer_target") from exc
        if not target.active or target.role not in TRANSFER_TARGET_ROLES:
            raise ApiError(400, "bad_transfer_target")
        with handoff_errors():
            return self.chat_json(self.handoffs.transfer(handoff_id, viewer.id, target_id))

    def record_reply(self, viewer: Viewer, handoff_id: int, length: int) -> None:
        with handoff_errors():
            self.handoffs.record_reply(handoff_id, viewer.id, length)

    def hand_back(self, viewer: Viewer, handoff_id: int) -> dict[str, Any]:
        with handoff_errors():
            return self.chat_json(self.handoffs.hand_back(handoff_id, viewer.id))

    def close(self, viewer: Viewer, handoff_id: int) -> dict[str, Any]:
        with handoff_errors():
            return self.chat_json(self.handoffs.close(handoff_id, viewer.id))

    # ------------------------------------------------------------------ tickets

    def open_ticket(self, viewer: Viewer, handoff_id: int, category: str, summary: str) -> str:
        handoff = self.visible_chat(viewer, handoff_id)
        if handoff.customer_id is None:
            raise ApiError(409, "customer_unknown")
        if category not in TICKET_CATEGORIES or not summary.strip():
            raise ApiError(400, "bad_ticket")
        ticket = self.tickets.open_ticket(
            handoff.customer_id,
            category,
            summary.strip()[:MAX_SUMMARY_CHARS],
            channel=handoff.channel,
            sender_id=handoff.sender_id,
            now=self.clock(),
            actor=viewer.username,
        )
        with handoff_errors():
            self.handoffs.attach_ticket(handoff_id, ticket.ticket_no, viewer.id)
        return ticket.ticket_no

    def advance_ticket(
        self, viewer: Viewer, ticket_no: str, status: str, note: str
    ) -> dict[str, Any]:
        try:
            ticket = self.tickets.timeline(ticket_no)
        except UnknownTicket as exc:
            raise ApiError(404, "not_found") from exc
        if not viewer.is_supervisor and not self._works_on(viewer, ticket):
            raise ApiError(403, "forbidden")
        try:
            moved = self.tickets.advance(
                ticket.ticket_no,
                status,
                note.strip()[:MAX_SUMMARY_CHARS],
                actor=viewer.username,
                now=self.clock(),
            )
        except InvalidTransition as exc:
            raise ApiError(409, "bad_transition") from exc
        return {"ticket_no": moved.ticket_no, "status": moved.status}

    def _works_on(self, viewer: Viewer, ticket: Any) -> bool:
        """An agent may change tickets of the customers in the chats they own."""
        return any(
            handoff.agent_id == viewer.id
            and handoff.status == "active"
            and (
                handoff.ticket_no == ticket.ticket_no
                or handoff.customer_id == ticket.customer_id
                or (ticket.sender_id is not None and handoff.sender_id == ticket.sender_id)
            )
            for handoff in self.handoffs.queue(viewer.id)
        )

    # ------------------------------------------------------------------ compensation

    def grant_compensation(
        self, viewer: Viewer, handoff_id: int, amount: str, reason: str
    ) -> dict[str, Any]:
        """Up to the agent limit granted at once; more waits for a supervisor (the service)."""
        handoff = self.visible_chat(viewer, handoff_id)
        if handoff.agent_id != viewer.id and not viewer.is_supervisor:
            raise ApiError(403, "not_owner")
        if handoff.ticket_no is None:
            raise ApiError(409, "needs_ticket")
        if not reason.strip():
            raise ApiError(400, "bad_reason")
        with handoff_errors():
            try:
                granted = self.compensation.grant(amount, reason, viewer.id, handoff_id=handoff_id)
            except CompensationError as exc:
                raise ApiError(400, "bad_amount") from exc
        return self.compensation_json(granted)

    def compensations(self, status: str) -> list[dict[str, Any]]:
        if status not in COMPENSATION_STATUSES:
            raise ApiError(400, "bad_request")
        return [
            self.compensation_json(item)
            for item in self.compensation.list_compensations(status=status)
        ]

    def decide_compensation(
        self, viewer: Viewer, compensation_id: int, decision: str
    ) -> dict[str, Any]:
        decide = self.compensation.approve if decision == "approve" else self.compensation.reject
        with handoff_errors():
            try:
                decided = decide(compensation_id, viewer.id)
            except UnknownCompensation as exc:
                raise ApiError(404, "not_found") from exc
            except CompensationError as exc:
                raise ApiError(409, "already_decided") from exc
        return self.compensation_json(decided)

    @staticmethod
    def compensation_json(item: Any) -> dict[str, Any]:
        return {
            "id": item.id,
            "status": item.status,
            "amount": str(item.amount),
            "reason": item.reason,
            "ticket_no": item.ticket_no,
            "handoff_id": item.handoff_id,
            "requested_by": item.requested_by,
            "decided_by": item.decided_by,
            "created_at": _iso(item.created_at),
        }

    # ------------------------------------------------------------------ canned replies

    def canned(self, query: str) -> list[dict[str, Any]]:
        return [self.canned_json(reply) for reply in self.canned_replies.search(query)]

    def save_canned(
        self, viewer: Viewer, reply_id: int | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        fields = {name: str(body.get(name) or "").strip() for name in ("title", "category", "text")}
        if not all(fields.values()):
            raise ApiError(400, "bad_canned")
        situation = str(body.get("situation") or "").strip()
        with canned_errors():
            if reply_id is None:
                saved = self.canned_replies.create(viewer.id, situation=situation or None, **fields)
            else:
                saved = self.canned_replies.update(
                    reply_id, viewer.id, situation=situation, **fields
                )
        return self.canned_json(saved)

    def delete_canned(self, viewer: Viewer, reply_id: int) -> None:
        with canned_errors():
            self.canned_replies.delete(reply_id, viewer.id)

    @staticmethod
    def canned_json(reply: Any) -> dict[str, Any]:
        return {
            "id": reply.id,
            "title": reply.title,
            "category": reply.category,
            "situation": reply.situation,
            "text": reply.text,
        }

    # ------------------------------------------------------------------ photos

    def photo(self, viewer: Viewer, filename: str) -> tuple[Path, str]:
        """A customer's photo, for supervisors or an agent who can see that customer's chat."""
        found = self.attachments.get(filename)
        if found is None:
            raise ApiError(404, "not_found")
        if not viewer.is_supervisor:
            handoff = self.handoffs.open_for_sender(found.sender_id)
            if handoff is None or not self.may_see(viewer, handoff):
                raise ApiError(404, "not_found")
        path = self.attachments.path_of(found)
        if not path.is_file():
            raise ApiError(404, "not_found")
        return path, found.content_type
