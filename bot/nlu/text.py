"""Text normalisation shared by NLU training, inference, search and sentiment.

Customers type Traditional characters, full-width letters, emoji and stray control bytes; the
models only ever see the folded form so that training and inference agree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_MESSAGE_CHARS = 500
"""Longer messages are cut: the intent is in the first sentences and cost grows with length."""

_DIGIT_GROUPS = re.compile(r"\d+(?: \d+)+")
_WHOLE_NUMBER_DIGITS = 11
"""A group this long is a whole phone or order number: never glued onto its neighbours."""
_DASHED_PHONE = re.compile(r"(?<!\d)(1\d{2})-(\d{4})-(\d{4})(?!\d)")
_ORDER_NO = re.compile(r"(?<![A-Za-z0-9])so(\d{11})(?!\d)", re.IGNORECASE)
_TICKET_NO = re.compile(r"(?<![A-Za-z0-9])t(\d{8})\s*[-_－—]?\s*(\d{4})(?!\d)", re.IGNORECASE)
_DATE_DIGITS = r"20\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_BARE_ORDER_NO = re.compile(rf"(?<![A-Za-z0-9])({_DATE_DIGITS}\d{{3}})(?!\d)")
"""Customers drop the "SO": 11 digits opening with a date are an order (no mobile starts 20)."""
_BARE_TICKET_NO = re.compile(rf"(?<![A-Za-z0-9])({_DATE_DIGITS})\s*[-_－—]\s*(\d{{4}})(?!\d)")
"""…and the "T": a date, a dash and four digits are a ticket (the dash tells it from a date)."""
_SPACES = re.compile(r"\s+")
_REPEATS = re.compile(r"(\D)\1{4,}")


@lru_cache(maxsize=1)
def _t2s():  # noqa: ANN202 - OpenCC has no public type
    import opencc

    return opencc.OpenCC("t2s")


_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u200d\ufe0f\u20e3]")
"""Pictographs and their modifiers (not CJK or punctuation)."""


def is_emoji(char: str) -> bool:
    """True for pictographs and their modifiers (not CJK or punctuation)."""
    return _EMOJI.fullmatch(char) is not None


def strip_unprintable(text: str) -> str:
    """Drop control, private-use, surrogate and unassigned code points (binary garbage)."""
    if text.isprintable():  # none of those categories: the common case, checked in C
        return text
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co", "Cn", "Cf") and char not in "\n\t\u200d":
            continue
        kept.append(char)
    return "".join(kept)


def _join_digit_groups(match: re.Match[str]) -> str:
    """ "138 1234 5678" → "13812345678", but "SO20261101001 13812345678" keeps its space."""
    groups = match.group(0).split(" ")
    joined = [groups[0]]
    for group in groups[1:]:
        if len(joined[-1]) >= _WHOLE_NUMBER_DIGITS or len(group) >= _WHOLE_NUMBER_DIGITS:
            joined.append(group)
        else:
            joined[-1] += group
    return " ".join(joined)


def to_simplified(text: str) -> str:
    """Fold Traditional Chinese to Simplified."""
    return _t2s().convert(text)


def normalise_text(text: str | None, keep_emoji: bool = False) -> str:
    """Return the canonical form of a customer message.

    Full-width → half-width (NFKC), Traditional → Simplified, unprintable bytes removed,
    emoji removed (or kept for sentiment), digit groups joined ("138 1234 5678"), order and
    ticket numbers upper-cased (their SO / T added when left off), runs of one character
    capped, whitespace collapsed, and the result cut at ``MAX_MESSAGE_CHARS``.
    """
    if not text:
        return ""
    text = strip_unprintable(unicodedata.normalize("NFKC", text))
    text = text[: MAX_MESSAGE_CHARS * 2]
    if not keep_emoji:
        text = _EMOJI.sub(" ", text)
    text = to_simplified(text)
    text = _DIGIT_GROUPS.sub(_join_digit_groups, text)
    text = _DASHED_PHONE.sub(r"\1\2\3", text)
    text = _ORDER_NO.sub(lambda m: "SO" + m.group(1), text)
    text = _BARE_ORDER_NO.sub(lambda m: "SO" + m.group(1), text)
    text = _TICKET_NO.sub(lambda m: f"T{m.group(1)}-{m.group(2)}", text)
    text = _BARE_TICKET_NO.sub(lambda m: f"T{m.group(1)}-{m.group(2)}", text)
    text = _REPEATS.sub(lambda m: m.group(1) * 4, text)
    text = _SPACES.sub(" ", text).strip()
    return text[:MAX_MESSAGE_CHARS]
