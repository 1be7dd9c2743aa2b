"""Speed fixes for the Rasa server, installed when it loads the project's tracker store.

Rasa 3.6 validates every action-server response with ``jsonschema.validate``, which checks
the schema itself again on every call; under load that was over a third of the server's CPU.
The same validation runs here with a validator built once.

Rasa also opens a new HTTP client session, and so a new TCP connection, for every call to
the action server.  Here each endpoint keeps one session with keep-alive connections.

Rasa's message processor and RulePolicy deep-copy events and dialogue states on every step
only to hand them to debug log calls, which are dropped unless debug logging is on.  When it
is off, those modules get a ``deepcopy`` that returns its argument (they use ``copy`` for
nothing else).
"""

from __future__ import annotations

import asyncio
import logging
import types
from functools import lru_cache
from typing import Any

import aiohttp
import rasa.core.policies.rule_policy
import rasa.core.processor
from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL
from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

KEEPALIVE_SECONDS = 4.0
"""Idle client connections close before the action server's (Sanic: 5 s) keep-alive ends,
so a request never goes out on a connection the server is just closing."""
_SESSION_ATTRIBUTE = "_kept_session"
MODULES_COPYING_ONLY_FOR_DEBUG_LOGS = (rasa.core.processor, rasa.core.policies.rule_policy)
_NO_DEEP_COPY = types.SimpleNamespace(deepcopy=lambda value, memo=None: value)


@lru_cache(maxsize=1)
def _response_validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    """Rasa's check of an action-server response, with the schema compiled once."""
    try:
        _response_validator().validate(result)
    except ValidationError as error:
        error.message += (
            ". Failed to validate Action server response from API, make sure your response "
            f"from the Action endpoint is valid. See {DOCS_BASE_URL}/custom-actions"
        )
        raise
    return True


class _KeptSession:
    """Used as ``async with endpoint.session() as session``; leaves the session open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self._session

    async def __aexit__(self, *_exc_info: Any) -> None:
        return None


def kept_session(self: EndpointConfig) -> _KeptSession:
    """The endpoint's long-lived client session for the running event loop.

    Same headers, authentication and timeout as Rasa's own ``EndpointConfig.session``.
    """
    loop = asyncio.get_running_loop()
    kept = getattr(self, _SESSION_ATTRIBUTE, None)
    if kept is None or kept[0] is not loop or kept[1].closed:
        auth = None
        if self.basic_auth:
            auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
        session = aiohttp.ClientSession(
            headers=self.headers,
            auth=auth,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
        )
        kept = (loop, session)
        setattr(self, _SESSION_ATTRIBUTE, kept)
    return _KeptSession(kept[1])


def skip_copies_for_dropped_debug_logs() -> None:
    """Give each module whose debug logging is off a ``copy`` that does not copy."""
    for module in MODULES_COPYING_ONLY_FOR_DEBUG_LOGS:
        if not logging.getLogger(module.__name__).isEnabledFor(logging.DEBUG):
            module.copy = _NO_DEEP_COPY


def install() -> None:
    RemoteAction._validate_action_result = validate_action_result
    EndpointConfig.session = kept_session
    skip_copies_for_dropped_debug_logs()
