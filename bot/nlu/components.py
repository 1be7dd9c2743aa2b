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
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
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


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class IntentCueGuard(GraphComponent):
    """Intents that mean something only with one of their cue words in the text.

    "cancel" with no 取消, 算了, 不要… in it ("重新上门" as what a complainant wants, "好吧 那我
    等着" after a call-back was promised) cancels nothing, whatever the character n-grams
    say.  Such a prediction gives way to the next intent in the ranking with its own
    confidence, so the FallbackClassifier after this component judges that one.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"cues": {}}

    def __init__(self, cues: dict[str, tuple[str, ...]]) -> None:
        self._cues = cues

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> IntentCueGuard:
        return cls(cls.validated_cues(config.get("cues")))

    @staticmethod
    def validated_cues(raw: Any) -> dict[str, tuple[str, ...]]:
        """``{intent: [cue words]}`` from config.yml, folded like the text they are read in."""
        if not isinstance(raw, dict):
            raise ValueError("IntentCueGuard: cues must map intents to lists of words")
        cues = {}
        for intent, words in raw.items():
            if not isinstance(words, list) or not words:
                raise ValueError(f"IntentCueGuard: cues.{intent} must be a non-empty list")
            if not all(isinstance(word, str) and word.strip() for word in words):
                raise ValueError(f"IntentCueGuard: cues.{intent} has an empty or non-text word")
            cues[str(intent)] = tuple(normalise_text(word).lower() for word in words)
        return cues

    def has_cue(self, intent: str, text: str) -> bool:
        """Whether ``text`` may carry ``intent`` (always, for an intent without cues)."""
        cues = self._cues.get(intent)
        folded = normalise_text(text).lower()
        return cues is None or any(cue in folded for cue in cues)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            name = intent.get(INTENT_NAME_KEY)
            text = message.get(TEXT) or ""
            if not name or text.startswith("/") or self.has_cue(name, text):
                continue
            ranking = [
                other
                for other in message.get(INTENT_RANKING_KEY) or []
                if other.get(INTENT_NAME_KEY) != name
            ]
            fallback = ranking[0] if ranking else {INTENT_NAME_KEY: None, "confidence": 0.0}
            message.set(INTENT, fallback, add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
