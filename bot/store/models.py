"""ORM models of the after-sales store, plus the vocabularies the columns are checked against."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, declarative_base, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine

TIERS = ("normal", "silver", "gold", "vip")
ORDER_STATUSES = ("paid", "completed", "cancelled", "refunded")
DELIVERY_STATUSES = (
    "pending",
    "shipped",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "cancelled",
)
TICKET_CATEGORIES = (
    "return_exchange",
    "repair",
    "installation_maintenance",
    "logistics",
    "price_billing",
    "complaint",
    "inquiry",
)
NEED_CLASSES = ("normal", "urgent", "special", "emotional")
# Forward order of the ticket lifecycle; `cancelled` is reachable from any non-terminal status.
TICKET_FLOW = ("opened", "acknowledged", "plan_given", "in_progress", "resolved", "closed")
TICKET_STATUSES = (*TICKET_FLOW, "cancelled")
TERMINAL_TICKET_STATUSES = ("closed", "cancelled")
HIGHEST_PRIORITY, LOWEST_PRIORITY = 1, 4

# Stable constraint names let later migrations alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Base = declarative_base(metadata=MetaData(naming_convention=NAMING_CONVENTION))


def utcnow() -> datetime:
    """The one clock of the store: timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """Stores naive UTC and returns aware UTC, so SQLite and PostgreSQL behave the same."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing naive datetime {value!r}: pass a timezone-aware value")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Money(TypeDecorator):
    """Exact Decimal amounts everywhere.

    PostgreSQL keeps NUMERIC natively; SQLite stores it as REAL, so values are read back as
    floats and rounded to the column's scale here, explicitly, instead of relying on the
    dialect's lossy-conversion fallback (and its warning).
    """

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(
                Numeric(self.impl.precision, self.impl.scale, asdecimal=False)
            )
        return dialect.type_descriptor(self.impl)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-self.impl.scale))


def _one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (CheckConstraint(_one_of("tier", TIERS), name="tier"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    name: Mapped[str] = Column(String(100), nullable=False)
    phone: Mapped[str] = Column(String(20), nullable=False, unique=True)
    tier: Mapped[str] = Column(String(16), nullable=False, default="normal")
    annual_spend: Mapped[Decimal] = Column(Money(14, 2), nullable=False, default=Decimal("0"))
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False, default=utcnow)

    orders: Mapped[list[Order]] = relationship("Order", back_populates="customer")


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = Column(Integer, primary_key=True)
    sku: Mapped[str] = Column(String(32), nullable=False, unique=True)
    name: Mapped[str] = Column(String(100), nullable=False)
    category: Mapped[str] = Column(String(32), nullable=False)
    warranty_months: Mapped[int] = Column(Integer, nullable=False)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(_one_of("status", ORDER_STATUSES), name="status"),
        CheckConstraint(_one_of("delivery_status", DELIVERY_STATUSES), name="delivery_status"),
    )

    id: Mapped[int] = Column(Integer, primary_key=True)
    order_no: Mapped[str] = Column(String(13), nullable=False, unique=True)
    customer_id: Mapped[int] = Column(
        ForeignKey("customers.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    placed_at: Mapped[datetime] = Column(UtcDateTime, nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False, default="paid")
    delivery_status: Mapped[str] = Column(String(20), nullable=False, default="pending")
    carrier: Mapped[str | None] = Column(String(50))
    tracking_no: Mapped[str | None] = Column(String(50))
    eta: Mapped[datetime | None] = Column(UtcDateTime)
    address: Mapped[str] = Column(Text, nullable=False)
    total_amount: Mapped[Decimal] = Column(Money(12, 2), nullable=False)

    customer: Mapped[Customer] = relationship("Customer", back_populates="orders")
    items: Mapped[list[OrderItem]] = relationship(
        "OrderItem", back_populates="order", order_by="OrderItem.id", cascade="all, delete-orphan"
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    order_id: Mapped[int] = Column(
        ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    product_id: Mapped[int] = Column(
        ForeignKey("products.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    quantity: Mapped[int] = Column(Integer, nullable=False)
    unit_price: Mapped[Decimal] = Column(Money(12, 2), nullable=False)

    order: Mapped[Order] = relationship("Order", back_populates="items")
    product: Mapped[Product] = relationship("Product")


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(_one_of("category", TICKET_CATEGORIES), name="category"),
        CheckConstraint(_one_of("need_class", NEED_CLASSES), name="need_class"),
        CheckConstraint(_one_of("status", TICKET_STATUSES), name="status"),
        CheckConstraint(
            f"priority BETWEEN {HIGHEST_PRIORITY} AND {LOWEST_PRIORITY}", name="priority_range"
        ),
    )

    id: Mapped[int] = Column(Integer, primary_key=True)
    ticket_no: Mapped[str] = Column(String(20), nullable=False, unique=True)
    customer_id: Mapped[int] = Column(
        ForeignKey("customers.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    order_id: Mapped[int | None] = Column(
        ForeignKey("orders.id", ondelete="SET NULL"), nullable=True, index=True
    )
    category: Mapped[str] = Column(String(32), nullable=False)
    need_class: Mapped[str] = Column(String(16), nullable=False)
    priority: Mapped[int] = Column(Integer, nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False, default="opened", index=True)
    channel: Mapped[str] = Column(String(32), nullable=False)
    sender_id: Mapped[str | None] = Column(String(128), index=True)
    summary: Mapped[str] = Column(Text, nullable=False)
    details: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False, index=True)
    first_response_due: Mapped[datetime] = Column(UtcDateTime, nullable=False)
    plan_due: Mapped[datetime] = Column(UtcDateTime, nullable=False)
    close_due: Mapped[datetime] = Column(UtcDateTime, nullable=False)
    updated_at: Mapped[datetime] = Column(UtcDateTime, nullable=False)

    customer: Mapped[Customer] = relationship("Customer")
    order: Mapped[Order | None] = relationship("Order")
    events: Mapped[list[TicketEvent]] = relationship(
        "TicketEvent",
        back_populates="ticket",
        order_by="TicketEvent.id",
        cascade="all, delete-orphan",
    )


class TicketEvent(Base):
    __tablename__ = "ticket_events"
    __table_args__ = (CheckConstraint(_one_of("status", TICKET_STATUSES), name="status"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    ticket_id: Mapped[int] = Column(
        ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status: Mapped[str] = Column(String(16), nullable=False)
    note: Mapped[str] = Column(Text, nullable=False, default="")
    actor: Mapped[str] = Column(String(64), nullable=False)
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False)

    ticket: Mapped[Ticket] = relationship("Ticket", back_populates="events")


class KbSearch(Base):
    """One knowledge-base search: what was asked, what was found, whether it helped."""

    __tablename__ = "kb_searches"

    id: Mapped[int] = Column(Integer, primary_key=True)
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False, index=True)
    sender_id: Mapped[str | None] = Column(String(128))
    query: Mapped[str] = Column(String(500), nullable=False)
    normalised_query: Mapped[str] = Column(String(500), nullable=False)
    hits: Mapped[list[dict[str, Any]]] = Column(JSON, nullable=False, default=list)
    top_article: Mapped[str | None] = Column(String(100), index=True)
    top_score: Mapped[float | None] = Column(Float)
    found: Mapped[bool] = Column(Boolean, nullable=False)
    helpful: Mapped[bool | None] = Column(Boolean)


class Attachment(Base):
    """A photo a customer sent from the web chat; the file itself lives in the upload folder.

    ``ticket_no`` links it to the conversation's open ticket when there was one, so the desk
    sees the evidence (a leaking machine, a broken box) next to the request.
    """

    __tablename__ = "attachments"
    __table_args__ = (CheckConstraint("size > 0", name="size_positive"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    sender_id: Mapped[str] = Column(String(128), nullable=False, index=True)
    ticket_no: Mapped[str | None] = Column(
        ForeignKey("tickets.ticket_no", ondelete="SET NULL"), nullable=True, index=True
    )
    filename: Mapped[str] = Column(String(64), nullable=False, unique=True)
    content_type: Mapped[str] = Column(String(32), nullable=False)
    size: Mapped[int] = Column(Integer, nullable=False)
    sha256: Mapped[str] = Column(String(64), nullable=False)
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False, default=utcnow, index=True)


# --- Human handoff (issue #5): agents, their sessions, the queue of chats, and what agents do.

AGENT_ROLES = ("agent", "supervisor", "manager")
# Open handoffs hold the conversation (the bot stays quiet). Together with a call-back still
# owed (status callback, not ended) they are "pending": at most one per sender, enforced by a
# partial unique index so concurrent escalations cannot create a second one.
OPEN_HANDOFF_STATUSES = ("waiting", "active")
HANDOFF_STATUSES = (*OPEN_HANDOFF_STATUSES, "closed", "handed_back", "callback")
HANDOFF_EVENT_KINDS = (
    "queued",
    "callback",
    "claimed",
    "transferred",
    "reply",
    "ticket",
    "handed_back",
    "closed",
    "compensation",
)
COMPENSATION_STATUSES = ("granted", "pending", "approved", "rejected")
CSAT_MIN_SCORE, CSAT_MAX_SCORE = 1, 5
_PENDING_HANDOFF = text(
    f"{_one_of('status', OPEN_HANDOFF_STATUSES)} OR (status = 'callback' AND ended_at IS NULL)"
)


class Agent(Base):
    """A person who works in the agent console: agent, supervisor or manager."""

    __tablename__ = "agents"
    __table_args__ = (CheckConstraint(_one_of("role", AGENT_ROLES), name="role"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    username: Mapped[str] = Column(String(64), nullable=False, unique=True)
    display_name: Mapped[str] = Column(String(100), nullable=False)
    role: Mapped[str] = Column(String(16), nullable=False, default="agent")
    password_hash: Mapped[str] = Column(String(255), nullable=False)
    active: Mapped[bool] = Column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False, default=utcnow)


class AgentSession(Base):
    """A console login; only a hash of the cookie token is stored, so a leaked table is useless."""

    __tablename__ = "agent_sessions"

    id: Mapped[int] = Column(Integer, primary_key=True)
    token_hash: Mapped[str] = Column(String(64), nullable=False, unique=True)
    agent_id: Mapped[int] = Column(
        ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, index=True
    )
    csrf_token: Mapped[str] = Column(String(64), nullable=False)
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False)
    last_seen_at: Mapped[datetime] = Column(UtcDateTime, nullable=False, index=True)
    expires_at: Mapped[datetime] = Column(UtcDateTime, nullable=False)

    agent: Mapped[Agent] = relationship("Agent")


class LoginFailure(Base):
    """A failed console login, kept for throttling guessing across processes and restarts."""

    __tablename__ = "login_failures"

    id: Mapped[int] = Column(Integer, primary_key=True)
    username: Mapped[str] = Column(String(64), nullable=False, index=True)
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False)


class Handoff(Base):
    """One escalation of a conversation to a person, from queueing to hand-back or close."""

    __tablename__ = "handoffs"
    __table_args__ = (
        CheckConstraint(_one_of("status", HANDOFF_STATUSES), name="status"),
        Index(
            "uq_handoffs_pending_sender_id",
            "sender_id",
            unique=True,
            sqlite_where=_PENDING_HANDOFF,
            postgresql_where=_PENDING_HANDOFF,
        ),
    )

    id: Mapped[int] = Column(Integer, primary_key=True)
    sender_id: Mapped[str] = Column(String(128), nullable=False, index=True)
    channel: Mapped[str] = Column(String(32), nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False, index=True)
    trigger: Mapped[str] = Column(String(32), nullable=False)
    reasons: Mapped[list[str]] = Column(JSON, nullable=False, default=list)
    severity: Mapped[int] = Column(Integer, nullable=False, default=0)
    customer_id: Mapped[int | None] = Column(
        ForeignKey("customers.id", ondelete="SET NULL"), nullable=True, index=True
    )
    ticket_no: Mapped[str | None] = Column(
        ForeignKey("tickets.ticket_no", ondelete="SET NULL"), nullable=True
    )
    agent_id: Mapped[int | None] = Column(
        ForeignKey("agents.id", ondelete="SET NULL"), nullable=True, index=True
    )
    queued_at: Mapped[datetime] = Column(UtcDateTime, nullable=False)
    claimed_at: Mapped[datetime | None] = Column(UtcDateTime)
    ended_at: Mapped[datetime | None] = Column(UtcDateTime)
    callback_due: Mapped[datetime | None] = Column(UtcDateTime)
    updated_at: Mapped[datetime] = Column(UtcDateTime, nullable=False, index=True)

    customer: Mapped[Customer | None] = relationship("Customer")
    agent: Mapped[Agent | None] = relationship("Agent")


class HandoffEvent(Base):
    """Audit trail of a handoff: who did what, when."""

    __tablename__ = "handoff_events"
    __table_args__ = (CheckConstraint(_one_of("kind", HANDOFF_EVENT_KINDS), name="kind"),)

    id: Mapped[int] = Column(Integer, primary_key=True)
    handoff_id: Mapped[int] = Column(
        ForeignKey("handoffs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = Column(String(16), nullable=False)
    actor: Mapped[str] = Column(String(64), nullable=False)
    detail: Mapped[dict[str, Any]] = Column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False)


class CannedReply(Base):
    """A reply template for agents; `key` ties seeded rows to config/canned_replies.yml."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = Column(Integer, primary_key=True)
    key: Mapped[str | None] = Column(String(64), unique=True)
    title: Mapped[str] = Column(String(100), nullable=False)
    category: Mapped[str] = Column(String(50), nullable=False, index=True)
    situation: Mapped[str | None] = Column(String(50))
    text: Mapped[str] = Column(Text, nullable=False)
    updated_by: Mapped[str] = Column(String(64), nullable=False)
    updated_at: Mapped[datetime] = Column(UtcDateTime, nullable=False)
    active: Mapped[bool] = Column(Boolean, nullable=False, default=True)


class Compensation(Base):
    """Money granted to a customer from a chat or ticket; large amounts wait for a supervisor."""

    __tablename__ = "compensations"
    __table_args__ = (
        CheckConstraint(_one_of("status", COMPENSATION_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = Column(Integer, primary_key=True)
    ticket_no: Mapped[str | None] = Column(
        ForeignKey("tickets.ticket_no", ondelete="RESTRICT"), nullable=True, index=True
    )
    handoff_id: Mapped[int | None] = Column(
        ForeignKey("handoffs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    amount: Mapped[Decimal] = Column(Money(10, 2), nullable=False)
    reason: Mapped[str] = Column(Text, nullable=False)
    status: Mapped[str] = Column(String(16), nullable=False, index=True)
    requested_by: Mapped[str] = Column(String(64), nullable=False)
    decided_by: Mapped[str | None] = Column(String(64))
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False)
    decided_at: Mapped[datetime | None] = Column(UtcDateTime)


class CsatResponse(Base):
    """A customer's satisfaction rating (1-5 stars) and open comment after a chat."""

    __tablename__ = "csat_responses"
    __table_args__ = (
        CheckConstraint(f"score BETWEEN {CSAT_MIN_SCORE} AND {CSAT_MAX_SCORE}", name="score_range"),
    )

    id: Mapped[int] = Column(Integer, primary_key=True)
    handoff_id: Mapped[int | None] = Column(
        ForeignKey("handoffs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    sender_id: Mapped[str] = Column(String(128), nullable=False, index=True)
    channel: Mapped[str] = Column(String(32), nullable=False)
    score: Mapped[int] = Column(Integer, nullable=False)
    comment: Mapped[str] = Column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = Column(UtcDateTime, nullable=False, index=True)
