"""Knowledge-base search over the real articles, the stored index and the reloading cache."""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from bot.kb import search
from bot.kb.articles import ARTICLES_DIR, load_articles
from bot.kb.search import (
    DEFAULT_THRESHOLD,
    SYNONYMS_FILE,
    KnowledgeBase,
    KnowledgeBaseCache,
    TextFolder,
    build_knowledge_base,
    load_knowledge_base,
    load_synonyms,
)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return build_knowledge_base()


def top_id(kb: KnowledgeBase, query: str) -> str | None:
    hits = kb.search(query)
    return hits[0].id if hits else None


# -- ranking on the real articles ---------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "article_id"),
    [
        ("退货要运费吗", "return-shipping-fee"),
        ("退货邮费谁出", "return-shipping-fee"),
        ("发票怎么开", "invoice"),
        ("发票抬头写错了能改吗", "invoice"),
        ("空调不制冷", "troubleshoot-ac-not-cooling"),
        ("怎么修改密码", "account-password-reset"),
    ],
)
def test_clear_questions_find_the_right_article_first(
    kb: KnowledgeBase, question: str, article_id: str
) -> None:
    hits = kb.search(question)
    assert hits, question
    assert hits[0].id == article_id
    assert hits[0].score >= DEFAULT_THRESHOLD


@pytest.mark.parametrize(
    "question", ["你们卖二手车吗", "附近有好吃的餐馆吗", "我想买彩票", "你好", "", "   ", "😀"]
)
def test_unrelated_questions_find_nothing(kb: KnowledgeBase, question: str) -> None:
    assert kb.search(question) == []


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [
        ("退貨要運費嗎", "退货要运费吗"),
        ("發票怎麼開", "发票怎么开"),
        ("空調不製冷", "空调不制冷"),
        ("怎麼修改密碼", "怎么修改密码"),
    ],
)
def test_traditional_query_finds_the_same_article(
    kb: KnowledgeBase, traditional: str, simplified: str
) -> None:
    assert kb.search(traditional)
    assert kb.search(traditional) == kb.search(simplified)


def test_full_width_and_emoji_do_not_change_the_answer(kb: KnowledgeBase) -> None:
    assert kb.search("发票怎么开？？😀") == kb.search("发票怎么开?")
    assert top_id(kb, "发票怎么开") == "invoice"


def test_hits_carry_the_article_answer_and_scenario(kb: KnowledgeBase) -> None:
    (hit, *_) = kb.search("发票怎么开")
    article = kb.article("invoice")
    assert article is not None
    assert (hit.id, hit.title, hit.answer, hit.scenario) == (
        article.id,
        article.title,
        article.answer,
        article.scenario,
    )


def test_scores_are_between_zero_and_one_and_ranked(kb: KnowledgeBase) -> None:
    scores = kb.scores("空调不制冷")
    assert scores.shape == (len(kb.articles),)
    assert np.all(scores >= 0) and np.all(scores <= 1)
    hits = kb.search("空调不制冷", k=5, threshold=0.0)
    assert len(hits) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].score == round(float(scores.max()), 4)


def test_k_and_threshold_limit_the_hits(kb: KnowledgeBase) -> None:
    assert len(kb.search("退货要运费吗", k=1)) == 1
    assert kb.search("退货要运费吗", k=0) == []
    assert kb.search("退货要运费吗", threshold=1.01) == []
    assert len(kb.search("你们卖二手车吗", k=3, threshold=0.0)) == 3


def test_article_lookup(kb: KnowledgeBase) -> None:
    article = kb.article("invoice")
    assert article is not None
    assert article.title.startswith("发票")
    assert kb.article("no-such-article") is None


def test_an_empty_knowledge_base_is_refused() -> None:
    with pytest.raises(ValueError, match="no valid articles"):
        KnowledgeBase(())


# -- synonyms -----------------------------------------------------------------------------


def test_synonyms_fold_variants_onto_the_article_wording() -> None:
    synonyms = load_synonyms()
    assert synonyms["邮费"] == "运费"
    assert synonyms["退货险"] == "运费险"
    lengths = [len(variant) for variant in synonyms]
    assert lengths == sorted(lengths, reverse=True)  # longest variants replace first
    folder = TextFolder(synonyms)
    assert folder.fold("退貨郵費誰出") == "退货运费谁出"
    assert folder.fold("ＳＯ２０２６１１０１００１") == "so20261101001"


def test_missing_synonym_file_means_no_synonyms(tmp_path: Path) -> None:
    assert load_synonyms(tmp_path / "missing.yml") == {}
    assert TextFolder({}).fold("退货邮费") == "退货邮费"


def test_tokens_are_words_plus_character_bigrams() -> None:
    tokens = TextFolder.tokens("空调不制冷 tv")
    assert "空调" in tokens
    assert "调不" in tokens  # a bigram, so unseen word splits still overlap
    assert "tv" in tokens


# -- the stored index ---------------------------------------------------------------------

ARTICLE = """---
id: {id}
title: {title}
category: inquiry
scenario: new_user_guide
updated: 2026-11-01
version: 1
answer: {answer}
questions:
  - {question}
---
{answer}
"""


def small_kb_dir(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for article_id, title, question, answer in [
        ("opening-hours", "营业时间", "你们几点上班", "客服每天8点到22点在线。"),
        ("gift-wrap", "礼品包装", "可以帮我包装成礼物吗", "下单时勾选礼品包装即可。"),
    ]:
        (directory / f"{article_id}.md").write_text(
            ARTICLE.format(id=article_id, title=title, question=question, answer=answer),
            encoding="utf-8",
        )
    return directory


def test_load_knowledge_base_stores_the_index(tmp_path: Path) -> None:
    articles = small_kb_dir(tmp_path / "articles")
    index_dir = tmp_path / "index"
    kb = load_knowledge_base(articles, SYNONYMS_FILE, index_dir)
    (stored,) = index_dir.glob("kb-*.pickle")
    assert stored.name.startswith(f"kb-{search.INDEX_FORMAT}-")
    assert [a.id for a in kb.articles] == ["gift-wrap", "opening-hours"]
    assert kb.search("你们几点上班")[0].id == "opening-hours"
    assert list(index_dir.glob("*.tmp")) == []


def test_stored_index_is_reused_when_nothing_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    articles = small_kb_dir(tmp_path / "articles")
    index_dir = tmp_path / "index"
    first = load_knowledge_base(articles, SYNONYMS_FILE, index_dir)
    (stored,) = index_dir.glob("kb-*.pickle")
    stamp = stored.stat().st_mtime_ns

    def no_rebuild(*_args, **_kwargs):
        raise AssertionError("the index was rebuilt although nothing changed")

    monkeypatch.setattr(search, "build_knowledge_base", no_rebuild)
    second = load_knowledge_base(articles, SYNONYMS_FILE, index_dir)

    assert list(index_dir.glob("kb-*.pickle")) == [stored]
    assert stored.stat().st_mtime_ns == stamp
    assert second is not first  # read back from the file ...
    assert second.search("可以帮我包装成礼物吗") == first.search("可以帮我包装成礼物吗")


def test_editing_an_article_rebuilds_under_a_new_name(tmp_path: Path) -> None:
    articles = small_kb_dir(tmp_path / "articles")
    index_dir = tmp_path / "index"
    load_knowledge_base(articles, SYNONYMS_FILE, index_dir)
    (old,) = index_dir.glob("kb-*.pickle")

    path = articles / "opening-hours.md"
    path.write_text(path.read_text(encoding="utf-8").replace("8点到22点", "9点到21点"), "utf-8")
    kb = load_knowledge_base(articles, SYNONYMS_FILE, index_dir)

    (new,) = index_dir.glob("kb-*.pickle")
    assert new.name != old.name
    assert not old.exists()
    assert kb.search("你们几点上班")[0].answer == "客服每天9点到21点在线。"


def test_an_unreadable_stored_index_is_rebuilt(tmp_path: Path) -> None:
    articles = small_kb_dir(tmp_path / "articles")
    index_dir = tmp_path / "index"
    load_knowledge_base(articles, SYNONYMS_FILE, index_dir)
    (stored,) = index_dir.glob("kb-*.pickle")
    stored.write_bytes(b"not a pickle")

    kb = load_knowledge_base(articles, SYNONYMS_FILE, index_dir)

    assert kb.search("你们几点上班")[0].id == "opening-hours"
    assert stored.read_bytes() != b"not a pickle"


def test_build_skips_broken_articles_and_logs_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    articles = small_kb_dir(tmp_path / "articles")
    broken = articles / "broken.md"
    broken.write_text("no front matter\n", encoding="utf-8")
    kb = build_knowledge_base(articles, tmp_path / "no-synonyms.yml")
    assert [a.id for a in kb.articles] == ["gift-wrap", "opening-hours"]
    assert str(broken) in caplog.text
    assert "missing YAML front matter" in caplog.text


# -- the reloading cache ------------------------------------------------------------------


@pytest.fixture
def articles_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the real articles; the cache stores its index under tmp_path, not var/."""
    copy = tmp_path / "articles"
    shutil.copytree(ARTICLES_DIR, copy)
    monkeypatch.setattr(
        search,
        "load_knowledge_base",
        functools.partial(search.load_knowledge_base, index_dir=tmp_path / "index"),
    )
    return copy


def test_editing_an_article_changes_the_answer_without_retraining(articles_copy: Path) -> None:
    index_dir = articles_copy.parent / "index"
    cache = KnowledgeBaseCache(articles_copy, check_every=0)

    kb = cache.get()
    assert [h.id for h in kb.search("你们卖二手车吗")] == []
    assert kb.search("发票怎么开")[0].answer.startswith("所有订单均可开具电子普通发票")
    assert cache.get() is kb  # nothing changed: the same index object
    (old_index,) = index_dir.glob("kb-*.pickle")

    invoice = articles_copy / "invoice.md"
    text = invoice.read_text(encoding="utf-8")
    text = text.replace(
        "answer: 所有订单均可开具电子普通发票",
        "answer: 自2027年起所有订单均可开具电子普通发票",
    )
    (articles_copy / "used-cars.md").write_text(
        ARTICLE.format(
            id="used-cars",
            title="二手车业务",
            question="你们卖二手车吗",
            answer="我们不销售二手车，只经营家电和数码产品。",
        ),
        encoding="utf-8",
    )
    invoice.write_text(text, encoding="utf-8")

    reloaded = cache.get()

    assert reloaded is not kb
    assert reloaded.search("发票怎么开")[0].answer.startswith("自2027年起所有订单")
    assert reloaded.search("你们卖二手车吗")[0].id == "used-cars"
    (new_index,) = index_dir.glob("kb-*.pickle")
    assert new_index.name != old_index.name


def test_cache_checks_the_files_at_most_every_check_every_seconds(
    articles_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    cache = KnowledgeBaseCache(articles_copy, check_every=5.0)
    kb = cache.get()

    (articles_copy / "invoice.md").unlink()
    clock[0] += 4.9
    assert cache.get() is kb  # not checked yet
    assert kb.article("invoice") is not None

    clock[0] += 0.2
    reloaded = cache.get()
    assert reloaded is not kb
    assert reloaded.article("invoice") is None
    assert len(reloaded.articles) == len(load_articles(articles_copy).articles)
