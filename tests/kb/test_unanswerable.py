"""Near-miss questions no article answers (knowledge_base/unanswerable.yml): loading, data
hygiene, and that the scorer actually learns "not found" from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from bot.kb.articles import load_articles
from bot.kb.evaluate import evaluation_questions, leaked
from bot.kb.search import (
    UNANSWERABLE_FILE,
    KnowledgeBase,
    load_synonyms,
    load_unanswerable,
)

SMALL_KB = (
    "troubleshoot-microwave-not-heating",
    "troubleshoot-robot-vacuum",
    "robot-vacuum-app-setup",
    "energy-saving-tips",
    "return-shipping-fee",
    "invoice",
    "warranty-period",
    "troubleshoot-tv-no-signal",
    "delivery-time",
    "points-earning",
    "troubleshoot-fridge-not-cooling",
    "dishwasher-first-use",
)
NEAR_MISSES = (
    "微波炉加热能盖保鲜膜吗",
    "扫地机器人能不能爬门槛",
    "洗碗机一次能洗几套餐具",
    "微波炉怎么解冻肉",
)


def test_loading_strips_and_deduplicates(tmp_path: Path) -> None:
    path = tmp_path / "unanswerable.yml"
    path.write_text("- 你们卖汽车吗 \n- 你们卖汽车吗\n- ''\n- 123\n", encoding="utf-8")
    assert load_unanswerable(path) == ("你们卖汽车吗", "123")


def test_a_missing_file_means_no_near_misses(tmp_path: Path) -> None:
    assert load_unanswerable(tmp_path / "absent.yml") == ()


def test_the_real_file_is_a_list_of_distinct_questions() -> None:
    raw = yaml.safe_load(UNANSWERABLE_FILE.read_text(encoding="utf-8"))
    assert isinstance(raw, list) and len(raw) >= 100
    assert len(set(raw)) == len(raw)


def test_no_near_miss_is_an_article_question_or_resembles_an_evaluation_question() -> None:
    """Training on (a near copy of) an evaluation question would make its numbers lie."""
    near_misses = set(load_unanswerable())
    asked = {q for a in load_articles().articles for q in (a.title, *a.questions)}
    assert not near_misses & asked
    assert leaked(sorted(near_misses), evaluation_questions()) == []


@pytest.fixture(scope="module")
def small_articles() -> tuple:
    articles = tuple(a for a in load_articles().articles if a.id in SMALL_KB)
    assert len(articles) == len(SMALL_KB)
    return articles


def test_near_misses_lower_the_score_of_lookalike_questions(small_articles: tuple) -> None:
    synonyms = load_synonyms()
    without = KnowledgeBase(small_articles, synonyms)
    trained = KnowledgeBase(small_articles, synonyms, unanswerable=load_unanswerable())
    before = np.array([without.scores(q).max() for q in NEAR_MISSES])
    after = np.array([trained.scores(q).max() for q in NEAR_MISSES])
    assert np.all(after < before), (before, after)
    # while the questions the articles do answer are still found first
    for article in small_articles:
        assert trained.search(article.questions[0])[0].id == article.id
