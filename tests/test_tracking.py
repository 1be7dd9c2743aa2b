"""The bounded tracker store: Rasa sees a short window, the database keeps everything."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.settings import PROJECT_ROOT
from bot.tracking import BoundedSQLTrackerStore, compact_events


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


def conversation(turns: int) -> list:
    """Turns of listen → user → bot action; identity set early, a form active at the end."""
    events: list = [ActionExecuted("action_session_start"), ActionExecuted("action_listen")]
    for turn in range(turns):
        events.append(UserUttered(f"第{turn}句", {"name": "inform", "confidence": 1.0}))
        if turn == 1:
            events.append(SlotSet("order_id", "SO20261101001"))
            events.append(SlotSet("verified_customer", "SO20261101001"))
        if turn == turns - 3:
            events.append(ActiveLoop("repair_form"))
            events.append(SlotSet("requested_slot", "address"))
        events.append(ActionExecuted("utter_greet"))
        events.append(ActionExecuted("action_listen"))
    return events


def test_short_conversations_are_kept_whole(domain: Domain) -> None:
    assert compact_events(conversation(5), domain.slots, keep_turns=8) is None


def test_compacted_tracker_has_the_same_state_and_only_recent_turns(domain: Domain) -> None:
    events = conversation(60)
    compacted = compact_events(events, domain.slots, keep_turns=8)
    full = DialogueStateTracker.from_events("a", events, domain.slots)
    bounded = DialogueStateTracker.from_events("a", compacted, domain.slots)
    assert bounded.current_slot_values() == full.current_slot_values()
    assert bounded.active_loop_name == full.active_loop_name == "repair_form"
    assert bounded.latest_message.text == full.latest_message.text
    assert sum(isinstance(e, UserUttered) for e in compacted) == 8
    assert len(compacted) < len(events) / 4


def test_store_appends_new_events_after_a_bounded_retrieve(domain: Domain, tmp_path: Path):
    store = BoundedSQLTrackerStore(
        domain=domain, dialect="sqlite", db=str(tmp_path / "t.db"), keep_turns=4
    )
    events = conversation(30)
    asyncio.run(store.save(DialogueStateTracker.from_events("c", events, domain.slots)))

    bounded = asyncio.run(store.retrieve("c"))
    assert len(bounded.events) < len(events)
    bounded.update(UserUttered("新的一句", {"name": "thanks", "confidence": 1.0}))
    bounded.update(ActionExecuted("utter_thanks"))
    asyncio.run(store.save(bounded))
    bounded.update(ActionExecuted("action_listen"))
    asyncio.run(store.save(bounded))  # a second save in the same turn writes only the new one

    full = asyncio.run(store.retrieve_full_tracker("c"))
    assert len(full.events) == len(events) + 3
    assert [e.action_name for e in list(full.events)[-2:]] == ["utter_thanks", "action_listen"]
    again = asyncio.run(store.retrieve("c"))
    assert again.get_slot("verified_customer") == "SO20261101001"
    assert again.latest_message.text == "新的一句"


def test_a_write_by_another_server_process_is_seen(domain: Domain, tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    first = BoundedSQLTrackerStore(domain=domain, dialect="sqlite", db=db, keep_turns=4)
    second = BoundedSQLTrackerStore(domain=domain, dialect="sqlite", db=db, keep_turns=4)
    asyncio.run(first.save(DialogueStateTracker.from_events("s", conversation(20), domain.slots)))
    asyncio.run(first.retrieve("s"))  # cached in the first store
    other = asyncio.run(second.retrieve("s"))
    other.update(UserUttered("另一个进程写的", {"name": "greet", "confidence": 1.0}))
    asyncio.run(second.save(other))
    assert asyncio.run(first.retrieve("s")).latest_message.text == "另一个进程写的"


class RecordingStore(BoundedSQLTrackerStore):
    """Remembers what the ``events_saved`` hook was given."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.saved: list[tuple[str, list]] = []

    async def events_saved(self, sender_id: str, events: list) -> None:
        await super().events_saved(sender_id, events)
        self.saved.append((sender_id, list(events)))


def test_the_saved_hook_gets_exactly_the_newly_appended_events(domain, tmp_path) -> None:
    store = RecordingStore(domain=domain, dialect="sqlite", db=str(tmp_path / "t.db"))
    fresh = DialogueStateTracker.from_events("h", conversation(3), domain.slots)
    asyncio.run(store.save(fresh))  # a tracker Rasa built itself: everything is new
    assert store.saved == [("h", list(fresh.events))]

    tracker = asyncio.run(store.retrieve("h"))
    tracker.update(UserUttered("还有一个问题", {"name": "ask_question", "confidence": 1.0}))
    tracker.update(ActionExecuted("action_answer_question"))
    asyncio.run(store.save(tracker))
    asyncio.run(store.save(tracker))  # nothing new the second time
    assert [e.as_dict()["event"] for e in store.saved[1][1]] == ["user", "action"]
    assert store.saved[2] == ("h", [])
    full = asyncio.run(store.retrieve_full_tracker("h"))
    assert list(full.events)[-2:] == store.saved[1][1]


def test_the_cached_window_is_cut_back_only_once_it_has_doubled(domain, tmp_path) -> None:
    """Between ``keep_turns`` and ``2 * keep_turns`` user turns: never the whole history, and
    the replay that cutting costs is not paid on every turn."""
    store = BoundedSQLTrackerStore(
        domain=domain, dialect="sqlite", db=str(tmp_path / "t.db"), keep_turns=3
    )
    asyncio.run(store.save(DialogueStateTracker.from_events("w", conversation(10), domain.slots)))
    seen: list[int] = []
    rebuilt = 0
    previous = None
    for turn in range(12):
        tracker = asyncio.run(store.retrieve("w"))
        rebuilt += tracker is not previous
        seen.append(sum(isinstance(e, UserUttered) for e in tracker.events))
        tracker.update(UserUttered(f"新的第{turn}句", {"name": "inform", "confidence": 1.0}))
        tracker.update(ActionExecuted("utter_greet"))
        tracker.update(ActionExecuted("action_listen"))
        asyncio.run(store.save(tracker))
        previous = tracker
    assert min(seen) >= 3 and max(seen) <= 6, seen
    assert rebuilt <= 4, f"rebuilt {rebuilt} times in 12 turns"
    latest = asyncio.run(store.retrieve("w"))
    assert latest.get_slot("verified_customer") == "SO20261101001"
    assert latest.active_loop_name == "repair_form"
    full = asyncio.run(store.retrieve_full_tracker("w"))
    assert sum(isinstance(e, UserUttered) for e in full.events) == 22
