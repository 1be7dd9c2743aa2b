"""RulePolicy that remembers which rules can match the latest dialogue state.

Every prediction, RulePolicy tests every rule against the conversation's states, newest
first; the first test, against the latest state, runs over all rules and was most of the
policy's cost per turn.  Its result depends only on that state, which repeats across turns
and conversations, so a loaded policy keeps it; the older states are then checked against
the few rules left, exactly as RulePolicy does.

Configured in config.yml as ``- name: bot.cached_rule_policy.CachedRulePolicy`` with the
usual RulePolicy options.  Training behaves exactly like RulePolicy (the cache is only used
by a policy loaded from a trained model, whose rules no longer change).
"""

from __future__ import annotations

from typing import Any

from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.generator import State

MAX_CACHED_STATES = 20_000
"""Distinct latest states remembered; the cache starts over when it is full."""


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class CachedRulePolicy(RulePolicy):
    """RulePolicy with the rule lookup for the latest state cached (see module docstring)."""

    cache_rule_lookups = False

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CachedRulePolicy:
        policy = super().load(config, model_storage, resource, execution_context, **kwargs)
        policy.cache_rule_lookups = True
        return policy

    def _get_possible_keys(self, lookup: dict[str, str], states: list[State]) -> set[str]:
        if not self.cache_rule_lookups or not states:
            return super()._get_possible_keys(lookup, states)
        try:
            key = (id(lookup), _hashable(states[-1]))
        except TypeError:  # a state value that cannot be a dictionary key
            return super()._get_possible_keys(lookup, states)
        cache: dict = self.__dict__.setdefault("_latest_state_matches", {})
        candidates = cache.get(key)
        if candidates is None:
            if len(cache) >= MAX_CACHED_STATES:
                cache.clear()
            candidates = tuple(
                rule for rule in lookup if self._is_rule_applicable(rule, 0, states[-1])
            )
            cache[key] = candidates
        for turn_index, state in enumerate(reversed(states[:-1]), start=1):
            if not candidates:
                break
            candidates = [
                rule for rule in candidates if self._is_rule_applicable(rule, turn_index, state)
            ]
        return set(candidates)


def _hashable(state: State) -> frozenset:
    return frozenset((name, frozenset(sub_state.items())) for name, sub_state in state.items())
