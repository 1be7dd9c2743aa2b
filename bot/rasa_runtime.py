"""Speed fixes for the Rasa server, installed when it loads the project's tracker store.

Rasa 3.6 validates every action-server response with ``jsonschema.validate``, which checks
the schema itself again on every call; under load that was over a third of the server's CPU.
The same validation runs here with a validator built once.

Rasa also opens a new HTTP client session, and so a new TCP connection, for every call to
the action server.  Here each endpoint keeps one session with keep-alive connections, and it
encodes the request (the conversation so far, tens of kilobytes) with ujson, which Sanic
already brings and which takes a third of the time of the standard library's encoder.

Rasa's message processor and RulePolicy deep-copy events and dialogue states on every step
only to hand them to debug log calls, which are dropped unless debug logging is on.  When it
is off, those modules get a ``deepcopy`` that returns its argument (they use ``copy`` for
nothing else).

With an NLU server configured (``nlu:`` in endpoints.yml, set by ``python -m bot up``), Rasa
sends every message there and, should it not answer, carries on with an empty intent.  Here a
message the NLU server cannot parse in time is parsed in-process instead, and the server is
given a pause before it is asked again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import types
from functools import lru_cache
from typing import Any

import aiohttp
import rasa.core.policies.rule_policy
import rasa.core.processor
import ujson
from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

KEEPALIVE_SECONDS = 4.0
"""Idle client connections close before the action server's (Sanic: 5 s) keep-alive ends,
so a request never goes out on a connection the server is just closing."""
_SESSION_ATTRIBUTE = "_kept_session"
MODULES_COPYING_ONLY_FOR_DEBUG_LOGS = (rasa.core.processor, rasa.core.policies.rule_policy)
_NO_DEEP_COPY = types.SimpleNamespace(deepcopy=lambda value, memo=None: value)
NLU_SERVER_TIMEOUT = 5.0
"""Seconds a parse may take on the NLU server before the message is parsed in-process."""
NLU_SERVER_PAUSE = 10.0
"""After a failure, seconds during which messages are parsed in-process without asking."""

log = logging.getLogger(__name__)


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
            json_serialize=ujson.dumps,
        )
        kept = (loop, session)
        setattr(self, _SESSION_ATTRIBUTE, kept)
    return _KeptSession(kept[1])


def skip_copies_for_dropped_debug_logs() -> None:
    """Give each module whose debug logging is off a ``copy`` that does not copy."""
    for module in MODULES_COPYING_ONLY_FOR_DEBUG_LOGS:
        if not logging.getLogger(module.__name__).isEnabledFor(logging.DEBUG):
            module.copy = _NO_DEEP_COPY


class NLUServerClient:
    """Parses messages on the NLU server; ``None`` when it cannot (then it rests a while)."""

    def __init__(self, endpoint: EndpointConfig) -> None:
        self.endpoint = endpoint
        self.url = endpoint.url.rstrip("/") + "/model/parse"
        self.resting_until = float("-inf")

    async def parse(self, message: UserMessage) -> dict[str, Any] | None:
        if time.monotonic() < self.resting_until:
            return None
        payload = {"text": message.text, "message_id": message.sender_id}
        params = {"token": self.endpoint.token} if self.endpoint.token else None
        try:
            async with self.endpoint.session() as session:
                async with session.post(
                    self.url,
                    json=payload,
                    params=params,
                    timeout=aiohttp.ClientTimeout(total=NLU_SERVER_TIMEOUT),
                ) as response:
                    if response.status == 200:
                        parsed = await response.json()
                        if isinstance(parsed, dict) and isinstance(parsed.get("intent"), dict):
                            return parsed
                    problem = f"HTTP {response.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            problem = repr(error)
        self.resting_until = time.monotonic() + NLU_SERVER_PAUSE
        log.warning(
            "NLU server %s failed (%s): parsing in-process for the next %.0f s",
            self.url,
            problem,
            NLU_SERVER_PAUSE,
        )
        return None


async def parse_message(
    self: MessageProcessor,
    message: UserMessage,
    tracker: DialogueStateTracker | None = None,
    only_output_properties: bool = True,
) -> dict[str, Any]:
    """Rasa's ``MessageProcessor.parse_message``, falling back to the in-process model when
    the NLU server does not answer."""
    parsed = None
    if self.http_interpreter is not None and message.text:
        client = self.__dict__.get("_nlu_server_client")
        if client is None or client.endpoint is not self.http_interpreter.endpoint_config:
            client = NLUServerClient(self.http_interpreter.endpoint_config)
            self.__dict__["_nlu_server_client"] = client
        parsed = await client.parse(message)
    if parsed is None:
        if tracker is None:
            tracker = DialogueStateTracker.from_events(message.sender_id, [])
        parsed = self._parse_message_with_graph(message, tracker, only_output_properties)
    self._update_full_retrieval_intent(parsed)
    self._check_for_unseen_features(parsed)
    return parsed


def install() -> None:
    RemoteAction._validate_action_result = validate_action_result
    MessageProcessor.parse_message = parse_message
    EndpointConfig.session = kept_session
    skip_copies_for_dropped_debug_logs()
