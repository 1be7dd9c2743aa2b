"""The spaCy pipeline (jieba + EntityRuler) and the product catalogue it is built from."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from spacy.language import Language

from bot.nlu.catalogue import CATALOGUE_FILE, load_catalogue, product_by_alias
from bot.nlu.spacy_pipeline import build_pipeline, save_pipeline
from bot.nlu.text import normalise_text


@pytest.fixture(scope="module")
def nlp() -> Language:
    return build_pipeline()


def entities(nlp: Language, text: str) -> list[tuple[str, str, str]]:
    doc = nlp(normalise_text(text))
    return [(ent.text, ent.label_, ent.ent_id_) for ent in doc.ents]


# -- identifiers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["我的订单SO20261101001", "订单号 so20261101001 到哪了", "ＳＯ２０２６１１０１００１"]
)
def test_order_number(nlp: Language, text: str) -> None:
    assert entities(nlp, text) == [("SO20261101001", "order_id", "")]


def test_order_number_with_wrong_length_is_not_an_order(nlp: Language) -> None:
    assert [e for e in entities(nlp, "订单SO2026110100") if e[1] == "order_id"] == []


@pytest.mark.parametrize("text", ["13812345678", "138 1234 5678 谢谢", "打138-1234-5678"])
def test_bare_phone(nlp: Language, text: str) -> None:
    assert entities(nlp, text) == [("13812345678", "phone", "")]


@pytest.mark.parametrize(
    ("text", "surface"),
    [
        ("手机13812345678", "手机13812345678"),
        ("我的手机13812345678", "手机13812345678"),
        ("手机：13812345678", "手机:13812345678"),
        ("我手机是13812345678", "手机是13812345678"),
        ("手机号13812345678", "手机号13812345678"),
        ("手机号是13812345678", "手机号是13812345678"),
        ("手机号：138-1234-5678", "手机号:13812345678"),
        ("手机号码是13812345678", "手机号码是13812345678"),
        ("联系电话是13812345678", "联系电话是13812345678"),
    ],
)
def test_phone_label_word_belongs_to_the_phone_not_the_product(
    nlp: Language, text: str, surface: str
) -> None:
    # One phone entity; 手机 must not also come out as the product 智能手机.
    assert entities(nlp, text) == [(surface, "phone", "")]


@pytest.mark.parametrize("text", ["为什么要手机号？", "手机号码填错了", "我换手机号了"])
def test_the_word_for_a_phone_number_is_no_product(nlp: Language, text: str) -> None:
    """ "为什么要手机号" at the phone question made 手机 the product and looped the form."""
    assert [e for e in entities(nlp, text) if e[1] == "product"] == []


def test_phone_and_product_in_one_message(nlp: Language) -> None:
    assert entities(nlp, "我的手机坏了,电话13812345678") == [
        ("手机", "product", "PH-N15"),
        ("电话13812345678", "phone", ""),
    ]


def test_regional_product_names_are_the_catalogue_products(nlp: Language) -> None:
    """Hong Kong's 雪櫃 is a fridge and 冷氣機 an air conditioner; bare 冷气 is not a product
    (a fridge's "冷气不足" is about the fridge)."""
    assert entities(nlp, "家裡雪櫃不製冷") == [("雪柜", "product", "RF-B450")]
    assert entities(nlp, "冷氣機不冷了") == [("冷气机", "product", "AC-K35")]
    assert entities(nlp, "冰箱冷气不足") == [("冰箱", "product", "RF-B450")]


def test_numbers_that_are_not_mobiles_are_not_phones(nlp: Language) -> None:
    assert entities(nlp, "12345678901") == []
    assert entities(nlp, "1381234567") == []


@pytest.mark.parametrize(
    "text", ["工单T20261123-0007", "工单 t20261123 - 0007 进度", "T202611230007到哪一步了"]
)
def test_ticket_number(nlp: Language, text: str) -> None:
    assert entities(nlp, text) == [("T20261123-0007", "ticket_id", "")]


def test_order_phone_and_ticket_together(nlp: Language) -> None:
    found = entities(nlp, "订单so20261101001,电话13800138000,工单T20261120-0001")
    assert [(label, text) for text, label, _ in found] == [
        ("order_id", "SO20261101001"),
        ("phone", "电话13800138000"),
        ("ticket_id", "T20261120-0001"),
    ]


def test_order_and_phone_separated_by_a_space(nlp: Language) -> None:
    assert entities(nlp, "so20261101001 138 0013 8000") == [
        ("SO20261101001", "order_id", ""),
        ("13800138000", "phone", ""),
    ]


# -- products -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "surface", "sku"),
    [
        ("我买的洗衣机漏水了", "洗衣机", "WM-D100"),
        ("滚筒洗衣机不脱水", "滚筒洗衣机", "WM-D100"),
        ("空调不制冷", "空调", "AC-K35"),
        ("冰箱不制冷", "冰箱", "RF-B450"),
        ("我的Washer坏了", "Washer", "WM-D100"),
        ("我的WASHER坏了", "WASHER", "WM-D100"),
        ("我要退iPhone", "iPhone", "PH-N15"),
        ("IPHONE屏幕碎了", "IPHONE", "PH-N15"),
        ("電視機沒有聲音", "电视机", "TV-Q65"),
    ],
)
def test_product_carries_its_catalogue_sku(
    nlp: Language, text: str, surface: str, sku: str
) -> None:
    assert entities(nlp, text) == [(surface, "product", sku)]


@pytest.mark.parametrize(
    "text", ["你好", "今天天气不错", "谢谢你们,没有别的问题了", "我想问一下", "好的好的"]
)
def test_plain_chatter_has_no_entities(nlp: Language, text: str) -> None:
    assert entities(nlp, text) == []


# -- saving -------------------------------------------------------------------------------


def test_saved_pipeline_loads_back_with_the_same_entities(nlp: Language, tmp_path: Path) -> None:
    target = save_pipeline(tmp_path / "models" / "spacy_zh")
    assert target == tmp_path / "models" / "spacy_zh"
    assert (target / "config.cfg").is_file()
    loaded = spacy.load(target)
    assert loaded.pipe_names == ["entity_ruler"]
    for text in [
        "手机13812345678,订单SO20261101001",
        "我的Washer坏了,工单T20261123-0007",
        "空调不制冷",
        "你好",
    ]:
        doc = loaded(normalise_text(text))
        assert [(e.text, e.label_, e.ent_id_) for e in doc.ents] == entities(nlp, text)


# -- catalogue ----------------------------------------------------------------------------


def test_catalogue_loads_with_unique_skus() -> None:
    catalogue = load_catalogue()
    skus = [product.sku for product in catalogue]
    assert len(skus) == len(set(skus)) >= 10
    washer = next(p for p in catalogue if p.sku == "WM-D100")
    assert washer.name == "滚筒洗衣机"
    assert washer.warranty_months == 36
    assert washer.needs_installation is True
    assert "washer" in washer.aliases


@pytest.mark.parametrize(
    "content",
    [
        "products:\n  - sku: X1\n    name: 东西\n    category: appliance\n",
        "products:\n  - sku: X1\n    name: 东西\n    category: a\n    warranty_months: many\n",
        "products:\n  - just a string\n",
    ],
)
def test_malformed_catalogue_names_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "products.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as raised:
        load_catalogue(path)
    assert str(path) in str(raised.value)
    assert "product #0" in str(raised.value)


def test_empty_catalogue_is_rejected_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "products.yml"
    path.write_text("products: []\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no products") as raised:
        load_catalogue(path)
    assert str(path) in str(raised.value)


def test_valid_custom_catalogue(tmp_path: Path) -> None:
    path = tmp_path / "products.yml"
    path.write_text(
        "products:\n"
        "  - {sku: X1, name: 东西, category: appliance, warranty_months: '6', aliases: [dx]}\n",
        encoding="utf-8",
    )
    (product,) = load_catalogue(path)
    assert (product.sku, product.warranty_months, product.needs_installation) == ("X1", 6, False)
    assert product.aliases == ("dx",)


@pytest.mark.parametrize(
    ("mention", "sku"),
    [
        ("洗衣机", "WM-D100"),
        ("滚筒洗衣机", "WM-D100"),
        ("Washer", "WM-D100"),
        (" washing machine ", "WM-D100"),
        ("iPhone", "PH-N15"),
        ("空调", "AC-K35"),
    ],
)
def test_product_by_alias(mention: str, sku: str) -> None:
    product = product_by_alias(mention)
    assert product is not None
    assert product.sku == sku


@pytest.mark.parametrize("mention", ["二手车", "", "洗衣"])
def test_product_by_alias_unknown(mention: str) -> None:
    assert product_by_alias(mention) is None


def test_default_catalogue_file_is_the_project_one() -> None:
    assert load_catalogue() == load_catalogue(CATALOGUE_FILE)
