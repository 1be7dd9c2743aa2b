"""Read-only order and delivery views for the assistant (call after ownership is verified)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import selectinload, sessionmaker

from bot.services.customers import normalise_order_no
from bot.store.db import session_scope
from bot.store.models import Order, OrderItem


class UnknownOrder(LookupError):
    """No such order (or, where ownership matters, not this customer's)."""


@dataclass(frozen=True)
class OrderItemView:
    sku: str
    product_name: str
    product_category: str
    warranty_months: int
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class OrderView:
    order_no: str
    customer_id: int
    placed_at: datetime
    status: str
    delivery_status: str
    carrier: str | None
    tracking_no: str | None
    eta: datetime | None
    address: str
    total_amount: Decimal
    items: tuple[OrderItemView, ...]


def _order_view(order: Order) -> OrderView:
    return OrderView(
        order_no=order.order_no,
        customer_id=order.customer_id,
        placed_at=order.placed_at,
        status=order.status,
        delivery_status=order.delivery_status,
        carrier=order.carrier,
        tracking_no=order.tracking_no,
        eta=order.eta,
        address=order.address,
        total_amount=order.total_amount,
        items=tuple(
            OrderItemView(
                sku=item.product.sku,
                product_name=item.product.name,
                product_category=item.product.category,
                warranty_months=item.product.warranty_months,
                quantity=item.quantity,
                unit_price=item.unit_price,
            )
            for item in order.items
        ),
    )


_WITH_ITEMS = selectinload(Order.items).selectinload(OrderItem.product)


class OrderService:
    """Order details and delivery tracking."""

    def __init__(self, session_factory: sessionmaker) -> None:
        self._session_factory = session_factory

    def delivery_status(self, order_no: str) -> OrderView:
        """Items, delivery status, carrier, tracking number and ETA of one order.

        Raises UnknownOrder when the order does not exist.
        """
        normalised_order_no = normalise_order_no(order_no)
        with session_scope(self._session_factory) as session:
            order = session.execute(
                select(Order).options(_WITH_ITEMS).where(Order.order_no == normalised_order_no)
            ).scalar_one_or_none()
            if order is None:
                raise UnknownOrder(normalised_order_no)
            return _order_view(order)

    def orders_for_customer(self, customer_id: int) -> list[OrderView]:
        """A customer's orders, newest first (for "which order do you mean?")."""
        with session_scope(self._session_factory) as session:
            orders = session.execute(
                select(Order)
                .options(_WITH_ITEMS)
                .where(Order.customer_id == customer_id)
                .order_by(Order.placed_at.desc(), Order.id.desc())
            ).scalars()
            return [_order_view(order) for order in orders]
