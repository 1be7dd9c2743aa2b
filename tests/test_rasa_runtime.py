"""The Rasa server's speed fixes: cached response validation, kept-alive action calls."""

from __future__ import annotations

import asyncio
import copy
import logging

import aiohttp
import pytest
from aiohttp import web
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

import bot.tracking  # noqa: F401 - loading the tracker store installs the fixes
from bot.rasa_runtime import (
    MODULES_COPYING_ONLY_FOR_DEBUG_LOGS,
    kept_session,
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
            return web.json_response({"echo": (await request.json())["n"]})

        app = web.Application()
        app.router.add_post("/webhook", webhook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        endpoint = EndpointConfig(url=f"http://127.0.0.1:{port}/webhook")
        try:
            replies = [await endpoint.request(json={"n": n}, method="post") for n in range(3)]
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
