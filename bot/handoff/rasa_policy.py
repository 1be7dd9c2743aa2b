"""The Rasa policy that brings in a person when `config/escalation_policy.yml` says so.

Rules cannot see sentiment or count negative turns, so this small policy looks at each new
customer message together with the turns before it, asks
:meth:`bot.handoff.policy.EscalationPolicy.decide`, and predicts ``action_escalate`` (with the
trigger and its reasons in slots for the action) ahead of the rules.  Right after
``action_escalate`` it predicts what the action asked for in ``handoff_followup`` — a form
that captures the request as a ticket when nobody is online — or listening.

config.yml::

    policies:
      - name: bot.handoff.rasa_policy.EscalationTriggerPolicy
        priority: 7   # above RulePolicy (6)
"""

from __future__ import annotations

from typing import Any

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.core.processor import MessageProcessor
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME, USER_INTENT_RESTART
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ConversationResumed,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from bot.handoff.bridge import is_external
from bot.handoff.policy import EscalationPolicy, TurnSignal, load_escalation_policy

ACTION_ESCALATE = "action_escalate"
ACTION_LEAVE_QUEUE = "action_leave_queue"
FALLBACK_ACTIONS = frozenset({"action_clarify_fallback", "action_default_fallback"})
NLU_FALLBACK_INTENT = "nlu_fallback"
TRIGGER_SLOT = "escalation_trigger"
REASONS_SLOT = "escalation_reasons"
FOLLOWUP_SLOT = "handoff_followup"
TIER_SLOT = "customer_tier"
OPEN_TICKET_SLOT = "has_open_ticket"
# Enough history for every streak the policy file can ask for.
MAX_TURNS = 6
# Forms where upset words are the expected answer (the complaint itself, a message for the
# call-back, the survey): a person is already on the way or has just helped.
QUIET_FORMS = frozenset({"complaint_form", "message_form", "csat_form"})


def turn_signals(tracker: DialogueStateTracker, max_turns: int = MAX_TURNS) -> list[TurnSignal]:
    """The customer's turns since the bot last handed over (or got the chat back), oldest first.

    A turn counts as a fallback when the NLU fell back or the bot answered it with a fallback
    action (which also rewinds the message; the events still hold it).
    """
    turns: list[dict[str, Any]] = []
    for event in tracker.events:
        if isinstance(event, ConversationResumed):
            turns = []
        elif isinstance(event, ActionExecuted):
            if event.action_name == ACTION_ESCALATE:
                turns = []
            elif event.action_name in FALLBACK_ACTIONS and turns:
                turns[-1]["fallback"] = True
        elif isinstance(event, UserUttered) and not is_external(event):
            intent = (event.intent or {}).get(INTENT_NAME_KEY)
            sentiment = (event.parse_data or {}).get("sentiment") or {}
            turns.append(
                {
                    "intent": intent,
                    "sentiment_label": sentiment.get("label"),
                    "sentiment_escalate": bool(sentiment.get("escalate")),
                    "sentiment_reasons": tuple(sentiment.get("reasons") or ()),
                    "fallback": intent == NLU_FALLBACK_INTENT,
                }
            )
    return [TurnSignal(**turn) for turn in turns[-max_turns:]]


def says_leaving_queue(tracker: DialogueStateTracker, policy: EscalationPolicy) -> bool:
    """Whether the latest message of a paused chat says the customer will not wait."""
    message = tracker.latest_message
    if message is None or is_external(message):
        return False
    return policy.leaves_queue(message.text, (message.intent or {}).get(INTENT_NAME_KEY))


def _left_queue_since_message(tracker: DialogueStateTracker) -> bool:
    """Whether action_leave_queue already ran for the latest message.  (A paused chat has no
    action_listen before its messages: the latest action is still the one that paused it.)"""
    for event in reversed(tracker.events):
        if isinstance(event, ActionExecuted) and event.action_name == ACTION_LEAVE_QUEUE:
            return True
        if isinstance(event, UserUttered):
            return False
    return False


def hears_while_paused(tracker: DialogueStateTracker) -> bool:
    """Replaces Rasa's check of whether to act on a message (``MessageProcessor.
    _should_handle_message``): besides what Rasa lets through (not paused, or a restart), a
    waiting customer's "不等了" reaches the policies, which run ``action_leave_queue``.  Every
    other message of a paused chat is only recorded, for the agent."""
    if not tracker.is_paused():
        return True
    message = tracker.latest_message
    if message is not None and (message.intent or {}).get(INTENT_NAME_KEY) == USER_INTENT_RESTART:
        return True
    return says_leaving_queue(tracker, load_escalation_policy())


def person_offered(tracker: DialogueStateTracker) -> bool:
    """Whether this session already brought in a person or promised a call-back."""
    offered = False
    for event in tracker.events:
        if isinstance(event, SessionStarted):
            offered = False
        elif isinstance(event, ActionExecuted) and event.action_name == ACTION_ESCALATE:
            offered = True
    return offered


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class EscalationTriggerPolicy(Policy):
    """Predicts ``action_escalate`` when the escalation policy file's triggers fire."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"priority": 7}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer: Any = None,
        escalation_policy: EscalationPolicy | None = None,
    ) -> None:
        super().__init__(config, model_storage, resource, execution_context, featurizer=None)
        self._escalation_policy = escalation_policy

    @property
    def escalation_policy(self) -> EscalationPolicy:
        # Read at run time, not at training: operators tune the file without retraining.
        if self._escalation_policy is None:
            self._escalation_policy = load_escalation_policy()
        return self._escalation_policy

    def train(
        self,
        training_trackers: list[TrackerWithCachedStates],
        domain: Domain,
        **kwargs: Any,
    ) -> Resource:
        return self._resource

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        scores = self._default_predictions(domain)
        latest_action = tracker.latest_action_name
        if latest_action == ACTION_LEAVE_QUEUE:
            # Done for this message, back with the bot or still with the agent.
            scores[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0
            return self._prediction(scores, is_no_user_prediction=True)
        if tracker.is_paused() and ACTION_LEAVE_QUEUE in domain.action_names_or_texts:
            # Only a message saying the customer will not wait gets here (hears_while_paused):
            # it leaves the queue once; a form left open under the pause must not run.
            leaving = not _left_queue_since_message(tracker) and says_leaving_queue(
                tracker, self.escalation_policy
            )
            next_action = ACTION_LEAVE_QUEUE if leaving else ACTION_LISTEN_NAME
            scores[domain.index_for_action(next_action)] = 1.0
            return self._prediction(scores, is_no_user_prediction=True)
        if latest_action == ACTION_ESCALATE:
            followup = tracker.get_slot(FOLLOWUP_SLOT)
            next_action = followup if followup in domain.action_names_or_texts else None
            # A form under way asks its question again (a paused chat runs nothing more).
            next_action = next_action or tracker.active_loop_name
            scores[domain.index_for_action(next_action or ACTION_LISTEN_NAME)] = 1.0
            events = [SlotSet(FOLLOWUP_SLOT, None)] if followup else []
            return self._prediction(scores, events=events)
        if latest_action != ACTION_LISTEN_NAME or tracker.latest_message is None:
            return self._prediction(scores)
        if (
            tracker.latest_message.text is None
            or ACTION_ESCALATE not in domain.action_names_or_texts
            or tracker.active_loop_name in QUIET_FORMS
        ):
            return self._prediction(scores)
        decision = self.escalation_policy.decide(
            turn_signals(tracker),
            tracker.get_slot(TIER_SLOT),
            bool(tracker.get_slot(OPEN_TICKET_SLOT)),
            in_form=tracker.active_loop_name is not None,
            person_offered=person_offered(tracker),
        )
        if decision is None:
            return self._prediction(scores)
        scores[domain.index_for_action(ACTION_ESCALATE)] = 1.0
        # Rasa's ensemble lets a prediction that "does not use the user's input" (a form's
        # happy path: keep asking for the order number) overrule every other one; marked the
        # same, this one competes with it on priority and wins, so an angry customer in the
        # middle of a form is brought a person too.
        return self._prediction(
            scores,
            events=[
                SlotSet(TRIGGER_SLOT, decision.trigger),
                SlotSet(REASONS_SLOT, list(decision.reasons)),
            ],
            is_no_user_prediction=True,
        )

    def persist(self) -> None:
        """Nothing to store: the policy file is read when the model runs."""

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> EscalationTriggerPolicy:
        return cls(config, model_storage, resource, execution_context)


# Rasa acts on a paused chat's message only for a restart; a waiting customer's "不等了" must
# reach the policies too.  Installed wherever the model (and so this policy) is loaded.
MessageProcessor._should_handle_message = staticmethod(hears_while_paused)
