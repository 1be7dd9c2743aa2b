"""WeChat end to end: the real Rasa server (credentials.yml, trained model) and action server,
driven the way WeChat drives a webhook, answering passively within the deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.channels.wechat import WeChatTexts
from bot.channels.wechat_api import build_xml
from tests.channels.fake_wechat import WeChatAssistant, wechat_assistant
from tests.e2e.console_client import Console

pytestmark = [pytest.mark.slow, pytest.mark.server]

TEXTS = WeChatTexts.load(Path(__file__).resolve().parents[2] / "config" / "wechat_texts.yml")


@pytest.fixture(scope="module")
def assistant(
    trained_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WeChatAssistant]:
    with wechat_assistant(trained_model, tmp_path_factory.mktemp("wechat")) as running:
        yield running


def test_server_verification(assistant: WeChatAssistant) -> None:
    client = assistant.client()
    query = client.signed_query(echostr="hello-wechat")
    assert requests.get(assistant.webhook, params=query, timeout=10).text == "hello-wechat"
    query["nonce"] += "0"
    assert requests.get(assistant.webhook, params=query, timeout=10).status_code == 403


def test_subscribe_gets_the_welcome(assistant: WeChatAssistant) -> None:
    client = assistant.client()
    reply = client.reply(client.event("o_e2e_subscribe_01", "subscribe"))
    assert reply is not None and reply["Content"] == TEXTS.welcome
    assert reply["ToUserName"] == "o_e2e_subscribe_01"


def test_greeting_is_answered_passively(assistant: WeChatAssistant) -> None:
    client = assistant.client()
    reply = client.reply(client.text("o_e2e_hello_0001", "你好"))
    assert reply is not None and "售后小助手" in reply["Content"]
    assert assistant.user_texts("o_e2e_hello_0001") == ["你好"]
    assert assistant.api.messages == []


def test_safe_mode_round_trip(assistant: WeChatAssistant) -> None:
    client = assistant.client(safe_mode=True)
    response = client.text("o_e2e_secure_001", "你好")
    assert "<Encrypt>" in response.text and "售后" not in response.text
    reply = client.reply(response)
    assert reply is not None and "售后小助手" in reply["Content"]


def test_retries_of_one_message_reach_rasa_once(assistant: WeChatAssistant) -> None:
    client = assistant.client()
    openid, msg_id = "o_e2e_retry_0001", client.next_msg_id()
    replies: list[requests.Response] = []
    threads = [
        threading.Thread(target=lambda: replies.append(client.text(openid, "你好", msg_id)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    replies.append(client.text(openid, "你好", msg_id))  # a late retry
    contents = {client.reply(r)["Content"] for r in replies}  # type: ignore[index]
    assert len(contents) == 1 and "售后小助手" in contents.pop()
    assert assistant.user_texts(openid) == ["你好"]


def test_menu_click_asks_for_tickets(assistant: WeChatAssistant) -> None:
    client = assistant.client()
    reply = client.reply(client.event("o_e2e_menu_00001", "CLICK", "TICKETS"))
    assert reply is not None and reply["Content"]
    assert assistant.user_texts("o_e2e_menu_00001") == [TEXTS.menu["TICKETS"]]


def test_image_is_acknowledged_and_kept_in_the_conversation(assistant: WeChatAssistant) -> None:
    client = assistant.client()
    fields = {
        "ToUserName": "gh_fakeaccount",
        "FromUserName": "o_e2e_image_0001",
        "CreateTime": 1700000000,
        "MsgType": "image",
        "PicUrl": "http://mmbiz.example/e2e.jpg",
        "MediaId": "media-e2e",
        "MsgId": client.next_msg_id(),
    }
    reply = client.reply(client.post(fields))
    assert reply is not None and reply["Content"] == TEXTS.image_received
    for _ in range(60):
        if assistant.user_texts("o_e2e_image_0001"):
            break
        threading.Event().wait(0.5)
    assert assistant.user_texts("o_e2e_image_0001") == ["[图片] http://mmbiz.example/e2e.jpg"]


def test_refusals_leave_rasa_untouched(assistant: WeChatAssistant) -> None:
    client = assistant.client()
    openid = "o_e2e_hostile_01"
    good = build_xml({"FromUserName": openid, "MsgType": "text", "Content": "你好", "MsgId": "1"})
    query = client.signed_query()
    query["signature"] = "0" * 40
    assert client.post_raw(good.encode(), query).status_code == 403

    laughs = (
        '<!DOCTYPE x [<!ENTITY a "哈哈哈哈哈哈哈哈"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        f"<xml><FromUserName>{openid}</FromUserName><MsgType>text</MsgType>"
        "<Content>&c;</Content><MsgId>2</MsgId></xml>"
    )
    assert client.post_raw(laughs.encode()).status_code == 400
    external = (
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        f"<xml><FromUserName>{openid}</FromUserName><MsgType>text</MsgType>"
        "<Content>&e;</Content><MsgId>3</MsgId></xml>"
    )
    assert client.post_raw(external.encode()).status_code == 400
    assert client.post_raw(b"<xml><FromUserName>").status_code == 400
    huge = build_xml({"FromUserName": openid, "MsgType": "text", "Content": "长" * 30_000})
    assert client.post_raw(huge.encode()).status_code == 413

    assert assistant.user_texts(openid) == []
    reply = client.reply(client.text("o_e2e_after_0001", "你好"))  # still serving
    assert reply is not None and "售后小助手" in reply["Content"]


def test_an_agent_reply_reaches_a_wechat_customer_through_the_service_api(
    assistant: WeChatAssistant,
) -> None:
    agent = Console(assistant.url, "agent1")  # online before the customer asks
    try:
        client = assistant.client()
        openid = "o_e2e_handoff_01"
        reply = client.reply(client.text(openid, "转人工"))
        assert reply is not None and "人工客服" in reply["Content"]
        chat = agent.chat_of(openid)
        assert chat["channel"] == "wechat"
        assert agent.post(f"/console/api/chats/{chat['id']}/claim").status_code == 200
        before = len(assistant.api.messages)
        sent = time.monotonic()
        answer = agent.post(f"/console/api/chats/{chat['id']}/messages", {"text": "您好，我来帮您"})
        assert answer.status_code == 201, answer.text
        (message,) = assistant.api.wait_for_messages(before + 1, timeout=5)[before:]
        assert time.monotonic() - sent < 1.0
        assert message["touser"] == openid
        assert message["text"]["content"] == "您好，我来帮您"
    finally:
        agent.close()
