"""Live updates: the in-process hub, and Server-Sent Events reaching an agent's console."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bot.console.channel import VisibleChats
from bot.handoff.live import LiveEvent, LiveHub, hub
from tests.console.conftest import AgentClient, Console, entry_of

# ------------------------------------------------------------------------------ the hub


def test_hub_delivers_to_every_subscriber_from_any_thread() -> None:
    async def scenario() -> list[list[LiveEvent]]:
        live = LiveHub(fingerprint=lambda: 0, poll_seconds=0.05)
        first, second = live.subscribe(), live.subscribe()
        live.publish("queue")
        thread = threading.Thread(target=live.publish, args=("handoff", {"id": 7}))
        thread.start()
        thread.join()
        received = []
        for subscription in (first, second):
            events = [await asyncio.wait_for(subscription.__anext__(), 1) for _ in range(2)]
            received.append(events)
            subscription.close()
        assert live.subscriber_count == 0
        return received

    for events in asyncio.run(scenario()):
        assert events == [LiveEvent("queue", {}), LiveEvent("handoff", {"id": 7})]


def test_hub_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError):
        LiveHub().publish("gossip", {})


def test_hub_watches_the_table_while_someone_listens() -> None:
    changes = iter([1, 1, 2, 2, 2])
    reads: list[int] = []

    def fingerprint() -> int:
        value = next(changes, 2)
        reads.append(value)
        return value

    async def scenario() -> LiveEvent:
        live = LiveHub(fingerprint=fingerprint, poll_seconds=0.01)
        subscription = live.subscribe()
        event = await asyncio.wait_for(subscription.__anext__(), 2)
        subscription.close()
        await asyncio.sleep(0.05)  # the watcher notices nobody listens and stops
        stopped_at = len(reads)
        await asyncio.sleep(0.05)
        assert len(reads) == stopped_at
        return event

    assert asyncio.run(scenario()) == LiveEvent("queue", {})


# ------------------------------------------------------------------------------ SSE


class EventReader:
    """Reads one SSE response on a thread; events land in a queue with their arrival time."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.events: queue.Queue[tuple[str, Any, float]] = queue.Queue()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        kind = None
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: ") and kind:
                    self.events.put((kind, json.loads(line[len("data: ") :]), time.monotonic()))
                    kind = None
        except (requests.RequestException, AttributeError, ValueError):
            pass  # the test closed the stream

    def next(self, kind: str, timeout: float = 2.0) -> tuple[Any, float]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind} event within {timeout} s")
            got, data, at = self.events.get(timeout=remaining)
            if got == kind:
                return data, at


@pytest.fixture
def stream(console: Console) -> Iterator[tuple[AgentClient, EventReader]]:
    amy = console.login("amy")
    response = amy.get("events", stream=True, timeout=(5, 30))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    reader = EventReader(response)
    assert reader.connected.wait(5)
    yield amy, reader
    response.close()


def _publish_on_server(console: Console, kind: str, data: dict[str, Any]) -> None:
    """Publish as the tracker store does: from the Rasa server's own event loop."""
    console.server.loop.call_soon_threadsafe(hub().publish, kind, data)


def test_customer_message_reaches_the_console_within_a_second(
    console: Console, stream: tuple[AgentClient, EventReader]
) -> None:
    _, reader = stream
    console.escalate("web-live")
    reader.next("queue")  # the new chat shows up in the queue
    _publish_on_server(
        console, "message", {"sender_id": "web-nobody", "entry": entry_of("user", "无关")}
    )
    entry = entry_of("user", "<b>人呢？</b>")
    sent_at = time.monotonic()
    _publish_on_server(console, "message", {"sender_id": "web-live", "entry": entry})
    data, arrived_at = reader.next("message")
    assert arrived_at - sent_at < 1.0
    assert data["sender_id"] == "web-live"  # the message of a sender without a chat was dropped
    assert data["entry"] == entry
    assert data["handoff_id"] == console.api.handoffs.open_for_sender("web-live").id


def test_a_chat_queued_by_another_process_refreshes_the_queue_within_a_second(
    console: Console, stream: tuple[AgentClient, EventReader]
) -> None:
    _, reader = stream
    time.sleep(0.5)  # the watcher has read the table once
    started = time.monotonic()
    console.escalate("web-from-action-server")  # a direct write, as the action server does
    _, arrived_at = reader.next("queue")
    assert arrived_at - started < 1.0


def test_claim_is_announced_to_other_consoles(
    console: Console, stream: tuple[AgentClient, EventReader]
) -> None:
    _, reader = stream
    handoff_id = console.escalate("web-announce")
    bob = console.login("bob")
    assert bob.post(f"chats/{handoff_id}/claim").status_code == 200
    data, _ = reader.next("handoff")
    assert data == {"id": handoff_id, "status": "active"}


def test_the_stream_keeps_the_agent_online(console: Console) -> None:
    amy = console.login("amy")
    console.clock.offset += console.api.policy.presence_timeout * 2  # an idle console
    assert console.api.accounts.online_agents() == []
    response = amy.get("events", stream=True, timeout=(5, 30))
    reader = EventReader(response)
    assert reader.connected.wait(5)
    assert [agent.username for agent in console.api.accounts.online_agents()] == ["amy"]
    response.close()


def test_visible_chats_are_read_once_per_change_not_per_message() -> None:
    class CountingApi:
        def __init__(self) -> None:
            self.reads = 0
            self.chats = {"web-a": 1}

        def visible_chats_by_sender(self, _viewer: Any) -> dict[str, int]:
            self.reads += 1
            return dict(self.chats)

    async def scenario() -> None:
        api = CountingApi()
        chats = VisibleChats(api, viewer=None)  # type: ignore[arg-type]
        assert [await chats.handoff_of("web-a") for _ in range(5)] == [1] * 5
        assert await chats.handoff_of("web-bot-only") is None
        assert api.reads == 1  # a miss right after a read does not read again
        api.chats["web-b"] = 2
        chats._read_at -= VisibleChats.MISS_REFRESH_SECONDS  # a second later
        assert await chats.handoff_of("web-b") == 2
        assert api.reads == 2
        chats.invalidate()  # a queue or handoff event
        await chats.handoff_of("web-a")
        assert api.reads == 3

    asyncio.run(scenario())
