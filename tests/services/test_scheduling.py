"""Appointment dates and time slots as customers type them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.services.scheduling import (
    BOOKING_HORIZON_DAYS,
    TIME_SLOTS,
    bookable,
    format_day,
    parse_date,
    parse_time_slot,
    time_slot_label,
)

WEDNESDAY = date(2026, 11, 25)
MONTH_END = date(2026, 11, 30)  # a Monday
YEAR_END = date(2026, 12, 30)  # a Wednesday
NEW_YEARS_EVE = date(2026, 12, 31)  # a Thursday
LEAP_DAY_EVE = date(2028, 2, 28)  # a Monday


def test_fixed_dates_are_the_weekdays_the_tests_assume() -> None:
    assert [d.weekday() for d in (WEDNESDAY, MONTH_END, YEAR_END, NEW_YEARS_EVE)] == [2, 0, 2, 3]
    assert LEAP_DAY_EVE.weekday() == 0


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        # relative days
        ("今天", WEDNESDAY, date(2026, 11, 25)),
        ("明天", WEDNESDAY, date(2026, 11, 26)),
        ("明天下午", WEDNESDAY, date(2026, 11, 26)),
        ("后天", WEDNESDAY, date(2026, 11, 27)),
        ("大后天", WEDNESDAY, date(2026, 11, 28)),
        ("明天", MONTH_END, date(2026, 12, 1)),
        ("后天上午", MONTH_END, date(2026, 12, 2)),
        ("明天", NEW_YEARS_EVE, date(2027, 1, 1)),
        ("大后天", NEW_YEARS_EVE, date(2027, 1, 3)),
        ("明天", LEAP_DAY_EVE, date(2028, 2, 29)),
        ("后天", LEAP_DAY_EVE, date(2028, 3, 1)),
        # in N days
        ("三天后", WEDNESDAY, date(2026, 11, 28)),
        ("3天后", WEDNESDAY, date(2026, 11, 28)),
        ("十天以后", WEDNESDAY, date(2026, 12, 5)),
        ("两天之后", YEAR_END, date(2027, 1, 1)),
        # weekdays
        ("周六", WEDNESDAY, date(2026, 11, 28)),
        ("这周六", WEDNESDAY, date(2026, 11, 28)),
        ("星期五", WEDNESDAY, date(2026, 11, 27)),
        ("礼拜天", WEDNESDAY, date(2026, 11, 29)),
        ("周日", WEDNESDAY, date(2026, 11, 29)),
        ("周末", WEDNESDAY, date(2026, 11, 28)),
        ("周一", WEDNESDAY, date(2026, 11, 30)),  # passed this week: the coming one
        ("下周三", WEDNESDAY, date(2026, 12, 2)),
        ("下个星期一", WEDNESDAY, date(2026, 11, 30)),
        ("下下周一", WEDNESDAY, date(2026, 12, 7)),
        ("周六", MONTH_END, date(2026, 12, 5)),
        ("下周三", MONTH_END, date(2026, 12, 9)),
        ("周六", YEAR_END, date(2027, 1, 2)),
        ("礼拜天", NEW_YEARS_EVE, date(2027, 1, 3)),
        ("下周三", NEW_YEARS_EVE, date(2027, 1, 6)),
        # month and day
        ("11月28号", WEDNESDAY, date(2026, 11, 28)),
        ("12月1日", WEDNESDAY, date(2026, 12, 1)),
        ("11月28号", MONTH_END, date(2027, 11, 28)),  # passed: next year
        ("1月5号", YEAR_END, date(2027, 1, 5)),
        ("12/31", YEAR_END, date(2026, 12, 31)),
        # day of month only
        ("28号", WEDNESDAY, date(2026, 11, 28)),
        ("25号", WEDNESDAY, date(2026, 11, 25)),
        ("3号", WEDNESDAY, date(2026, 12, 3)),  # passed this month: next month
        ("28号", MONTH_END, date(2026, 12, 28)),
        ("31号", MONTH_END, date(2026, 12, 31)),  # November has no 31st
        ("3号", YEAR_END, date(2027, 1, 3)),
        ("31日", YEAR_END, date(2026, 12, 31)),
        ("1号", NEW_YEARS_EVE, date(2027, 1, 1)),
        ("29号", LEAP_DAY_EVE, date(2028, 2, 29)),
        # ISO dates are taken literally
        ("2026-12-01", WEDNESDAY, date(2026, 12, 1)),
        ("2027年1月8日", YEAR_END, date(2027, 1, 8)),
        ("2026/12/05上午", WEDNESDAY, date(2026, 12, 5)),
    ],
)
def test_parse_date(text: str, today: date, expected: date) -> None:
    assert parse_date(text, today) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "随便", "乱七八糟", "尽快", "2026-13-01", "2026-02-30", "2月30号"]
)
def test_unparseable_dates_give_none(text: str) -> None:
    assert parse_date(text, WEDNESDAY) is None


def test_parse_date_ignores_surrounding_whitespace() -> None:
    assert parse_date("  明天  ", WEDNESDAY) == date(2026, 11, 26)


def test_bookable_from_tomorrow_up_to_the_horizon() -> None:
    today = WEDNESDAY
    assert BOOKING_HORIZON_DAYS == 30
    assert not bookable(today - timedelta(days=1), today)
    assert not bookable(today, today)
    assert bookable(today + timedelta(days=1), today)
    assert bookable(today + timedelta(days=BOOKING_HORIZON_DAYS), today)
    assert not bookable(today + timedelta(days=BOOKING_HORIZON_DAYS + 1), today)


def test_bookable_across_the_year_end() -> None:
    assert bookable(parse_date("3号", YEAR_END), YEAR_END)
    assert not bookable(parse_date("11月28号", MONTH_END), MONTH_END)  # next year: too far


@pytest.mark.parametrize(
    ("text", "slot"),
    [
        ("上午", "morning"),
        ("明天早上", "morning"),
        ("9点到12点", "morning"),
        ("上午9点到12点", "morning"),
        ("10点", "morning"),
        ("早上8点", "morning"),
        ("AM", "morning"),
        ("Morning", "morning"),
        ("下午吧", "afternoon"),
        ("中午", "afternoon"),
        ("下午1点到6点", "afternoon"),
        ("14:00", "afternoon"),
        ("15点", "afternoon"),
        ("PM", "afternoon"),
        ("pm", "afternoon"),
        ("晚上", "evening"),
        ("晚上7点", "evening"),
        ("傍晚", "evening"),
        ("20点", "evening"),
        ("evening", "evening"),
    ],
)
def test_parse_time_slot(text: str, slot: str) -> None:
    assert parse_time_slot(text) == slot


@pytest.mark.parametrize("text", ["", "7点", "23点", "凌晨", "晚上10点", "早上7点", "晚上12点"])
def test_unknown_time_slot_gives_none(text: str) -> None:
    """No visit starts then: the customer is asked for one of the slots."""
    assert parse_time_slot(text) is None


@pytest.mark.parametrize(
    ("text", "slot"),
    [
        ("晚上8点", "evening"),  # QA: booked as a morning (8 o'clock read alone)
        ("下午3点", "afternoon"),  # QA: refused
        ("中午12点", "afternoon"),
        ("15:00", "afternoon"),
        ("随便哪个时段都行", "any"),  # QA: asked again; the dispatcher may pick
        ("都行", "any"),
    ],
)
def test_a_time_of_day_with_its_hour(text: str, slot: str) -> None:
    assert parse_time_slot(text) == slot


def test_time_slot_label() -> None:
    assert time_slot_label("morning") == "上午"
    assert time_slot_label("afternoon") == "下午"
    assert time_slot_label("evening") == "晚上"
    assert {parse_time_slot(time_slot_label(key)) for key in TIME_SLOTS} == set(TIME_SLOTS)


def test_time_slot_label_unknown_key() -> None:
    with pytest.raises(KeyError):
        time_slot_label("midnight")


def test_format_day_names_the_weekday() -> None:
    assert format_day(date(2026, 11, 28)) == "11月28日（周六）"
    assert format_day(date(2026, 12, 6)) == "12月6日（周日）"


def test_traditional_characters_name_the_same_day_and_slot() -> None:
    """QA: "禮拜六早上可以嗎？🙏" booked nothing; "礼拜六早上可以吗" books Saturday morning."""
    today = date(2026, 12, 7)  # a Monday
    assert parse_date("禮拜六早上可以嗎？🙏", today) == parse_date("礼拜六早上可以吗", today)
    assert parse_date("禮拜六早上可以嗎？🙏", today) == date(2026, 12, 12)
    assert parse_time_slot("晚上七點以後") == parse_time_slot("晚上七点以后") == "evening"
