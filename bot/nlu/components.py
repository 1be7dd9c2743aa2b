"""Custom Rasa NLU components.  Listed in config.yml by their module path."""

from __future__ import annotations

import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.spacy_pipeline import register_domain_words
from bot.nlu.text import normalise_text

ORIGINAL_TEXT = "original_text"
logger = logging.getLogger(__name__)


def realign_entities(
    original: str, normalised: str, entities: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Move annotated entity offsets from the original text onto the normalised text."""
    realigned = []
    cursor = 0
    for entity in sorted(entities, key=lambda e: e[ENTITY_ATTRIBUTE_START]):
        surface = normalise_text(
            original[entity[ENTITY_ATTRIBUTE_START] : entity[ENTITY_ATTRIBUTE_END]]
        )
        start = normalised.find(surface, cursor) if surface else -1
        if start < 0:
            logger.warning("Dropped entity %r: not found after normalising %r", surface, original)
            continue
        cursor = start + len(surface)
        moved = dict(entity, start=start, end=cursor)
        if entity.get(ENTITY_ATTRIBUTE_VALUE) == original[entity["start"] : entity["end"]]:
            moved[ENTITY_ATTRIBUTE_VALUE] = surface
        realigned.append(moved)
    return realigned


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class TextNormalizer(GraphComponent):
    """Fold every message (Traditional, full-width, emoji, garbage) before tokenisation.

    It runs first in the pipeline, for training examples and live messages alike, so both
    see identical text.  The untouched text stays available as ``original_text``.
    """

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TextNormalizer:
        register_domain_words()
        return cls()

    def _normalise(self, message: Message) -> None:
        text = message.get(TEXT)
        if text is None or text.startswith("/"):
            return  # intent payloads from buttons are left to Rasa's RegexMessageHandler
        normalised = normalise_text(text)
        message.set(ORIGINAL_TEXT, text)
        message.set(TEXT, normalised)
        if message.get(ENTITIES):
            message.set(ENTITIES, realign_entities(text, normalised, message.get(ENTITIES)))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            self._normalise(example)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            self._normalise(message)
        return messages
