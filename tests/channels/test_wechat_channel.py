"""The WeChat channel over real HTTP, with a scripted bot instead of Rasa (fast).

The channel's blueprint runs in an in-process Sanic server on its own thread; a
:class:`WeChatClient` signs/encrypts like WeChat and a :class:`FakeWeChatApi` takes late
replies. End-to-end tests with the real Rasa server are in test_wechat_e2e*.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.channels.wechat import (
    MessageDeduplicator,
    WeChatCollector,
    WeChatInput,
    WeChatSettings,
    WeChatTexts,
    message_key,
)
from bot.channels.wechat_api import WeChatCrypto, build_xml
from tests.channels.fake_wechat import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWeChatApi,
    WeChatClient,
    fake_wechat_api,
)

TEXTS = WeChatTexts.load(WeChatSettings().texts_file)


@dataclass
class ScriptedBot:
    """Stands in for Rasa: echoes, with a delay, and remembers what it was asked."""

    delay: float = 0.0
    block: float = 0.0
    """Seconds of synchronous work, blocking the event loop like model inference does."""
    seen: list[UserMessage] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.seen.append(message)
        await asyncio.sleep(self.delay)
        time.sleep(self.block)
        if message.text == "boom":
            raise RuntimeError("bot failure")
        if message.text == "choices":
            buttons = [
                {"title": "退货", "payload": "/request_return"},
                {"title": "换货", "payload": "/request_exchange"},
            ]
            await message.output_channel.send_text_with_buttons(
                message.sender_id, "请选择", buttons
            )
            return
        await message.output_channel.send_text_message(message.sender_id, f"echo:{message.text}")


class ChannelServer:
    """A Sanic app serving only the WeChat blueprint, on a background event loop."""

    def __init__(self, channel: WeChatInput, bot: ScriptedBot) -> None:
        self.channel, self.bot = channel, bot
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: Any = None
        self.port = 0

    def __enter__(self) -> ChannelServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        # Test mode lets Sanic set up more than one app per process (touch-up, registry).
        Sanic.test_mode = True
        app = Sanic(f"wechat_test_{uuid.uuid4().hex[:8]}")
        app.blueprint(self.channel.blueprint(self.bot), url_prefix="/webhooks/wechat")
        self._server = await app.create_server(
            host="127.0.0.1", port=0, return_asyncio_server=True, access_log=False
        )
        await self._server.startup()
        await self._server.start_serving()
        self.port = self._server.server.sockets[0].getsockname()[1]

    def __exit__(self, *_: Any) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/wechat/webhook"


@pytest.fixture
def api() -> Iterator[FakeWeChatApi]:
    with fake_wechat_api() as fake:
        yield fake


def settings(api: FakeWeChatApi, **overrides: Any) -> WeChatSettings:
    base = WeChatSettings(
        token=TOKEN,
        app_id=APP_ID,
        app_secret=APP_SECRET,
        api_base=api.url,
        passive_reply_seconds=2.0,
        max_body_bytes=4096,
    )
    return replace(base, **overrides)


@pytest.fixture
def bot() -> ScriptedBot:
    return ScriptedBot()


@pytest.fixture
def server(api: FakeWeChatApi, bot: ScriptedBot) -> Iterator[ChannelServer]:
    with ChannelServer(WeChatInput(settings(api)), bot) as running:
        yield running


@pytest.fixture
def client(server: ChannelServer) -> WeChatClient:
    return WeChatClient(server.webhook)


# ------------------------------------------------------------------------ verification GET


def test_verification_echoes_only_with_a_valid_signature(client: WeChatClient) -> None:
    query = client.signed_query(echostr="4711")
    assert requests.get(client.webhook, params=query, timeout=10).text == "4711"
    query["signature"] = "0" * 40
    assert requests.get(client.webhook, params=query, timeout=10).status_code == 403
    del query["signature"]
    assert requests.get(client.webhook, params=query, timeout=10).status_code == 403


def test_without_token_the_channel_answers_503(api: FakeWeChatApi, bot: ScriptedBot) -> None:
    with ChannelServer(WeChatInput(settings(api, token=None)), bot) as running:
        client = WeChatClient(running.webhook)
        get = requests.get(running.webhook, params=client.signed_query(echostr="1"), timeout=10)
        assert get.status_code == 503 and "WECHAT_TOKEN" in get.text
        assert client.text("o_user_0001", "你好").status_code == 503
        health = requests.get(running.webhook.rsplit("/", 1)[0] + "/", timeout=10).json()
        assert health == {"status": "ok", "configured": False}
    assert bot.seen == []


# ----------------------------------------------------------------------------- messages


def test_text_is_answered_passively(client: WeChatClient, bot: ScriptedBot) -> None:
    reply = client.reply(client.text("o_user_0001", "你好"))
    assert reply is not None
    assert reply["Content"] == "echo:你好"
    assert reply["ToUserName"] == "o_user_0001" and reply["FromUserName"] == "gh_fakeaccount"
    assert reply["MsgType"] == "text"
    (seen,) = bot.seen
    assert seen.sender_id == "o_user_0001" and seen.input_channel == "wechat"
    assert seen.metadata["wechat"]["msg_type"] == "text"


def test_retries_of_one_msgid_reach_the_bot_once(client: WeChatClient, bot: ScriptedBot) -> None:
    bot.delay = 0.5
    results: list[requests.Response] = []
    threads = [
        threading.Thread(target=lambda: results.append(client.text("o_user_0002", "查订单", "77")))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    late = client.text("o_user_0002", "查订单", "77")
    assert len(bot.seen) == 1
    contents = [client.reply(r) for r in [*results, late]]
    assert all(c is not None and c["Content"] == "echo:查订单" for c in contents)


def test_slow_bot_gets_success_then_a_customer_service_message(
    api: FakeWeChatApi, bot: ScriptedBot
) -> None:
    bot.delay = 0.6
    with ChannelServer(WeChatInput(settings(api, passive_reply_seconds=0.2)), bot) as running:
        client = WeChatClient(running.webhook)
        started = time.monotonic()
        first = client.text("o_user_0003", "慢一点", "88")
        assert time.monotonic() - started < 0.55
        assert client.reply(first) is None
        # A retry after the hand-off must not produce a second answer.
        assert client.reply(client.text("o_user_0003", "慢一点", "88")) is None
        (message,) = api.wait_for_messages(1, timeout=10)
        time.sleep(0.3)
    assert message == {
        "touser": "o_user_0003",
        "msgtype": "text",
        "text": {"content": "echo:慢一点"},
    }
    assert len(api.messages) == 1 and len(bot.seen) == 1


def test_reply_ready_only_after_a_blocked_loop_goes_the_late_way(
    api: FakeWeChatApi, bot: ScriptedBot
) -> None:
    bot.block = 0.4
    with ChannelServer(WeChatInput(settings(api, passive_reply_seconds=0.1)), bot) as running:
        client = WeChatClient(running.webhook)
        assert client.reply(client.text("o_user_0012", "卡住了")) is None
        (message,) = api.wait_for_messages(1, timeout=10)
    assert message["text"]["content"] == "echo:卡住了"


def test_subscribe_gets_the_welcome_without_asking_the_bot(
    client: WeChatClient, bot: ScriptedBot
) -> None:
    reply = client.reply(client.event("o_user_0004", "subscribe"))
    assert reply is not None and reply["Content"] == TEXTS.welcome
    assert client.reply(client.event("o_user_0004", "unsubscribe")) is None
    assert bot.seen == []


def test_menu_click_sends_the_configured_message(client: WeChatClient, bot: ScriptedBot) -> None:
    reply = client.reply(client.event("o_user_0005", "CLICK", "TICKETS"))
    assert reply is not None and reply["Content"] == f"echo:{TEXTS.menu['TICKETS']}"
    assert bot.seen[0].metadata["wechat"]["event_key"] == "TICKETS"
    assert client.reply(client.event("o_user_0005", "CLICK", "NO_SUCH_KEY")) is None
    assert len(bot.seen) == 1


def test_image_is_acknowledged_and_recorded(client: WeChatClient, bot: ScriptedBot) -> None:
    fields = {
        "ToUserName": "gh_fakeaccount",
        "FromUserName": "o_user_0006",
        "CreateTime": int(time.time()),
        "MsgType": "image",
        "PicUrl": "http://mmbiz.example/pic.jpg",
        "MediaId": "media-1",
        "MsgId": client.next_msg_id(),
    }
    reply = client.reply(client.post(fields))
    assert reply is not None and reply["Content"] == TEXTS.image_received
    for _ in range(50):
        if bot.seen:
            break
        time.sleep(0.05)
    (seen,) = bot.seen
    assert seen.text == "[图片] http://mmbiz.example/pic.jpg"
    assert seen.metadata["wechat"]["media_id"] == "media-1"


def test_unsupported_types_and_voice_recognition(client: WeChatClient, bot: ScriptedBot) -> None:
    base = {"ToUserName": "gh_fakeaccount", "FromUserName": "o_user_0007", "CreateTime": 1}
    video = client.post({**base, "MsgType": "video", "MsgId": client.next_msg_id()})
    assert client.reply(video)["Content"] == TEXTS.unsupported
    voice = {"MsgType": "voice", "Recognition": "退货", "MsgId": client.next_msg_id()}
    assert client.reply(client.post({**base, **voice}))["Content"] == "echo:退货"


def test_buttons_become_numbered_choices(client: WeChatClient, bot: ScriptedBot) -> None:
    reply = client.reply(client.text("o_user_0008", "choices"))
    assert reply is not None
    assert reply["Content"] == f"请选择\n{TEXTS.choices_hint}\n1. 退货\n2. 换货"
    assert client.reply(client.text("o_user_0008", "2"))["Content"] == "echo:/request_exchange"
    assert client.reply(client.text("o_user_0008", "2"))["Content"] == "echo:2"


def test_bot_failure_gets_the_error_text(client: WeChatClient) -> None:
    assert client.reply(client.text("o_user_0009", "boom"))["Content"] == TEXTS.error


# ------------------------------------------------------------------------------ refusals


def test_bad_signature_is_403_and_never_reaches_the_bot(
    client: WeChatClient, bot: ScriptedBot
) -> None:
    body = build_xml({"FromUserName": "o_x", "MsgType": "text", "Content": "hi", "MsgId": "1"})
    query = client.signed_query()
    query["signature"] = "f" * 40
    assert client.post_raw(body.encode(), query).status_code == 403
    assert client.post_raw(body.encode(), {}).status_code == 403
    assert bot.seen == []


@pytest.mark.parametrize(
    "body",
    [
        '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        "<xml><FromUserName>o</FromUserName><MsgType>text</MsgType><Content>&b;</Content></xml>",
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>',
        "<xml><Content>unclosed",
        "<xml><MsgType>text</MsgType></xml>",  # no FromUserName
    ],
    ids=["entity expansion", "external entity", "malformed", "incomplete"],
)
def test_hostile_or_malformed_xml_is_400(client: WeChatClient, bot: ScriptedBot, body: str) -> None:
    assert client.post_raw(body.encode()).status_code == 400
    assert bot.seen == []


def test_oversized_body_is_413(client: WeChatClient, bot: ScriptedBot) -> None:
    body = build_xml({"FromUserName": "o", "MsgType": "text", "Content": "长" * 5000})
    assert client.post_raw(body.encode()).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for _ in range(20):
            yield b"<xml>" + b" " * 1000

    chunked = requests.post(client.webhook, params=client.signed_query(), data=chunks(), timeout=10)
    assert chunked.status_code == 413
    assert client.reply(client.text("o_user_0010", "还活着吗"))["Content"] == "echo:还活着吗"
    assert len(bot.seen) == 1


# ----------------------------------------------------------------------------- safe mode


@pytest.fixture
def aes_server(api: FakeWeChatApi, bot: ScriptedBot) -> Iterator[ChannelServer]:
    channel = WeChatInput(settings(api, encoding_aes_key=AES_KEY))
    with ChannelServer(channel, bot) as running:
        yield running


def test_safe_mode_decrypts_and_encrypts_the_reply(aes_server: ChannelServer) -> None:
    client = WeChatClient(aes_server.webhook, crypto=WeChatCrypto(TOKEN, AES_KEY, APP_ID))
    response = client.text("o_user_0011", "加密你好")
    assert "<Encrypt>" in response.text and "加密你好" not in response.text
    assert client.reply(response)["Content"] == "echo:加密你好"


def test_safe_mode_refuses_bad_msg_signature_and_foreign_appid(
    aes_server: ChannelServer, bot: ScriptedBot
) -> None:
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    encrypt = crypto.encrypt(build_xml({"FromUserName": "o", "MsgType": "text", "Content": "x"}))
    client = WeChatClient(aes_server.webhook, crypto=crypto)
    body = build_xml({"ToUserName": "gh", "Encrypt": encrypt}).encode()
    query = client.signed_query(encrypt)
    query["msg_signature"] = "0" * 40
    assert client.post_raw(body, query).status_code == 403

    foreign = WeChatCrypto(TOKEN, AES_KEY, "wx_someone_else").encrypt("<xml/>")
    body = build_xml({"ToUserName": "gh", "Encrypt": foreign}).encode()
    assert client.post_raw(body, client.signed_query(foreign)).status_code == 400
    assert bot.seen == []


def test_safe_mode_request_without_key_configured_is_refused(client: WeChatClient) -> None:
    encrypt = WeChatCrypto(TOKEN, AES_KEY, APP_ID).encrypt("<xml/>")
    body = build_xml({"ToUserName": "gh", "Encrypt": encrypt}).encode()
    assert client.post_raw(body, client.signed_query(encrypt)).status_code == 400


# ------------------------------------------------------------------------- pure helpers


def test_settings_take_secrets_from_the_environment_only(tmp_path: Path) -> None:
    env = {
        "WECHAT_TOKEN": "tok",
        "WECHAT_APP_ID": "wx1",
        "WECHAT_APP_SECRET": "sec",
        "WECHAT_PASSIVE_REPLY_SECONDS": "0.01",
    }
    loaded = WeChatSettings.load(
        {"token": "from-file", "max_body_bytes": 1000, "passive_reply_seconds": 3}, env
    )
    assert loaded.token == "tok" and loaded.app_secret == "sec"
    assert loaded.passive_reply_seconds == 0.01 and loaded.max_body_bytes == 1000
    assert loaded.api_base == "https://api.weixin.qq.com"
    assert WeChatSettings.load(None, {}).token is None
    assert WeChatSettings.load({"passive_reply_seconds": 3}, {}).passive_reply_seconds == 3.0


def test_texts_file_must_be_complete(tmp_path: Path) -> None:
    partial = tmp_path / "texts.yml"
    partial.write_text("welcome: hi\n", encoding="utf-8")
    with pytest.raises(ValueError, match="image_received"):
        WeChatTexts.load(partial)
    assert TEXTS.menu["TICKETS"] == "查工单"


def test_message_keys() -> None:
    assert message_key({"MsgId": "5", "FromUserName": "o"}) == "msg:5"
    subscribe = {"FromUserName": "o", "CreateTime": "9", "Event": "subscribe"}
    assert message_key(subscribe) == message_key(dict(subscribe))
    assert message_key(subscribe) != message_key({**subscribe, "CreateTime": "10"})


def test_dedup_forgets_after_ttl_and_stays_bounded() -> None:
    now = [0.0]

    async def scenario() -> None:
        dedup = MessageDeduplicator(ttl=10, max_entries=3, clock=lambda: now[0])
        loop = asyncio.get_running_loop()
        started: list[str] = []

        def start(key: str) -> Any:
            started.append(key)
            return loop.create_future()

        first, created = dedup.claim("a", lambda: start("a"))
        again, created_again = dedup.claim("a", lambda: start("a"))
        assert created and not created_again and first is again
        now[0] = 11
        assert dedup.claim("a", lambda: start("a"))[1]
        for key in "bcde":
            dedup.claim(key, lambda key=key: start(key))
        assert len(dedup) == 3
        assert started == ["a", "a", "b", "c", "d", "e"]

    asyncio.run(scenario())


def test_collector_renders_text_images_and_custom() -> None:
    async def scenario() -> str:
        collector = WeChatCollector()
        await collector.send_text_message("o", "第一段")
        await collector.send_image_url("o", "http://img.example/1.png")
        await collector.send_custom_json("o", {"text": "自定义"})
        return collector.render("选：")[0]

    assert asyncio.run(scenario()) == "第一段\n\nhttp://img.example/1.png\n\n自定义"
