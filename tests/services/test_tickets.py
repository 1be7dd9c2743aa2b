"""Ticket lifecycle: numbering, SLA clocks, forward-only statuses, timelines, concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from bot.handoff.policy import BusinessHours
from bot.policy import ServicePolicy, SlaStatus
from bot.services.customers import CustomerService
from bot.services.orders import UnknownOrder
from bot.services.tickets import (
    InvalidTransition,
    TicketService,
    UnknownCustomer,
    UnknownTicket,
    is_valid_ticket_no,
)
from bot.store.db import session_scope
from bot.store.models import TicketEvent

BEIJING = timezone(timedelta(hours=8))
OPENED_AT = datetime(2026, 11, 25, 10, 0, tzinfo=BEIJING)


def _customer_id(sessions: sessionmaker, phone: str) -> int:
    customer = CustomerService(sessions).find_by_phone(phone)
    assert customer is not None
    return customer.id


@pytest.fixture
def service(demo_sessions: sessionmaker, policy: ServicePolicy) -> TicketService:
    return TicketService(demo_sessions, policy)


@pytest.fixture
def zhang_wei(demo_sessions: sessionmaker) -> int:
    return _customer_id(demo_sessions, "13800138000")


@pytest.fixture
def wang_fang(demo_sessions: sessionmaker) -> int:
    return _customer_id(demo_sessions, "13700137000")


def test_open_ticket_records_everything_in_one_go(service: TicketService, zhang_wei: int) -> None:
    ticket = service.open_ticket(
        zhang_wei,
        "repair",
        "  洗衣机不能脱水  ",
        {"sku": "WM-D100", "症状": "不脱水"},
        order_no="so20261101001",
        channel="wechat",
        sender_id="conversation-1",
        now=OPENED_AT,
    )
    assert ticket.ticket_no == "T20261125-0001"
    assert is_valid_ticket_no(ticket.ticket_no)
    assert (ticket.customer_name, ticket.order_no, ticket.summary) == (
        "张伟",
        "SO20261101001",
        "洗衣机不能脱水",
    )
    assert (ticket.category, ticket.category_label, ticket.need_class, ticket.priority) == (
        "repair",
        "维修",
        "normal",
        4,
    )
    assert (ticket.status, ticket.status_label, ticket.next_step) == (
        "opened",
        "已受理",
        "await_acknowledgement",
    )
    assert ticket.next_step_text
    assert ticket.details == {"sku": "WM-D100", "症状": "不脱水"}
    assert (ticket.channel, ticket.sender_id) == ("wechat", "conversation-1")
    assert ticket.created_at == OPENED_AT == ticket.updated_at
    assert [(event.status, event.created_at) for event in ticket.events] == [("opened", OPENED_AT)]
    assert service.timeline(ticket.ticket_no) == ticket


def test_a_ticket_opened_while_the_desk_is_closed_starts_its_clocks_at_the_next_opening(
    demo_sessions: sessionmaker, policy: ServicePolicy, zhang_wei: int
) -> None:
    """Nobody answers at 23:30: the 5-minute first response counts from 09:00 the next day."""
    hours = BusinessHours(
        timezone="Asia/Shanghai",
        days={day: {"open": "09:00", "close": "21:00"} for day in ("tue", "wed", "thu")},
    )
    service = TicketService(demo_sessions, policy, hours)
    tuesday_night = datetime(2026, 11, 24, 23, 30, tzinfo=BEIJING)
    wednesday_morning = datetime(2026, 11, 25, 9, 0, tzinfo=BEIJING)
    at_night = service.open_ticket(zhang_wei, "repair", "漏水", now=tuesday_night)
    assert at_night.created_at == tuesday_night
    assert (at_night.deadlines.first_response, at_night.deadlines.plan) == (
        wednesday_morning + timedelta(minutes=5),
        wednesday_morning + timedelta(hours=2),
    )
    assert at_night.deadlines.close == wednesday_morning + timedelta(hours=24)
    by_day = service.open_ticket(zhang_wei, "repair", "漏水", now=OPENED_AT)  # Wednesday 10:00
    assert by_day.deadlines.first_response == OPENED_AT + timedelta(minutes=5)
    round_the_clock = TicketService(
        demo_sessions, policy, BusinessHours(timezone="Asia/Shanghai", always_open=True)
    )
    late = round_the_clock.open_ticket(zhang_wei, "repair", "漏水", now=tuesday_night)
    assert late.deadlines.first_response == tuesday_night + timedelta(minutes=5)


def test_sla_deadlines_for_normal_vip_and_urgent(
    service: TicketService, zhang_wei: int, wang_fang: int
) -> None:
    normal = service.open_ticket(zhang_wei, "inquiry", "保修多久", now=OPENED_AT)
    vip = service.open_ticket(wang_fang, "inquiry", "保修多久", now=OPENED_AT)
    urgent = service.open_ticket(
        zhang_wei, "installation_maintenance", "安装失败", need_class="urgent", now=OPENED_AT
    )
    assert normal.deadlines.first_response == OPENED_AT + timedelta(minutes=5)
    assert normal.deadlines.plan == OPENED_AT + timedelta(hours=2)
    assert normal.deadlines.close == OPENED_AT + timedelta(hours=24)
    assert vip.deadlines.plan == OPENED_AT + timedelta(hours=1)
    assert vip.deadlines.close == OPENED_AT + timedelta(hours=12)
    assert urgent.deadlines.plan == OPENED_AT + timedelta(hours=1)
    assert urgent.deadlines.close == OPENED_AT + timedelta(hours=12)
    assert (normal.priority, vip.priority, urgent.priority) == (4, 2, 2)
    assert service.timeline(vip.ticket_no).deadlines == vip.deadlines


def test_need_class_defaults_by_category(service: TicketService, zhang_wei: int) -> None:
    complaint = service.open_ticket(zhang_wei, "complaint", "客服态度差", now=OPENED_AT)
    assert (complaint.need_class, complaint.priority) == ("emotional", 2)


def test_numbers_count_per_business_day(service: TicketService, zhang_wei: int) -> None:
    first = service.open_ticket(zhang_wei, "inquiry", "问题一", now=OPENED_AT)
    second = service.open_ticket(zhang_wei, "inquiry", "问题二", now=OPENED_AT)
    # 16:30 UTC is already the next day in Beijing.
    next_day = service.open_ticket(
        zhang_wei, "inquiry", "问题三", now=datetime(2026, 11, 25, 16, 30, tzinfo=timezone.utc)
    )
    # The demo data already holds T20261124-0001.
    earlier_day = service.open_ticket(
        zhang_wei, "inquiry", "问题四", now=datetime(2026, 11, 24, 23, 0, tzinfo=BEIJING)
    )
    assert [first.ticket_no, second.ticket_no, next_day.ticket_no, earlier_day.ticket_no] == [
        "T20261125-0001",
        "T20261125-0002",
        "T20261126-0001",
        "T20261124-0002",
    ]


def test_bad_input_is_refused(service: TicketService, zhang_wei: int, wang_fang: int) -> None:
    with pytest.raises(ValueError, match="category"):
        service.open_ticket(zhang_wei, "gossip", "闲聊")
    with pytest.raises(ValueError, match="need class"):
        service.open_ticket(zhang_wei, "repair", "坏了", need_class="panic")
    with pytest.raises(ValueError, match="summary"):
        service.open_ticket(zhang_wei, "repair", "   ")
    with pytest.raises(ValueError, match="naive"):
        service.open_ticket(zhang_wei, "repair", "坏了", now=datetime(2026, 11, 25, 10, 0))
    with pytest.raises(UnknownCustomer):
        service.open_ticket(999_999, "repair", "坏了")
    with pytest.raises(UnknownOrder):
        service.open_ticket(wang_fang, "repair", "坏了", order_no="SO20261101001")
    with pytest.raises(UnknownOrder):
        service.open_ticket(zhang_wei, "repair", "坏了", order_no="SO20991231999")
    assert service.tickets_for_customer(zhang_wei)[0].ticket_no == "T20261120-0001"


def test_status_moves_forward_through_the_timeline(service: TicketService, zhang_wei: int) -> None:
    ticket = service.open_ticket(zhang_wei, "repair", "空调不制冷", now=OPENED_AT)
    steps = ["acknowledged", "plan_given", "in_progress", "resolved", "closed"]
    for minutes, status in enumerate(steps, start=1):
        ticket = service.advance(
            ticket.ticket_no,
            status,
            note=f"进展{minutes}",
            actor="客服小李",
            now=OPENED_AT + timedelta(minutes=minutes),
        )
        assert ticket.status == status
    assert [event.status for event in ticket.events] == ["opened", *steps]
    assert ticket.events[2].note == "进展2"
    assert ticket.events[2].actor == "客服小李"
    assert ticket.updated_at == OPENED_AT + timedelta(minutes=5)
    assert ticket.next_step == "finished"
    assert service.timeline(ticket.ticket_no) == ticket


def test_steps_may_be_skipped_forward(service: TicketService, zhang_wei: int) -> None:
    ticket = service.open_ticket(zhang_wei, "inquiry", "发票怎么开", now=OPENED_AT)
    ticket = service.advance(ticket.ticket_no, "resolved", "已在线解答", now=OPENED_AT)
    assert ticket.status == "resolved"


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (["acknowledged", "plan_given"], "acknowledged"),  # backwards
        (["acknowledged"], "acknowledged"),  # standing still
        (["in_progress"], "opened"),  # back to the start
        (["resolved", "closed"], "cancelled"),  # closed is final
        (["cancelled"], "acknowledged"),  # cancelled is final
        ([], "reopened"),  # not a status
    ],
)
def test_backwards_or_invalid_moves_raise(
    service: TicketService, zhang_wei: int, path: list[str], refused: str
) -> None:
    ticket = service.open_ticket(zhang_wei, "repair", "热水器漏水", now=OPENED_AT)
    for status in path:
        service.advance(ticket.ticket_no, status, now=OPENED_AT)
    before = service.timeline(ticket.ticket_no)
    with pytest.raises(InvalidTransition):
        service.advance(ticket.ticket_no, refused, now=OPENED_AT)
    assert service.timeline(ticket.ticket_no) == before


def test_cancel_from_any_open_status(service: TicketService, zhang_wei: int) -> None:
    ticket = service.open_ticket(zhang_wei, "repair", "电视黑屏", now=OPENED_AT)
    service.advance(ticket.ticket_no, "in_progress", now=OPENED_AT)
    cancelled = service.advance(ticket.ticket_no, "cancelled", "客户自行解决", now=OPENED_AT)
    assert (cancelled.status, cancelled.next_step) == ("cancelled", "cancelled")


def test_events_cannot_go_back_in_time(service: TicketService, zhang_wei: int) -> None:
    ticket = service.open_ticket(zhang_wei, "repair", "冰箱不制冷", now=OPENED_AT)
    with pytest.raises(InvalidTransition, match="precedes"):
        service.advance(ticket.ticket_no, "acknowledged", now=OPENED_AT - timedelta(minutes=1))


def test_unknown_ticket(service: TicketService) -> None:
    with pytest.raises(UnknownTicket):
        service.timeline("T20991231-0001")
    with pytest.raises(UnknownTicket):
        service.advance("T20991231-0001", "acknowledged")


def test_sla_state_met_breached_pending(service: TicketService, zhang_wei: int) -> None:
    ticket = service.open_ticket(zhang_wei, "repair", "洗碗机不出水", now=OPENED_AT)
    assert service.sla_state(ticket, OPENED_AT) == (
        service.sla_state(ticket, OPENED_AT + timedelta(minutes=5))
    )
    fresh = service.sla_state(ticket, OPENED_AT + timedelta(minutes=1))
    assert (fresh.first_response, fresh.plan, fresh.close) == (SlaStatus.PENDING,) * 3
    late = service.sla_state(ticket, OPENED_AT + timedelta(minutes=6))
    assert late.first_response is SlaStatus.BREACHED and late.breached == ("first_response",)

    ticket = service.advance(ticket.ticket_no, "acknowledged", now=OPENED_AT + timedelta(minutes=4))
    ticket = service.advance(ticket.ticket_no, "plan_given", now=OPENED_AT + timedelta(hours=3))
    state = service.sla_state(ticket, OPENED_AT + timedelta(hours=3))
    assert (state.first_response, state.plan, state.close) == (
        SlaStatus.MET,
        SlaStatus.BREACHED,
        SlaStatus.PENDING,
    )
    ticket = service.advance(ticket.ticket_no, "resolved", now=OPENED_AT + timedelta(hours=5))
    assert service.sla_state(ticket, OPENED_AT + timedelta(days=9)).close is SlaStatus.MET


def test_sla_clocks_of_a_cancelled_ticket_are_waived(
    service: TicketService, zhang_wei: int
) -> None:
    ticket = service.open_ticket(zhang_wei, "repair", "吹风机不热", now=OPENED_AT)
    ticket = service.advance(ticket.ticket_no, "cancelled", now=OPENED_AT + timedelta(minutes=3))
    state = service.sla_state(ticket, OPENED_AT + timedelta(days=3))
    assert (state.first_response, state.plan, state.close) == (SlaStatus.WAIVED,) * 3


def test_listing_and_filtering(service: TicketService, zhang_wei: int, wang_fang: int) -> None:
    opened = service.open_ticket(
        wang_fang, "logistics", "笔记本什么时候到", sender_id="chat-7", now=OPENED_AT
    )
    assert [ticket.ticket_no for ticket in service.list_tickets()] == [
        opened.ticket_no,
        "T20261124-0001",
        "T20261120-0001",
        "T20261110-0001",
    ]
    assert [t.ticket_no for t in service.list_tickets(status="resolved")] == ["T20261110-0001"]
    assert len(service.list_tickets(limit=2)) == 2
    assert [t.ticket_no for t in service.tickets_for_customer(wang_fang)] == [opened.ticket_no]
    assert [t.ticket_no for t in service.tickets_for_sender("chat-7")] == [opened.ticket_no]
    assert [t.ticket_no for t in service.tickets_for_customer(zhang_wei)] == ["T20261120-0001"]
    with pytest.raises(ValueError):
        service.list_tickets(status="lost")
    with pytest.raises(ValueError):
        service.list_tickets(limit=0)


def test_concurrent_openers_get_unique_numbers(
    service: TicketService, demo_sessions: sessionmaker, zhang_wei: int
) -> None:
    threads, tickets_each = 8, 10

    def open_many(worker: int) -> list[str]:
        return [
            service.open_ticket(
                zhang_wei, "inquiry", f"并发测试 {worker}-{index}", now=OPENED_AT
            ).ticket_no
            for index in range(tickets_each)
        ]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        numbers = [number for batch in pool.map(open_many, range(threads)) for number in batch]

    total = threads * tickets_each
    assert sorted(numbers) == [f"T20261125-{sequence:04d}" for sequence in range(1, total + 1)]
    with session_scope(demo_sessions) as session:
        opened_events = session.execute(
            select(func.count()).where(TicketEvent.status == "opened")
        ).scalar_one()
    assert opened_events == total + 3  # plus the demo tickets


def test_notes_keep_the_status_and_the_forward_only_rule(
    service: TicketService, zhang_wei: int
) -> None:
    ticket = service.open_ticket(zhang_wei, "complaint", "态度问题", now=OPENED_AT)
    service.advance(ticket.ticket_no, "acknowledged", now=OPENED_AT + timedelta(minutes=1))
    noted = service.add_note(
        ticket.ticket_no, "补偿 50 元", actor="agent1", now=OPENED_AT + timedelta(minutes=2)
    )
    assert noted.status == "acknowledged"
    assert [(event.status, event.note) for event in noted.events][-1] == (
        "acknowledged",
        "补偿 50 元",
    )
    assert service.sla_state(noted, OPENED_AT + timedelta(minutes=3)).plan is SlaStatus.PENDING
    # Still forward-only afterwards, and notes cannot go back in time either.
    with pytest.raises(InvalidTransition):
        service.advance(ticket.ticket_no, "opened", now=OPENED_AT + timedelta(minutes=3))
    with pytest.raises(InvalidTransition):
        service.add_note(ticket.ticket_no, "迟到的备注", now=OPENED_AT)
    with pytest.raises(ValueError):
        service.add_note(ticket.ticket_no, "  ", now=OPENED_AT + timedelta(minutes=3))
    service.advance(ticket.ticket_no, "cancelled", now=OPENED_AT + timedelta(minutes=4))
    with pytest.raises(InvalidTransition):
        service.add_note(ticket.ticket_no, "取消后", now=OPENED_AT + timedelta(minutes=5))
