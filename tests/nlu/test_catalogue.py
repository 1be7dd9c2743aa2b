"""The product catalogue as messages name it."""

from __future__ import annotations

import pytest

from bot.nlu.catalogue import bare_product, product_mentions, skus_mentioned


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("空调和热水器都要装", ["空调", "热水器"]),
        ("滚筒洗衣机漏水", ["滚筒洗衣机"]),  # not "洗衣机" a second time
        ("我的洗衣机 洗衣机", ["洗衣机"]),
        ("熱水器和油煙機", ["热水器", "油烟机"]),
        ("我要退货", []),
        # QA: "手机13800138000" offered a return of a phone the customer never bought
        ("电饭煲不想要了，单号SO20261120009，手机13800138000", ["电饭煲"]),
        ("手机号：13800138000 冰箱坏了", ["冰箱"]),
        ("手机屏幕碎了", ["手机"]),
    ],
)
def test_product_words_are_read_in_order_each_once(text: str, words: list[str]) -> None:
    assert product_mentions(text) == words


def test_every_word_read_names_a_catalogue_product() -> None:
    for word in product_mentions("冰箱不制冷 另外洗衣机和吹风机都坏了"):
        assert skus_mentioned(word), word


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("滚筒洗衣机", "滚筒洗衣机"),
        ("是冰箱的。", "冰箱"),
        ("就那个洗衣机", "洗衣机"),
        ("熱水器", "热水器"),
        ("冰箱不制冷", None),  # says more than the product
        ("洗衣机漏水怎么办", None),
        ("好的", None),
    ],
)
def test_a_message_naming_only_a_product_is_read_as_that_product(
    text: str, named: str | None
) -> None:
    assert bare_product(text) == named
