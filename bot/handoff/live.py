"""Live updates for the agent console inside the Rasa server process.

The console's Server-Sent Events stream subscribes here.  Publishers in the same process (the
tracker store when a conversation's events are saved, the console itself after a claim or a
reply) call :func:`hub` ``.publish(kind, data)``.  The action server is another process, so a
handoff it queues cannot be published directly: while anyone is subscribed, the hub also polls
a cheap fingerprint of the ``handoffs`` table (row count and newest ``updated_at``) and
publishes ``queue`` when it changes.

Kinds: ``message`` (``{"sender_id", "entry"}``), ``queue`` (``{}``: refresh the list),
``handoff`` (``{"id", "status"}``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

log = logging.getLogger(__name__)

KINDS = ("message", "queue", "handoff")
DEFAULT_POLL_SECONDS = 0.3
# A console that stops reading must not make the server hold events for it without limit.
SUBSCRIBER_BACKLOG = 500

Fingerprint = Callable[[], Hashable]


@dataclass(frozen=True)
class LiveEvent:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class Subscription:
    """One listener's queue of events; iterate it with ``async for``, then ``close()``.

    Registration happens when the subscription is created, not on the first read, so an event
    published right after ``subscribe()`` returns is never missed.
    """

    def __init__(self, hub: LiveHub, loop: asyncio.AbstractEventLoop) -> None:
        self._hub = hub
        self.loop = loop
        self.queue: asyncio.Queue[LiveEvent] = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self.dropped = 0

    def deliver(self, event: LiveEvent) -> None:
        """Queue ``event`` (called on the subscriber's own loop)."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("a live subscriber is not reading; dropping its events")

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> LiveEvent:
        return await self.queue.get()

    def close(self) -> None:
        self._hub.unsubscribe(self)


class LiveHub:
    """Fan-out of console events to every subscriber, plus the ``handoffs`` table watcher."""

    def __init__(
        self,
        fingerprint: Fingerprint | None = None,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self._fingerprint = fingerprint or handoffs_fingerprint
        self.poll_seconds = poll_seconds
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self._watchers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def watch(self, fingerprint: Fingerprint) -> None:
        """Watch another database (the console's): used from the next poll on."""
        self._fingerprint = fingerprint

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """A new subscription on the running event loop; starts the table watcher if needed."""
        loop = asyncio.get_running_loop()
        subscription = Subscription(self, loop)
        with self._lock:
            self._subscribers.add(subscription)
            watcher = self._watchers.get(loop)
            if watcher is None or watcher.done():
                self._watchers[loop] = loop.create_task(self._watch(loop))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def publish(self, kind: str, data: dict[str, Any] | None = None) -> None:
        """Send an event to every subscriber; safe from any thread and any event loop."""
        if kind not in KINDS:
            raise ValueError(f"unknown live event kind {kind!r}")
        event = LiveEvent(kind, dict(data or {}))
        with self._lock:
            subscribers = list(self._subscribers)
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for subscription in subscribers:
            if subscription.loop is current:
                subscription.deliver(event)
            elif not subscription.loop.is_closed():
                subscription.loop.call_soon_threadsafe(subscription.deliver, event)

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Publish ``queue`` whenever the handoffs table changes, while this loop has listeners."""
        previous: Hashable = None
        failing = False
        while True:
            with self._lock:
                listening = any(s.loop is loop for s in self._subscribers)
                if not listening:
                    self._watchers.pop(loop, None)
                    return
            try:
                current = await loop.run_in_executor(None, self._fingerprint)
                failing = False
            except Exception:
                if not failing:
                    log.warning("cannot read the handoffs table for live updates", exc_info=True)
                failing = True
                current = previous
            if previous is not None and current != previous:
                self.publish("queue", {})
            previous = current
            await asyncio.sleep(self.poll_seconds)


def handoffs_fingerprint(factory: sessionmaker | None = None) -> Hashable:
    """Row count and newest change of the handoffs table: changes whenever any handoff does."""
    from sqlalchemy import func, select

    from bot.store.db import session_factory, session_scope
    from bot.store.models import Handoff

    with session_scope(factory or session_factory()) as session:
        row = session.execute(select(func.count(Handoff.id), func.max(Handoff.updated_at))).one()
    return (row[0], row[1])


_hub: LiveHub | None = None
_hub_lock = threading.Lock()


def hub() -> LiveHub:
    """The process's hub (the Rasa server process has exactly one)."""
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = LiveHub()
        return _hub
