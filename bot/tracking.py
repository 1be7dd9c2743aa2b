"""A SQL tracker store that keeps every event but hands Rasa a bounded conversation.

Rasa rebuilds dialogue states from the whole tracker on every prediction and, with the stock
SQL store, loads and replays every event of the session on every turn, so turns get slower as
a conversation grows.  The policies only look a few turns back, so this store gives Rasa the
last ``keep_turns`` to ``2 * keep_turns`` user turns preceded by the state everything before
them left (slot values and the active form).  All events are still written to the database —
``retrieve_full_tracker`` returns the complete history for transcripts — and the bounded
window of each recent conversation is cached in memory, checked against the number of stored
events, so a turn costs the same at turn 50 as at turn 5.

Configured in endpoints.yml as ``tracker_store: {type: bot.tracking.BoundedSQLTrackerStore}``.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, ActiveLoop, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from bot import rasa_runtime
from bot.handoff.bridge import transcript_entry
from bot.handoff.live import hub as live_hub

logger = logging.getLogger(__name__)
rasa_runtime.install()

DEFAULT_KEEP_TURNS = 8
DEFAULT_CACHED_CONVERSATIONS = 5000
_BASE = "_bounded_store_base"
"""Tracker attribute: (events stored for the sender, events of the tracker already stored)."""


def compact_events(
    events: list[Event], slots: Any, keep_turns: int = DEFAULT_KEEP_TURNS
) -> list[Event] | None:
    """The last ``keep_turns`` user turns, preceded by the state everything before them left.

    Returns None when the conversation is short enough to keep as it is.
    """
    turn_starts = [
        index
        for index in range(1, len(events))
        if isinstance(events[index], UserUttered)
        and isinstance(events[index - 1], ActionExecuted)
        and events[index - 1].action_name == ACTION_LISTEN_NAME
    ]
    if len(turn_starts) <= keep_turns:
        return None
    cut = turn_starts[-keep_turns] - 1  # keep the action_listen before the user turn
    before = DialogueStateTracker.from_events("compaction", events[:cut], slots)
    timestamp = events[cut].timestamp
    state: list[Event] = [
        SlotSet(slot.name, slot.value, timestamp=timestamp)
        for slot in before.slots.values()
        if slot.value != slot.initial_value
    ]
    active_loop = before.active_loop_name
    if active_loop:
        state.append(ActiveLoop(active_loop, timestamp=timestamp))
    return state + list(events[cut:])


def _user_turns(tracker: DialogueStateTracker) -> int:
    return sum(isinstance(event, UserUttered) for event in tracker.events)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers work during a write; NORMAL sync survives a crashed process."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def publish_saved_events(sender_id: str, events: list[Event]) -> None:
    """Tell the agent console (same process) what was just said in a conversation."""
    hub = live_hub()
    if not hub.subscriber_count:
        return
    for event in events:
        entry = transcript_entry(event)
        if entry is not None:
            hub.publish("message", {"sender_id": sender_id, "entry": entry})


class BoundedSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore whose ``retrieve`` returns a bounded tracker (see module docstring)."""

    def __init__(
        self,
        *args: Any,
        keep_turns: int = DEFAULT_KEEP_TURNS,
        cached_conversations: int = DEFAULT_CACHED_CONVERSATIONS,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite" and self.engine.url.database not in (
            None,
            "",
            ":memory:",
        ):
            self._keep_sqlite_connections_open()
        self.keep_turns = int(keep_turns)
        self._cache_size = int(cached_conversations)
        self._windows: OrderedDict[str, tuple[int, DialogueStateTracker]] = OrderedDict()

    def _keep_sqlite_connections_open(self) -> None:
        """Reuse SQLite connections instead of SQLAlchemy 1.4's connect-per-session default.

        With a fresh connection per session every turn paid for opening the file, the WAL
        pragmas and, when the last connection closed, a checkpoint of the write-ahead log:
        about a quarter of the server's time under load.
        """
        self.engine.dispose()
        self.engine = sa.create_engine(
            self.engine.url,
            poolclass=sa.pool.QueuePool,
            pool_size=2,
            max_overflow=8,
            connect_args={"check_same_thread": False},
        )
        sa.event.listen(self.engine, "connect", _tune_sqlite)
        self.sessionmaker.configure(bind=self.engine)

    def _stored_count(self, sender_id: str) -> int:
        with self.session_scope() as session:
            return session.execute(
                sa.select(sa.func.count()).where(self.SQLEvent.sender_id == sender_id)
            ).scalar_one()

    def _bounded(self, sender_id: str, events: list[Event], stored: int) -> DialogueStateTracker:
        """A tracker over the compacted window of ``events``; remembered for the next turn."""
        window = compact_events(events, self.domain.slots, self.keep_turns)
        if window is None:
            window = events
        tracker = DialogueStateTracker.from_events(sender_id, window, self.domain.slots)
        setattr(tracker, _BASE, (stored, len(tracker.events)))
        self._windows[sender_id] = (stored, tracker)
        self._windows.move_to_end(sender_id)
        while len(self._windows) > self._cache_size:
            self._windows.popitem(last=False)
        return tracker

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        if self.domain is None:
            return await super().retrieve(sender_id)
        stored = self._stored_count(sender_id)
        cached = self._windows.get(sender_id)
        if cached is not None:
            count, tracker = cached
            base = getattr(tracker, _BASE, None)
            # Reuse the tracker saved last turn if nobody else wrote since and it holds no
            # events that were never saved (e.g. a turn that failed half-way).
            if count == stored and base == (stored, len(tracker.events)):
                # The window grows by a turn per turn; cut it back only once it has doubled,
                # so the replay this costs is paid every ``keep_turns`` turns, not every turn.
                if _user_turns(tracker) > 2 * self.keep_turns:
                    return self._bounded(sender_id, list(tracker.events), stored)
                return tracker
        full = await super().retrieve(sender_id)
        if full is None:
            self._windows.pop(sender_id, None)
            return None
        return self._bounded(sender_id, list(full.events), stored)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Append the tracker's events that are not stored yet, in one statement."""
        base = getattr(tracker, _BASE, None)
        with self.session_scope() as session:
            if base is None:  # a tracker Rasa created itself: find what is new the stock way
                new_events = list(self._additional_events(session, tracker))
            else:
                new_events = list(tracker.events)[base[1] :]
            if new_events:
                session.execute(
                    self.SQLEvent.__table__.insert(),
                    [self._event_row(tracker.sender_id, event) for event in new_events],
                )
                session.commit()
        if base is None:
            self._windows.pop(tracker.sender_id, None)
        else:
            stored = base[0] + len(new_events)
            setattr(tracker, _BASE, (stored, len(tracker.events)))
            self._windows[tracker.sender_id] = (stored, tracker)
            self._windows.move_to_end(tracker.sender_id)
        await self.events_saved(tracker.sender_id, new_events)

    @staticmethod
    def _event_row(sender_id: str, event: Event) -> dict[str, Any]:
        """The ``events`` table row Rasa's own SQLTrackerStore writes for ``event``."""
        data = event.as_dict()
        return {
            "sender_id": sender_id,
            "type_name": event.type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }

    async def events_saved(self, sender_id: str, events: list[Event]) -> None:
        """Hook for the events of ``sender_id`` just appended to the database, in order.

        Streams them to Rasa's event broker when one is configured and tells the agent
        console.  Called once per save, after the commit, also with an empty list.
        """
        if self.event_broker is not None and events:
            await self._stream_new_events(self.event_broker, events, sender_id)
        publish_saved_events(sender_id, events)
