"""The agent console, served by the Rasa server as a custom input channel.

Rasa mounts every channel's blueprint under ``/webhooks/<name>``; the console lives at
``/console`` (short URLs, and the session cookie is scoped to that path), so the blueprint
Rasa receives registers the console blueprint itself, as the web chat channel does for
``/widget``.  Inside a handler the Rasa ``Agent`` is ``request.app.ctx.agent``; the console only
reaches it through :class:`bot.handoff.bridge.ConversationBridge`.

credentials.yml::

    bot.console.channel.AgentConsoleInput: {}
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.console import security
from bot.console.api import ApiError, ConsoleApi, Viewer
from bot.handoff.bridge import AGENT_JOINED_RESPONSE, TRANSFERRED_RESPONSE, DeliveryFailed
from bot.handoff.live import LiveEvent, handoffs_fingerprint, hub
from bot.services.desk import format_time
from bot.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

CONSOLE_PREFIX = "/console"
WEB_DIR = PROJECT_ROOT / "web" / "console"
STATIC_FILES = {
    "console.js": "application/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
HEARTBEAT_SECONDS = 15.0
RELEASE_SECONDS = 30.0
"""How often waiting chats are checked for a desk nobody is at any more."""
MAX_REPLY_CHARS = 2000

T = TypeVar("T")
Handler = Callable[..., Awaitable[HTTPResponse | None]]
BridgeFactory = Callable[[Sanic], Any]


def _default_bridge(app: Sanic) -> Any:
    from bot.handoff.bridge import bridge_for

    return bridge_for(app)


def error(failure: ApiError) -> HTTPResponse:
    return response.json(
        {"error": failure.message, "code": failure.code},
        status=failure.status,
        headers=security.API_HEADERS,
        ensure_ascii=False,
    )


def ok(body: Any, status: int = 200) -> HTTPResponse:
    return response.json(body, status=status, headers=security.API_HEADERS, ensure_ascii=False)


async def blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run store code off the event loop, so one slow query never stalls every chat."""
    return await asyncio.get_running_loop().run_in_executor(
        None, partial(function, *args, **kwargs)
    )


def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise ApiError(400, "bad_request") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request")
    return body


class AgentConsoleInput(InputChannel):
    """Serves the agent console page and its JSON API; never feeds messages to the bot."""

    @classmethod
    def name(cls) -> str:
        return "console"

    def __init__(
        self, api: ConsoleApi | None = None, bridge_factory: BridgeFactory | None = None
    ) -> None:
        self._api = api
        self._watching = False
        self._bridge_factory = bridge_factory or _default_bridge

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls()

    def api(self) -> ConsoleApi:
        """Created on first use, so the channel loads even while the database is down."""
        if self._api is None:
            self._api = ConsoleApi.create()
        if self._api.session_factory is not None and not self._watching:
            hub().watch(partial(handoffs_fingerprint, self._api.session_factory))
            self._watching = True
        return self._api

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        return ConsoleBlueprint(self.console_blueprint())

    # ------------------------------------------------------------------ request plumbing

    async def _viewer(self, request: Request, minimum_role: str) -> Viewer:
        """The logged-in agent of this request, after the session, CSRF and role checks."""
        token = request.cookies.get(security.SESSION_COOKIE)
        if not token:
            raise ApiError(401, "not_logged_in")
        viewer = await blocking(self.api().viewer_for, token)
        if viewer is None:
            raise ApiError(401, "session_expired")
        if request.method not in security.SAFE_METHODS and not security.csrf_matches(
            viewer.csrf_token, request.headers.get(security.CSRF_HEADER)
        ):
            raise ApiError(403, "csrf")
        if not security.role_allows(viewer.role, minimum_role):
            raise ApiError(403, "forbidden")
        return viewer

    def _route(self, minimum_role: str | None, handler: Handler) -> Handler:
        """Wrap a handler with authentication (unless ``minimum_role`` is None) and errors."""

        async def wrapped(request: Request, **params: Any) -> HTTPResponse | None:
            try:
                if minimum_role is None:
                    return await handler(request, **params)
                viewer = await self._viewer(request, minimum_role)
                return await handler(request, viewer, **params)
            except ApiError as failure:
                return error(failure)
            except Exception:
                logger.exception("console request %s %s failed", request.method, request.path)
                return error(ApiError(500, "unavailable"))

        wrapped.__name__ = f"console_{handler.__name__}"
        return wrapped

    # ------------------------------------------------------------------ routes

    async def release_unattended(self, app: Sanic) -> int:
        """Waiting chats nobody can take any more become call-backs, and their customers
        hear when to expect the call (the bot answers them again meanwhile)."""
        released = await blocking(self.api().handoffs.release_unattended)
        for view in released:
            due = (
                format_time(view.callback_due, self.api().service_policy)
                if view.callback_due
                else ""
            )
            try:
                await self._bridge_factory(app).release_to_callback(view.sender_id, due)
            except DeliveryFailed as failure:
                logger.warning("telling %s of the call-back failed: %s", view.sender_id, failure)
        return len(released)

    async def _tell_customer(self, app: Sanic, chat: dict[str, Any], response: str) -> None:
        """Tell the customer who has their chat now; the chat is the agent's even when the
        push fails (the customer sees the notice on their next visit)."""
        agent = chat.get("agent") or {}
        try:
            await self._bridge_factory(app).tell(
                chat["sender_id"], response, agent_name=agent.get("display_name") or ""
            )
        except DeliveryFailed as failure:
            logger.warning("telling %s who took the chat failed: %s", chat["sender_id"], failure)

    async def _keep_releasing(self, app: Sanic) -> None:
        while True:
            await asyncio.sleep(RELEASE_SECONDS)
            try:
                await self.release_unattended(app)
            except Exception:
                logger.exception("releasing unattended chats failed")

    def console_blueprint(self) -> Blueprint:
        console = Blueprint("agent_console", url_prefix=CONSOLE_PREFIX)
        api = self.api
        bridge = self._bridge_factory

        @console.listener("after_server_start")
        async def start_releasing(app: Sanic, _loop: Any) -> None:
            app.add_task(self._keep_releasing(app))

        def add(path: str, methods: list[str], minimum_role: str | None = "agent") -> Callable:
            def register(handler: Handler) -> Handler:
                console.add_route(self._route(minimum_role, handler), path, methods=methods)
                return handler

            return register

        @add("/", ["GET"], None)
        async def page(_: Request) -> HTTPResponse:
            return await response.file(
                WEB_DIR / "index.html",
                mime_type="text/html; charset=utf-8",
                headers={**security.PAGE_HEADERS, "Cache-Control": "no-cache"},
            )

        @add("/static/<name>", ["GET"], None)
        async def static(_: Request, name: str) -> HTTPResponse:
            mime_type = STATIC_FILES.get(name)
            if mime_type is None:
                raise ApiError(404, "not_found")
            return await response.file(
                WEB_DIR / name,
                mime_type=mime_type,
                headers={**security.PAGE_HEADERS, "Cache-Control": "no-cache"},
            )

        @add("/texts.json", ["GET"], None)
        async def texts(_: Request) -> HTTPResponse:
            """UI labels only (no data), needed before login to draw the login form."""
            return ok(api().page_texts())

        @add("/api/login", ["POST"], None)
        async def login(request: Request) -> HTTPResponse:
            body = json_body(request)
            result = await blocking(
                api().login, str(body.get("username") or ""), str(body.get("password") or "")
            )
            answer = ok({"agent": result.agent, "csrf_token": result.csrf_token})
            security.set_session_cookie(
                answer,
                result.token,
                secure=security.wants_secure_cookie(request),
                max_age_seconds=result.max_age_seconds,
            )
            return answer

        @add("/api/logout", ["POST"])
        async def logout(request: Request, viewer: Viewer) -> HTTPResponse:
            await blocking(api().logout, request.cookies.get(security.SESSION_COOKIE, ""))
            answer = response.empty(status=204, headers=security.API_HEADERS)
            security.clear_session_cookie(answer, secure=security.wants_secure_cookie(request))
            return answer

        @add("/api/me", ["GET"])
        async def me(_: Request, viewer: Viewer) -> HTTPResponse:
            return ok({"agent": viewer.public(), "csrf_token": viewer.csrf_token})

        @add("/api/queue", ["GET"])
        async def queue(_: Request, viewer: Viewer) -> HTTPResponse:
            return ok(await blocking(api().queue, viewer))

        @add("/api/events", ["GET"])
        async def events(request: Request, viewer: Viewer) -> None:
            return await self._stream_events(request, viewer)

        @add("/api/chats/<handoff_id:int>", ["GET"])
        async def chat(request: Request, viewer: Viewer, handoff_id: int) -> HTTPResponse:
            view = await blocking(api().visible_chat, viewer, handoff_id)
            conversation = bridge(request.app)
            transcript = await conversation.transcript(view.sender_id)
            learned = await conversation.learned_summary(view.sender_id)
            return ok(await blocking(api().chat_detail, viewer, view, transcript, learned))

        @add("/api/chats/<handoff_id:int>/claim", ["POST"])
        async def claim(request: Request, viewer: Viewer, handoff_id: int) -> HTTPResponse:
            chat = await blocking(api().claim, viewer, handoff_id)
            await bridge(request.app).pause(chat["sender_id"])
            await self._tell_customer(request.app, chat, AGENT_JOINED_RESPONSE)
            self._announce(chat)
            return ok(chat)

        @add("/api/chats/<handoff_id:int>/transfer", ["POST"])
        async def transfer(request: Request, viewer: Viewer, handoff_id: int) -> HTTPResponse:
            target = json_body(request).get("agent_id")
            if not isinstance(target, int):
                raise ApiError(400, "bad_transfer_target")
            chat = await blocking(api().transfer, viewer, handoff_id, target)
            await self._tell_customer(request.app, chat, TRANSFERRED_RESPONSE)
            self._announce(chat)
            return ok(chat)

        @add("/api/chats/<handoff_id:int>/messages", ["POST"])
        async def message(request: Request, viewer: Viewer, handoff_id: int) -> HTTPResponse:
            text = json_body(request).get("text")
            if not isinstance(text, str) or not text.strip():
                raise ApiError(400, "empty_message")
            if len(text) > MAX_REPLY_CHARS:
                raise ApiError(400, "message_too_long", max=MAX_REPLY_CHARS)
            view = await blocking(api().owned_chat, viewer, handoff_id)
            try:
                entry = await bridge(request.app).send_agent_message(
                    view.sender_id, text.strip(), viewer.display_name
                )
            except DeliveryFailed as failure:
                logger.warning("agent reply to handoff %d not delivered: %s", handoff_id, failure)
                raise ApiError(502, "delivery_failed") from failure
            await blocking(api().record_reply, viewer, handoff_id, len(text))
            return ok({"entry": entry}, status=201)

        async def end_chat(
            request: Request, viewer: Viewer, handoff_id: int, how: str
        ) -> dict[str, Any]:
            """Give the conversation back to the bot (a greeting, or the CSAT survey), then end
            the handoff.  A failed push does not keep the chat open: the bridge has saved the
            conversation, the customer sees the message on their next turn."""
            view = await blocking(api().may_end, viewer, handoff_id)
            conversation = bridge(request.app)
            step = (
                conversation.hand_back if how == "handed_back" else conversation.close_with_survey
            )
            delivered = True
            try:
                await step(view.sender_id)
            except DeliveryFailed as failure:
                logger.warning("ending handoff %d: push failed: %s", handoff_id, failure)
                delivered = False
            end = api().hand_back if how == "handed_back" else api().close
            chat = await blocking(end, viewer, handoff_id)
            self._announce(chat)
            return {**chat, "delivered": delivered}

        @add("/api/chats/<handoff_id:int>/handback", ["POST"])
        async def handback(request: Request, viewer: Viewer, handoff_id: int) -> HTTPResponse:
            return ok(await end_chat(request, viewer, handoff_id, "handed_back"))

        @add("/api/chats/<handoff_id:int>/close", ["POST"])
        async def close(request: Request, viewer: Viewer, handoff_id: int) -> HTTPResponse:
            return ok(await end_chat(request, viewer, handoff_id, "closed"))

        @add("/api/chats/<handoff_id:int>/tickets", ["POST"])
        async def open_ticket(request: Request, viewer: Viewer, handoff_id: int) -> HTTPResponse:
            body = json_body(request)
            ticket_no = await blocking(
                api().open_ticket,
                viewer,
                handoff_id,
                str(body.get("category") or ""),
                str(body.get("summary") or ""),
            )
            hub().publish("queue", {})
            return ok({"ticket_no": ticket_no}, status=201)

        @add("/api/tickets/<ticket_no>/advance", ["POST"])
        async def advance(request: Request, viewer: Viewer, ticket_no: str) -> HTTPResponse:
            body = json_body(request)
            result = await blocking(
                api().advance_ticket,
                viewer,
                ticket_no,
                str(body.get("status") or ""),
                str(body.get("note") or ""),
            )
            return ok(result)

        @add("/api/chats/<handoff_id:int>/compensations", ["POST"])
        async def compensate(request: Request, viewer: Viewer, handoff_id: int) -> HTTPResponse:
            body = json_body(request)
            result = await blocking(
                api().grant_compensation,
                viewer,
                handoff_id,
                str(body.get("amount") or ""),
                str(body.get("reason") or ""),
            )
            return ok(result, status=201)

        @add("/api/compensations", ["GET"], "supervisor")
        async def compensations(request: Request, viewer: Viewer) -> HTTPResponse:
            status = request.args.get("status") or "pending"
            return ok(await blocking(api().compensations, status))

        @add("/api/compensations/<compensation_id:int>/<decision>", ["POST"], "supervisor")
        async def decide(
            _: Request, viewer: Viewer, compensation_id: int, decision: str
        ) -> HTTPResponse:
            if decision not in ("approve", "reject"):
                raise ApiError(404, "not_found")
            return ok(await blocking(api().decide_compensation, viewer, compensation_id, decision))

        @add("/api/canned", ["GET"])
        async def canned(request: Request, viewer: Viewer) -> HTTPResponse:
            return ok(await blocking(api().canned, request.args.get("q") or ""))

        @add("/api/canned", ["POST"], "supervisor")
        async def canned_create(request: Request, viewer: Viewer) -> HTTPResponse:
            return ok(await blocking(api().save_canned, viewer, None, json_body(request)), 201)

        @add("/api/canned/<reply_id:int>", ["PUT"], "supervisor")
        async def canned_update(request: Request, viewer: Viewer, reply_id: int) -> HTTPResponse:
            return ok(await blocking(api().save_canned, viewer, reply_id, json_body(request)))

        @add("/api/canned/<reply_id:int>", ["DELETE"], "supervisor")
        async def canned_delete(_: Request, viewer: Viewer, reply_id: int) -> HTTPResponse:
            await blocking(api().delete_canned, viewer, reply_id)
            return response.empty(status=204, headers=security.API_HEADERS)

        @add("/api/photos/<filename>", ["GET"])
        async def photo(_: Request, viewer: Viewer, filename: str) -> HTTPResponse:
            path, content_type = await blocking(api().photo, viewer, filename)
            return await response.file(
                path,
                mime_type=content_type,
                headers={
                    "Cache-Control": "private, max-age=3600",
                    "X-Content-Type-Options": "nosniff",
                    "Content-Security-Policy": "default-src 'none'; sandbox",
                },
            )

        return console

    # ------------------------------------------------------------------ live updates

    @staticmethod
    def _announce(chat: dict[str, Any]) -> None:
        hub().publish("handoff", {"id": chat["id"], "status": chat["status"]})
        hub().publish("queue", {})

    async def _stream_events(self, request: Request, viewer: Viewer) -> None:
        """Server-Sent Events: queue changes, handoff changes, and messages of visible chats.

        Each heartbeat also refreshes the agent's presence, so an open console counts as an
        agent online for the escalation service (which decides between queue and call-back).
        """
        subscription = hub().subscribe()
        chats = VisibleChats(self.api(), viewer)
        token = request.cookies.get(security.SESSION_COOKIE, "")
        stream = await request.respond(
            content_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        try:
            await blocking(self.api().touch, token)
            await stream.send(": connected\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(
                        subscription.__anext__(), timeout=HEARTBEAT_SECONDS
                    )
                except asyncio.TimeoutError:
                    if await blocking(self.api().viewer_for, token) is None:
                        break  # logged out or expired: stop streaming data
                    await blocking(self.api().touch, token)
                    await stream.send(": heartbeat\n\n")
                    continue
                payload = await self._event_payload(viewer, event, chats)
                if payload is not None:
                    await stream.send(
                        f"event: {event.kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
                    )
        except ConnectionError:
            pass  # the console went away; Sanic ends the response
        finally:
            subscription.close()
        return None

    async def _event_payload(
        self, viewer: Viewer, event: LiveEvent, chats: VisibleChats
    ) -> dict[str, Any] | None:
        """What this viewer gets of ``event``; None when it concerns a chat they cannot see."""
        if event.kind != "message":
            chats.invalidate()  # a chat was queued, claimed, moved or ended
            return event.data
        sender_id = event.data.get("sender_id")
        if not isinstance(sender_id, str):
            return None
        handoff_id = await chats.handoff_of(sender_id)
        if handoff_id is None:
            return None
        return {"handoff_id": handoff_id, "sender_id": sender_id, "entry": event.data.get("entry")}


class VisibleChats:
    """The open chats one console may see, by sender, read once per change instead of per message.

    Customer messages of every conversation pass through the hub, most of them chats with the
    bot alone; a miss re-reads the table at most once per ``MISS_REFRESH_SECONDS``, which also
    covers a chat queued by the action server before the table watcher announced it.
    """

    MISS_REFRESH_SECONDS = 1.0

    def __init__(self, api: ConsoleApi, viewer: Viewer) -> None:
        self._api = api
        self._viewer = viewer
        self._by_sender: dict[str, int] | None = None
        self._read_at = 0.0

    def invalidate(self) -> None:
        self._by_sender = None

    async def handoff_of(self, sender_id: str) -> int | None:
        now = time.monotonic()
        stale_miss = (
            self._by_sender is not None
            and sender_id not in self._by_sender
            and now - self._read_at >= self.MISS_REFRESH_SECONDS
        )
        if self._by_sender is None or stale_miss:
            self._by_sender = await blocking(self._api.visible_chats_by_sender, self._viewer)
            self._read_at = now
        return self._by_sender.get(sender_id)


class ConsoleBlueprint(Blueprint):
    """What Rasa mounts under /webhooks/console: a health route, plus the console at /console."""

    def __init__(self, console_blueprint: Blueprint) -> None:
        super().__init__("agent_console_channel")
        self.ctx.console_blueprint = console_blueprint

        @self.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        app.blueprint(self.ctx.console_blueprint)
        super().register(app, options)
