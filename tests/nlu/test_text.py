"""Text normalisation: what every NLU, search and sentiment input is folded to."""

from __future__ import annotations

import pytest

from bot.nlu.text import (
    MAX_MESSAGE_CHARS,
    is_emoji,
    normalise_text,
    strip_unprintable,
    to_simplified,
)


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [("我要退貨", "我要退货"), ("維修進度", "维修进度"), ("發票怎麼開", "发票怎么开")],
)
def test_traditional_is_folded_to_simplified(traditional: str, simplified: str) -> None:
    assert to_simplified(traditional) == simplified
    assert normalise_text(traditional) == simplified


def test_simplified_text_is_unchanged() -> None:
    assert normalise_text("我要退货，洗衣机漏水了") == "我要退货,洗衣机漏水了"


def test_full_width_letters_and_digits_become_half_width() -> None:
    assert normalise_text("ＳＯ２０２６１１０１００１") == "SO20261101001"
    assert normalise_text("订单号：ＳＯ２０２６１１０１００１！") == "订单号:SO20261101001!"


def test_emoji_are_removed_by_default() -> None:
    assert normalise_text("洗衣机坏了😡😡") == "洗衣机坏了"
    assert normalise_text("好的😀👍谢谢") == "好的 谢谢"
    # Variation selectors and keycaps go with their emoji.
    assert normalise_text("退货❤️") == "退货"


def test_emoji_are_kept_for_sentiment() -> None:
    assert normalise_text("好的😀👍", keep_emoji=True) == "好的😀👍"
    assert normalise_text("我要退貨😡", keep_emoji=True) == "我要退货😡"


@pytest.mark.parametrize("char", ["😀", "👍", "❤", "☀", "🤬", "\u200d", "\ufe0f"])
def test_is_emoji_true_for_pictographs(char: str) -> None:
    assert is_emoji(char)


@pytest.mark.parametrize("char", ["退", "a", "1", "，", "!", "。", "Ａ", " "])
def test_is_emoji_false_for_text(char: str) -> None:
    assert not is_emoji(char)


def test_strip_unprintable_drops_control_and_garbage_code_points() -> None:
    garbage = "退\x00货\x07\x1b\x7f\ue000\ufffe\u200b了"
    assert strip_unprintable(garbage) == "退货了"
    # Newlines, tabs and the emoji joiner survive.
    assert strip_unprintable("a\nb\tc\u200dd") == "a\nb\tc\u200dd"


def test_binary_garbage_is_removed_from_messages() -> None:
    assert normalise_text("我要\x00\x01\x02退货\x1b[0m\ufeff") == "我要退货[0m"
    assert normalise_text("\x00\x01\x02\x03") == ""


@pytest.mark.parametrize(
    "typed", ["138 1234 5678", "138-1234-5678", "１３８ １２３４ ５６７８", "13812345678"]
)
def test_phone_digit_groups_are_joined(typed: str) -> None:
    assert normalise_text(f"我的手机{typed}") == "我的手机13812345678"


def test_digits_separated_from_words_keep_their_space() -> None:
    assert normalise_text("买了 2 台") == "买了 2 台"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("so20261101001", "SO20261101001"),
        ("So20261101001", "SO20261101001"),
        ("订单so20261101001怎么还没到", "订单SO20261101001怎么还没到"),
        ("订单号20261101001怎么还没到", "订单号SO20261101001怎么还没到"),
        ("20261101001", "SO20261101001"),
    ],
)
def test_order_numbers_are_upper_cased(typed: str, expected: str) -> None:
    assert normalise_text(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "t20261123 - 0007",
        "T202611230007",
        "t20261123-0007",
        "T20261123_0007",
        "T20261123－0007",
        "ｔ２０２６１１２３－０００７",
        "20261123-0007",
        "20261123 - 0007",
    ],
)
def test_ticket_numbers_are_normalised(typed: str) -> None:
    assert normalise_text(f"工单{typed}进度") == "工单T20261123-0007进度"


@pytest.mark.parametrize(
    "typed",
    [
        "13812345678",  # a mobile number
        "202611230007",  # twelve digits: not an order, and no dash makes it a ticket
        "2026-11-23",  # a date
        "20261399001",  # month 13: no date opens it
        "快递单号2026110100123",  # a longer number
    ],
)
def test_other_numbers_get_no_prefix(typed: str) -> None:
    assert normalise_text(typed) == typed


def test_identifier_inside_a_longer_word_is_left_alone() -> None:
    # "also20261101001" is not an order number: no letter or digit may precede "so".
    assert normalise_text("also20261101001") == "also20261101001"


def test_long_runs_of_one_character_are_capped_at_four() -> None:
    assert normalise_text("啊啊啊啊啊啊啊啊啊啊") == "啊啊啊啊"
    assert normalise_text("快点!!!!!!!!!!") == "快点!!!!"
    assert normalise_text("好好好") == "好好好"


def test_whitespace_is_collapsed_and_trimmed() -> None:
    assert normalise_text("  我要\t\t退货 \n\n 谢谢  ") == "我要 退货 谢谢"


def test_very_long_input_is_cut_to_the_limit() -> None:
    text = "退货" * 2500
    assert len(text) == 5000
    result = normalise_text(text)
    assert len(result) == MAX_MESSAGE_CHARS
    assert result == text[:MAX_MESSAGE_CHARS]


def test_long_input_after_removed_emoji_is_still_capped() -> None:
    result = normalise_text("😀" * 3000 + "退货" * 3000)
    assert len(result) <= MAX_MESSAGE_CHARS


@pytest.mark.parametrize("empty", [None, "", "   ", "\x00\x01", "😀😀"])
def test_empty_input_gives_empty_string(empty: str | None) -> None:
    assert normalise_text(empty) == ""


def test_normalising_is_idempotent() -> None:
    once = normalise_text("我要退貨！ＳＯ２０２６１１０１００１ 手機138 1234 5678😀")
    assert once == "我要退货!SO20261101001 手机13812345678"
    assert normalise_text(once) == once


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("so20261101001 13812345678", "SO20261101001 13812345678"),
        ("so20261101001 138-1234-5678", "SO20261101001 13812345678"),
        ("SO20261101001 138 1234 5678", "SO20261101001 13812345678"),
        ("13800138000 SO20261101001", "13800138000 SO20261101001"),
        ("T20261123-0007 13812345678", "T20261123-0007 13812345678"),
        ("t20261123 0007 13800138000", "T20261123-0007 13800138000"),
        ("138 1234 5678 139 1234 5678", "13812345678 13912345678"),
        ("SO20261101001 2台", "SO20261101001 2台"),
    ],
)
def test_whole_numbers_are_not_glued_onto_their_neighbours(typed: str, expected: str) -> None:
    # An order number and a phone in one message must both survive.
    assert normalise_text(typed) == expected
