"""Customer lookups and order ownership checks against the demo data."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.orm import sessionmaker

from bot.services.customers import (
    CustomerService,
    VerifiedOrder,
    is_valid_order_no,
    mask_phone,
    normalise_order_no,
    normalise_phone,
)

ZHANG_WEI_ORDER = "SO20261101001"
ZHANG_WEI_PHONE = "13800138000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        (" 138 0013 8000 ", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("+86-13800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("(+86)13800138000", "13800138000"),
        ("12800138000", None),
        ("1380013800", None),
        ("138001380001", None),
        ("phone", None),
        ("", None),
    ],
)
def test_normalise_phone(raw: str, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        ("SO20261101001", True),
        (" so20261101001 ", True),
        ("SO 2026 1101 001", True),
        ("SO2026110100", False),
        ("SO202611010011", False),
        ("XO20261101001", False),
        ("20261101001", False),
    ],
)
def test_order_number_format(raw: str, valid: bool) -> None:
    assert is_valid_order_no(raw) is valid


def test_normalise_order_no() -> None:
    assert normalise_order_no(" so20261101001\n") == "SO20261101001"


def test_mask_phone_hides_the_middle() -> None:
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("123") == "****"


def test_right_order_and_phone_verify(demo_sessions: sessionmaker) -> None:
    verified = CustomerService(demo_sessions).verify_order_owner(
        " so20261101001 ", "+86 138-0013-8000"
    )
    assert verified == VerifiedOrder(
        order_no=ZHANG_WEI_ORDER,
        customer_id=verified.customer_id,
        customer_name="张伟",
        customer_tier="normal",
    )


@pytest.mark.parametrize(
    ("order_no", "phone"),
    [
        (ZHANG_WEI_ORDER, "13900139000"),  # another customer's phone
        ("SO20991231999", ZHANG_WEI_PHONE),  # no such order
        ("SO123", ZHANG_WEI_PHONE),  # malformed order number
        (ZHANG_WEI_ORDER, "12345"),  # malformed phone
    ],
)
def test_failed_checks_all_look_the_same(
    demo_sessions: sessionmaker, order_no: str, phone: str
) -> None:
    assert CustomerService(demo_sessions).verify_order_owner(order_no, phone) is None


def test_logs_never_contain_full_phone_numbers(
    demo_sessions: sessionmaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    CustomerService(demo_sessions).verify_order_owner(ZHANG_WEI_ORDER, "13900139000")
    assert "139****9000" in caplog.text
    assert "13900139000" not in caplog.text


def test_find_and_list_customers(demo_sessions: sessionmaker) -> None:
    service = CustomerService(demo_sessions)
    wang_fang = service.find_by_phone("137 0013 7000")
    assert wang_fang is not None and (wang_fang.name, wang_fang.tier) == ("王芳", "vip")
    assert service.get_customer(wang_fang.id) == wang_fang
    assert service.get_customer(999_999) is None
    assert service.find_by_phone("13111111111") is None
    assert service.find_by_phone("not a phone") is None
    customers = service.list_customers()
    assert [customer.id for customer in customers] == sorted(c.id for c in customers)
    assert {customer.tier for customer in customers} == {"normal", "silver", "gold", "vip"}


def test_a_contact_without_an_order_is_the_phones_customer_or_a_new_guest(
    demo_sessions: sessionmaker,
) -> None:
    """A message left with no order number: the call-back goes to that phone."""
    service = CustomerService(demo_sessions)
    known = service.contact_by_phone("137-0013-7000")
    assert known is not None and (known.customer_name, known.order_no) == ("王芳", None)
    guest = service.contact_by_phone("13312345678")
    assert guest is not None and guest.order_no is None and guest.customer_tier == "normal"
    assert service.find_by_phone("13312345678").id == guest.customer_id
    assert service.contact_by_phone("13312345678") == guest  # the same record next time
    assert service.contact_by_phone("12345") is None
