"""Read-only order and delivery views for the assistant (call after ownership is verified)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload, sessionmaker

from bot.services.customers import normalise_order_no
from bot.store.db import session_scope
from bot.store.models import Order, OrderItem


class UnknownOrder(LookupError):
    """No such order (or, where ownership matters, not this customer's)."""


class OrderCancellation(Enum):
    """What asking to cancel an order comes to."""

    CANCELLABLE = "cancellable"  # paid, not yet handed to a carrier
    CANCELLED = "cancelled"  # cancelled now
    ALREADY_CANCELLED = "already_cancelled"
    SHIPPED = "shipped"  # on its way: refuse it at the door, or return it once signed for
    DELIVERED = "delivered"  # signed for: a return, not a cancellation


def cancellation_state(order: OrderView) -> OrderCancellation:
    """Whether ``order`` can still be cancelled, and if not, why not."""
    if order.status == "cancelled" or order.delivery_status == "cancelled":
        return OrderCancellation.ALREADY_CANCELLED
    if order.delivery_status == "delivered" or order.status in ("completed", "refunded"):
        return OrderCancellation.DELIVERED
    if order.delivery_status != "pending":
        return OrderCancellation.SHIPPED
    return OrderCancellation.CANCELLABLE


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

    def cancel(self, order_no: str, customer_id: int) -> OrderCancellation:
        """Cancel the customer's order if it has not left the warehouse.

        One conditional UPDATE, so an order that ships meanwhile is never cancelled after the
        fact; otherwise says why not.  Raises UnknownOrder for an unknown order or one that
        is not the customer's.
        """
        normalised_order_no = normalise_order_no(order_no)
        with session_scope(self._session_factory) as session:
            done = session.execute(
                update(Order)
                .where(
                    Order.order_no == normalised_order_no,
                    Order.customer_id == customer_id,
                    Order.status == "paid",
                    Order.delivery_status == "pending",
                )
                .values(status="cancelled", delivery_status="cancelled", eta=None)
                .execution_options(synchronize_session=False)
            ).rowcount
        if done:
            return OrderCancellation.CANCELLED
        order = self.delivery_status(normalised_order_no)
        if order.customer_id != customer_id:
            raise UnknownOrder(normalised_order_no)
        state = cancellation_state(order)
        # Paid but pending and still not cancelled cannot happen; a status outside the
        # flow (say a refund recorded by hand) is no order to cancel either.
        return OrderCancellation.DELIVERED if state is OrderCancellation.CANCELLABLE else state

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
