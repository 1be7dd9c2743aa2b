"""A SQL tracker store that keeps every event but hands Rasa a bounded conversation.

Rasa's policies rebuild dialogue states from the whole tracker on every prediction, so a
turn gets slower as a conversation grows.  The policies only look a few turns back
(``max_history`` in config.yml), so the store replaces everything before the last
``keep_turns`` user turns with the state it produced: the slot values and the active form.
All events are still written to the database (``retrieve_full_tracker`` returns the complete
history for transcripts), and new events are appended after the ones already stored.

Configured in endpoints.yml as ``tracker_store: {type: bot.tracking.BoundedSQLTrackerStore}``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, ActiveLoop, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

logger = logging.getLogger(__name__)

DEFAULT_KEEP_TURNS = 8
_LOADED = "_bounded_store_loaded"
"""Tracker attribute: how many of its events are already stored."""


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


class BoundedSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore whose ``retrieve`` returns a bounded tracker (see module docstring)."""

    def __init__(self, *args: Any, keep_turns: int = DEFAULT_KEEP_TURNS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_turns = int(keep_turns)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        tracker = await super().retrieve(sender_id)
        if tracker is None or self.domain is None:
            return tracker
        events = list(tracker.events)
        compacted = compact_events(events, self.domain.slots, self.keep_turns)
        if compacted is None:
            return tracker
        bounded = DialogueStateTracker.from_events(
            sender_id, compacted, self.domain.slots, tracker._max_event_history
        )
        setattr(bounded, _LOADED, len(compacted))
        return bounded

    async def save(self, tracker: DialogueStateTracker) -> None:
        loaded = getattr(tracker, _LOADED, None)
        if loaded is None:
            await super().save(tracker)
            return
        new_events = list(tracker.events)[loaded:]
        with self.session_scope() as session:
            for event in new_events:
                data = event.as_dict()
                session.add(
                    self.SQLEvent(
                        sender_id=tracker.sender_id,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=data.get("parse_data", {})
                        .get("intent", {})
                        .get(INTENT_NAME_KEY),
                        action_name=data.get("name"),
                        data=json.dumps(data),
                    )
                )
            session.commit()
        setattr(tracker, _LOADED, len(tracker.events))
