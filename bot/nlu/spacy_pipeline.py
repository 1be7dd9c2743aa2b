"""Build the project's spaCy pipeline: a blank Chinese model with a jieba segmenter and an
EntityRuler for order numbers, phones, ticket numbers and the product catalogue.

Rasa loads it through SpacyNLP / SpacyTokenizer / SpacyEntityExtractor (see config.yml).  The
pipeline is rebuilt from the catalogue by ``python -m bot nlu build-spacy``; its directory
lives inside the project because Rasa stores the path in the trained model.
"""

from __future__ import annotations

from pathlib import Path

import jieba
import spacy
from spacy.language import Language

from bot.nlu.catalogue import load_catalogue
from bot.settings import PROJECT_ROOT

SPACY_MODEL_DIR = PROJECT_ROOT / "models" / "spacy_zh"

ORDER_NO_PATTERN = r"^SO\d{11}$"
PHONE_PATTERN = r"^(\+?86)?1[3-9]\d{9}$"
PHONE_WORD_LABEL = "phone_word"
PHONE_LABEL_WORDS = ["手机", "手机号", "手机号码", "电话", "电话号码", "号码", "联系电话"]


def register_domain_words() -> None:
    """Teach jieba the catalogue words so that segmentation is the same in training and use."""
    for product in load_catalogue():
        for word in (product.name, *product.aliases):
            if not any(c.isspace() for c in word):
                jieba.add_word(word, freq=200_000)


def entity_patterns() -> list[dict]:
    """EntityRuler patterns: token regexes for identifiers, phrases for products."""
    patterns: list[dict] = [
        {"label": "order_id", "pattern": [{"TEXT": {"REGEX": ORDER_NO_PATTERN}}]},
        {"label": "phone", "pattern": [{"TEXT": {"REGEX": PHONE_PATTERN}}]},
        # "手机13812345678": the label word belongs to the number, not to the product 手机.
        {
            "label": "phone",
            "pattern": [
                {"TEXT": {"IN": PHONE_LABEL_WORDS}},
                # jieba splits "手机号" into 手机 + 号 (手机 is a catalogue word): "手机号是…"
                {"TEXT": {"IN": ["号", "号码"]}, "OP": "?"},
                {"TEXT": {"IN": [":", "是", "号"]}, "OP": "?"},
                {"TEXT": {"REGEX": PHONE_PATTERN}},
            ],
        },
        {
            "label": "ticket_id",
            "pattern": [
                {"TEXT": {"REGEX": r"^T\d{8}$"}},
                {"TEXT": "-"},
                {"TEXT": {"REGEX": r"^\d{4}$"}},
            ],
        },
        {"label": "ticket_id", "pattern": [{"TEXT": {"REGEX": r"^T\d{8}-\d{4}$"}}]},
        # "为什么要手机号？" names no product: the longer match claims 手机 + 号 under a label
        # the entity extractor does not report (config.yml lists the labels it does).
        {
            "label": PHONE_WORD_LABEL,
            "pattern": [{"TEXT": "手机"}, {"TEXT": {"IN": ["号", "号码"]}}],
        },
        {"label": PHONE_WORD_LABEL, "pattern": [{"TEXT": {"IN": ["手机号", "手机号码"]}}]},
    ]
    for product in load_catalogue():
        for phrase in sorted({product.name, *product.aliases}):
            patterns.append({"label": "product", "pattern": phrase.lower(), "id": product.sku})
    return patterns


def build_pipeline() -> Language:
    """Create the blank zh pipeline with the entity ruler (no downloads, no training)."""
    register_domain_words()
    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    ruler.add_patterns(entity_patterns())
    return nlp


def save_pipeline(target: Path = SPACY_MODEL_DIR) -> Path:
    """Build and write the pipeline to ``target`` (replacing an older build)."""
    nlp = build_pipeline()
    target.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(target)
    return target
