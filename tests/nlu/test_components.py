"""The TextNormalizer Rasa component and the entity realignment it relies on."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.components import ORIGINAL_TEXT, IntentCueGuard, TextNormalizer, realign_entities
from bot.nlu.text import normalise_text
from bot.settings import PROJECT_ROOT


def entity(text: str, surface: str, label: str = "product", value: str | None = None, nth=0):
    start = -1
    for _ in range(nth + 1):
        start = text.index(surface, start + 1)
    return {
        "start": start,
        "end": start + len(surface),
        "entity": label,
        "value": surface if value is None else value,
    }


def spans(text: str, entities: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(label, covered text, value) for each entity, proving the offsets are right."""
    return [(e["entity"], text[e["start"] : e["end"]], e["value"]) for e in entities]


# -- realign_entities ---------------------------------------------------------------------


def test_offsets_move_left_when_emoji_are_removed() -> None:
    original = "😀😀😀洗衣机坏了"
    normalised = normalise_text(original)
    assert normalised == "洗衣机坏了"
    moved = realign_entities(original, normalised, [entity(original, "洗衣机")])
    assert moved == [{"start": 0, "end": 3, "entity": "product", "value": "洗衣机"}]


def test_traditional_entity_text_and_value_follow_the_normalised_text() -> None:
    original = "我的洗衣機壞了"
    normalised = normalise_text(original)
    moved = realign_entities(original, normalised, [entity(original, "洗衣機")])
    assert spans(normalised, moved) == [("product", "洗衣机", "洗衣机")]
    assert (moved[0]["start"], moved[0]["end"]) == (2, 5)


def test_joined_digit_groups_shorten_the_entity() -> None:
    original = "😀 手機 138 1234 5678 訂單 so20261101001"
    normalised = normalise_text(original)
    assert normalised == "手机 13812345678 订单 SO20261101001"
    moved = realign_entities(
        original,
        normalised,
        [
            entity(original, "138 1234 5678", "phone"),
            entity(original, "so20261101001", "order_id"),
        ],
    )
    assert spans(normalised, moved) == [
        ("phone", "13812345678", "13812345678"),
        ("order_id", "SO20261101001", "SO20261101001"),
    ]


def test_collapsed_spaces_and_full_width_are_handled() -> None:
    original = "我要   退貨，ＳＯ２０２６１１０１００１"
    normalised = normalise_text(original)
    moved = realign_entities(
        original, normalised, [entity(original, "ＳＯ２０２６１１０１００１", "order_id")]
    )
    assert spans(normalised, moved) == [("order_id", "SO20261101001", "SO20261101001")]


def test_a_mapped_value_is_kept() -> None:
    # Annotated as [洗衣機]{"entity": "product", "value": "WM-D100"}: the synonym target stays.
    original = "洗衣機壞了"
    moved = realign_entities(
        original, normalise_text(original), [entity(original, "洗衣機", value="WM-D100")]
    )
    assert spans(normalise_text(original), moved) == [("product", "洗衣机", "WM-D100")]


def test_repeated_surfaces_map_to_successive_occurrences() -> None:
    original = "😀冰箱和😀冰箱"
    normalised = normalise_text(original)
    assert normalised == "冰箱和 冰箱"
    moved = realign_entities(
        original,
        normalised,
        # Deliberately out of order: realignment sorts by start.
        [entity(original, "冰箱", nth=1), entity(original, "冰箱", nth=0)],
    )
    assert [(e["start"], e["end"]) for e in moved] == [(0, 2), (4, 6)]


def test_entities_that_cannot_be_found_are_dropped() -> None:
    emoji_only = "好的😀😀"
    assert (
        realign_entities(emoji_only, normalise_text(emoji_only), [entity(emoji_only, "😀😀")]) == []
    )

    # An entity beyond the message limit is cut away with the text.
    long_text = "退货" * 300 + "洗衣机"
    normalised = normalise_text(long_text)
    kept = entity(long_text, "退货")
    lost = entity(long_text, "洗衣机")
    assert spans(normalised, realign_entities(long_text, normalised, [lost, kept])) == [
        ("product", "退货", "退货")
    ]


def test_no_entities_gives_no_entities() -> None:
    assert realign_entities("你好", "你好", []) == []


# -- TextNormalizer -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def normalizer() -> TextNormalizer:
    return TextNormalizer.create({}, None, None, None)  # type: ignore[arg-type]


def test_process_normalises_live_messages_and_keeps_the_original(
    normalizer: TextNormalizer,
) -> None:
    raw = "我要退貨😡 ＳＯ２０２６１１０１００１ 138 1234 5678"
    message = Message(data={TEXT: raw})
    other = Message(data={TEXT: "維修進度"})
    result = normalizer.process([message, other])
    assert result == [message, other]
    assert message.get(TEXT) == "我要退货 SO20261101001 13812345678"
    assert message.get(ORIGINAL_TEXT) == raw
    assert other.get(TEXT) == "维修进度"
    assert other.get(ORIGINAL_TEXT) == "維修進度"


@pytest.mark.parametrize(
    "payload",
    ['/request_return{"order_id": "so20261101001"}', "/affirm", '/inform{"product":"洗衣機"}'],
)
def test_intent_payloads_are_left_alone(normalizer: TextNormalizer, payload: str) -> None:
    message = Message(data={TEXT: payload})
    normalizer.process([message])
    assert message.get(TEXT) == payload
    assert message.get(ORIGINAL_TEXT) is None


def test_message_without_text_is_left_alone(normalizer: TextNormalizer) -> None:
    message = Message(data={INTENT: "greet"})
    normalizer.process([message])
    assert message.get(TEXT) is None
    assert message.get(ORIGINAL_TEXT) is None


def test_process_training_data_normalises_examples_and_realigns_entities(
    normalizer: TextNormalizer,
) -> None:
    text = "😀我的洗衣機壞了，訂單so20261101001"
    annotated = Message(
        data={
            TEXT: text,
            INTENT: "report_fault",
            ENTITIES: [entity(text, "洗衣機"), entity(text, "so20261101001", "order_id")],
        }
    )
    plain = Message(data={TEXT: "空調不製冷", INTENT: "report_fault"})
    payload = Message(data={TEXT: "/greet", INTENT: "greet"})
    training_data = TrainingData(training_examples=[annotated, plain, payload])

    result = normalizer.process_training_data(training_data)

    assert result is training_data
    assert annotated.get(TEXT) == "我的洗衣机坏了,订单SO20261101001"
    assert annotated.get(ORIGINAL_TEXT) == text
    assert annotated.get(INTENT) == "report_fault"
    assert spans(annotated.get(TEXT), annotated.get(ENTITIES)) == [
        ("product", "洗衣机", "洗衣机"),
        ("order_id", "SO20261101001", "SO20261101001"),
    ]
    assert plain.get(TEXT) == "空调不制冷"
    assert plain.get(ENTITIES) in (None, [])
    assert payload.get(TEXT) == "/greet"


def _config_cues() -> dict[str, Any]:
    pipeline = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    (guard,) = [c for c in pipeline["pipeline"] if c["name"].endswith("IntentCueGuard")]
    return guard["cues"]


@pytest.fixture(scope="module")
def guard() -> IntentCueGuard:
    return IntentCueGuard(IntentCueGuard.validated_cues(_config_cues()))


def _parsed(text: str, ranking: list[tuple[str, float]]) -> Message:
    rows = [{"name": name, "confidence": confidence} for name, confidence in ranking]
    return Message(data={TEXT: text, INTENT: rows[0], "intent_ranking": rows})


def test_cancel_without_a_word_that_cancels_gives_way_to_the_next_intent(
    guard: IntentCueGuard,
) -> None:
    """QA: "重新上门" (what a complainant wants) read as cancel 0.87 and lost the complaint."""
    (message,) = guard.process([_parsed("重新上门", [("cancel", 0.87), ("inform", 0.08)])])
    assert message.get(INTENT) == {"name": "inform", "confidence": 0.08}
    assert [r["name"] for r in message.get("intent_ranking")] == ["inform"]
    (kept,) = guard.process([_parsed("算了 不弄了", [("cancel", 0.9), ("inform", 0.05)])])
    assert kept.get(INTENT)["name"] == "cancel"
    (other,) = guard.process([_parsed("重新上门", [("inform", 0.9), ("cancel", 0.05)])])
    assert other.get(INTENT)["name"] == "inform"


def test_every_cancel_example_carries_a_cue(guard: IntentCueGuard) -> None:
    """A training example the guard would overrule teaches the classifier for nothing."""
    nlu = yaml.safe_load((PROJECT_ROOT / "data" / "nlu" / "cancel.yml").read_text("utf-8"))
    examples = [
        line.strip()[2:]
        for block in nlu["nlu"]
        if block.get("intent") == "cancel"
        for line in block["examples"].splitlines()
        if line.strip()
    ]
    assert len(examples) > 50
    assert [text for text in examples if not guard.has_cue("cancel", text)] == []


@pytest.mark.parametrize(
    ("cues", "reason"),
    [([], "must map intents"), ({"cancel": []}, "non-empty list"), ({"cancel": [""]}, "empty")],
)
def test_a_broken_cue_list_is_named(cues: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        IntentCueGuard.validated_cues(cues)
