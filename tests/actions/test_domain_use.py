"""Selective domain: Rasa sends the domain only to actions marked ``send_domain``."""

from __future__ import annotations

import re

import yaml
from rasa_sdk import Action
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.forms import FormValidationAction

from bot.settings import PROJECT_ROOT, project_domain


def _served_actions() -> dict[str, type[Action]]:
    """The actions the action server serves, by name (found as rasa_sdk finds them)."""
    executor = ActionExecutor()
    executor.register_package("actions")
    return {name: type(action.__self__) for name, action in executor.actions.items()}


def _send_domain_marks() -> dict[str, bool]:
    domain = project_domain()
    marks: dict[str, bool] = {}
    for entry in domain["actions"]:
        if isinstance(entry, dict):
            ((name, options),) = entry.items()
            marks[name] = bool((options or {}).get("send_domain"))
        else:
            marks[entry] = False
    return marks


def test_selective_domain_is_on() -> None:
    endpoints = yaml.safe_load((PROJECT_ROOT / "endpoints.yml").read_text(encoding="utf-8"))
    assert endpoints["action_endpoint"]["enable_selective_domain"] is True


def test_every_form_validation_gets_the_domain() -> None:
    """rasa_sdk reads a form's required slots and slot mappings from the domain."""
    marks = _send_domain_marks()
    validations = [n for n, c in _served_actions().items() if issubclass(c, FormValidationAction)]
    assert validations
    assert all(marks[name] for name in validations), validations


def test_the_served_actions_are_exactly_the_domain_actions() -> None:
    assert set(_served_actions()) == set(_send_domain_marks())


def test_every_response_the_actions_send_is_in_the_domain() -> None:
    """A response missing from domain.yml is silently not sent: the customer hears nothing."""
    used: set[str] = set()
    for source in (PROJECT_ROOT / "actions").glob("*.py"):
        used |= set(re.findall(r"\"(utter_\w+)\"", source.read_text(encoding="utf-8")))
    used.discard("utter_action")  # the metadata key naming the response a bot event sent
    missing = used - set(project_domain()["responses"])
    assert not missing, sorted(missing)
