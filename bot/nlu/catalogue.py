"""The product catalogue (data/catalogue/products.yml), read once and shared."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from bot.nlu.text import to_simplified
from bot.settings import PROJECT_ROOT

CATALOGUE_FILE = PROJECT_ROOT / "data" / "catalogue" / "products.yml"


@dataclass(frozen=True)
class CatalogueProduct:
    sku: str
    name: str
    category: str
    warranty_months: int
    needs_installation: bool
    aliases: tuple[str, ...]


@lru_cache(maxsize=4)
def load_catalogue(path: Path = CATALOGUE_FILE) -> tuple[CatalogueProduct, ...]:
    """Load and validate the catalogue; a malformed entry names the file and the entry."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    products = []
    for index, entry in enumerate(raw.get("products", [])):
        try:
            products.append(
                CatalogueProduct(
                    sku=str(entry["sku"]),
                    name=str(entry["name"]),
                    category=str(entry["category"]),
                    warranty_months=int(entry["warranty_months"]),
                    needs_installation=bool(entry.get("needs_installation", False)),
                    aliases=tuple(str(a) for a in entry.get("aliases", [])),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: product #{index} is invalid: {exc!r}") from exc
    if not products:
        raise ValueError(f"{path}: no products defined")
    return tuple(products)


def product_by_alias(text: str) -> CatalogueProduct | None:
    """Map a product mention ("洗衣机", "washer") to its catalogue entry."""
    needle = text.strip().lower()
    for product in load_catalogue():
        if needle == product.name.lower() or needle in (a.lower() for a in product.aliases):
            return product
    return None


_AROUND_A_PRODUCT = re.compile(
    r"(?:那个|这个|那台|这台|就是|我的|我家|那|是|就)*(.{1,8}?)(?:的|呢|咧|啊|呀|吧|那台|这台)*"
)
_PUNCTUATION = re.compile(r"[\s,.!?;，。！？；、~～…]+")


def bare_product(text: str) -> str | None:
    """The product a message names and nothing else ("滚筒洗衣机", "是冰箱的", "就那个洗衣机"),
    as written; None when the message says anything more."""
    compact = _PUNCTUATION.sub("", to_simplified(text or ""))
    named = _AROUND_A_PRODUCT.fullmatch(compact)
    if named is None or product_by_alias(named.group(1)) is None:
        return None
    return named.group(1)


_PHONE_LABEL = re.compile(r"手机(?=\s*(?:号|[:：]|\+?86|1\d{10}))")
""""手机13800138000" / "手机号" label a phone number; they do not name the product 手机."""


def product_mentions(text: str) -> list[str]:
    """The product words a message uses, in order, each once ("空调和热水器都要装" → 空调,
    热水器); a word inside a longer one ("洗衣机" in "滚筒洗衣机") is not counted again, nor
    "手机" labelling a phone number."""
    haystack = _PHONE_LABEL.sub("  ", to_simplified(text).lower())
    words = {w.lower() for p in load_catalogue() for w in (p.name, *p.aliases) if w}
    spans: list[tuple[int, int]] = []
    for word in sorted(words, key=len, reverse=True):
        start = haystack.find(word)
        while start >= 0:
            end = start + len(word)
            if not any(s < end and start < e for s, e in spans):
                spans.append((start, end))
            start = haystack.find(word, end)
    mentioned: list[str] = []
    for start, end in sorted(spans):
        if haystack[start:end] not in mentioned:
            mentioned.append(haystack[start:end])
    return mentioned


def skus_mentioned(text: str) -> frozenset[str]:
    """The catalogue products a message names by name or alias ("冰箱嗡嗡响" → the fridge),
    in Traditional characters too ("熱水器")."""
    haystack = to_simplified(text).lower()
    return frozenset(
        product.sku
        for product in load_catalogue()
        if any(word.lower() in haystack for word in (product.name, *product.aliases) if word)
    )
