"""The Rasa component puts the sentiment on each message, from the customer's original text."""

from __future__ import annotations

from pathlib import Path

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.components import TextNormalizer
from bot.nlu.sentiment import SENTIMENT, SentimentAnalyzerComponent


def _context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test")


def test_trained_component_survives_storage_and_keeps_emoji(tmp_path: Path) -> None:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("sentiment")
    config = SentimentAnalyzerComponent.get_default_config()
    trainer = SentimentAnalyzerComponent.create(config, storage, resource, _context())
    trainer.train(TrainingData())
    component = SentimentAnalyzerComponent.load(config, storage, resource, _context())

    normalizer = TextNormalizer.create({}, storage, Resource("normalizer"), _context())
    message = Message({TEXT: "收到了 👍👍"})
    normalizer.process([message])
    assert "👍" not in message.get(TEXT)  # the intent model never sees the emoji...
    component.process([message])
    assert message.get(SENTIMENT)["label"] == "positive"  # ...but sentiment does
    assert SENTIMENT in message.as_dict(only_output_properties=True)


def test_every_message_gets_label_score_escalate_and_reasons(tmp_path: Path) -> None:
    component = SentimentAnalyzerComponent.load(
        SentimentAnalyzerComponent.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("untrained"),
        _context(),
    )
    threat, calm, button = (
        Message({TEXT: "再不處理我就打12315"}),
        Message({TEXT: "故障怎么排查?"}),
        Message({TEXT: "/affirm"}),
    )
    component.process([threat, calm, button])
    assert threat.get(SENTIMENT)["escalate"] and "threat" in threat.get(SENTIMENT)["reasons"]
    assert calm.get(SENTIMENT) == {
        "label": "neutral",
        "score": calm.get(SENTIMENT)["score"],
        "escalate": False,
        "reasons": [],
    }
    assert button.get(SENTIMENT)["label"] == "neutral"
