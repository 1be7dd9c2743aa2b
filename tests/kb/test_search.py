"""Knowledge-base search over the real articles, the stored index and the reloading cache.

Building the index trains its scorer, so it is built once per test session (stored under the
session's base temp directory) and every test that needs the real knowledge base loads that.
"""

from __future__ import annotations

import pickle
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bot.kb import search
from bot.kb.articles import ARTICLES_DIR
from bot.kb.evaluate import EVAL_FILE, evaluate
from bot.kb.search import (
    SYNONYMS_FILE,
    KnowledgeBase,
    KnowledgeBaseCache,
    TextFolder,
    build_knowledge_base,
    load_knowledge_base,
    load_synonyms,
    load_unanswerable,
)


def session_index_dir(factory: pytest.TempPathFactory) -> Path:
    return factory.getbasetemp() / "kb-index"


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    return load_knowledge_base(ARTICLES_DIR, SYNONYMS_FILE, session_index_dir(tmp_path_factory))


def top_id(kb: KnowledgeBase, query: str) -> str | None:
    hits = kb.search(query)
    return hits[0].id if hits else None


# -- ranking on the real articles ---------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "article_id"),
    [
        ("退货要运费吗", "return-shipping-fee"),
        ("发票怎么开", "invoice"),
        ("买的东西怎么要发票", "invoice"),
        ("发票抬头写错了能改吗", "invoice"),
        ("空调不制冷", "troubleshoot-ac-not-cooling"),
        ("怎么修改密码", "account-password-reset"),
        # a degree adverb jieba glues to its word ("很大") must not hide the word ("大")
        ("冰箱噪音很大怎么办", "troubleshoot-fridge-noise"),
    ],
)
def test_clear_questions_find_the_right_article_first(
    kb: KnowledgeBase, question: str, article_id: str
) -> None:
    hits = kb.search(question)
    assert [h.id for h in hits][:1] == [article_id], [(h.id, h.score) for h in hits]
    assert hits[0].score >= kb.threshold


@pytest.mark.parametrize(
    "question", ["你们卖二手车吗", "附近有好吃的餐馆吗", "你好", "", "   ", "😀"]
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
    hits = kb.search(traditional)
    assert hits
    assert hits == kb.search(simplified)


@pytest.mark.parametrize(
    ("polite", "plain"),
    [
        ("你好 我想问问积分怎么用", "积分怎么用"),
        ("您好，想咨询一下以旧换新怎么弄", "以旧换新怎么弄"),
        ("在吗？我想了解一下延保", "延保"),
    ],
)
def test_how_a_question_opens_does_not_change_the_answer(
    kb: KnowledgeBase, polite: str, plain: str
) -> None:
    """A greeting and "我想问问" are manners, not content: the answer is the plain question's."""
    assert kb.search(polite) and kb.search(polite) == kb.search(plain)


def test_a_wish_is_not_taken_for_a_lead_in(kb: KnowledgeBase) -> None:
    """ "我想退货" keeps its "想": only asking words ("问问", "咨询一下") are manners."""
    assert TextFolder({}).fold("我想退货") == "我想退货"
    assert TextFolder({}).fold("我想问问 积分") == "积分"


def test_full_width_case_and_emoji_do_not_change_the_answer(kb: KnowledgeBase) -> None:
    assert kb.search("空调不制冷？？😀") == kb.search("空调不制冷?")
    washer = kb.search("Ｗａｓｈｅｒ漏水")
    assert top_id(kb, "washer漏水") == "troubleshoot-washer-leak"
    assert washer == kb.search("washer漏水") == kb.search("WASHER漏水")


@pytest.mark.parametrize(
    ("question", "other_products_article"),
    [
        ("空调显示E5是啥意思", "washer-error-codes"),
        ("熱水器一直顯示E1是什麼意思", "washer-error-codes"),
    ],
)
def test_an_article_about_another_product_is_never_offered(
    kb: KnowledgeBase, question: str, other_products_article: str
) -> None:
    """QA: an air-conditioner and a water-heater error code got the washing machine's codes
    as their likeliest article; articles about several products (installation) still answer."""
    assert other_products_article not in [h.id for h in kb.search(question, k=5, threshold=0.0)]
    assert top_id(kb, "冰箱送到了 需要另外约师傅安装吗") == "installation-service"


@pytest.mark.parametrize("question", ["为什么要手机号？", "干嘛非得要订单号", "不给手机号能办吗"])
def test_why_the_identity_check_is_answered(kb: KnowledgeBase, question: str) -> None:
    """QA: "为什么要手机号？" at the phone question got the capability menu or nothing."""
    assert top_id(kb, question) == "identity-verification"


def test_hits_carry_the_article_answer_and_scenario(kb: KnowledgeBase) -> None:
    hit = kb.search("空调不制冷")[0]
    article = kb.article(hit.id)
    assert article is not None
    assert (hit.title, hit.answer, hit.scenario) == (
        article.title,
        article.answer,
        article.scenario,
    )


def test_scores_are_probabilities_and_hits_are_ranked(kb: KnowledgeBase) -> None:
    scores = kb.scores("空调不制冷")
    assert scores.shape == (len(kb.articles),)
    assert np.all(scores >= 0) and np.all(scores <= 1)
    hits = kb.search("空调不制冷", k=5, threshold=0.0)
    assert 1 <= len(hits) <= 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].score == round(float(scores.max()), 4)


def test_k_and_threshold_limit_the_hits(kb: KnowledgeBase) -> None:
    assert len(kb.search("退货要运费吗", k=1)) == 1
    assert kb.search("退货要运费吗", k=0) == []
    assert kb.search("退货要运费吗", threshold=1.01) == []
    loose = kb.search("发票", k=3, threshold=0.0)
    strict = kb.search("发票", k=3)
    assert 1 <= len(loose) <= 3
    assert not strict or strict[0].score >= kb.threshold
    assert [h.id for h in strict] == [h.id for h in loose][: len(strict)]


def test_article_lookup(kb: KnowledgeBase) -> None:
    article = kb.article("invoice")
    assert article is not None
    assert article.title.startswith("发票")
    assert kb.article("no-such-article") is None


def test_an_empty_knowledge_base_is_refused() -> None:
    with pytest.raises(ValueError, match="no valid articles"):
        KnowledgeBase(())


def test_evaluation_sets_meet_the_issue_targets_pooled(kb: KnowledgeBase) -> None:
    """Every kb_eval*.yml set (written apart from the articles), pooled: issue #3's top-1 0.90,
    top-3 0.97 and "not found" 0.90.  Per set, the weakest measured 0.965 / 0.969 / 0.872."""
    reports = [evaluate(kb, path) for path in sorted(EVAL_FILE.parent.glob("kb_eval*.yml"))]
    answerable = sum(r.answerable for r in reports)
    unanswerable = sum(r.unanswerable for r in reports)
    assert len(reports) >= 5 and answerable >= 700 and unanswerable >= 250
    assert sum(r.top1 * r.answerable for r in reports) / answerable >= 0.90
    assert sum(r.top3 * r.answerable for r in reports) / answerable >= 0.97
    assert sum(r.not_found_rate * r.unanswerable for r in reports) / unanswerable >= 0.90
    assert all(r.top1 >= 0.90 and r.not_found_rate >= 0.80 for r in reports)


# -- synonyms -----------------------------------------------------------------------------


def test_synonyms_fold_variants_onto_the_article_wording() -> None:
    synonyms = load_synonyms()
    assert synonyms["邮费"] == "运费"
    assert synonyms["退货险"] == "运费险"
    lengths = [len(variant) for variant in synonyms]
    assert lengths == sorted(lengths, reverse=True)  # longest variants replace first
    folder = TextFolder(synonyms)
    assert folder.fold("退貨郵費誰出") == "退货运费谁出"
    assert folder.fold("退货险怎么赔") == "运费险怎么赔"
    assert folder.fold("ＳＯ２０２６１１０１００１") == "so20261101001"


def test_folding_takes_the_longest_variant_and_respects_latin_word_edges() -> None:
    folder = TextFolder({"dishwasher": "洗碗机", "washer": "洗衣机", "sh": "售后", "退费": "退款"})
    assert folder.fold("dishwasher坏了") == "洗碗机坏了"  # not dish + 洗衣机
    assert folder.fold("washer坏了 找sh") == "洗衣机坏了 找售后"
    assert folder.fold("shsh push") == "shsh push"  # "sh" inside a word never fires
    assert folder.fold("washers") == "washers"
    assert folder.fold("7天washer退費") == "7天洗衣机退款"
    # a variant that is the start of a longer one still matches when the longer one does not
    prefixes = TextFolder({"退货": "退货", "退货险": "运费险", "退个货": "退货"})
    assert prefixes.fold("退货险 退货 退个货") == "运费险 退货 退货"


def test_degree_adverbs_do_not_count_as_content_words() -> None:
    assert list(TextFolder.words("冰箱噪音很大")) == ["冰箱", "噪音", "大"]
    assert list(TextFolder.words("退款太慢")) == ["退款", "慢"]
    assert list(TextFolder.words("声音特别吵")) == ["声音", "吵"]
    assert "太阳能" in TextFolder.words("太阳能热水器")  # a noun that starts like one stays whole


def test_missing_synonym_file_means_no_synonyms(tmp_path: Path) -> None:
    assert load_synonyms(tmp_path / "missing.yml") == {}
    assert TextFolder({}).fold("退货邮费") == "退货邮费"


def test_knowledge_base_folds_queries_with_its_synonyms(kb: KnowledgeBase) -> None:
    assert kb.folder.fold("郵費") == "运费"


# -- the stored index (build replaced by a stub: this is about files, not ranking) --------


class StubKnowledgeBase:
    """Picklable stand-in recording what it was built from."""

    def __init__(self, articles_dir: Path, synonyms_file: Path, version: str) -> None:
        self.articles_dir = articles_dir
        self.synonyms_file = synonyms_file
        self.version = version


@pytest.fixture
def counted_builds(monkeypatch: pytest.MonkeyPatch) -> list[StubKnowledgeBase]:
    builds: list[StubKnowledgeBase] = []

    def build(
        directory: Path, synonyms_file: Path, unanswerable_file: Path | None = None
    ) -> StubKnowledgeBase:
        text = "".join(p.read_text("utf-8") for p in sorted(directory.glob("*.md")))
        builds.append(StubKnowledgeBase(directory, synonyms_file, text))
        return builds[-1]

    monkeypatch.setattr(search, "build_knowledge_base", build)
    return builds


def small_articles(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "a.md").write_text("version one", encoding="utf-8")
    (directory / "b.md").write_text("other", encoding="utf-8")
    return directory


def test_stored_index_is_written_and_reused_when_nothing_changed(
    tmp_path: Path, counted_builds: list[StubKnowledgeBase]
) -> None:
    articles, index_dir = small_articles(tmp_path / "articles"), tmp_path / "index"

    first = load_knowledge_base(articles, SYNONYMS_FILE, index_dir)
    (stored,) = index_dir.glob("kb-*.pickle")
    stamp = stored.stat().st_mtime_ns
    second = load_knowledge_base(articles, SYNONYMS_FILE, index_dir)

    assert len(counted_builds) == 1
    assert first is counted_builds[0]
    assert isinstance(second, StubKnowledgeBase) and second is not first  # read from the file
    assert (second.articles_dir, second.version) == (articles, "version oneother")
    assert list(index_dir.glob("kb-*.pickle")) == [stored]
    assert stored.stat().st_mtime_ns == stamp
    assert list(index_dir.glob("*.tmp")) == []


@pytest.mark.parametrize("change", ["edit", "add", "remove", "synonyms", "unanswerable"])
def test_changed_content_is_rebuilt_under_a_new_name(
    tmp_path: Path, counted_builds: list[StubKnowledgeBase], change: str
) -> None:
    articles, index_dir = small_articles(tmp_path / "articles"), tmp_path / "index"
    synonyms = tmp_path / "synonyms.yml"
    synonyms.write_text("退货: [退貨]\n", encoding="utf-8")
    unanswerable = tmp_path / "unanswerable.yml"
    unanswerable.write_text("- 你们卖汽车吗\n", encoding="utf-8")
    load_knowledge_base(articles, synonyms, index_dir, unanswerable)
    (old,) = index_dir.glob("kb-*.pickle")

    if change == "edit":
        (articles / "a.md").write_text("version two", encoding="utf-8")
    elif change == "add":
        (articles / "c.md").write_text("new", encoding="utf-8")
    elif change == "remove":
        (articles / "b.md").unlink()
    elif change == "synonyms":
        synonyms.write_text("退货: [退貨, 退掉]\n", encoding="utf-8")
    else:
        unanswerable.write_text("- 你们卖汽车吗\n- 你们卖房子吗\n", encoding="utf-8")
    rebuilt = load_knowledge_base(articles, synonyms, index_dir, unanswerable)

    assert len(counted_builds) == 2
    assert rebuilt is counted_builds[1]
    (new,) = index_dir.glob("kb-*.pickle")  # the old index is gone
    assert new.name != old.name
    with new.open("rb") as handle:
        assert pickle.load(handle).version == rebuilt.version


def test_an_unreadable_stored_index_is_rebuilt(
    tmp_path: Path, counted_builds: list[StubKnowledgeBase]
) -> None:
    articles, index_dir = small_articles(tmp_path / "articles"), tmp_path / "index"
    load_knowledge_base(articles, SYNONYMS_FILE, index_dir)
    (stored,) = index_dir.glob("kb-*.pickle")
    for garbage in (b"not a pickle", b""):
        stored.write_bytes(garbage)
        kb = load_knowledge_base(articles, SYNONYMS_FILE, index_dir)
        assert kb is counted_builds[-1]
        assert stored.read_bytes() not in (b"not a pickle", b"")
    assert len(counted_builds) == 3


def test_build_skips_broken_articles_and_logs_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shown: list[tuple] = []

    def record(articles, synonyms, unanswerable=()):
        shown.append((articles, synonyms, unanswerable))
        return "kb"

    monkeypatch.setattr(search, "KnowledgeBase", record)
    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(ARTICLES_DIR / "invoice.md", articles)
    broken = articles / "broken.md"
    broken.write_text("no front matter\n", encoding="utf-8")

    assert build_knowledge_base(articles, SYNONYMS_FILE) == "kb"

    ((built_from, synonyms, unanswerable),) = shown
    assert [a.id for a in built_from] == ["invoice"]
    assert synonyms == load_synonyms(SYNONYMS_FILE)
    assert unanswerable == load_unanswerable()
    assert str(broken) in caplog.text
    assert "missing YAML front matter" in caplog.text


# -- the reloading cache ------------------------------------------------------------------


def test_cache_checks_the_files_at_most_every_check_every_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    articles = small_articles(tmp_path / "articles")
    loads: list[object] = []
    monkeypatch.setattr(
        search, "load_knowledge_base", lambda _dir, **_: loads.append(object()) or loads[-1]
    )
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    cache = KnowledgeBaseCache(articles, check_every=5.0)

    first = cache.get()
    clock[0] += 60
    assert cache.get() is first  # checked, nothing changed: not reloaded

    (articles / "a.md").write_text("version two, longer", encoding="utf-8")
    clock[0] += 4.9
    assert cache.get() is first  # not checked yet
    clock[0] += 0.2
    cache.get()
    assert cache.wait_for_rebuild(timeout=10)
    second = cache.get()
    assert second is not first
    assert len(loads) == 2

    (articles / "b.md").unlink()
    clock[0] += 5
    cache.get()
    assert cache.wait_for_rebuild(timeout=10)
    assert cache.get() is not second
    assert len(loads) == 3


def test_cache_answers_from_the_old_index_while_the_new_one_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    articles = small_articles(tmp_path / "articles")
    release = threading.Event()
    loads: list[object] = []

    def slow_load(_dir: Path, **_: object) -> object:
        if loads:  # the first load is the blocking one; a rebuild waits for the test
            release.wait(10)
        loads.append(object())
        return loads[-1]

    monkeypatch.setattr(search, "load_knowledge_base", slow_load)
    cache = KnowledgeBaseCache(articles, check_every=0)
    first = cache.get()
    (articles / "a.md").write_text("version two, longer", encoding="utf-8")

    assert cache.get() is first  # the rebuild has started; the old index still answers
    assert cache.rebuilding
    assert cache.get() is first  # and a second check does not start another build

    release.set()
    assert cache.wait_for_rebuild(timeout=10)
    assert cache.get() is loads[1]
    assert len(loads) == 2


def test_a_failed_rebuild_keeps_the_old_index_and_is_not_retried_until_files_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    articles = small_articles(tmp_path / "articles")
    calls: list[str] = []

    def load(_dir: Path, **_: object) -> object:
        calls.append("load")
        if len(calls) == 2:
            raise OSError("disk full")
        return object()

    monkeypatch.setattr(search, "load_knowledge_base", load)
    cache = KnowledgeBaseCache(articles, check_every=0)
    first = cache.get()
    (articles / "a.md").write_text("version two, longer", encoding="utf-8")
    cache.get()
    assert cache.wait_for_rebuild(timeout=10)

    assert cache.get() is first
    assert cache.wait_for_rebuild(timeout=10)
    assert len(calls) == 2  # the same failing files are not rebuilt in a loop
    assert "rebuild failed" in caplog.text

    (articles / "a.md").write_text("version three, longer still", encoding="utf-8")
    cache.get()
    assert cache.wait_for_rebuild(timeout=10)
    assert cache.get() is not first
    assert len(calls) == 3


def test_editing_an_article_changes_the_answer_without_retraining(
    kb: KnowledgeBase,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tmp copy of the real articles, the real index, one real rebuild."""
    copy, index_dir = tmp_path / "articles", tmp_path / "index"
    shutil.copytree(ARTICLES_DIR, copy)
    # Same content, same key: start from the session's stored index instead of rebuilding.
    shutil.copytree(session_index_dir(tmp_path_factory), index_dir)
    cache = KnowledgeBaseCache(copy, check_every=0, index_dir=index_dir)

    before = cache.get()
    assert before.search("你们卖二手车吗") == []
    assert top_id(before, "发票抬头写错了能改吗") == "invoice"
    assert cache.get() is before  # nothing changed: the same index object
    (old_index,) = index_dir.glob("kb-*.pickle")

    invoice = copy / "invoice.md"
    invoice.write_text(
        invoice.read_text(encoding="utf-8").replace(
            "answer: 所有订单均可开具电子普通发票",
            "answer: 自2027年1月起所有订单均可开具电子普通发票",
        ),
        encoding="utf-8",
    )
    (copy / "used-cars.md").write_text(
        "---\nid: used-cars\ntitle: 二手车业务\ncategory: inquiry\nscenario: new_user_guide\n"
        "updated: 2026-11-01\nversion: 1\nanswer: 我们不销售二手车，只经营家电和数码产品。\n"
        "questions:\n  - 你们卖二手车吗\n  - 能买二手汽车吗\n---\n我们不销售二手车。\n",
        encoding="utf-8",
    )

    assert cache.get() is before  # answered from the old index while the new one builds
    assert cache.wait_for_rebuild(timeout=120)
    after = cache.get()

    assert after is not before
    assert len(after.articles) == len(before.articles) + 1
    hit = after.search("发票抬头写错了能改吗")[0]
    assert hit.id == "invoice"
    assert hit.answer.startswith("自2027年1月起所有订单")
    assert top_id(after, "你们卖二手车吗") == "used-cars"
    (new_index,) = index_dir.glob("kb-*.pickle")
    assert new_index.name != old_index.name
