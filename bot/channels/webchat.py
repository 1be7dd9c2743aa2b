"""The web chat channel: Rasa's socket.io channel plus everything a shop page needs to embed it.

``WebChatInput`` keeps Rasa's socket.io protocol (``session_request`` / ``session_confirm`` /
``user_uttered`` / ``bot_uttered``) and adds, under ``/widget``: the widget script and styles,
the vendored socket.io client, the widget's texts, a demo shop page, and photo uploads that are
stored through :class:`bot.attachments.AttachmentService`.  One Rasa server thus serves both the
conversation and the widget, so a shop embeds it with a single script tag and no CDN.

credentials.yml::

    bot.channels.webchat.WebChatInput:
      user_message_evt: user_uttered
      bot_message_evt: bot_uttered
      session_persistence: true
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.attachments import (
    ALLOWED_TYPES,
    MAX_UPLOAD_BYTES,
    AttachmentService,
    AttachmentView,
    UploadRejected,
    is_valid_session_id,
)
from bot.handoff.bridge import register_delivery
from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

WEB_DIR = PROJECT_ROOT / "web"
TEXTS_FILE = PROJECT_ROOT / "config" / "webchat_texts.yml"
WIDGET_PREFIX = "/widget"
STATIC_FILES = {
    "widget.js": ("widget.js", "application/javascript; charset=utf-8"),
    "widget.css": ("widget.css", "text/css; charset=utf-8"),
    "vendor/socket.io.min.js": ("vendor/socket.io.min.js", "application/javascript; charset=utf-8"),
    "demo": ("demo.html", "text/html; charset=utf-8"),
}
# Static files are small and change with deployments: revalidate instead of caching blindly.
STATIC_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
# A stored photo is only ever an image: never let a browser sniff or run it as anything else.
PHOTO_HEADERS = {
    "Cache-Control": "private, max-age=86400",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


@lru_cache(maxsize=4)
def load_texts(path: Path = TEXTS_FILE) -> dict[str, Any]:
    """The widget's texts per language (config/webchat_texts.yml), checked for completeness."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    languages = raw.get("languages") or {}
    default = raw.get("default_language")
    if default not in languages:
        raise ValueError(f"{path}: default_language {default!r} has no texts")
    expected = set(languages[default])
    for language, texts in languages.items():
        missing = expected - set(texts)
        if missing:
            raise ValueError(f"{path}: language {language!r} lacks {sorted(missing)}")
    return {"default_language": default, "languages": languages}


def texts_for(language: str | None, path: Path = TEXTS_FILE) -> dict[str, Any]:
    """Texts in ``language`` (exact, then its base like ``zh``), else the default language."""
    catalogue = load_texts(path)
    languages: dict[str, Any] = catalogue["languages"]
    if language:
        if language in languages:
            return languages[language]
        base = language.split("-")[0].lower()
        for name, texts in languages.items():
            if name.split("-")[0].lower() == base:
                return texts
    return languages[catalogue["default_language"]]


def upload_error(reason: str, language: str | None) -> dict[str, str]:
    """The JSON body of a refused upload: a machine-readable code and the customer's message."""
    message = (
        texts_for(language)["errors"].get(reason) or texts_for(language)["errors"]["upload_failed"]
    )
    return {"error": reason, "message": message.format(max_mb=MAX_UPLOAD_BYTES // (1024 * 1024))}


def upload_success(attachment: AttachmentView, language: str | None) -> dict[str, Any]:
    """The JSON body of a stored photo: where to show it from and what to tell the customer."""
    texts = texts_for(language)
    message = (
        texts["upload_attached"].format(ticket_no=attachment.ticket_no)
        if attachment.ticket_no
        else texts["upload_ok"]
    )
    return {
        "id": attachment.id,
        "url": f"{WIDGET_PREFIX}/uploads/{attachment.filename}",
        "content_type": attachment.content_type,
        "size": attachment.size,
        "ticket_no": attachment.ticket_no,
        "message": message,
    }


def widget_config(language: str | None) -> dict[str, Any]:
    """What the widget needs from the server before it draws anything."""
    return {
        "texts": texts_for(language),
        "upload": {"max_bytes": MAX_UPLOAD_BYTES, "types": sorted(ALLOWED_TYPES)},
        "socket_path": "/socket.io",
        # Long polling only: Sanic 21.12 (pinned by Rasa 3.6) fails socket.io's websocket
        # upgrade on Python 3.11 ("Passing coroutines is forbidden" in its recv()).
        "transports": ["polling"],
    }


class WebChatDelivery:
    """Reaches a widget conversation at any time: its sockets share a room named after it."""

    def __init__(self, sio: Any, bot_message_evt: str) -> None:
        self.sio = sio
        self.bot_message_evt = bot_message_evt

    def output_channel(self, sender_id: str) -> OutputChannel:
        return SocketIOOutput(self.sio, self.bot_message_evt)

    async def flush(self, sender_id: str, output: OutputChannel) -> None:
        """Nothing to do: socket.io output is sent as it is produced."""


class WebChatInput(SocketIOInput):
    """Rasa's socket.io channel, plus the embeddable widget and photo uploads under /widget."""

    @classmethod
    def name(cls) -> str:
        return "webchat"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._attachments: AttachmentService | None = None

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        # Rasa's default is the opposite; without persistence a reload would lose the chat.
        credentials = {"session_persistence": True, **(credentials or {})}
        return super().from_credentials(credentials)

    def attachments(self) -> AttachmentService:
        """Created on first use, so the channel loads even while the database is down."""
        if self._attachments is None:
            from bot.store.db import session_factory

            self._attachments = AttachmentService(session_factory())
        return self._attachments

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        socket_blueprint = super().blueprint(on_new_message)
        assert self.sio is not None  # set by SocketIOInput.blueprint
        # Replaces Rasa's handler of the same event (python-socketio keeps the last one).
        self.sio.on("session_request", self.session_request, namespace=self.namespace)
        register_delivery(self.name(), WebChatDelivery(self.sio, self.bot_message_evt))
        return WebChatBlueprint(socket_blueprint, self.widget_blueprint())

    async def session_request(self, sid: str, data: Any) -> None:
        """Join the socket to its conversation's room and confirm the (possibly new) id.

        Rasa 3.6 calls ``enter_room`` without awaiting it, but python-socketio 5.12+ made it a
        coroutine, so with session persistence no reply would ever reach the browser.  Ids
        that are not plain tokens are replaced, since they become sender ids in the store.
        """
        assert self.sio is not None
        requested = data.get("session_id") if isinstance(data, dict) else None
        session_id = requested if is_valid_session_id(requested) else uuid.uuid4().hex
        if self.session_persistence:
            joined = self.sio.enter_room(sid, session_id, namespace=self.namespace)
            if inspect.isawaitable(joined):
                await joined
        await self.sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

    def widget_blueprint(self) -> Blueprint:
        """Routes under /widget (not under /webhooks/webchat, so shop pages get short URLs)."""
        widget = Blueprint("webchat_widget", url_prefix=WIDGET_PREFIX)

        def static(name: str, mime_type: str) -> Callable[[Request], Awaitable[HTTPResponse]]:
            async def serve(_: Request) -> HTTPResponse:
                return await response.file(
                    WEB_DIR / name, mime_type=mime_type, headers=STATIC_HEADERS
                )

            serve.__name__ = f"webchat_{name.replace('/', '_').replace('.', '_')}"
            return serve

        for route, (name, mime_type) in STATIC_FILES.items():
            widget.add_route(static(name, mime_type), f"/{route}", methods=["GET"])

        @widget.route("/config.json", methods=["GET"])
        async def config(request: Request) -> HTTPResponse:
            return response.json(
                widget_config(request.args.get("lang")),
                headers={"Cache-Control": "no-cache"},
                ensure_ascii=False,
            )

        @widget.route("/upload", methods=["POST"])
        async def upload(request: Request) -> HTTPResponse:
            language = request.form.get("language") if request.form else None
            session_id = request.form.get("session_id") if request.form else None
            file = request.files.get("file") if request.files else None
            if not is_valid_session_id(session_id):
                return response.json(upload_error("missing_session", language), status=400)
            try:
                stored = await asyncio.get_running_loop().run_in_executor(
                    None, self.attachments().store, session_id, None if file is None else file.body
                )
            except UploadRejected as rejected:
                status = 413 if rejected.reason == "too_large" else 400
                return response.json(upload_error(rejected.reason, language), status=status)
            except Exception:
                logger.exception("could not store a photo from %s", session_id)
                return response.json(upload_error("unavailable", language), status=503)
            return response.json(upload_success(stored, language), ensure_ascii=False)

        @widget.route("/uploads/<filename>", methods=["GET"])
        async def photo(request: Request, filename: str) -> HTTPResponse:
            """A stored photo, only for the conversation that sent it."""
            service = self.attachments()
            found = await asyncio.get_running_loop().run_in_executor(None, service.get, filename)
            if found is None or found.sender_id != request.args.get("session_id"):
                return response.json({"error": "not_found"}, status=404)
            path = service.path_of(found)
            if not path.is_file():
                return response.json({"error": "not_found"}, status=404)
            return await response.file(path, mime_type=found.content_type, headers=PHOTO_HEADERS)

        return widget


class WebChatBlueprint(Blueprint):
    """Registers Rasa's socket.io blueprint where Rasa mounts channels, and the widget at /widget.

    Rasa registers one blueprint per channel under ``/webhooks/<name>``; a blueprint cannot
    place routes outside its prefix, so this one registers the widget blueprint itself.
    """

    def __init__(self, socket_blueprint: Blueprint, widget_blueprint: Blueprint) -> None:
        super().__init__("webchat_channel")
        self.ctx.socket_blueprint = socket_blueprint
        self.ctx.widget_blueprint = widget_blueprint

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        app.blueprint(self.ctx.socket_blueprint, **options)
        app.blueprint(self.ctx.widget_blueprint)
        super().register(app, options)
