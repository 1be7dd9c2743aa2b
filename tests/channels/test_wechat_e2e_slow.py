"""WeChat end to end when the bot is "slow": the real servers with a passive-reply deadline
of 0.01 s, so every answer goes out later through the (fake) customer-service API.

A separate module (and server) from test_wechat_e2e.py because the deadline is read when the
Rasa server starts; both use ports 5405/5455, one after the other (module-scoped fixtures).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.channels.fake_wechat import WeChatAssistant, wechat_assistant

pytestmark = [pytest.mark.slow, pytest.mark.server]


@pytest.fixture(scope="module")
def assistant(
    trained_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WeChatAssistant]:
    workdir = tmp_path_factory.mktemp("wechat-slow")
    with wechat_assistant(trained_model, workdir, passive_reply_seconds=0.01) as running:
        yield running


def test_late_answer_goes_through_customer_service(assistant: WeChatAssistant) -> None:
    client = assistant.client()
    openid = "o_e2e_slow_00001"
    msg_id = client.next_msg_id()
    assert client.reply(client.text(openid, "你好", msg_id)) is None  # "success" in time
    # WeChat retries (e.g. it lost our "success"): no second answer, no second Rasa turn.
    assert client.reply(client.text(openid, "你好", msg_id)) is None
    (message,) = assistant.api.wait_for_messages(1)
    assert message["touser"] == openid and message["msgtype"] == "text"
    assert "售后小助手" in message["text"]["content"]
    threading.Event().wait(1.0)
    assert len(assistant.api.messages) == 1
    assert assistant.user_texts(openid) == ["你好"]
    assert assistant.api.token_requests == 1


def test_expired_token_is_refreshed_and_the_answer_still_delivered(
    assistant: WeChatAssistant,
) -> None:
    before = len(assistant.api.messages)
    tokens_before = assistant.api.token_requests
    assistant.api.expire_tokens()
    client = assistant.client(safe_mode=True)
    openid = "o_e2e_slow_00002"
    assert client.reply(client.text(openid, "你好")) is None
    messages = assistant.api.wait_for_messages(before + 1)
    assert messages[-1]["touser"] == openid and "售后小助手" in messages[-1]["text"]["content"]
    assert assistant.api.rejections == [42001]
    assert assistant.api.token_requests == tokens_before + 1
