"""The Rasa server still validates action-server responses after the speed fix."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

import bot.tracking  # noqa: F401 - loading the tracker store installs the fix
from bot.rasa_runtime import validate_action_result


def test_loading_the_tracker_store_installs_the_fast_validation() -> None:
    assert RemoteAction._validate_action_result is validate_action_result


def test_valid_responses_pass_and_invalid_ones_are_rejected() -> None:
    action = RemoteAction("action_x", None)
    assert action._validate_action_result(
        {"events": [{"event": "slot", "name": "phone", "value": None}], "responses": []}
    )
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result({"events": "not a list"})
