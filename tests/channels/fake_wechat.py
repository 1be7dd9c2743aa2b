"""A stand-in for WeChat on 127.0.0.1, both sides of it.

:class:`FakeWeChatApi` plays api.weixin.qq.com (access tokens that can be expired on demand,
custom/send messages recorded); :class:`WeChatClient` plays WeChat's servers calling our
webhook (signed, and encrypted in safe mode), so tests drive the channel the way WeChat does.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests

from bot.channels.wechat_api import WeChatCrypto, build_xml, parse_message, sign

APP_ID, APP_SECRET = "wxfake0123456789ab", "fake-secret"
TOKEN = "fake-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_fakeaccount"


class FakeWeChatApi:
    """Issues tokens, expires them on request (errcode 42001) and records custom messages."""

    def __init__(self, app_id: str = APP_ID, secret: str = APP_SECRET) -> None:
        self.app_id, self.secret = app_id, secret
        self.expires_in = 7200
        self.valid_tokens: set[str] = set()
        self.expired_tokens: set[str] = set()
        self.token_requests = 0
        self.rejections: list[int] = []
        self.messages: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeWeChatApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def expire_tokens(self) -> None:
        """Make every issued token expired, as WeChat does after 2 h or a newer token."""
        with self._changed:
            self.expired_tokens |= self.valid_tokens
            self.valid_tokens.clear()

    def wait_for_messages(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Block until ``count`` custom messages arrived (or fail after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.messages)} of {count} messages arrived")
                self._changed.wait(left)
            return list(self.messages)

    def _token(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("grant_type") != "client_credential":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if query.get("appid") != self.app_id or query.get("secret") != self.secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        token = f"token-{secrets.token_hex(6)}"
        with self._changed:
            self.token_requests += 1
            self.valid_tokens.add(token)
        return {"access_token": token, "expires_in": self.expires_in}

    def _send(self, query: dict[str, str], body: bytes) -> dict[str, Any]:
        token = query.get("access_token", "")
        with self._changed:
            if token not in self.valid_tokens:
                code = 42001 if token in self.expired_tokens else 40001
                self.rejections.append(code)
                return {"errcode": code, "errmsg": "access_token expired or invalid"}
            self.messages.append(json.loads(body.decode("utf-8")))
            self._changed.notify_all()
        return {"errcode": 0, "errmsg": "ok"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, payload: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self) -> tuple[str, dict[str, str]]:
                parsed = urlparse(self.path)
                return parsed.path, {k: v[0] for k, v in parse_qs(parsed.query).items()}

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path, query = self._route()
                if path == "/cgi-bin/token":
                    self._answer(api._token(query))
                else:
                    self._answer({"errcode": 404}, 404)

            def do_POST(self) -> None:  # noqa: N802
                path, query = self._route()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if path == "/cgi-bin/message/custom/send":
                    self._answer(api._send(query, body))
                else:
                    self._answer({"errcode": 404}, 404)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


@contextmanager
def fake_wechat_api() -> Iterator[FakeWeChatApi]:
    api = FakeWeChatApi().start()
    try:
        yield api
    finally:
        api.stop()


class WeChatClient:
    """Calls the webhook like WeChat: signed query string, XML body, optional safe mode."""

    def __init__(self, webhook: str, token: str = TOKEN, crypto: WeChatCrypto | None = None):
        self.webhook = webhook
        self.token = token
        self.crypto = crypto
        self._msg_id = int(time.time() * 1000) * 1000

    def next_msg_id(self) -> str:
        self._msg_id += 1
        return str(self._msg_id)

    def signed_query(self, encrypt: str | None = None, **extra: str) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        query = {
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": sign(self.token, timestamp, nonce),
            "openid": "ignored",
        }
        if encrypt is not None:
            query.update(
                encrypt_type="aes", msg_signature=sign(self.token, timestamp, nonce, encrypt)
            )
        query.update(extra)
        return query

    def post_raw(self, body: bytes, query: dict[str, str] | None = None) -> requests.Response:
        return requests.post(
            self.webhook,
            params=self.signed_query() if query is None else query,
            data=body,
            headers={"Content-Type": "text/xml"},
            timeout=30,
        )

    def post(self, fields: dict[str, str | int]) -> requests.Response:
        """Send one message (a dict of XML fields), encrypted when the client has a key."""
        xml = build_xml(fields)
        if self.crypto is None:
            return self.post_raw(xml.encode("utf-8"))
        encrypt = self.crypto.encrypt(xml)
        body = build_xml({"ToUserName": fields["ToUserName"], "Encrypt": encrypt})
        return self.post_raw(body.encode("utf-8"), self.signed_query(encrypt))

    def text(self, openid: str, content: str, msg_id: str | None = None) -> requests.Response:
        return self.post(
            {
                "ToUserName": ACCOUNT,
                "FromUserName": openid,
                "CreateTime": int(time.time()),
                "MsgType": "text",
                "Content": content,
                "MsgId": msg_id or self.next_msg_id(),
            }
        )

    def event(self, openid: str, event: str, key: str = "") -> requests.Response:
        fields: dict[str, str | int] = {
            "ToUserName": ACCOUNT,
            "FromUserName": openid,
            "CreateTime": int(time.time()),
            "MsgType": "event",
            "Event": event,
        }
        if key:
            fields["EventKey"] = key
        return self.post(fields)

    def reply(self, response: requests.Response) -> dict[str, str] | None:
        """The passive reply's fields (decrypted and signature-checked), None for "success"."""
        assert response.status_code == 200, response.text
        if response.text in ("success", ""):
            return None
        fields = parse_message(response.content)
        if "Encrypt" in fields:
            assert self.crypto is not None
            expected = sign(self.token, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
            assert fields["MsgSignature"] == expected
            fields = parse_message(self.crypto.decrypt(fields["Encrypt"]).encode("utf-8"))
        return fields


# ------------------------------------------------------------------ real servers for e2e tests

RASA_PORT, ACTION_PORT = 5405, 5455


@dataclass
class WeChatAssistant:
    """A running Rasa + action server with the WeChat channel, and the fake WeChat API."""

    url: str
    api: FakeWeChatApi
    logs: Path

    @property
    def webhook(self) -> str:
        return f"{self.url}/webhooks/wechat/webhook"

    def client(self, safe_mode: bool = False) -> WeChatClient:
        crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID) if safe_mode else None
        return WeChatClient(self.webhook, crypto=crypto)

    def user_texts(self, openid: str) -> list[str]:
        """What Rasa recorded the customer saying (its tracker, over the HTTP API)."""
        tracker = requests.get(f"{self.url}/conversations/{openid}/tracker", timeout=30)
        tracker.raise_for_status()
        return [e.get("text") or "" for e in tracker.json()["events"] if e["event"] == "user"]


@contextmanager
def wechat_assistant(
    model: Path, workdir: Path, passive_reply_seconds: float = 4.0
) -> Iterator[WeChatAssistant]:
    """Start the real servers with WECHAT_* pointing at a fresh :class:`FakeWeChatApi`."""
    from bot.demo import create_demo_database
    from bot.handoff.policy import ESCALATION_POLICY_FILE_ENV
    from bot.launcher import start_servers, stop_servers
    from tests.browser.webchat_server import always_open_policy

    database = f"sqlite:///{workdir / 'assistant.db'}"
    create_demo_database(database)
    with fake_wechat_api() as api:
        env = {
            "ASSISTANT_DATABASE_URL": database,
            "WECHAT_TOKEN": TOKEN,
            "WECHAT_APP_ID": APP_ID,
            "WECHAT_APP_SECRET": APP_SECRET,
            "WECHAT_ENCODING_AES_KEY": AES_KEY,
            "WECHAT_API_BASE": api.url,
            "WECHAT_PASSIVE_REPLY_SECONDS": str(passive_reply_seconds),
            "NO_PROXY": "127.0.0.1,localhost",
            ESCALATION_POLICY_FILE_ENV: str(always_open_policy(workdir)),
        }
        processes = start_servers(
            RASA_PORT,
            ACTION_PORT,
            model,
            extra_env=env,
            log_dir=workdir / "logs",
            tracker_db=workdir / "tracker.db",
        )
        url = f"http://127.0.0.1:{RASA_PORT}"
        try:
            # Warm up the model on another channel so the first WeChat message is not slow.
            requests.post(
                f"{url}/webhooks/rest/webhook",
                json={"sender": "warm-up", "message": "你好"},
                timeout=120,
            ).raise_for_status()
            yield WeChatAssistant(url, api, workdir / "logs")
        finally:
            stop_servers(processes)
