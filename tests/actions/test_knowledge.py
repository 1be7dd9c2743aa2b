"""Knowledge answers in the conversation: answer, not helpful → second candidate → help."""

from __future__ import annotations

import asyncio

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.knowledge import ActionAnswerQuestion, ActionKnowledgeFeedback, ActionShowScenarios
from bot.settings import PROJECT_ROOT
from bot.store.models import KbSearch
from tests.actions.conftest import make_tracker, responses


def run(action, tracker):
    """Run ``action`` as Rasa calls it: with no domain (only send_domain actions get one)."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher, {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_question_gets_the_short_answer_title_and_feedback_buttons(knowledge) -> None:
    tracker = make_tracker(text="退货的运费谁来出", intent="ask_question")
    dispatcher, slots = run(ActionAnswerQuestion(), tracker)
    assert responses(dispatcher) == ["utter_kb_answer"]
    message = dispatcher.messages[0]
    assert message["title"] == "退货运费谁承担"
    assert slots["kb_search_id"] is not None


def test_a_forms_open_answer_filed_as_a_question_is_taken_as_the_answer(knowledge) -> None:
    """ "音质一般" at the return-reason question: no article, no question word — the reason."""
    waiting = {"active_loop": "return_form", "requested_slot": "request_reason"}
    tracker = make_tracker(waiting, text="不喜欢 音质一般", intent="ask_question")
    dispatcher, slots = run(ActionAnswerQuestion(), tracker)
    assert dispatcher.messages == [] and slots == {"request_reason": "不喜欢 音质一般"}
    # a real question in the middle of the form is still answered, and the slot left alone
    tracker = make_tracker(waiting, text="退货运费谁出", intent="ask_question")
    dispatcher, slots = run(ActionAnswerQuestion(), tracker)
    assert responses(dispatcher) == ["utter_kb_answer"] and "request_reason" not in slots
    # as is anything asked as a question, article or not
    tracker = make_tracker(waiting, text="你们卖二手车吗", intent="ask_question")
    dispatcher, slots = run(ActionAnswerQuestion(), tracker)
    assert responses(dispatcher) == ["utter_kb_not_found"] and "request_reason" not in slots
    # the form's own check still applies: too short to be a fault description
    short = {"active_loop": "repair_form", "requested_slot": "fault_description"}
    dispatcher, slots = run(
        ActionAnswerQuestion(), make_tracker(short, text="音质", intent="ask_question")
    )
    assert responses(dispatcher) == ["utter_text_too_short"] and slots == {
        "fault_description": None
    }


def test_a_bare_product_at_the_product_question_is_the_product(knowledge, desk) -> None:
    """ "滚筒洗衣机" at "是哪一件商品？" read as a question about washers: the knowledge base
    said it had no answer and asked again, and the customer could only tap the button."""
    asked = {
        "active_loop": "installation_form",
        "requested_slot": "product",
        "order_id": "SO20261101001",
        "phone": "13800138000",
        "verified_customer": "SO20261101001",
    }
    tracker = make_tracker(asked, text="滚筒洗衣机", intent="ask_question")
    verified_earlier = {"event": "slot", "name": "verified_customer", "value": "SO20261101001"}
    tracker.events.insert(0, verified_earlier)
    dispatcher, slots = run(ActionAnswerQuestion(), tracker)
    assert dispatcher.messages == [] and slots["product"] == "滚筒洗衣机"
    # not on the order: the form's own check says so
    tracker = make_tracker(asked, text="冰箱", intent="ask_question")
    tracker.events.insert(0, verified_earlier)
    dispatcher, slots = run(ActionAnswerQuestion(), tracker)
    assert responses(dispatcher) == ["utter_unknown_product"] and slots["product"] is None
    # a question about the product is still answered
    tracker = make_tracker(asked, text="滚筒洗衣机怎么清洗", intent="ask_question")
    dispatcher, slots = run(ActionAnswerQuestion(), tracker)
    assert responses(dispatcher) == ["utter_kb_answer"] and "product" not in slots


def test_what_now_is_answered_about_the_previous_message(knowledge) -> None:
    """ "那怎么办" after a leak report: the leak article, not "not found"."""
    tracker = make_tracker(text="那怎么办", intent="ask_question")
    earlier = [
        {"event": "user", "text": "洗衣机底下一直在往外渗水"},
        {"event": "bot", "text": "……"},
        {"event": "user", "text": '/inform{"product": "洗衣机"}'},
    ]
    tracker.events[:0] = earlier
    dispatcher, _ = run(ActionAnswerQuestion(), tracker)
    assert responses(dispatcher) == ["utter_kb_answer"]
    assert dispatcher.messages[0]["title"] == "洗衣机漏水排查"
    # a message of an earlier session is no context
    tracker = make_tracker(text="那怎么办", intent="ask_question")
    tracker.events[:0] = [earlier[0], {"event": "session_started"}]
    dispatcher, _ = run(ActionAnswerQuestion(), tracker)
    assert responses(dispatcher) != ["utter_kb_answer"]


def test_unanswerable_question_offers_a_ticket_or_a_person(knowledge) -> None:
    tracker = make_tracker(text="你们卖二手车吗", intent="ask_question")
    dispatcher, _ = run(ActionAnswerQuestion(), tracker)
    assert responses(dispatcher) == ["utter_kb_not_found"]


def test_a_question_just_below_the_threshold_offers_likely_articles_and_help(
    knowledge, demo_factory
) -> None:
    """ "积分能换成钱吗" scores its article below the threshold: not an answer, but a choice."""
    tracker = make_tracker(text="积分能换成钱吗", intent="ask_question")
    dispatcher, slots = run(ActionAnswerQuestion(), tracker)
    assert responses(dispatcher) == ["utter_kb_suggestions"]
    buttons = dispatcher.messages[0]["buttons"]
    # the one article that reaches the suggestion floor, then the ticket and person buttons
    assert [b["payload"] for b in buttons] == [
        '/ask_question{"kb_article": "points-redemption"}',
        "/leave_message",
        "/request_human",
    ]
    assert slots["kb_search_id"] is None
    with demo_factory() as session:
        logged = session.execute(select(KbSearch)).scalars().one()
        assert logged.query == "积分能换成钱吗" and not logged.found

    chosen = make_tracker({"kb_article": "points-redemption"}, intent="ask_question")
    dispatcher, _ = run(ActionAnswerQuestion(), chosen)
    assert responses(dispatcher) == ["utter_kb_answer"]


def test_not_helpful_then_second_candidate_then_ticket_or_person(knowledge, demo_factory):
    asked = make_tracker(text="退货的运费谁来出", intent="ask_question")
    _, slots = run(ActionAnswerQuestion(), asked)
    first_search = slots["kb_search_id"]
    assert slots["kb_candidates"], "a second candidate is kept for a 'not helpful' answer"

    denied = make_tracker(slots, intent="deny")
    dispatcher, slots = run(ActionKnowledgeFeedback(), denied)
    assert responses(dispatcher) == ["utter_kb_second_try", "utter_kb_answer"]
    with demo_factory() as session:
        assert session.get(KbSearch, int(first_search)).helpful is False

    denied_again = make_tracker(slots, intent="deny")
    dispatcher, _ = run(ActionKnowledgeFeedback(), denied_again)
    assert responses(dispatcher) == ["utter_kb_no_more_answers"]


def test_and_what_about_after_an_answer_is_the_next_question_not_a_yes(knowledge) -> None:
    """ "那压缩机呢" after the warranty answer, filed as affirm, got "太好了！"."""
    tracker = make_tracker(
        {"kb_search_id": 1, "kb_candidates": []}, text="那压缩机呢", intent="affirm"
    )
    tracker.events[:0] = [{"event": "user", "text": "空调保修几年"}]
    dispatcher, _ = run(ActionKnowledgeFeedback(), tracker)
    assert responses(dispatcher) == ["utter_kb_answer"]
    assert (
        dispatcher.messages[0]["title"] == knowledge.open_article("warranty-period").hits[0].title
    )


def test_helpful_feedback_is_recorded(knowledge, demo_factory) -> None:
    _, slots = run(ActionAnswerQuestion(), make_tracker(text="发票怎么开", intent="ask_question"))
    dispatcher, _ = run(ActionKnowledgeFeedback(), make_tracker(slots, intent="affirm"))
    assert responses(dispatcher) == ["utter_kb_glad"]
    with demo_factory() as session:
        rows = session.execute(select(KbSearch.helpful)).scalars().all()
    assert rows == [True]


def test_scenario_menu_lists_four_scenarios_with_article_buttons(knowledge) -> None:
    dispatcher, _ = run(ActionShowScenarios(), make_tracker(intent="ask_capabilities"))
    assert responses(dispatcher) == [
        "utter_capabilities",
        "utter_scenario_new_user_guide",
        "utter_scenario_product_use",
        "utter_scenario_troubleshooting",
        "utter_scenario_account_management",
    ]
    for message in dispatcher.messages[1:]:
        assert message["buttons"]
        assert all(
            b["payload"].startswith('/ask_question{"kb_article": ') for b in message["buttons"]
        )


def test_choosing_an_article_from_the_menu_shows_it(knowledge) -> None:
    tracker = make_tracker({"kb_article": "invoice"}, intent="ask_question")
    dispatcher, slots = run(ActionAnswerQuestion(), tracker)
    assert dispatcher.messages[0]["response"] == "utter_kb_answer"
    assert slots["kb_article"] is None


def test_yes_or_no_without_a_shown_answer_offers_help(knowledge) -> None:
    dispatcher, _ = run(ActionKnowledgeFeedback(), make_tracker(intent="affirm"))
    assert responses(dispatcher) == ["utter_offer_help"]


def test_no_to_the_offer_of_a_ticket_or_a_person_is_simply_acknowledged(knowledge) -> None:
    tracker = make_tracker(intent="deny", text="/deny")
    offer = {"event": "bot", "text": "…", "metadata": {"utter_action": "utter_kb_no_more_answers"}}
    tracker.events.insert(0, offer)
    tracker.events.insert(0, {"event": "user", "text": "没帮助"})
    dispatcher, _ = run(ActionKnowledgeFeedback(), tracker)
    assert responses(dispatcher) == ["utter_deny_ack"]
    # a "no" to anything else (a clarifying question) still offers real help
    tracker.events[1]["metadata"] = {"utter_action": "utter_ask_rephrase"}
    dispatcher, _ = run(ActionKnowledgeFeedback(), tracker)
    assert responses(dispatcher) == ["utter_offer_help"]


def test_the_answer_reaches_the_customer_with_the_feedback_buttons() -> None:
    """Rendered by Rasa from domain.yml, as the customer's channel receives it."""
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    generator = TemplatedNaturalLanguageGenerator(domain.responses)
    tracker = DialogueStateTracker.from_events("customer", [])
    message = asyncio.run(
        generator.generate(
            "utter_kb_answer", tracker, "rest", answer="7 天内可退。", title="七天无理由退货"
        )
    )
    assert message["text"] == "7 天内可退。\n——《七天无理由退货》"
    assert [(b["title"], b["payload"]) for b in message["buttons"]] == [
        ("有帮助", "/affirm"),
        ("没帮助", "/deny"),
    ]
