"""Rasa NLU component putting ``sentiment`` on every parsed message.

The analysis reads the customer's original text (Traditional folded to Simplified, emoji
kept), not the normalised ``text`` the intent model sees, because emoji and punctuation carry
feeling.  The result lands in ``/model/parse`` output and in ``UserUttered.parse_data``::

    "sentiment": {"label": "negative", "score": -0.93, "escalate": true, "reasons": ["threat"]}

The analyser is trained when the Rasa model is trained and stored inside it; its config
carries a fingerprint of the sentiment files so Rasa retrains it when they change.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.components import ORIGINAL_TEXT
from bot.sentiment.analyzer import SentimentAnalyzer, default_analyzer, source_fingerprint

SENTIMENT = "sentiment"
_MODEL_FILE = "sentiment.pkl"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class SentimentAnalyzerComponent(GraphComponent):
    """Adds ``{"label", "score", "escalate", "reasons"}`` under ``sentiment`` to each message."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # Part of Rasa's training fingerprint: editing the lexicon, training messages or
        # settings retrains this component on the next `rasa train`.
        return {"sources": source_fingerprint()}

    def __init__(
        self,
        model_storage: ModelStorage,
        resource: Resource,
        analyzer: SentimentAnalyzer | None = None,
    ) -> None:
        self._model_storage = model_storage
        self._resource = resource
        self._analyzer = analyzer

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentimentAnalyzerComponent:
        return cls(model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SentimentAnalyzerComponent:
        try:
            with model_storage.read_from(resource) as directory:
                analyzer = SentimentAnalyzer.load(directory / _MODEL_FILE)
        except (ValueError, OSError):
            analyzer = default_analyzer()  # a model trained before this component existed
        return cls(model_storage, resource, analyzer)

    def train(self, training_data: TrainingData) -> Resource:
        """Build the analyser from the sentiment files and store it in the model."""
        self._analyzer = default_analyzer()
        with self._model_storage.write_to(self._resource) as directory:
            self._analyzer.save(directory / _MODEL_FILE)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data  # sentiment is not a training feature of the intent model

    def process(self, messages: list[Message]) -> list[Message]:
        analyzer = self._analyzer or default_analyzer()
        for message in messages:
            text = message.get(ORIGINAL_TEXT) or message.get(TEXT) or ""
            if text.startswith("/"):
                text = ""  # button payloads carry no feeling
            message.set(SENTIMENT, analyzer.analyse(text).as_dict(), add_to_output=True)
        return messages
