"""The web chat channel against a real Rasa server and action server: Rasa's socket.io
protocol (as the widget speaks it), agent messages pushed into a conversation, the widget's
files, and photo uploads over HTTP."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import socketio

from tests.browser.webchat_server import WebChatServer
from tests.channels.test_webchat_attachments import png_bytes

pytestmark = [pytest.mark.slow, pytest.mark.server]

ORDER, PHONE = "SO20261101001", "13800138000"


class SocketChat:
    """A socket.io client doing what widget.js does; replies are collected in a queue."""

    def __init__(self, url: str) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        # Long polling, like the widget (see bot.channels.webchat.widget_config).
        self.client = socketio.Client(reconnection=False)
        self.client.on("session_confirm", lambda data: self.events.put(("session_confirm", data)))
        self.client.on("bot_uttered", lambda data: self.events.put(("bot_uttered", data)))
        self.client.connect(url, transports=["polling"], socketio_path="/socket.io")
        self.session_id = ""

    def request_session(self, session_id: str | None = None) -> str:
        self.client.emit("session_request", {"session_id": session_id})
        kind, data = self.events.get(timeout=10)
        assert kind == "session_confirm"
        self.session_id = data
        return data

    def replies(self, first_timeout: float = 60, quiet: float = 1.5) -> list[dict]:
        """Bot messages of one turn: wait for the first, then until none comes for a moment."""
        messages = []
        timeout = first_timeout
        while True:
            try:
                kind, data = self.events.get(timeout=timeout)
            except queue.Empty:
                return messages
            assert kind == "bot_uttered", (kind, data)
            messages.append(data)
            timeout = quiet

    def say(self, text: str) -> list[dict]:
        self.client.emit("user_uttered", {"message": text, "session_id": self.session_id})
        return self.replies()

    def text(self, text: str) -> str:
        return "\n".join(message.get("text") or "" for message in self.say(text))

    def close(self) -> None:
        # Sends the close packet without waiting up to a ping interval for the pending long poll.
        self.client.eio.disconnect(abort=True)


@pytest.fixture
def chat(webchat: WebChatServer) -> Iterator[SocketChat]:
    client = SocketChat(webchat.url)
    yield client
    client.close()


def tracker(webchat: WebChatServer, session_id: str) -> dict:
    reply = requests.get(f"{webchat.url}/conversations/{session_id}/tracker", timeout=30)
    reply.raise_for_status()
    return reply.json()


def test_session_request_gets_a_new_session_id(chat: SocketChat) -> None:
    session_id = chat.request_session()
    assert len(session_id) == 32 and int(session_id, 16) >= 0


def test_a_greeting_is_answered_with_bot_uttered(chat: SocketChat, webchat) -> None:
    session_id = chat.request_session()
    replies = chat.say("你好")
    assert replies and "售后小助手" in (replies[0].get("text") or "")
    events = tracker(webchat, session_id)["events"]
    assert any(e["event"] == "user" and e["input_channel"] == "webchat" for e in events)


def test_the_conversation_continues_after_reconnecting_with_the_same_id(webchat) -> None:
    first = SocketChat(webchat.url)
    session_id = first.request_session()
    assert "订单号" in first.text("我要退货")
    first.close()

    second = SocketChat(webchat.url)
    try:
        assert second.request_session(session_id) == session_id
        assert "手机" in second.text(ORDER), "the return form goes on where it stopped"
    finally:
        second.close()
    texts = [e.get("text") for e in tracker(webchat, session_id)["events"] if e["event"] == "user"]
    assert texts == ["我要退货", ORDER]


def test_buttons_arrive_as_quick_replies(chat: SocketChat) -> None:
    chat.request_session()
    # the fridge: the washing machine's repair is booked by other tests on this server
    chat.text("冰箱冷藏室不制冷了 派人来修一下")
    chat.text("SO20261110004")
    chat.text("13600136000")
    chat.text("北京市朝阳区建国路88号3单元502")
    replies = chat.say("明天")
    choices = [reply for reply in replies if reply.get("quick_replies")]
    assert choices, replies
    titles = [choice["title"] for choice in choices[-1]["quick_replies"]]
    assert titles[0].startswith("上午")
    payload = choices[-1]["quick_replies"][0]["payload"]
    assert "已为您建立工单" in chat.text(payload)


@pytest.mark.parametrize("bad_id", ["../../etc", "x" * 300, "<script>"])
def test_unsafe_session_ids_are_replaced(chat: SocketChat, bad_id: str) -> None:
    session_id = chat.request_session(bad_id)
    assert session_id != bad_id and len(session_id) == 32


def test_an_agent_message_pushed_through_the_api_reaches_the_widget(chat: SocketChat, webchat):
    session_id = chat.request_session()
    chat.say("你好")
    reply = requests.post(
        f"{webchat.url}/conversations/{session_id}/tracker/events",
        params={"output_channel": "latest", "execute_side_effects": "true"},
        json={"event": "bot", "text": "客服小王：您好，我来跟进您的问题"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert chat.replies(first_timeout=15) == [{"text": "客服小王：您好，我来跟进您的问题"}]


@pytest.mark.parametrize(
    ("path", "content_type", "expected"),
    [
        ("/widget/widget.js", "application/javascript", "ShouhouChatConfig"),
        ("/widget/widget.css", "text/css", ".shc-root"),
        ("/widget/vendor/socket.io.min.js", "application/javascript", "Socket.IO v4"),
        ("/widget/demo", "text/html", "/widget/widget.js"),
        ("/widget/config.json?lang=zh-CN", "application/json", "售后小助手"),
    ],
)
def test_widget_files_are_served(webchat, path: str, content_type: str, expected: str) -> None:
    reply = requests.get(webchat.url + path, timeout=30)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith(content_type)
    assert expected in reply.text


def test_uploads_are_checked_stored_and_linked_to_the_open_ticket(chat: SocketChat, webchat):
    session_id = chat.request_session()
    upload = f"{webchat.url}/widget/upload"

    refused = requests.post(
        upload,
        data={"session_id": session_id},
        files={"file": ("photo.jpg", b"<?php system($_GET['c']); ?>", "image/jpeg")},
        timeout=30,
    )
    assert refused.status_code == 400
    assert refused.json() == {"error": "not_image", "message": refused.json()["message"]}
    assert "JPG" in refused.json()["message"]
    too_large = requests.post(
        upload,
        data={"session_id": session_id},
        files={"file": ("big.jpg", b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024), "image/jpeg")},
        timeout=30,
    )
    assert too_large.status_code == 413 and "5 MB" in too_large.json()["message"]
    no_session = requests.post(upload, files={"file": ("a.png", png_bytes())}, timeout=30)
    assert no_session.status_code == 400 and no_session.json()["error"] == "missing_session"

    chat.text("我要退货")
    chat.text(ORDER)
    chat.text(PHONE)
    opened = chat.text("尺寸买错了 放不下")
    assert "已为您建立工单 T" in opened
    ticket_no = opened.split("工单 ")[1].split("（")[0]

    data = png_bytes()
    stored = requests.post(
        upload, data={"session_id": session_id}, files={"file": ("裂了.png", data)}, timeout=30
    )
    assert stored.status_code == 200, stored.text
    body = stored.json()
    assert body["ticket_no"] == ticket_no and ticket_no in body["message"]
    assert list(webchat.upload_dir.iterdir()) != []

    photo = requests.get(webchat.url + body["url"], params={"session_id": session_id}, timeout=30)
    assert photo.status_code == 200 and photo.content == data
    assert photo.headers["content-type"] == "image/png"
    assert photo.headers["x-content-type-options"] == "nosniff"
    someone_else = requests.get(
        webchat.url + body["url"], params={"session_id": "someone-else"}, timeout=30
    )
    assert someone_else.status_code == 404


def test_socket_health_route_answers(webchat) -> None:
    assert requests.get(f"{webchat.url}/webhooks/webchat/", timeout=30).json() == {"status": "ok"}
