"""The Rasa policy that predicts action_escalate from the escalation policy file."""

from __future__ import annotations

from typing import Any

import pytest
from rasa.core.policies.ensemble import DefaultPolicyPredictionEnsemble
from rasa.core.policies.policy import PolicyPrediction
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    ConversationPaused,
    ConversationResumed,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.handoff.policy import load_escalation_policy
from bot.handoff.rasa_policy import EscalationTriggerPolicy, hears_while_paused, turn_signals
from bot.settings import PROJECT_ROOT

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))
CALM = {"label": "neutral", "score": 0.0, "escalate": False, "reasons": []}
UPSET = {"label": "negative", "score": -0.6, "escalate": False, "reasons": ["anger"]}
DANGER = {"label": "negative", "score": -0.9, "escalate": True, "reasons": ["safety"]}
THREAT = {"label": "negative", "score": -1.0, "escalate": True, "reasons": ["threat"]}


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> EscalationTriggerPolicy:
    storage = LocalModelStorage(tmp_path_factory.mktemp("storage"))
    context = ExecutionContext(GraphSchema({}), "test")
    return EscalationTriggerPolicy(
        {"priority": 7},
        storage,
        Resource("escalation"),
        context,
        escalation_policy=load_escalation_policy(),
    )


def said(text: str, intent: str = "inform", sentiment: dict | None = None) -> list[Event]:
    parse: dict[str, Any] = {
        "intent": {"name": intent, "confidence": 0.9},
        "entities": [],
        "text": text,
    }
    if sentiment is not None:
        parse["sentiment"] = sentiment
    return [
        ActionExecuted("action_listen"),
        UserUttered(text, {"name": intent, "confidence": 0.9}, parse_data=parse),
    ]


def tracker_of(*events: Event) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("customer", list(events), DOMAIN.slots)


def predicted(policy: EscalationTriggerPolicy, tracker: DialogueStateTracker) -> str | None:
    prediction = policy.predict_action_probabilities(tracker, DOMAIN)
    best = max(range(len(prediction.probabilities)), key=prediction.probabilities.__getitem__)
    if prediction.probabilities[best] == 0:
        return None
    return DOMAIN.action_names_or_texts[best]


def against_the_form_asking_again(
    policy: EscalationTriggerPolicy, tracker: DialogueStateTracker, form: str
) -> str:
    """What Rasa's ensemble runs when RulePolicy predicts ``form`` again ("loop happy path",
    which it ranks above any prediction that reads the message) and this policy predicts too."""
    form_again = [0.0] * len(DOMAIN.action_names_or_texts)
    form_again[DOMAIN.index_for_action(form)] = 1.0
    rule = PolicyPrediction(form_again, "RulePolicy", policy_priority=6, is_no_user_prediction=True)
    ours = policy.predict_action_probabilities(tracker, DOMAIN)
    best = DefaultPolicyPredictionEnsemble().combine_predictions([rule, ours], tracker, DOMAIN)
    return DOMAIN.action_names_or_texts[best.max_confidence_index]


def test_a_calm_message_is_left_to_the_rules(policy) -> None:
    assert predicted(policy, tracker_of(*said("退货运费怎么算", "ask_question", CALM))) is None


def test_a_message_flagged_by_sentiment_escalates_with_its_reasons(policy) -> None:
    tracker = tracker_of(*said("家里有燃气味", "report_fault", DANGER))
    prediction = policy.predict_action_probabilities(tracker, DOMAIN)
    assert predicted(policy, tracker) == "action_escalate"
    slots = {e.key: e.value for e in prediction.events if isinstance(e, SlotSet)}
    assert slots == {"escalation_trigger": "sentiment_escalate", "escalation_reasons": ["safety"]}
    assert prediction.policy_priority == 7


def test_two_negative_turns_in_a_row_escalate_but_one_does_not(policy) -> None:
    one = tracker_of(*said("怎么还没到", "query_order", UPSET))
    assert predicted(policy, one) is None
    two = tracker_of(*said("怎么还没到", "query_order", UPSET), *said("太慢了", "inform", UPSET))
    assert predicted(policy, two) == "action_escalate"
    broken = tracker_of(
        *said("怎么还没到", "query_order", UPSET),
        *said("好的", "affirm", CALM),
        *said("太慢了", "inform", UPSET),
    )
    assert predicted(policy, broken) is None


def test_asking_for_a_person_and_complaining_escalate(policy) -> None:
    assert predicted(policy, tracker_of(*said("转人工", "request_human", CALM))) == (
        "action_escalate"
    )
    assert predicted(policy, tracker_of(*said("我要投诉", "complain", CALM))) == "action_escalate"


def test_two_fallbacks_in_a_row_escalate(policy) -> None:
    first = [*said("那个东西", "nlu_fallback"), ActionExecuted("action_clarify_fallback")]
    tracker = tracker_of(*first, *said("嗯嗯那个", "nlu_fallback"))
    assert [t.fallback for t in turn_signals(tracker)] == [True, True]
    assert predicted(policy, tracker) == "action_escalate"
    assert predicted(policy, tracker_of(*said("那个东西", "nlu_fallback"))) is None


def test_a_vip_with_an_open_ticket_asking_for_help_escalates(policy) -> None:
    asks = said("我的维修到哪了", "query_ticket_status", CALM)
    vip = tracker_of(SlotSet("customer_tier", "vip"), SlotSet("has_open_ticket", True), *asks)
    assert predicted(policy, vip) == "action_escalate"
    gold = tracker_of(SlotSet("customer_tier", "gold"), SlotSet("has_open_ticket", True), *asks)
    assert predicted(policy, gold) is None


def test_a_vip_is_offered_a_person_once_and_not_while_answering_a_form(policy) -> None:
    """ "两台都装" at the address question, or a second request after the call-back was
    promised, is not a new call for help: no second "nobody is online" message."""
    vip = [SlotSet("customer_tier", "vip"), SlotSet("has_open_ticket", True)]
    in_form = tracker_of(
        *vip, ActiveLoop("installation_form"), *said("两台都装", "request_installation", CALM)
    )
    assert predicted(policy, in_form) != "action_escalate"
    first = [*vip, *said("空调要预约安装", "request_installation", CALM)]
    again = tracker_of(*first, ActionExecuted("action_escalate"), *said("多少钱", "ask_question"))
    assert predicted(policy, again) is None
    next_session = tracker_of(
        *first,
        ActionExecuted("action_escalate"),
        ActionExecuted("action_session_start"),
        SessionStarted(),
        *vip,
        *said("我的维修到哪了", "query_ticket_status", CALM),
    )
    assert predicted(policy, next_session) == "action_escalate"
    # Anything else that needs a person still brings one in.
    angry = tracker_of(*first, ActionExecuted("action_escalate"), *said("转人工", "request_human"))
    assert predicted(policy, angry) == "action_escalate"


def test_streaks_start_again_after_a_handover_or_hand_back(policy) -> None:
    before = said("怎么还没到", "query_order", UPSET)
    escalated = tracker_of(*before, ActionExecuted("action_escalate"), *said("慢", "inform", UPSET))
    assert predicted(policy, escalated) is None
    resumed = tracker_of(*before, ConversationResumed(), *said("慢", "inform", UPSET))
    assert predicted(policy, resumed) is None


def test_after_escalating_it_starts_the_follow_up_form_or_listens(policy) -> None:
    listen = tracker_of(*said("转人工", "request_human"), ActionExecuted("action_escalate"))
    assert predicted(policy, listen) == "action_listen"
    form = tracker_of(
        *said("转人工", "request_human"),
        ActionExecuted("action_escalate"),
        SlotSet("handoff_followup", "message_form"),
    )
    prediction = policy.predict_action_probabilities(form, DOMAIN)
    assert predicted(policy, form) == "message_form"
    assert SlotSet("handoff_followup", None) in prediction.events
    # inside a form (nobody online, the message form under way), the form asks again
    # (QA: "机器人滚 听不懂人话" at 请留下您的问题 left the chat with no question)
    in_form = tracker_of(
        ActiveLoop("message_form"),
        SlotSet("requested_slot", "request_reason"),
        *said("机器人滚 听不懂人话", "request_human", UPSET),
        ActionExecuted("action_escalate"),
    )
    assert predicted(policy, in_form) == "message_form"


def test_escalation_outranks_a_form_asking_for_its_next_slot(policy) -> None:
    """Inside a repair form, Rasa's RulePolicy predicts the form again ("loop happy path"),
    a prediction its ensemble ranks above any that reads the message."""
    tracker = tracker_of(
        *said("洗衣机漏水了", "report_fault", CALM),
        ActionExecuted("repair_form"),
        ActiveLoop("repair_form"),
        SlotSet("requested_slot", "order_id"),
        *said("修了三次还是漏 再不解决我就打12315", "nlu_fallback", THREAT),
    )
    assert against_the_form_asking_again(policy, tracker, "repair_form") == "action_escalate"


def test_no_escalation_while_the_customer_is_telling_a_complaint(policy) -> None:
    tracker = tracker_of(
        ActiveLoop("complaint_form"),
        *said("师傅迟到还骂人", "inform", UPSET),
        *said("太过分了", "inform", UPSET),
    )
    assert predicted(policy, tracker) is None


def test_only_fresh_customer_messages_are_judged(policy) -> None:
    tracker = tracker_of(*said("转人工", "request_human"), ActionExecuted("utter_greet"))
    assert predicted(policy, tracker) is None


def queued(*events: Event) -> DialogueStateTracker:
    """A chat waiting for a person (action_escalate paused it), then ``events``."""
    return tracker_of(
        *said("转人工", "request_human"),
        ActionExecuted("action_escalate"),
        ConversationPaused(),
        *events,
    )


def waiting_said(text: str, intent: str) -> list[Event]:
    """A message of a paused chat: Rasa runs no action_listen before it."""
    return said(text, intent)[1:]


def test_a_waiting_customer_who_will_not_wait_leaves_the_queue(policy) -> None:
    for text, intent in [
        ("算了 不等了", "cancel"),
        ("不用轉人工了", "inform"),  # Traditional characters
        ("算了", "cancel"),
        ("/cancel", "cancel"),  # the queued message's buttons
        ("/leave_message", "leave_message"),
    ]:
        tracker = queued(*waiting_said(text, intent))
        assert hears_while_paused(tracker), text
        assert predicted(policy, tracker) == "action_leave_queue", text


def test_other_messages_of_a_paused_chat_are_only_recorded_for_the_agent(policy) -> None:
    for text, intent in [
        ("等不了了 你们快点", "complain"),  # impatience keeps its place in the queue
        ("我再留个言 订单号SO20261101001", "leave_message"),  # typed, not the button
        ("算了吧 你们这个服务真的是不行", "cancel"),  # a long message is not a short cancel
        ("在吗", "greet"),
    ]:
        tracker = queued(*waiting_said(text, intent))
        assert not hears_while_paused(tracker), text
    assert hears_while_paused(tracker_of(*said("你好", "greet")))  # not paused: Rasa as usual
    assert hears_while_paused(queued(*waiting_said("/restart", "restart")))


def test_after_leaving_the_queue_it_listens_even_with_a_form_left_open(policy) -> None:
    """An agent may have taken the chat just before (the action then changes nothing): the
    form the escalation interrupted must not start asking again under the agent's nose."""
    tracker = queued(
        ActiveLoop("repair_form"),
        SlotSet("requested_slot", "address"),
        *waiting_said("不等了", "cancel"),
        ActionExecuted("action_leave_queue"),
    )
    assert against_the_form_asking_again(policy, tracker, "repair_form") == "action_listen"


def test_once_back_with_the_bot_it_waits_for_the_next_message(policy) -> None:
    """Not a fallback for "不等了" (QA: the rules knew no step after leaving the queue, so the
    bot said it did not understand, and the fallback streak queued the chat again)."""
    tracker = queued(
        *waiting_said("算了 不等了", "cancel"),
        ActionExecuted("action_leave_queue"),
        ConversationResumed(),
    )
    assert predicted(policy, tracker) == "action_listen"
