"""Customer lookups and order-ownership checks, plus the input validators they rely on."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.store.db import session_scope
from bot.store.models import Customer, Order

log = logging.getLogger(__name__)

ORDER_NO_PATTERN = re.compile(r"SO\d{11}")
MAINLAND_MOBILE_PATTERN = re.compile(r"1[3-9]\d{9}")
_PHONE_SEPARATORS = re.compile(r"[\s\-()（）]")
_COUNTRY_PREFIXES = ("+86", "0086", "86")


def normalise_order_no(raw: str) -> str:
    """Order numbers as customers type them: any case, stray spaces."""
    return re.sub(r"\s+", "", raw).upper()


def is_valid_order_no(raw: str) -> bool:
    """`SO` followed by 11 digits, after normalisation."""
    return ORDER_NO_PATTERN.fullmatch(normalise_order_no(raw)) is not None


def normalise_phone(raw: str) -> str | None:
    """The 11-digit mainland mobile number in `raw`, or None if it is not one.

    Strips spaces, dashes, brackets and a +86/0086 country prefix, so the same customer
    matches however they type the number.
    """
    digits = _PHONE_SEPARATORS.sub("", raw)
    for prefix in _COUNTRY_PREFIXES:
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    return digits if MAINLAND_MOBILE_PATTERN.fullmatch(digits) else None


def mask_phone(phone: str) -> str:
    """A phone number safe for logs and screens: 13800138000 -> 138****8000."""
    if len(phone) < 8:
        return "****"
    return f"{phone[:3]}****{phone[-4:]}"


@dataclass(frozen=True)
class CustomerView:
    id: int
    name: str
    phone: str
    tier: str
    annual_spend: Decimal
    created_at: datetime


@dataclass(frozen=True)
class VerifiedOrder:
    """An order whose owner proved who they are; carries what ticketing needs next."""

    order_no: str | None
    """None for a message left without an order: only a phone to call back, unchecked."""
    customer_id: int
    customer_name: str
    customer_tier: str


def _customer_view(customer: Customer) -> CustomerView:
    return CustomerView(
        id=customer.id,
        name=customer.name,
        phone=customer.phone,
        tier=customer.tier,
        annual_spend=customer.annual_spend,
        created_at=customer.created_at,
    )


class CustomerService:
    """Who the customer is, and whether they may see an order."""

    def __init__(self, session_factory: sessionmaker) -> None:
        self._session_factory = session_factory

    def verify_order_owner(self, order_no: str, phone: str) -> VerifiedOrder | None:
        """The order if `phone` belongs to its owner; None otherwise.

        Unknown orders, wrong phones and malformed input all give None, so a caller cannot
        probe which order numbers exist.
        """
        normalised_order_no = normalise_order_no(order_no)
        normalised_phone = normalise_phone(phone)
        if normalised_phone is None or not is_valid_order_no(normalised_order_no):
            log.info("order ownership check rejected malformed input")
            return None
        with session_scope(self._session_factory) as session:
            row = session.execute(
                select(Order.order_no, Customer.id, Customer.name, Customer.tier, Customer.phone)
                .join(Order.customer)
                .where(Order.order_no == normalised_order_no)
            ).one_or_none()
        if row is None or row.phone != normalised_phone:
            log.info(
                "order ownership check failed for order %s, phone %s",
                normalised_order_no,
                mask_phone(normalised_phone),
            )
            return None
        return VerifiedOrder(
            order_no=row.order_no,
            customer_id=row.id,
            customer_name=row.name,
            customer_tier=row.tier,
        )

    def get_customer(self, customer_id: int) -> CustomerView | None:
        with session_scope(self._session_factory) as session:
            customer = session.get(Customer, customer_id)
            return None if customer is None else _customer_view(customer)

    def find_by_phone(self, phone: str) -> CustomerView | None:
        """The customer registered with `phone` (any common spelling), if any."""
        normalised_phone = normalise_phone(phone)
        if normalised_phone is None:
            return None
        with session_scope(self._session_factory) as session:
            customer = session.execute(
                select(Customer).where(Customer.phone == normalised_phone)
            ).scalar_one_or_none()
            return None if customer is None else _customer_view(customer)

    def contact_by_phone(self, phone: str) -> VerifiedOrder | None:
        """Whom a message left without an order is from: the customer registered with
        ``phone``, or a new guest record for it (None for a malformed number).  Nothing is
        shown to the chat; whoever calls back checks who answers."""
        normalised_phone = normalise_phone(phone)
        if normalised_phone is None:
            return None
        mine = select(Customer).where(Customer.phone == normalised_phone)
        for _ in range(2):  # a second try reads the row a concurrent request just added
            try:
                with session_scope(self._session_factory) as session:
                    customer = session.execute(mine).scalar_one_or_none()
                    if customer is None:
                        customer = Customer(
                            name=f"访客{normalised_phone[-4:]}", phone=normalised_phone
                        )
                        session.add(customer)
                        session.flush()
                    return VerifiedOrder(None, customer.id, customer.name, customer.tier)
            except IntegrityError:
                continue
        return None

    def list_customers(self) -> list[CustomerView]:
        with session_scope(self._session_factory) as session:
            customers = session.execute(select(Customer).order_by(Customer.id)).scalars()
            return [_customer_view(customer) for customer in customers]
