"""A running console over real HTTP: the channel's blueprint on an in-process Sanic server.

The Rasa side is an in-memory :class:`FakeBridge` (what ``ConversationBridge`` does, kept in
lists), so these tests need no model; the lead's end-to-end tests use the real bridge.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from sanic import Sanic

from bot.console.api import ConsoleApi
from bot.console.channel import AgentConsoleInput
from bot.demo import load_demo_data
from bot.handoff.bridge import DeliveryFailed
from bot.store.db import make_engine, make_session_factory, upgrade_database
from tests.channels.test_wechat_channel import ChannelServer

PASSWORD = "console-test-pass"
# A Wednesday 10:00 in Shanghai: inside business hours, whenever the tests run.
OPEN_HOURS_START = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


class ShiftedClock:
    """Real time moved into business hours, shared by every service so presence agrees."""

    def __init__(self, start: datetime = OPEN_HOURS_START) -> None:
        self._start = start
        self._began = time.monotonic()
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._began) + self.offset


@dataclass
class FakeBridge:
    """Stands in for ConversationBridge: transcripts per sender, and what the console asked."""

    transcripts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    learned: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    told: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    fail_delivery: bool = False

    async def transcript(self, sender_id: str) -> list[dict[str, Any]]:
        return list(self.transcripts.get(sender_id, []))

    async def learned_summary(self, sender_id: str) -> dict[str, Any]:
        return self.learned.get(
            sender_id, {"intents": [], "entities": {}, "active_form": None, "slots": {}}
        )

    async def send_agent_message(
        self, sender_id: str, text: str, agent_display_name: str
    ) -> dict[str, Any]:
        if self.fail_delivery:
            raise DeliveryFailed("channel refused")
        self.sent.append((sender_id, text, agent_display_name))
        entry = entry_of("agent", text, agent=agent_display_name)
        self.transcripts.setdefault(sender_id, []).append(entry)
        return entry

    async def pause(self, sender_id: str) -> None:
        self.calls.append(("pause", sender_id))

    async def tell(self, sender_id: str, response: str, **values: Any) -> None:
        if self.fail_delivery:
            raise DeliveryFailed("channel refused")
        self.calls.append(("tell", sender_id))
        self.told.append((sender_id, response, values))

    async def hand_back(self, sender_id: str) -> None:
        self.calls.append(("hand_back", sender_id))
        if self.fail_delivery:
            raise DeliveryFailed("saved, not pushed")

    async def release_to_callback(self, sender_id: str, callback_due: str) -> None:
        self.calls.append(("release_to_callback", sender_id))
        self.sent.append((sender_id, callback_due, ""))

    async def close_with_survey(self, sender_id: str) -> None:
        self.calls.append(("close_with_survey", sender_id))
        if self.fail_delivery:
            raise DeliveryFailed("saved, not pushed")


def entry_of(kind: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "text": text,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "intent": None,
        "sentiment": None,
        "buttons": [],
        "image": None,
        "agent": None,
        **extra,
    }


class ConsoleServer(ChannelServer):
    """The console blueprint mounted where Rasa mounts channels, on the WeChat tests' server."""

    def __init__(self, channel: AgentConsoleInput) -> None:
        super().__init__(channel, bot=None)  # type: ignore[arg-type]

    async def _start(self) -> None:
        Sanic.test_mode = True
        app = Sanic(f"console_test_{uuid.uuid4().hex[:8]}")

        async def on_new_message(_: Any) -> None:
            raise AssertionError("the console must not feed messages to Rasa")

        app.blueprint(self.channel.blueprint(on_new_message), url_prefix="/webhooks/console")
        self._server = await app.create_server(
            host="127.0.0.1", port=0, return_asyncio_server=True, access_log=False
        )
        await self._server.startup()
        await self._server.start_serving()
        self.port = self._server.server.sockets[0].getsockname()[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/console"


@dataclass
class Console:
    """Everything a test needs: the server, the services behind it, and the fake Rasa."""

    server: ConsoleServer
    api: ConsoleApi
    bridge: FakeBridge
    clock: ShiftedClock
    agents: dict[str, int]

    @property
    def base(self) -> str:
        return self.server.base

    def login(self, username: str, password: str = PASSWORD) -> AgentClient:
        client = AgentClient(self.base)
        answer = client.post("login", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        client.csrf = answer.json()["csrf_token"]
        return client

    def escalate(
        self,
        sender_id: str,
        *,
        trigger: str = "request_human",
        reasons: tuple[str, ...] = ("request_person",),
        severity: int = 2,
        customer_phone: str | None = None,
        channel: str = "webchat",
    ) -> int:
        customer_id = None
        if customer_phone is not None:
            customer = self.api.customers.find_by_phone(customer_phone)
            assert customer is not None
            customer_id = customer.id
        outcome = self.api.handoffs.request(
            sender_id, channel, trigger, reasons, severity, customer_id=customer_id
        )
        assert outcome.queued, "an agent must be online in business hours for the queue"
        return outcome.handoff_id


class AgentClient(requests.Session):
    """A browser of one agent: keeps the session cookie and sends the CSRF header."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.csrf: str | None = None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if not url.startswith("http"):
            url = f"{self.base}/api/{url}"
        headers = dict(kwargs.pop("headers", None) or {})
        if method.upper() != "GET" and self.csrf and "X-CSRF-Token" not in headers:
            headers["X-CSRF-Token"] = self.csrf
        kwargs.setdefault("timeout", 10)
        return super().request(method, url, *args, headers=headers, **kwargs)


TEST_AGENTS = (
    ("amy", "艾米", "agent"),
    ("bob", "鲍勃", "agent"),
    ("sue", "苏主管", "supervisor"),
    ("max", "马经理", "manager"),
)


@pytest.fixture
def console_database(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Demo data on SQLite (default) or, parametrised indirectly with "postgres", PostgreSQL."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield request.getfixturevalue("demo_factory")
        return
    url = request.getfixturevalue("postgres_url")
    upgrade_database(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    load_demo_data(factory)
    yield factory
    engine.dispose()


@pytest.fixture
def console(
    console_database: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Console]:
    monkeypatch.setenv("ASSISTANT_UPLOAD_DIR", str(tmp_path / "uploads"))
    clock = ShiftedClock()
    api = ConsoleApi.create(console_database, clock=clock)
    api.canned_replies.sync_from_file()
    agents = {
        username: api.accounts.create_agent(username, name, role, PASSWORD).id
        for username, name, role in TEST_AGENTS
    }
    bridge = FakeBridge()
    channel = AgentConsoleInput(api=api, bridge_factory=lambda _app: bridge)
    with ConsoleServer(channel) as server:
        yield Console(server, api, bridge, clock, agents)
