"""The knowledge service: logged searches, feedback, the gaps report and the scenario menu."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot.kb.articles import ARTICLES_DIR, SCENARIOS
from bot.kb.search import SYNONYMS_FILE, KnowledgeBase, load_knowledge_base
from bot.kb.service import Gap, KnowledgeService, KnowledgeUnavailable, is_follow_up
from bot.store.db import session_factory, session_scope, upgrade_database
from bot.store.models import KbSearch

FOUND = "退货要运费吗"
NOT_FOUND = "你们卖二手车吗"


class FixedCache:
    """The service only asks its cache for the current knowledge base."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def get(self) -> KnowledgeBase:
        return self.kb


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    # Shared with tests/kb/test_search.py: built once per session, then loaded.
    index_dir = tmp_path_factory.getbasetemp() / "kb-index"
    return load_knowledge_base(ARTICLES_DIR, SYNONYMS_FILE, index_dir)


@pytest.fixture
def factory(sqlite_url: str):
    upgrade_database(sqlite_url)
    return session_factory(sqlite_url)


@pytest.fixture
def service(factory, kb: KnowledgeBase) -> KnowledgeService:
    return KnowledgeService(factory, FixedCache(kb))


def rows(factory) -> list[KbSearch]:
    with session_scope(factory) as session:
        return list(session.execute(select(KbSearch).order_by(KbSearch.id)).scalars())


# -- searching and logging ----------------------------------------------------------------


def test_every_search_is_logged(service: KnowledgeService, factory, kb: KnowledgeBase) -> None:
    found = service.answer(FOUND, sender_id="user-1")
    missing = service.answer(NOT_FOUND, sender_id="user-2")
    traditional = service.answer("退貨要運費嗎")

    assert found.hits == tuple(kb.search(FOUND))
    assert found.hits[0].id == "return-shipping-fee"
    assert missing.hits == ()
    assert missing.second_candidate is None
    assert traditional.hits == found.hits

    logged = rows(factory)
    assert [r.id for r in logged] == [found.search_id, missing.search_id, traditional.search_id]
    first, second, third = logged
    assert (first.query, first.sender_id, first.found, first.helpful) == (
        FOUND,
        "user-1",
        True,
        None,
    )
    assert first.normalised_query == kb.folder.fold(FOUND)
    assert first.hits == [{"id": h.id, "score": h.score} for h in found.hits]
    assert (first.top_article, first.top_score) == ("return-shipping-fee", found.hits[0].score)
    assert first.created_at is not None
    assert (second.query, second.sender_id, second.found) == (NOT_FOUND, "user-2", False)
    assert (second.hits, second.top_article, second.top_score) == ([], None, None)
    assert third.query == "退貨要運費嗎"
    assert third.normalised_query == first.normalised_query  # folded to the same question


@pytest.mark.parametrize(
    "text",
    [
        "现在怎么办",
        "那咋整呢？",
        "我该怎么做",
        "接下来怎么处理啊",
        "那压缩机呢？",
        "那怎么办啊 好怕",
        "那我现在该咋办",
        "怎么办啊 我好害怕",
        "然後呢 要怎麼做",
        "压缩机呢？",
        "那壓縮機咧",
        "冰箱的",  # QA: after "保修期多久啊" it got "不太确定您的意思"
        "是洗衣机",
        "那电视的",  # QA: answered "太好了！还有其他问题随时问我"
        "洗衣机的呢",
    ],
)
def test_a_bare_what_now_is_a_follow_up(text: str) -> None:
    assert is_follow_up(text)


@pytest.mark.parametrize(
    "text", ["洗衣机漏水怎么办", "怎么退货", "你们卖二手车吗", "", "人呢", "冰箱坏了", "好的"]
)
def test_a_question_with_its_own_subject_is_not_a_follow_up(text: str) -> None:
    assert not is_follow_up(text)


def test_a_follow_up_is_searched_with_the_previous_message(
    service: KnowledgeService, factory, kb: KnowledgeBase
) -> None:
    """ "现在怎么办" after "厨房里煤气味很大" is about the gas smell; logged as typed."""
    alone = service.answer("现在怎么办")
    assert alone.hits == ()
    followed = service.answer("现在怎么办", sender_id="user-1", context="厨房里煤气味很大")
    assert followed.hits[0].id == "appliance-safety-emergency"
    logged = rows(factory)[-1]
    assert (logged.query, logged.top_article) == ("现在怎么办", "appliance-safety-emergency")
    assert logged.normalised_query == kb.folder.fold("厨房里煤气味很大 现在怎么办")
    # "and X?" asks the previous question about X
    what_about = service.answer("那压缩机呢", context="空调保修几年")
    assert what_about.hits[0].id == "warranty-period"
    which = service.answer("冰箱的", context="保修期多久啊")
    assert which.hits[0].id == "warranty-period"
    # a question of its own ignores the context
    assert service.answer(NOT_FOUND, context="洗衣机底下一直漏水").hits == ()


def test_k_limits_the_hits(service: KnowledgeService) -> None:
    assert len(service.answer("发票", k=1).hits) <= 1


def test_second_candidate_is_the_runner_up(service: KnowledgeService) -> None:
    offered = 0
    for question in ("发票抬头写错了能改吗", "发票怎么开", "空调不制冷", FOUND):
        answer = service.answer(question)
        assert answer.hits
        if answer.second_candidate is not None:
            offered += 1
            assert answer.second_candidate in answer.hits[1:]
            assert answer.second_candidate.id != answer.hits[0].id
        elif len(answer.hits) > 1:
            assert question == "空调不制冷"  # the runner-up is the fridge article
    assert offered >= 1


def test_an_unlikely_runner_up_is_not_offered(service: KnowledgeService) -> None:
    """QA: "退款多久到账" → not helpful → an article on marketing texts (score 0.004)."""
    answer = service.answer("退款多久到账")
    assert answer.hits[0].id == "refund-timeline"
    assert answer.second_candidate is None


def test_the_second_candidate_is_never_about_another_product(service: KnowledgeService) -> None:
    """ "嗡嗡响" also appears in the microwave article: no help for a humming fridge."""
    answer = service.answer("我的冰箱最近一直嗡嗡响 正常吗")
    assert answer.hits[0].id == "troubleshoot-fridge-noise"
    assert "troubleshoot-microwave-not-heating" not in [hit.id for hit in answer.hits]
    assert answer.second_candidate is None or answer.second_candidate.id != (
        "troubleshoot-microwave-not-heating"
    )
    # with no product named, the runner-up is offered as it ranks
    plain = service.answer("发票抬头写错了能改吗")
    assert len(plain.hits) > 1 and plain.second_candidate == plain.hits[1]


def test_very_long_queries_are_logged_truncated(service: KnowledgeService, factory) -> None:
    service.answer("退货" * 400)
    (row,) = rows(factory)
    assert len(row.query) == 500
    assert len(row.normalised_query) <= 500


def test_open_article_is_logged_as_a_menu_choice(service: KnowledgeService, factory) -> None:
    chosen = service.open_article("invoice", sender_id="user-1")
    second = service.open_article("invoice", second_try=True)
    unknown = service.open_article("no-such-article")

    assert [h.id for h in chosen.hits] == ["invoice"]
    assert chosen.hits[0].score == 1.0
    assert unknown.hits == ()
    logged = rows(factory)
    assert [(r.query, r.top_article, r.found) for r in logged] == [
        ("#menu:invoice", "invoice", True),
        ("#second-candidate:invoice", "invoice", True),
        ("#no-such-article", None, False),
    ]
    assert [r.id for r in logged] == [chosen.search_id, second.search_id, unknown.search_id]


# -- feedback and gaps --------------------------------------------------------------------


def test_feedback_is_recorded(service: KnowledgeService, factory) -> None:
    helpful = service.answer(FOUND)
    unhelpful = service.answer("空调不制冷")
    service.record_feedback(helpful.search_id, True)
    service.record_feedback(unhelpful.search_id, False)
    service.record_feedback(999_999, False)  # unknown: ignored

    assert [r.helpful for r in rows(factory)] == [True, False]


def test_gaps_list_not_found_and_unhelpful_queries_by_frequency(
    service: KnowledgeService, kb: KnowledgeBase
) -> None:
    for _ in range(3):
        service.answer(NOT_FOUND)
    service.answer("附近有好吃的餐馆吗")
    for _ in range(2):
        service.record_feedback(service.answer("空调不制冷").search_id, False)
    service.record_feedback(service.answer("空调不制冷").search_id, True)
    service.record_feedback(service.answer(FOUND).search_id, True)
    service.answer("怎么修改密码")  # found, no feedback: not a gap
    service.open_article("no-such-article")  # menu clicks have no query text: not a gap

    gaps = service.gaps()

    assert gaps == [
        Gap(kb.folder.fold(NOT_FOUND), 3, 3, 0),
        Gap(kb.folder.fold("空调不制冷"), 2, 0, 2),
        Gap(kb.folder.fold("附近有好吃的餐馆吗"), 1, 1, 0),
    ]
    assert service.gaps(limit=1) == gaps[:1]


def test_no_gaps_in_an_empty_log(service: KnowledgeService) -> None:
    assert service.gaps() == []


# -- scenario menu ------------------------------------------------------------------------


def test_scenario_menu_without_usage_follows_the_files(
    service: KnowledgeService, kb: KnowledgeBase
) -> None:
    menu = service.scenario_menu()
    assert list(menu) == list(SCENARIOS)
    for scenario, articles in menu.items():
        in_files = [a for a in kb.articles if a.scenario == scenario]
        assert articles == in_files[:3]
    assert [len(a) for a in service.scenario_menu(size=1).values()] == [1, 1, 1, 1]


def test_scenario_menu_puts_the_most_used_articles_first(
    service: KnowledgeService, kb: KnowledgeBase
) -> None:
    article = kb.article("invoice")
    assert article is not None and article.scenario == "account_management"
    default_first = service.scenario_menu()["account_management"][0].id
    assert default_first != "invoice"

    for _ in range(3):
        service.open_article("invoice")
    for _ in range(2):
        service.open_article("account-password-reset")
    service.open_article("return-shipping-fee")  # another scenario

    menu = service.scenario_menu()
    assert [a.id for a in menu["account_management"][:2]] == ["invoice", "account-password-reset"]
    assert len(menu["account_management"]) == 3
    assert menu["new_user_guide"][0].id == "return-shipping-fee"
    assert {a.scenario for a in menu["troubleshooting"]} == {"troubleshooting"}


# -- store failures -----------------------------------------------------------------------


@pytest.fixture
def broken_service(tmp_path: Path, kb: KnowledgeBase) -> KnowledgeService:
    url = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'assistant.db'}"
    return KnowledgeService(session_factory(url), FixedCache(kb))


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.answer(FOUND),
        lambda s: s.open_article("invoice"),
        lambda s: s.record_feedback(1, True),
        lambda s: s.scenario_menu(),
    ],
    ids=["answer", "open_article", "record_feedback", "scenario_menu"],
)
def test_store_failures_are_knowledge_unavailable(broken_service: KnowledgeService, call) -> None:
    with pytest.raises(KnowledgeUnavailable) as raised:
        call(broken_service)
    assert isinstance(raised.value.__cause__, SQLAlchemyError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("退货要运费吗", True),
        ("保修多久", True),
        ("怎么开发票？", True),
        ("外包装破了 里面没事 要不要拒收", True),  # an A-not-A question
        ("这种情况该不该签收", True),
        ("好的", False),
        ("SO20261101001", False),
    ],
)
def test_looks_like_question(text: str, expected: bool) -> None:
    from bot.kb.service import looks_like_question

    assert looks_like_question(text) is expected


def test_only_a_plainly_answered_statement_counts_as_confident(
    service: KnowledgeService, factory
) -> None:
    assert service.answers_confidently("空调滴水")
    assert service.answers_confidently("扫地机老是卡在沙发下面")
    assert not service.answers_confidently("那个东西")
    assert not service.answers_confidently("我昨天买的")
    assert rows(factory) == []  # checking is not a search the gaps report should count
