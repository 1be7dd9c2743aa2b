"""WeChat official-account (公众号) input channel for Rasa: ``/webhooks/wechat/webhook``.

WeChat gives a webhook 5 seconds and then retries the same message up to 3 times, so this
channel (1) answers each message at most once, whatever the retries, and (2) never misses the
deadline: if the assistant is still thinking after ``passive_reply_seconds`` it answers
"success" and sends the reply later through the customer-service message API.

Secrets come from the environment (credentials.yml holds only non-secret settings):
WECHAT_TOKEN (required; without it the channel answers 503), WECHAT_APP_ID and
WECHAT_APP_SECRET (late replies; AppID also for safe mode), WECHAT_ENCODING_AES_KEY (safe
mode), WECHAT_API_BASE (default https://api.weixin.qq.com) and WECHAT_PASSIVE_REPLY_SECONDS
(overrides the setting; tests use a tiny value to force the late path).

Duplicate detection lives in this process's memory for ``dedup_ttl_seconds`` (WeChat's retries
all come within ~15 s). Run one Rasa process per official account, or route retries to the
same process; a restart forgets recent messages, at worst answering a retry once more.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rasa.core.channels.channel import (
    CollectingOutputChannel,
    InputChannel,
    OutputChannel,
    UserMessage,
)
from sanic import Blueprint, response
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.wechat_api import (
    DEFAULT_API_BASE,
    WeChatApiError,
    WeChatCrypto,
    WeChatCryptoError,
    WeChatCustomerService,
    XmlRefused,
    mask,
    parse_message,
    signature_matches,
    text_reply,
)
from bot.handoff.bridge import register_delivery
from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

NOT_CONFIGURED = "WeChat channel not configured: set WECHAT_TOKEN (see bot/channels/wechat.py)."
SECRET_KEYS = ("token", "app_id", "app_secret", "encoding_aes_key")


# ---------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class WeChatTexts:
    """Customer-facing wording, kept in config/wechat_texts.yml so editors need no code."""

    welcome: str
    image_received: str
    unsupported: str
    error: str
    choices_hint: str
    menu: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> WeChatTexts:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        missing = [name for name in cls.__dataclass_fields__ if name not in data]
        if missing:
            raise ValueError(f"{path}: missing {', '.join(missing)}")
        menu = {str(key): str(value) for key, value in (data["menu"] or {}).items()}
        fields = {name: str(data[name]).strip() for name in cls.__dataclass_fields__}
        return cls(**{**fields, "menu": menu})


@dataclass(frozen=True)
class WeChatSettings:
    """Everything the channel needs; secrets only ever from the environment."""

    token: str | None = None
    app_id: str | None = None
    app_secret: str | None = None
    encoding_aes_key: str | None = None
    api_base: str = DEFAULT_API_BASE
    passive_reply_seconds: float = 4.0
    max_body_bytes: int = 64 * 1024
    dedup_ttl_seconds: float = 300.0
    texts_file: Path = PROJECT_ROOT / "config" / "wechat_texts.yml"

    @classmethod
    def load(
        cls, credentials: dict[str, Any] | None, env: dict[str, str] | None = None
    ) -> WeChatSettings:
        credentials = dict(credentials or {})
        env = dict(os.environ if env is None else env)
        for key in SECRET_KEYS:
            if credentials.pop(key, None) is not None:
                logger.warning("credentials.yml wechat.%s ignored: use WECHAT_%s", key, key.upper())

        def secret(name: str) -> str | None:
            return env.get(name, "").strip() or None

        passive = env.get("WECHAT_PASSIVE_REPLY_SECONDS", "").strip() or credentials.get(
            "passive_reply_seconds", cls.passive_reply_seconds
        )
        texts_file = Path(credentials.get("texts_file") or cls.texts_file)
        return cls(
            token=secret("WECHAT_TOKEN"),
            app_id=secret("WECHAT_APP_ID"),
            app_secret=secret("WECHAT_APP_SECRET"),
            encoding_aes_key=secret("WECHAT_ENCODING_AES_KEY"),
            api_base=secret("WECHAT_API_BASE") or DEFAULT_API_BASE,
            passive_reply_seconds=float(passive),
            max_body_bytes=int(credentials.get("max_body_bytes", cls.max_body_bytes)),
            dedup_ttl_seconds=float(credentials.get("dedup_ttl_seconds", cls.dedup_ttl_seconds)),
            texts_file=texts_file if texts_file.is_absolute() else PROJECT_ROOT / texts_file,
        )


# ----------------------------------------------------------------------------- dedup state


@dataclass
class InFlight:
    """One WeChat message: the work answering it, shared by all of its retries."""

    result: asyncio.Future[list[str]]
    created: float
    handed_off: bool = False
    """True once the reply was given to the customer-service API: retries then get "success"."""


class MessageDeduplicator:
    """Maps a message key to its :class:`InFlight`, in memory, for ``ttl`` seconds.

    Bounded (oldest evicted first) so a flood of distinct messages cannot grow it forever.
    """

    def __init__(
        self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, InFlight] = OrderedDict()

    def claim(
        self, key: str, start: Callable[[], asyncio.Future[list[str]]]
    ) -> tuple[InFlight, bool]:
        """The entry for ``key`` and whether this call created it (``start`` runs only then)."""
        now = self._clock()
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if now - oldest.created < self.ttl and len(self._entries) < self.max_entries:
                break
            self._entries.popitem(last=False)
        entry = self._entries.get(key)
        if entry is not None:
            return entry, False
        entry = InFlight(result=start(), created=now)
        self._entries[key] = entry
        return entry, True

    def __len__(self) -> int:
        return len(self._entries)


def message_key(message: dict[str, str]) -> str:
    """MsgId for messages; events have none, so sender + CreateTime (+ event) as WeChat says."""
    if message.get("MsgId"):
        return f"msg:{message['MsgId']}"
    return ":".join(
        ["event", message.get("FromUserName", ""), message.get("CreateTime", "")]
        + [message.get("Event", ""), message.get("EventKey", "")]
    )


# --------------------------------------------------------------------------- output channels


class WeChatCollector(CollectingOutputChannel):
    """Collects the bot's answer to one message and renders it as plain WeChat text."""

    @classmethod
    def name(cls) -> str:
        return "wechat"

    def render(self, choices_hint: str) -> tuple[str, list[str]]:
        """The reply text and the payloads of numbered choices (answered by number)."""
        parts: list[str] = []
        payloads: list[str] = []
        for message in self.messages:
            lines = [message["text"]] if message.get("text") else []
            for key in ("image", "attachment"):
                if message.get(key):
                    lines.append(str(message[key]))
            custom = message.get("custom")
            if isinstance(custom, dict) and isinstance(custom.get("text"), str):
                lines.append(custom["text"])
            buttons = message.get("buttons") or message.get("quick_replies") or []
            if buttons:
                lines.append(choices_hint)
            for button in buttons:
                payloads.append(str(button.get("payload") or button.get("title", "")))
                lines.append(f"{len(payloads)}. {button.get('title', '')}")
            if lines:
                parts.append("\n".join(lines))
        return "\n\n".join(parts), payloads


class WeChatPushOutput(OutputChannel):
    """Rasa output through the customer-service API (e.g. ``/conversations/…/execute``)."""

    def __init__(self, client: WeChatCustomerService) -> None:
        self.client = client

    @classmethod
    def name(cls) -> str:
        return "wechat"

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.client.send_text, recipient_id, text)


# ----------------------------------------------------------------------------------- channel


@dataclass
class _Request:
    """What one POST decoded to, so the reply can be encrypted the same way."""

    message: dict[str, str]
    encrypted: bool
    arrived: float


class BadRequest(Exception):
    """A request to refuse with ``status`` and a short reason (never the body)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class WeChatInput(InputChannel):
    """Receives WeChat official-account messages; see the module docstring for the design."""

    @classmethod
    def name(cls) -> str:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WeChatInput:
        return cls(WeChatSettings.load(credentials))

    def __init__(
        self,
        settings: WeChatSettings,
        customer_service: WeChatCustomerService | None = None,
    ) -> None:
        self.settings = settings
        self.texts = WeChatTexts.load(settings.texts_file)
        self.crypto: WeChatCrypto | None = None
        if settings.token and settings.encoding_aes_key:
            self.crypto = WeChatCrypto(
                settings.token, settings.encoding_aes_key, settings.app_id or ""
            )
        if customer_service is None and settings.app_id and settings.app_secret:
            customer_service = WeChatCustomerService(
                settings.app_id, settings.app_secret, settings.api_base
            )
        self.customer_service = customer_service
        self.dedup = MessageDeduplicator(settings.dedup_ttl_seconds)
        self._choices: dict[str, tuple[float, list[str]]] = {}
        self._background: set[asyncio.Future[Any]] = set()
        if not settings.token:
            logger.warning(NOT_CONFIGURED)
        elif customer_service is None:
            logger.warning("WECHAT_APP_ID/WECHAT_APP_SECRET not set: late replies will be lost")

    def output_channel(self, sender_id: str) -> OutputChannel:
        """For a message that is not an answer (an agent's, a survey): collected, then pushed."""
        return WeChatCollector()

    async def flush(self, sender_id: str, output: OutputChannel) -> None:
        """Push what ``output`` collected through the customer-service API."""
        if not isinstance(output, WeChatCollector) or not output.messages:
            return
        if self.customer_service is None:
            raise WeChatApiError("WECHAT_APP_ID/WECHAT_APP_SECRET are not set")
        reply, payloads = output.render(self.texts.choices_hint)
        self._remember_choices(sender_id, payloads)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.customer_service.send_text, sender_id, reply)

    def get_output_channel(self) -> OutputChannel | None:
        return WeChatPushOutput(self.customer_service) if self.customer_service else None

    # -- HTTP ------------------------------------------------------------------------------

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        register_delivery(self.name(), self)
        webhook = Blueprint("wechat_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok", "configured": bool(self.settings.token)})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            if not self.settings.token:
                return response.text(NOT_CONFIGURED, status=503)
            args = request.args
            if not signature_matches(
                args.get("signature"), self.settings.token, args.get("timestamp"), args.get("nonce")
            ):
                return response.text("invalid signature", status=403)
            return response.text(args.get("echostr", ""))

        @webhook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            arrived = time.monotonic()  # WeChat's 5 s run from here, not from parsing
            if not self.settings.token:
                return response.text(NOT_CONFIGURED, status=503)
            try:
                decoded = await self._decode(request, arrived)
                return await self._respond(decoded, on_new_message)
            except BadRequest as refused:
                logger.info("WeChat request refused (%s): %s", refused.status, refused)
                return response.text(str(refused), status=refused.status)
            except Exception:  # never let one message take the webhook down
                logger.exception("WeChat message failed")
                return response.text("success")

        return webhook

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise BadRequest(413, f"body over {limit} bytes")
        if request.stream is not None:
            request.stream.request_max_size = limit
        try:
            await request.receive_body()
        except PayloadTooLarge:
            raise BadRequest(413, f"body over {limit} bytes") from None
        if len(request.body) > limit:
            raise BadRequest(413, f"body over {limit} bytes")
        return request.body

    async def _decode(self, request: Request, arrived: float) -> _Request:
        """Authenticate, decrypt and parse; raises :class:`BadRequest` (403/400/413)."""
        args = request.args
        token = self.settings.token or ""
        timestamp, nonce = args.get("timestamp"), args.get("nonce")
        encrypted = (args.get("encrypt_type") or "raw").lower() == "aes"
        if not encrypted and not signature_matches(args.get("signature"), token, timestamp, nonce):
            raise BadRequest(403, "invalid signature")
        body = await self._read_body(request)
        try:
            message = parse_message(body)
        except XmlRefused as refused:
            raise BadRequest(400, f"XML refused: {refused}") from None
        if encrypted:
            if self.crypto is None:
                raise BadRequest(400, "safe mode is not configured (WECHAT_ENCODING_AES_KEY)")
            cipher = message.get("Encrypt", "")
            if not signature_matches(args.get("msg_signature"), token, timestamp, nonce, cipher):
                raise BadRequest(403, "invalid msg_signature")
            try:
                message = parse_message(self.crypto.decrypt(cipher).encode("utf-8"))
            except (WeChatCryptoError, XmlRefused) as refused:
                raise BadRequest(400, f"encrypted message refused: {refused}") from None
        if not message.get("FromUserName") or not message.get("MsgType"):
            raise BadRequest(400, "FromUserName and MsgType are required")
        return _Request(message, encrypted, arrived)

    async def _respond(
        self,
        decoded: _Request,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> HTTPResponse:
        message = decoded.message
        openid = message["FromUserName"]
        entry, first = self.dedup.claim(
            message_key(message), lambda: self._start(message, on_new_message)
        )
        if not first:
            kind = message.get("MsgId") or message.get("Event", "event")
            logger.info("WeChat retry (%s) from %s", kind, mask(openid))
        reply = await self._wait_for_reply(entry, openid, decoded.arrived)
        if not reply:
            return response.text("success")
        xml = text_reply(openid, message.get("ToUserName", ""), reply)
        if decoded.encrypted and self.crypto is not None:
            xml = self.crypto.encrypted_reply(xml)
        return response.text(xml, content_type="application/xml; charset=utf-8")

    async def _wait_for_reply(self, entry: InFlight, openid: str, arrived: float) -> str | None:
        """The reply if it is ready before the deadline; else hand it to the custom API.

        Rasa's inference can block the event loop past the timer, so lateness is checked
        again on the clock: a reply ready only after the deadline also goes the late way,
        unless there is no customer-service API to take it.
        """
        if entry.handed_off:
            return None
        deadline = arrived + self.settings.passive_reply_seconds
        if not entry.result.done():
            try:
                await asyncio.wait_for(
                    asyncio.shield(entry.result), max(deadline - time.monotonic(), 0.0)
                )
            except asyncio.TimeoutError:
                pass
            ready = entry.result.done()
            if entry.handed_off:
                return None
            if not ready or (time.monotonic() > deadline and self.customer_service is not None):
                entry.handed_off = True
                self._spawn(self._deliver_later(entry, openid))
                return None
        return "\n\n".join(entry.result.result()) or None

    async def _deliver_later(self, entry: InFlight, openid: str) -> None:
        texts = await entry.result
        reply = "\n\n".join(texts)
        if not reply:
            return
        if self.customer_service is None:
            logger.warning("Late reply to %s dropped: no WECHAT_APP_ID/SECRET", mask(openid))
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.customer_service.send_text, openid, reply)
        except WeChatApiError as error:
            logger.warning("Late reply to %s failed: %s (%s)", mask(openid), error, error.errcode)

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run ``work`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- what each kind of message means ---------------------------------------------------

    def _start(
        self, message: dict[str, str], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> asyncio.Future[list[str]]:
        """Begin answering ``message``; a done future for replies that need no bot."""
        msg_type = message["MsgType"].lower()
        openid = message["FromUserName"]
        meta = {
            "msg_type": msg_type,
            "msg_id": message.get("MsgId"),
            "create_time": message.get("CreateTime"),
            "account": message.get("ToUserName"),
        }
        text: str | None = None
        if msg_type == "text":
            text = self._choice_payload(openid, message.get("Content", ""))
        elif msg_type == "voice" and message.get("Recognition"):
            text = message["Recognition"]
        elif msg_type == "image":
            meta.update(pic_url=message.get("PicUrl"), media_id=message.get("MediaId"))
            picture = f"[图片] {message.get('PicUrl') or message.get('MediaId', '')}".strip()
            # Recorded in the conversation for the service team; the bot cannot read
            # pictures, so its answer is not shown: the customer gets the acknowledgement.
            self._spawn(self._ask_bot(on_new_message, picture, openid, meta))
            return self._done([self.texts.image_received])
        elif msg_type == "event":
            event = message.get("Event", "").lower()
            meta.update(event=event, event_key=message.get("EventKey"))
            if event == "subscribe":
                return self._done([self.texts.welcome])
            if event == "click":
                text = self.texts.menu.get(message.get("EventKey", ""))
                if text is None:
                    logger.info("WeChat menu key without a mapping: %r", message.get("EventKey"))
            if text is None:
                return self._done([])
        else:
            return self._done([self.texts.unsupported])
        if not text or not text.strip():
            return self._done([])
        logger.info("WeChat %s from %s (%d chars)", msg_type, mask(openid), len(text))
        return self._spawn(self._ask_bot(on_new_message, text, openid, meta))

    @staticmethod
    def _done(texts: list[str]) -> asyncio.Future[list[str]]:
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        future.set_result(texts)
        return future

    async def _ask_bot(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        text: str,
        openid: str,
        meta: dict[str, Any],
    ) -> list[str]:
        collector = WeChatCollector()
        user_message = UserMessage(
            text,
            collector,
            openid,
            input_channel=self.name(),
            message_id=meta.get("msg_id"),
            metadata={"wechat": {k: v for k, v in meta.items() if v is not None}},
        )
        try:
            await on_new_message(user_message)
        except Exception:
            logger.exception("Rasa failed on a WeChat message from %s", mask(openid))
            return [self.texts.error]
        reply, payloads = collector.render(self.texts.choices_hint)
        self._remember_choices(openid, payloads)
        return [reply] if reply else []

    # Numbered choices: WeChat text has no buttons, so "2" means the second button shown.
    _CHOICES_TTL = 30 * 60.0

    def _remember_choices(self, openid: str, payloads: list[str]) -> None:
        now = time.monotonic()
        for stale in [k for k, (t, _) in self._choices.items() if now - t > self._CHOICES_TTL]:
            del self._choices[stale]
        if payloads:
            self._choices[openid] = (now, payloads)
        else:
            self._choices.pop(openid, None)

    def _choice_payload(self, openid: str, text: str) -> str:
        text = text.strip()
        remembered = self._choices.get(openid)
        if remembered and text.isdigit() and 0 < int(text) <= len(remembered[1]):
            return remembered[1][int(text) - 1]
        return text
