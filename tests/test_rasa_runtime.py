"""The Rasa server's runtime fixes: cached response validation, kept-alive action calls,
no log-only copies, and parsing that survives a failing NLU server."""

from __future__ import annotations

import asyncio
import copy
import logging

import aiohttp
import pytest
from aiohttp import web
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import UserMessage
from rasa.core.http_interpreter import RasaNLUHttpInterpreter
from rasa.core.processor import MessageProcessor
from rasa.utils.endpoints import EndpointConfig

import bot.tracking  # noqa: F401 - loading the tracker store installs the fixes
from bot.rasa_runtime import (
    MODULES_COPYING_ONLY_FOR_DEBUG_LOGS,
    NLU_SERVER_PAUSE,
    kept_session,
    parse_message,
    skip_copies_for_dropped_debug_logs,
    validate_action_result,
)


def test_loading_the_tracker_store_installs_the_fast_validation() -> None:
    assert RemoteAction._validate_action_result is validate_action_result
    assert EndpointConfig.session is kept_session


def test_valid_responses_pass_and_invalid_ones_are_rejected() -> None:
    action = RemoteAction("action_x", None)
    assert action._validate_action_result(
        {"events": [{"event": "slot", "name": "phone", "value": None}], "responses": []}
    )
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result({"events": "not a list"})


def test_calls_to_an_endpoint_reuse_one_keep_alive_connection() -> None:
    async def scenario() -> tuple[list, list]:
        peers: list = []

        async def webhook(request: web.Request) -> web.Response:
            peers.append(request.transport.get_extra_info("peername"))
            body = await request.json()
            assert body["text"] == "我要退货/換貨", "the body is sent as valid JSON"
            return web.json_response({"echo": body["n"]})

        app = web.Application()
        app.router.add_post("/webhook", webhook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        endpoint = EndpointConfig(url=f"http://127.0.0.1:{port}/webhook")
        try:
            replies = [
                await endpoint.request(json={"n": n, "text": "我要退货/換貨"}, method="post")
                for n in range(3)
            ]
        finally:
            await runner.cleanup()
        return replies, peers

    replies, peers = asyncio.run(scenario())
    assert replies == [{"echo": 0}, {"echo": 1}, {"echo": 2}]
    assert len(peers) == 3 and len(set(peers)) == 1


def test_each_event_loop_gets_its_own_session() -> None:
    endpoint = EndpointConfig(url="http://127.0.0.1:9/webhook")

    async def session_in_this_loop() -> aiohttp.ClientSession:
        async with endpoint.session() as session:
            return session

    first = asyncio.run(session_in_this_loop())
    second = asyncio.run(session_in_this_loop())
    assert first is not second


def test_log_only_deep_copies_are_skipped_while_debug_logging_is_off() -> None:
    events = [{"event": "slot", "name": "phone", "value": "13800138000"}]
    for module in MODULES_COPYING_ONLY_FOR_DEBUG_LOGS:
        assert module.copy.deepcopy(events) is events


def test_log_only_deep_copies_stay_when_debug_logging_is_on(monkeypatch) -> None:
    loggers = [logging.getLogger(m.__name__) for m in MODULES_COPYING_ONLY_FOR_DEBUG_LOGS]
    levels = [logger.level for logger in loggers]
    for module in MODULES_COPYING_ONLY_FOR_DEBUG_LOGS:
        monkeypatch.setattr(module, "copy", copy)
    try:
        for logger in loggers:
            logger.setLevel(logging.DEBUG)
        skip_copies_for_dropped_debug_logs()
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    events = [{"event": "slot", "name": "phone", "value": "13800138000"}]
    for module in MODULES_COPYING_ONLY_FOR_DEBUG_LOGS:
        assert module.copy.deepcopy(events) == events
        assert module.copy.deepcopy(events) is not events


class _FakeNLUServer:
    """An aiohttp app standing in for the NLU server's /model/parse."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def parse(request: web.Request) -> web.Response:
            body = await request.json()
            self.requests.append(body)
            intent = {"name": "request_return", "confidence": 0.99}
            reply = {"text": body["text"], "intent": intent, "entities": []}
            return web.json_response(reply, status=self.status)

        app = web.Application()
        app.router.add_post("/model/parse", parse)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


class _Processor:
    """The parts of Rasa's MessageProcessor that ``parse_message`` uses."""

    def __init__(self, nlu_url: str | None) -> None:
        self.http_interpreter = (
            RasaNLUHttpInterpreter(EndpointConfig(url=nlu_url)) if nlu_url else None
        )
        self.local_parses: list[str] = []
        self.checked: list[dict] = []

    def _parse_message_with_graph(self, message, tracker, only_output_properties=True) -> dict:
        self.local_parses.append(message.text)
        return {"text": message.text, "intent": {"name": "greet", "confidence": 1.0}}

    def _update_full_retrieval_intent(self, parsed: dict) -> None:
        parsed.setdefault("updated", True)

    def _check_for_unseen_features(self, parsed: dict) -> None:
        self.checked.append(parsed)


def test_loading_the_tracker_store_routes_parsing_through_the_failover() -> None:
    assert MessageProcessor.parse_message is parse_message


def test_messages_are_parsed_by_the_nlu_server_when_it_answers() -> None:
    async def scenario() -> tuple[dict, _FakeNLUServer, _Processor]:
        server = _FakeNLUServer()
        await server.start()
        processor = _Processor(server.url)
        try:
            parsed = await parse_message(processor, UserMessage("我要退货", sender_id="c1"))
        finally:
            await server.stop()
        return parsed, server, processor

    parsed, server, processor = asyncio.run(scenario())
    assert parsed["intent"]["name"] == "request_return" and parsed["updated"]
    assert server.requests == [{"text": "我要退货", "message_id": "c1"}]
    assert processor.local_parses == [] and processor.checked == [parsed]


@pytest.mark.parametrize("failure", ["refused", "error-status"])
def test_a_failing_nlu_server_is_covered_in_process_and_rested(failure, monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("bot.rasa_runtime.time.monotonic", lambda: clock[0])

    async def scenario() -> tuple[list[dict], _FakeNLUServer, _Processor]:
        server = _FakeNLUServer(status=500)
        await server.start()
        if failure == "refused":
            await server.stop()
        processor = _Processor(server.url)
        parsed = [await parse_message(processor, UserMessage("你好", sender_id="c2"))]
        clock[0] += NLU_SERVER_PAUSE / 2
        parsed.append(await parse_message(processor, UserMessage("在吗", sender_id="c2")))
        asked_while_resting = len(server.requests)
        clock[0] += NLU_SERVER_PAUSE
        parsed.append(await parse_message(processor, UserMessage("谢谢", sender_id="c2")))
        if failure != "refused":
            assert asked_while_resting == 1, "no request while the server rests"
            assert len(server.requests) == 2, "asked again after the pause"
            await server.stop()
        return parsed, server, processor

    parsed, server, processor = asyncio.run(scenario())
    assert [p["intent"]["name"] for p in parsed] == ["greet"] * 3
    assert processor.local_parses == ["你好", "在吗", "谢谢"]


def test_without_an_nlu_server_messages_are_parsed_in_process() -> None:
    processor = _Processor(None)
    parsed = asyncio.run(parse_message(processor, UserMessage("你好", sender_id="c3")))
    assert parsed["intent"]["name"] == "greet" and processor.local_parses == ["你好"]
