"""Load the deterministic demo data set (customers, orders, tickets, console agents) into the
store, and seed the canned replies of the agent console.

Loading is idempotent: rows are keyed by phone, sku, order number, ticket number, username
and canned-reply key, and whatever already exists is left alone (canned replies a supervisor
edited included), so running it twice changes nothing. Everything is
added in one transaction, so a broken demo file leaves the database untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Extra, Field, ValidationError, validator
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.handoff.canned import (
    CANNED_REPLIES_FILE,
    CannedReplyError,
    read_canned_library,
    sync_canned_replies,
)
from bot.nlu.catalogue import CATALOGUE_FILE, load_catalogue
from bot.policy import ServicePolicy, load_policy
from bot.services.customers import is_valid_order_no, normalise_order_no, normalise_phone
from bot.services.tickets import (
    InvalidTransition,
    add_transition,
    is_valid_ticket_no,
    new_ticket,
    ticket_no_prefix,
)
from bot.settings import PROJECT_ROOT
from bot.store.db import session_scope
from bot.store.models import (
    AGENT_ROLES,
    DELIVERY_STATUSES,
    NEED_CLASSES,
    ORDER_STATUSES,
    TICKET_CATEGORIES,
    TIERS,
    Agent,
    Customer,
    Order,
    OrderItem,
    Product,
    Ticket,
    utcnow,
)

log = logging.getLogger(__name__)

DEMO_DATA_FILE = PROJECT_ROOT / "data" / "demo" / "demo_data.yml"


class DemoDataError(ValueError):
    """The demo file is unreadable or inconsistent."""


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times need a zone, e.g. 2026-11-20T09:15:00+08:00")
    return moment


def _one_of(*allowed: str) -> Callable[[str], str]:
    """A reusable pydantic validator accepting only the store's vocabulary."""

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return check


class _DemoModel(BaseModel):
    class Config:
        extra = Extra.forbid


class DemoCustomer(_DemoModel):
    name: str
    phone: str
    tier: str
    annual_spend: Decimal
    created_at: datetime

    _created_at_aware = validator("created_at", allow_reuse=True)(_aware)
    _known_tier = validator("tier", allow_reuse=True)(_one_of(*TIERS))

    @validator("phone")
    def _mainland_mobile(cls, phone: str) -> str:
        normalised = normalise_phone(phone)
        if normalised is None:
            raise ValueError(f"not a mainland mobile number: {phone!r}")
        return normalised


class DemoOrderItem(_DemoModel):
    sku: str
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0)


class DemoOrder(_DemoModel):
    order_no: str
    customer_phone: str
    placed_at: datetime
    status: str
    delivery_status: str
    carrier: str | None = None
    tracking_no: str | None = None
    eta: datetime | None = None
    address: str
    items: list[DemoOrderItem] = Field(min_items=1)

    _placed_at_aware = validator("placed_at", allow_reuse=True)(_aware)
    _eta_aware = validator("eta", allow_reuse=True)(_aware)
    _known_status = validator("status", allow_reuse=True)(_one_of(*ORDER_STATUSES))
    _known_delivery_status = validator("delivery_status", allow_reuse=True)(
        _one_of(*DELIVERY_STATUSES)
    )

    @validator("order_no")
    def _order_no_format(cls, order_no: str) -> str:
        if not is_valid_order_no(order_no):
            raise ValueError(f"order numbers are SO + 11 digits, got {order_no!r}")
        return normalise_order_no(order_no)


class DemoEvent(_DemoModel):
    status: str
    at: datetime
    actor: str
    note: str = ""

    _at_aware = validator("at", allow_reuse=True)(_aware)


class DemoTicket(_DemoModel):
    ticket_no: str
    customer_phone: str
    order_no: str | None = None
    category: str
    need_class: str | None = None
    channel: str
    sender_id: str | None = None
    summary: str
    details: dict[str, Any] = {}
    timeline: list[DemoEvent] = Field(min_items=1)

    _known_category = validator("category", allow_reuse=True)(_one_of(*TICKET_CATEGORIES))
    _known_need_class = validator("need_class", allow_reuse=True)(_one_of(*NEED_CLASSES))

    @validator("ticket_no")
    def _ticket_no_format(cls, ticket_no: str) -> str:
        if not is_valid_ticket_no(ticket_no):
            raise ValueError(f"ticket numbers look like T20261123-0007, got {ticket_no!r}")
        return ticket_no

    @validator("timeline")
    def _starts_opened(cls, timeline: list[DemoEvent]) -> list[DemoEvent]:
        if timeline[0].status != "opened":
            raise ValueError("a ticket timeline starts with the `opened` event")
        return timeline


class DemoAgent(_DemoModel):
    username: str
    display_name: str
    role: str
    password_hash: str

    _known_role = validator("role", allow_reuse=True)(_one_of(*AGENT_ROLES))

    @validator("password_hash")
    def _argon2_hash(cls, password_hash: str) -> str:
        if not password_hash.startswith("$argon2"):
            raise ValueError("store an argon2 hash, never a password")
        return password_hash


class DemoData(_DemoModel):
    customers: list[DemoCustomer]
    orders: list[DemoOrder]
    tickets: list[DemoTicket]
    agents: list[DemoAgent] = []


@dataclass(frozen=True)
class DemoLoadReport:
    """How many rows of each kind this run added (all zero on a repeated run)."""

    products_added: int
    customers_added: int
    orders_added: int
    tickets_added: int
    agents_added: int = 0
    canned_replies_added: int = 0


def read_demo_data(path: Path = DEMO_DATA_FILE) -> DemoData:
    """Parse and validate the demo file, naming it in any error."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return DemoData.parse_obj(raw)
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise DemoDataError(f"invalid demo data {path}:\n{error}") from error


def load_demo_data(
    session_factory: sessionmaker | None = None,
    policy: ServicePolicy | None = None,
    path: Path = DEMO_DATA_FILE,
    catalogue_path: Path = CATALOGUE_FILE,
    canned_path: Path = CANNED_REPLIES_FILE,
) -> DemoLoadReport:
    """Add the catalogue products, the demo customers, orders, tickets and agents that are
    missing, and the canned replies not yet in the database."""
    data = read_demo_data(path)
    policy = policy or load_policy()
    try:
        canned = read_canned_library(canned_path)
    except CannedReplyError as error:
        raise DemoDataError(str(error)) from error
    with session_scope(session_factory) as session:
        report = DemoLoadReport(
            products_added=_add_products(session, catalogue_path),
            customers_added=_add_customers(session, data.customers),
            orders_added=_add_orders(session, data.orders, path),
            tickets_added=_add_tickets(session, data.tickets, policy, path),
            agents_added=_add_agents(session, data.agents),
            canned_replies_added=sync_canned_replies(session, canned, utcnow()).added,
        )
    log.info("demo data loaded: %s", report)
    return report


def _add_products(session: Session, catalogue_path: Path) -> int:
    existing = set(session.execute(select(Product.sku)).scalars())
    missing = [product for product in load_catalogue(catalogue_path) if product.sku not in existing]
    session.add_all(
        Product(
            sku=product.sku,
            name=product.name,
            category=product.category,
            warranty_months=product.warranty_months,
        )
        for product in missing
    )
    session.flush()
    return len(missing)


def _add_customers(session: Session, customers: list[DemoCustomer]) -> int:
    existing = set(session.execute(select(Customer.phone)).scalars())
    missing = [customer for customer in customers if customer.phone not in existing]
    session.add_all(Customer(**customer.dict()) for customer in missing)
    session.flush()
    return len(missing)


def _add_agents(session: Session, agents: list[DemoAgent]) -> int:
    existing = set(session.execute(select(Agent.username)).scalars())
    missing = [agent for agent in agents if agent.username not in existing]
    session.add_all(Agent(**agent.dict(), active=True, created_at=utcnow()) for agent in missing)
    session.flush()
    return len(missing)


def _customer_by_phone(session: Session, phone: str, path: Path) -> Customer:
    customer = session.execute(
        select(Customer).where(Customer.phone == normalise_phone(phone))
    ).scalar_one_or_none()
    if customer is None:
        raise DemoDataError(f"{path}: no customer with phone {phone}")
    return customer


def _add_orders(session: Session, orders: list[DemoOrder], path: Path) -> int:
    existing = set(session.execute(select(Order.order_no)).scalars())
    products = {product.sku: product for product in session.execute(select(Product)).scalars()}
    missing = [order for order in orders if order.order_no not in existing]
    for demo_order in missing:
        unknown_skus = sorted({item.sku for item in demo_order.items} - set(products))
        if unknown_skus:
            raise DemoDataError(f"{path}: {demo_order.order_no} has unknown skus {unknown_skus}")
        fields = demo_order.dict(exclude={"customer_phone", "items"})
        session.add(
            Order(
                **fields,
                customer=_customer_by_phone(session, demo_order.customer_phone, path),
                total_amount=sum(
                    (item.unit_price * item.quantity for item in demo_order.items), Decimal("0")
                ),
                items=[
                    OrderItem(
                        product=products[item.sku],
                        quantity=item.quantity,
                        unit_price=item.unit_price,
                    )
                    for item in demo_order.items
                ],
            )
        )
    session.flush()
    return len(missing)


def _add_tickets(
    session: Session, tickets: list[DemoTicket], policy: ServicePolicy, path: Path
) -> int:
    existing = set(session.execute(select(Ticket.ticket_no)).scalars())
    missing = [ticket for ticket in tickets if ticket.ticket_no not in existing]
    for demo_ticket in missing:
        opened, *later_events = demo_ticket.timeline
        opening_day = opened.at.astimezone(policy.timezone).date()
        if not demo_ticket.ticket_no.startswith(ticket_no_prefix(opening_day)):
            raise DemoDataError(
                f"{path}: {demo_ticket.ticket_no} does not match its opening day {opened.at}"
            )
        customer = _customer_by_phone(session, demo_ticket.customer_phone, path)
        order = None
        if demo_ticket.order_no is not None:
            order = session.execute(
                select(Order).where(
                    Order.order_no == demo_ticket.order_no, Order.customer_id == customer.id
                )
            ).scalar_one_or_none()
            if order is None:
                raise DemoDataError(
                    f"{path}: {demo_ticket.ticket_no} refers to {demo_ticket.order_no}, "
                    "which is not an order of that customer"
                )
        ticket = new_ticket(
            session,
            policy,
            ticket_no=demo_ticket.ticket_no,
            customer=customer,
            order=order,
            category=demo_ticket.category,
            need_class=demo_ticket.need_class or policy.default_need_class(demo_ticket.category),
            summary=demo_ticket.summary,
            details=demo_ticket.details,
            channel=demo_ticket.channel,
            sender_id=demo_ticket.sender_id,
            opened_at=opened.at,
            actor=opened.actor,
        )
        try:
            for event in later_events:
                add_transition(ticket, event.status, event.note, event.actor, event.at)
        except InvalidTransition as error:
            raise DemoDataError(f"{path}: {demo_ticket.ticket_no}: {error}") from error
    session.flush()
    return len(missing)


def create_demo_database(url: str) -> None:
    """Migrate the database at ``url`` and load the demo data into it (tests, benchmarks)."""
    from bot.store.db import make_engine, make_session_factory, upgrade_database

    upgrade_database(url)
    engine = make_engine(url)
    try:
        load_demo_data(make_session_factory(engine))
    finally:
        engine.dispose()
