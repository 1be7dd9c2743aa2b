"""A real human handoff through running servers: a customer in the web chat (socket.io, as the
widget speaks it) is escalated, an agent in the console claims the chat, the bot stays silent,
messages cross both ways within a second, the agent hands back or closes with a survey."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.db import make_engine, make_session_factory, session_scope
from bot.store.models import CsatResponse, Handoff
from tests.browser.webchat_server import WebChatServer
from tests.channels.test_webchat_socketio import SocketChat
from tests.e2e.console_client import Console

pytestmark = [pytest.mark.slow, pytest.mark.server]

DELIVERY_SECONDS = 1.0


@pytest.fixture
def agent(webchat: WebChatServer) -> Iterator[Console]:
    console = Console(webchat.url, "agent1")
    yield console
    console.close()


@pytest.fixture
def customer(webchat: WebChatServer) -> Iterator[SocketChat]:
    chat = SocketChat(webchat.url)
    chat.request_session()
    yield chat
    chat.close()


@contextmanager
def stored(webchat: WebChatServer) -> Iterator[Session]:
    """A session on the servers' database, to check what they stored."""
    engine = make_engine(webchat.db_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()


def wait_for_bot(chat: SocketChat, timeout: float) -> tuple[float, dict]:
    kind, data = chat.events.get(timeout=timeout)
    assert kind == "bot_uttered", (kind, data)
    return time.monotonic(), data


def test_a_chat_is_taken_over_answered_live_and_handed_back(
    webchat: WebChatServer, agent: Console, customer: SocketChat
) -> None:
    queued = customer.text("转人工")
    assert "人工客服" in queued and "分钟" in queued
    chat = agent.chat_of(customer.session_id)
    assert (chat["status"], chat["trigger"], chat["channel"]) == (
        "waiting",
        "request_human",
        "webchat",
    )

    assert agent.post(f"/console/api/chats/{chat['id']}/claim").status_code == 200
    other = Console(webchat.url, "agent2")
    try:
        assert other.post(f"/console/api/chats/{chat['id']}/claim").status_code == 409
    finally:
        other.close()

    # The customer hears that a person has the chat now.
    _, joined = wait_for_bot(customer, timeout=5)
    assert "客服小王" in joined["text"] and "已接入" in joined["text"]

    # The bot keeps quiet; the agent sees the customer's message live.
    sent = time.monotonic()
    customer.client.emit(
        "user_uttered", {"message": "在吗 等好久了", "session_id": customer.session_id}
    )
    arrived, entry = agent.next_message(customer.session_id, "在吗 等好久了")
    assert entry["type"] == "user" and entry["text"] == "在吗 等好久了"
    assert arrived - sent < DELIVERY_SECONDS
    assert customer.replies(first_timeout=2) == []

    sent = time.monotonic()
    reply = agent.post(
        f"/console/api/chats/{chat['id']}/messages", {"text": "您好，我是客服小王，马上帮您看"}
    )
    assert reply.status_code == 201, reply.text
    arrived, message = wait_for_bot(customer, timeout=5)
    assert message["text"] == "您好，我是客服小王，马上帮您看"
    assert arrived - sent < DELIVERY_SECONDS

    detail = agent.get(f"/console/api/chats/{chat['id']}")
    kinds = [(e["type"], e["text"]) for e in detail["transcript"] if e["type"] != "system"]
    assert kinds[0] == ("user", "转人工")
    assert kinds[1][0] == "bot" and "人工客服" in kinds[1][1]
    assert ("user", "在吗 等好久了") in kinds
    assert ("agent", "您好，我是客服小王，马上帮您看") in kinds
    assert detail["summary"]

    assert agent.post(f"/console/api/chats/{chat['id']}/handback").status_code == 200
    _, back = wait_for_bot(customer, timeout=10)
    assert "小助手" in back["text"]
    assert customer.replies(first_timeout=1) == []
    # The bot is back in charge.
    assert "订单号" in customer.text("我要退货")


def test_closing_a_chat_sends_the_survey_and_keeps_the_answer(
    webchat: WebChatServer, agent: Console, customer: SocketChat
) -> None:
    assert "人工客服" in customer.text("我要人工服务")
    chat = agent.chat_of(customer.session_id)
    assert agent.post(f"/console/api/chats/{chat['id']}/claim").status_code == 200
    assert agent.post(f"/console/api/chats/{chat['id']}/close").status_code == 200
    survey = customer.replies(first_timeout=10)
    buttons = [b["payload"] for m in survey for b in m.get("quick_replies") or []]
    assert len(buttons) == 5, survey
    comment_question = customer.text(buttons[0])
    assert "想对我们说" in comment_question
    assert "感谢" in customer.text("客服很耐心")

    with stored(webchat) as session:
        handoff = session.execute(
            select(Handoff).where(Handoff.sender_id == customer.session_id)
        ).scalar_one()
        answer = session.execute(
            select(CsatResponse).where(CsatResponse.sender_id == customer.session_id)
        ).scalar_one()
        assert handoff.status == "closed"
        assert (answer.score, answer.comment, answer.handoff_id) == (5, "客服很耐心", handoff.id)


def test_an_angry_threat_alone_brings_in_a_person(
    webchat: WebChatServer, agent: Console, customer: SocketChat
) -> None:
    parsed = requests.post(
        f"{webchat.url}/model/parse", json={"text": "再不给我解决我就去12315投诉你们"}, timeout=30
    ).json()
    assert parsed["sentiment"]["escalate"] is True
    assert "threat" in parsed["sentiment"]["reasons"]
    assert "人工客服" in customer.text("再不给我解决我就去12315投诉你们")
    chat = agent.chat_of(customer.session_id)
    assert chat["status"] == "waiting"
    assert "threat" in chat["reasons"]


def test_a_threat_in_the_middle_of_a_form_brings_in_a_person_and_the_bot_goes_quiet(
    webchat: WebChatServer, agent: Console, customer: SocketChat
) -> None:
    assert "订单号" in customer.text("洗衣机漏水了")  # the repair form asks for the order
    queued = customer.text("修了三次还是漏 再不解决我就打12315")
    assert "人工客服" in queued
    assert "订单号" not in queued  # no format hint, no next question: a person is coming
    chat = agent.chat_of(customer.session_id)
    assert chat["status"] == "waiting" and "threat" in chat["reasons"]
    customer.client.emit(
        "user_uttered", {"message": "SO20261101001", "session_id": customer.session_id}
    )
    agent.next_message(customer.session_id, "SO20261101001")
    assert customer.replies(first_timeout=2) == []  # the paused bot stays silent


def test_a_waiting_customer_who_will_not_wait_gets_the_bot_back(
    webchat: WebChatServer, agent: Console, customer: SocketChat
) -> None:
    queued = customer.say("转人工")
    titles = [b["title"] for m in queued for b in m.get("quick_replies") or []]
    assert "不等了" in titles
    chat = agent.chat_of(customer.session_id)
    assert chat["status"] == "waiting"
    # Impatience keeps the place in the queue; the paused bot stays silent.
    customer.client.emit(
        "user_uttered", {"message": "怎么还没人 快点", "session_id": customer.session_id}
    )
    agent.next_message(customer.session_id, "怎么还没人 快点")
    assert customer.replies(first_timeout=2) == []
    left = customer.text("算了 不等了")
    assert "取消人工排队" in left
    with stored(webchat) as session:
        handoff = session.execute(
            select(Handoff).where(Handoff.sender_id == customer.session_id)
        ).scalar_one()
        assert (handoff.status, handoff.agent_id) == ("handed_back", None)
    assert agent.post(f"/console/api/chats/{chat['id']}/claim").status_code == 409
    # The bot answers again.
    assert "订单号" in customer.text("我要退货")
