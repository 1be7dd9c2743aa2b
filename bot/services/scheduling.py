"""Understand the appointment dates and time slots customers type ("明天上午", "周六")."""

from __future__ import annotations

import re
from datetime import date, timedelta

from bot.nlu.text import to_simplified

BOOKING_HORIZON_DAYS = 30

TIME_SLOTS = {
    "morning": ("上午", "早上", "早晨", "早点", "am", "morning"),
    "afternoon": ("下午", "中午", "午后", "pm", "afternoon"),
    "evening": ("晚上", "傍晚", "晚间", "夜里", "evening", "night"),
    "any": (
        "全天均可",
        "都行",
        "都可以",
        "随便",
        "任何时间",
        "什么时候都",
        "全天",
        "整天",
        "anytime",
    ),
}
"""Slot key → words that mean it; the Chinese label shown back is the first word."""
SLOT_HOURS = {"morning": (8, 12), "afternoon": (12, 18), "evening": (18, 21)}
"""Hours (24 h clock, end inclusive for the evening) a visit in each slot can start."""
_HOUR = re.compile(r"(\d{1,2})\s*(?:点|:|：|时)")

_RELATIVE_DAYS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3}
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_CN_DIGITS = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}

_WEEKDAY = re.compile(r"(下下|下个|下|这个|这|本)?(?:周|星期|礼拜)([一二三四五六日天末])")
_MONTH_DAY = re.compile(r"(\d{1,2})\s*[月/.\-]\s*(\d{1,2})\s*[日号]?")
_ISO = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})")
_DAY_ONLY = re.compile(r"(?<![\d月])(\d{1,2})\s*[日号]")
_IN_DAYS = re.compile(r"([\d一二两三四五六七八九十]+)\s*天(?:后|以后|之后)")


def _cn_number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if text.startswith("十"):
        return 10 + _CN_DIGITS.get(text[1:], 0)
    if text.endswith("十"):
        return _CN_DIGITS.get(text[0], 0) * 10
    return _CN_DIGITS.get(text)


def parse_date(text: str, today: date) -> date | None:
    """Return the calendar date meant by ``text`` relative to ``today``, or None.

    Past dates roll forward (a day number already passed this month means next month).
    Traditional characters count too ("禮拜六", "後天").
    """
    text = to_simplified(text.strip())
    if match := _ISO.search(text):
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return None
    for word in sorted(_RELATIVE_DAYS, key=len, reverse=True):
        if word in text:
            return today + timedelta(days=_RELATIVE_DAYS[word])
    if match := _IN_DAYS.search(text):
        days = _cn_number(match[1])
        return today + timedelta(days=days) if days is not None else None
    if match := _WEEKDAY.search(text):
        prefix, day = match[1] or "", match[2]
        target = _WEEKDAYS[day]
        this_week_start = today - timedelta(days=today.weekday())
        weeks = 2 if prefix == "下下" else 1 if prefix.startswith("下") else 0
        candidate = this_week_start + timedelta(weeks=weeks, days=target)
        if candidate < today and not prefix:
            candidate += timedelta(weeks=1)
        return candidate
    if match := _MONTH_DAY.search(text):
        month, day = int(match[1]), int(match[2])
        for year in (today.year, today.year + 1):
            try:
                candidate = date(year, month, day)
            except ValueError:
                return None
            if candidate >= today:
                return candidate
        return None
    if match := _DAY_ONLY.search(text):
        day = int(match[1])
        month_start = today.replace(day=1)
        for offset in (0, 1):
            first = (month_start + timedelta(days=32 * offset)).replace(day=1)
            try:
                candidate = first.replace(day=day)
            except ValueError:
                continue
            if candidate >= today:
                return candidate
    return None


def bookable(day: date, today: date) -> bool:
    """Appointments are possible from tomorrow up to the booking horizon."""
    return today < day <= today + timedelta(days=BOOKING_HORIZON_DAYS)


def parse_time_slot(text: str) -> str | None:
    """Map "下午吧" / "PM" / "晚上8点" / "随便" to a slot key (morning / afternoon / evening /
    any).  An hour outside every slot ("晚上10点", "早上7点") is None: no visit then."""
    lowered = to_simplified(text).lower()
    # Period words first, in the order they appear ("晚上9点到12点" is an evening).
    found = [
        (lowered.find(word), key)
        for key, words in TIME_SLOTS.items()
        for word in words
        if word in lowered
    ]
    period = min(found)[1] if found else None
    match = _HOUR.search(lowered)
    if match is None:
        return period
    hour = int(match[1])
    if period in ("afternoon", "evening") and hour < 12:
        hour += 12  # "晚上8点" is 20:00
    by_hour = next(
        (
            key
            for key, (start, end) in SLOT_HOURS.items()
            if start <= hour < end or (key == "evening" and hour == end)
        ),
        None,
    )
    if period in (None, "any") or (period == "afternoon" and hour == 12):
        return by_hour  # "中午12点" is the afternoon's first hour
    return period if by_hour == period else None


def format_day(day: date) -> str:
    """A booked day as customers read it: "12月9日（周三）"."""
    return f"{day.month}月{day.day}日（周{'一二三四五六日'[day.weekday()]}）"


def time_slot_label(key: str) -> str:
    """The Chinese word shown back to the customer for a slot key."""
    return TIME_SLOTS[key][0]
