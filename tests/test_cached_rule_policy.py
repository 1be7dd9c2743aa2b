"""The cached rule lookup finds exactly the rules RulePolicy finds, and reuses its work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource

from bot.cached_rule_policy import CachedRulePolicy


def state(previous_action: str | None, intent: str | None = None, **slots: float) -> dict:
    result: dict = {}
    if previous_action:
        result["prev_action"] = {"action_name": previous_action}
    if intent:
        result["user"] = {"intent": intent}
    if slots:
        result["slots"] = {name: (value,) for name, value in slots.items()}
    return result


RULES = [
    [state(None), state("action_listen", "greet")],
    [state("action_listen", "greet")],
    [state("action_listen", "affirm")],
    [state("action_answer_question"), state("action_listen", "affirm")],
    [state("action_kb_feedback"), state("action_listen", "affirm")],
    [state("action_listen", "request_return", verified=1.0)],
    [state("action_listen", "greet"), state("utter_greet", "greet")],
]
CONVERSATIONS = [
    [state(None), state("action_listen", "greet")],
    [state("action_listen", "greet"), state("utter_greet", "greet")],
    [state("action_answer_question", "ask_question"), state("action_listen", "affirm")],
    [state("action_kb_feedback", "deny"), state("action_listen", "affirm")],
    [state("utter_greet", "greet"), state("action_listen", "request_return", verified=1.0)],
    [state("utter_greet", "greet"), state("action_listen", "request_return", verified=0.0)],
    [state("utter_greet", "greet"), state("action_listen", "thanks")],
]


@pytest.fixture
def policy(tmp_path: Path) -> CachedRulePolicy:
    """A policy loaded the way the Rasa server loads it, with a known rule lookup."""
    storage = LocalModelStorage(tmp_path)
    resource = Resource("rule_policy")
    context = ExecutionContext(GraphSchema({}), "test")
    config = CachedRulePolicy.get_default_config()
    lookup = {json.dumps(rule, sort_keys=True): f"action_{i}" for i, rule in enumerate(RULES)}
    trained = CachedRulePolicy.create(config, storage, resource, context)
    trained.lookup = {"rules": lookup, "rule_only_slots": [], "rule_only_loops": []}
    trained.persist()
    return CachedRulePolicy.load(config, storage, resource, context)


def test_a_trained_policy_keeps_rasas_lookup_and_a_loaded_one_caches(tmp_path: Path) -> None:
    context = ExecutionContext(GraphSchema({}), "test")
    fresh = CachedRulePolicy.create(
        CachedRulePolicy.get_default_config(), LocalModelStorage(tmp_path), Resource("r"), context
    )
    assert not fresh.cache_rule_lookups


def test_cached_lookup_matches_rule_policy_on_every_conversation(policy) -> None:
    lookup = policy.lookup["rules"]
    for states in CONVERSATIONS * 2:  # the second pass is answered from the cache
        stock = super(CachedRulePolicy, policy)._get_possible_keys(lookup, states)
        assert policy._get_possible_keys(lookup, states) == stock
    greeting = policy._get_possible_keys(lookup, CONVERSATIONS[1])
    assert {lookup[key] for key in greeting} == {"action_6"}  # the turn after utter_greet


def test_the_latest_state_is_checked_against_all_rules_only_once(policy, monkeypatch) -> None:
    lookup = policy.lookup["rules"]
    checks: list[int] = []
    stock_check = CachedRulePolicy._is_rule_applicable

    def counting(self, rule_key, turn_index, conversation_state):
        checks.append(turn_index)
        return stock_check(self, rule_key, turn_index, conversation_state)

    monkeypatch.setattr(CachedRulePolicy, "_is_rule_applicable", counting)
    policy._get_possible_keys(lookup, CONVERSATIONS[3])
    assert checks.count(0) == len(RULES)
    checks.clear()
    policy._get_possible_keys(lookup, [state("action_answer_question"), CONVERSATIONS[3][-1]])
    assert 0 not in checks
