"""Knowledge-base answers: best article first, a second candidate if it did not help, then
a ticket or a person; and the scenario menu for customers who are not sure what to ask."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.forms import form_answer_taken_for_a_question
from actions.tickets import previous_customer_text
from bot.kb.articles import Article
from bot.kb.search import Hit
from bot.kb.service import KnowledgeUnavailable, default_knowledge_service, is_follow_up
from bot.settings import project_domain

HELP_OFFERS = frozenset(
    {"utter_kb_no_more_answers", "utter_kb_not_found", "utter_kb_suggestions", "utter_offer_help"}
)
"""Responses that offer a ticket or a person: a "no" after one declines the offer."""


def last_bot_response(tracker: Tracker) -> str | None:
    """The response the bot last sent before the customer's latest message."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_user:
                return None
            seen_user = True
        elif event.get("event") == "bot" and seen_user:
            return (event.get("metadata") or {}).get("utter_action")
    return None


def _show(dispatcher: CollectingDispatcher, answer: str, title: str) -> None:
    """The answer, its title and the 有帮助 / 没帮助 buttons (all in the response template)."""
    dispatcher.utter_message(response="utter_kb_answer", answer=answer, title=title)


def _article_button(article: Article | Hit) -> dict[str, str]:
    """A button that opens one article (the ``kb_article`` slot takes its id)."""
    return {"title": article.title, "payload": f'/ask_question{{"kb_article": "{article.id}"}}'}


def _help_buttons() -> list[dict[str, str]]:
    """The ticket and person buttons of ``utter_kb_not_found``, reused under the suggestions
    so both replies offer the same way out."""
    (variant, *_) = project_domain()["responses"]["utter_kb_not_found"]
    return list(variant.get("buttons") or [])


class ActionAnswerQuestion(Action):
    """Search the knowledge base for the customer's question (or a chosen article)."""

    def name(self) -> str:
        return "action_answer_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        form_answer = form_answer_taken_for_a_question(dispatcher, tracker, domain)
        if form_answer is not None:
            return form_answer
        service = default_knowledge_service()
        article_id = tracker.get_slot("kb_article")
        try:
            if article_id:
                result = service.open_article(article_id, tracker.sender_id)
            else:
                query = tracker.latest_message.get("text") or ""
                context = previous_customer_text(tracker)
                result = service.answer(query, tracker.sender_id, context=context)
        except KnowledgeUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return [SlotSet("kb_article", None)]
        if not result.hits:
            if result.suggestions:
                dispatcher.utter_message(
                    response="utter_kb_suggestions",
                    buttons=[*map(_article_button, result.suggestions), *_help_buttons()],
                )
            else:
                dispatcher.utter_message(response="utter_kb_not_found")
            return [
                SlotSet("kb_article", None),
                SlotSet("kb_search_id", None),
                SlotSet("kb_candidates", None),
            ]
        best = result.hits[0]
        _show(dispatcher, best.answer, best.title)
        return [
            SlotSet("kb_article", None),
            SlotSet("kb_search_id", result.search_id),
            SlotSet(
                "kb_candidates", [result.second_candidate.id] if result.second_candidate else []
            ),
        ]


class ActionKnowledgeFeedback(Action):
    """Record 有帮助 / 没帮助; offer the next candidate once, then a ticket or a person."""

    def name(self) -> str:
        return "action_kb_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if is_follow_up(tracker.latest_message.get("text") or ""):
            # "那压缩机呢" read as a yes: it is the next question, not feedback.
            return await ActionAnswerQuestion().run(dispatcher, tracker, domain)
        helpful = tracker.get_intent_of_latest_message() == "affirm"
        service = default_knowledge_service()
        search_id = tracker.get_slot("kb_search_id")
        if search_id is None and not tracker.get_slot("kb_candidates"):
            if not helpful and last_bot_response(tracker) in HELP_OFFERS:
                # "No" to the offer of a ticket or a person: fine, nothing more to push.
                dispatcher.utter_message(response="utter_deny_ack")
                return []
            # A yes/no after a clarifying question, not after an answer: offer real help.
            dispatcher.utter_message(response="utter_offer_help")
            return []
        try:
            if search_id is not None:
                service.record_feedback(int(search_id), helpful)
        except KnowledgeUnavailable:
            pass  # feedback is best effort; the customer still gets an answer below
        if helpful:
            dispatcher.utter_message(response="utter_kb_glad")
            return [SlotSet("kb_search_id", None), SlotSet("kb_candidates", None)]
        candidates = list(tracker.get_slot("kb_candidates") or [])
        if not candidates:
            # Understood, but nothing better to show: a ticket or a person.
            dispatcher.utter_message(response="utter_kb_no_more_answers")
            return [SlotSet("kb_search_id", None), SlotSet("kb_candidates", None)]
        try:
            result = service.open_article(candidates[0], tracker.sender_id, second_try=True)
        except KnowledgeUnavailable:
            dispatcher.utter_message(response="utter_kb_no_more_answers")
            return [SlotSet("kb_search_id", None), SlotSet("kb_candidates", None)]
        best = result.hits[0]
        dispatcher.utter_message(response="utter_kb_second_try")
        _show(dispatcher, best.answer, best.title)
        return [SlotSet("kb_search_id", result.search_id), SlotSet("kb_candidates", [])]


class ActionShowScenarios(Action):
    """The four self-service scenarios, each with its most-used articles as buttons."""

    def name(self) -> str:
        return "action_show_scenarios"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_capabilities")
        try:
            menu = default_knowledge_service().scenario_menu()
        except KnowledgeUnavailable:
            return []
        for scenario, articles in menu.items():
            buttons = [_article_button(a) for a in articles]
            dispatcher.utter_message(response=f"utter_scenario_{scenario}", buttons=buttons)
        return []
