"""``SentimentAnalyzer.analyse(text) -> Sentiment``: label, score, escalate and reasons.

Three layers: the lexicon rules (``bot.sentiment.lexicon``) read negation, degree, sarcasm,
threats, safety risks, repeated failure, emoji and question form; a review-polarity model
trained on public product-review sentences; and two small regressions trained on our own
labelled messages (``config/sentiment/train.yml``) that weigh all of it into a 3-way label
and an escalation probability.  In long Chinese text (review-like; sarcastic text only when
it is longer still) a second review model with word features (the direction model) also weighs
directly into which way a polar label leans.  Threats, safety risks, profanity and a request
for a person escalate whatever the regression says (``config/sentiment/settings.yml``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bot.nlu.text import normalise_text
from bot.sentiment.data import LABELS, TRAIN_FILE, load_labelled, review_corpus
from bot.sentiment.lexicon import LEXICON_FILE, Cues, Lexicon
from bot.sentiment.model import NgramLinearModel, WordScheme, dense_features, fit_linear
from bot.settings import PROJECT_ROOT

SETTINGS_FILE = PROJECT_ROOT / "config" / "sentiment" / "settings.yml"
CACHE_DIR = PROJECT_ROOT / "var" / "sentiment"
FORMAT_VERSION = 4
"""Bump when the saved model's layout or the feature code changes."""

_HAN = re.compile(r"[\u4e00-\u9fff]")
"""Chinese characters: the review model was trained on Chinese text, so only they count."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sentiment:
    """The sentiment of one customer message, as put into the NLU parse output."""

    label: str  # "negative" | "neutral" | "positive"
    score: float  # -1 (very negative) .. 1 (very positive)
    escalate: bool  # this message alone should bring in a person
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_settings(path: Path = SETTINGS_FILE) -> dict[str, Any]:
    """The thresholds and training parameters from settings.yml."""
    settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: expected a mapping")
    return settings


def source_fingerprint(
    lexicon: Path = LEXICON_FILE, train: Path = TRAIN_FILE, settings: Path = SETTINGS_FILE
) -> str:
    """Changes whenever a file the model is built from changes (used as the cache key)."""
    digest = hashlib.sha256(str(FORMAT_VERSION).encode())
    for path in (lexicon, train, settings):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _fit_review(corpus: list[tuple[str, int]], options: dict[str, Any]) -> NgramLinearModel:
    """An NB-weighted regression on the public review sentences, as ``options`` describe it."""
    words = options.get("words")
    return fit_linear(
        [normalise_text(text, keep_emoji=True) for text, _ in corpus],
        [polarity for _, polarity in corpus],
        dense=None,
        max_n=int(options.get("max_ngram", 3)),
        C=float(options.get("C", 3.0)),
        min_df=int(options.get("min_df", 2)),
        nb_weighting=bool(options.get("nb_weighting", False)),
        words=WordScheme(
            negators=frozenset(str(w) for w in words.get("negators", [])),
            turns=frozenset(str(w) for w in words.get("turns", [])),
        )
        if words
        else None,
    )


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


class SentimentAnalyzer:
    """Analyse one message at a time; build once (a few seconds), then well under 1 ms each."""

    def __init__(
        self,
        lexicon: Lexicon,
        settings: dict[str, Any],
        classifier: NgramLinearModel,
        escalation: NgramLinearModel,
        review: NgramLinearModel | None,
        direction: NgramLinearModel | None = None,
    ) -> None:
        self.lexicon = lexicon
        self.settings = settings
        self._classifier = classifier
        self._escalation = escalation
        self._review = review
        self._direction = direction or review
        if self._direction is not None:
            # Loads jieba's dictionary (about a second) now rather than on a customer's message.
            self._direction.logits("好")
        self._always_escalate = set(settings.get("always_escalate", []))

    # -- building --------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        train_file: Path = TRAIN_FILE,
        lexicon_file: Path = LEXICON_FILE,
        settings_file: Path = SETTINGS_FILE,
    ) -> SentimentAnalyzer:
        """Train the review model and the two regressions from the files."""
        settings = load_settings(settings_file)
        lexicon = Lexicon.load(lexicon_file)
        review_settings = settings.get("review_model", {})
        review = direction = None
        if review_settings.get("enabled", True):
            corpus = review_corpus(
                held_out=False,
                share=int(review_settings.get("holdout_share", 5)),
                max_chars=int(review_settings.get("max_chars", 200)),
            )
            review = _fit_review(corpus, review_settings)
            direction_settings = review_settings.get("direction_model")
            if direction_settings:
                direction = _fit_review(corpus, review_settings | direction_settings)
        messages = load_labelled(train_file)
        texts = [normalise_text(m.text, keep_emoji=True) for m in messages]
        partial = cls(lexicon, settings, None, None, review)  # type: ignore[arg-type]
        dense = np.array([partial._dense(text) for text in texts])
        options = settings.get("classifier", {})
        common = {
            "dense": dense,
            "max_n": int(options.get("max_ngram", 2)),
            "C": float(options.get("C", 2.0)),
            "ngram_scale": float(options.get("ngram_weight", 1.0)),
        }
        classifier = fit_linear(texts, [LABELS.index(m.label) for m in messages], **common)
        escalation = fit_linear(texts, [int(m.escalate) for m in messages], **common)
        return cls(lexicon, settings, classifier, escalation, review, direction)

    def save(self, path: Path) -> None:
        """Store the trained parts (the lexicon is re-read from its file on load)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "version": FORMAT_VERSION,
            "settings": self.settings,
            "classifier": self._classifier,
            "escalation": self._escalation,
            "review": self._review,
            "direction": self._direction,
        }
        temporary = path.with_suffix(f".{id(self)}.tmp")
        temporary.write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path, lexicon_file: Path = LEXICON_FILE) -> SentimentAnalyzer:
        """Load what ``save`` wrote (a file this project wrote itself, never user input)."""
        state = pickle.loads(path.read_bytes())  # noqa: S301 - our own cache file
        if state.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path}: saved by another version")
        return cls(
            Lexicon.load(lexicon_file),
            state["settings"],
            state["classifier"],
            state["escalation"],
            state["review"],
            state["direction"],
        )

    # -- analysing -------------------------------------------------------------------------

    def _dense(self, folded: str) -> list[float]:
        review = float(self._review.logits(folded)[0]) if self._review else 0.0
        return dense_features(self.lexicon.read(folded), review)

    def analyse(self, text: str | None) -> Sentiment:
        """Sentiment of one raw customer message (Traditional, full-width and emoji welcome)."""
        folded = normalise_text(text, keep_emoji=True)
        if not folded:
            return Sentiment("neutral", 0.0, False, [])
        cues = self.lexicon.read(folded)
        review = float(self._review.logits(folded)[0]) if self._review else 0.0
        dense = dense_features(cues, review)
        probabilities = _softmax(self._classifier.logits(folded, dense))
        negative, neutral, positive = (float(p) for p in probabilities)
        margin = float(self.settings.get("min_polar_probability", 0.0))
        label = LABELS[int(np.argmax(probabilities))]
        if label != "neutral" and max(negative, positive) - neutral < margin:
            label = "neutral"
        score = max(-1.0, min(1.0, positive - negative))
        if self._reads_as_review(folded, cues):
            leaning = float(self._direction.logits(folded)[0])  # type: ignore[union-attr]
            label, score = self._review_direction(label, leaning, (negative, neutral, positive))
        if self._only_turned_complaints(cues):
            # "不是不满意": the n-grams see "不满意", the rules see it turned round.  Beside a
            # request or a fault ("只是想问下保修") it is a calm message, otherwise mild praise.
            if cues.problems:
                label, score = "neutral", 0.0
            elif label != "positive":
                label, score = "positive", math.tanh(cues.positive / 3)
        reasons = cues.reasons()
        if label == "positive":
            # Praise that only looked sarcastic (a long review read by the review model) is
            # not anger: only a cue that always needs a person (safety, a threat…) escalates.
            reasons = [reason for reason in reasons if reason != "sarcasm"]
            escalate = bool(self._always_escalate.intersection(reasons))
        else:
            escalation_logit = float(self._escalation.logits(folded, dense)[0])
            escalation_probability = 1 / (1 + math.exp(-escalation_logit))
            threshold = float(self.settings.get("escalate_threshold", 0.5))
            if label == "neutral":
                # A calm-reading message needs a surer classifier to bring in a person
                # ("你们能做什么" shares "你们" with many angry messages).
                threshold = float(self.settings.get("neutral_escalate_threshold", threshold))
            escalate = bool(self._always_escalate.intersection(reasons)) or (
                escalation_probability >= threshold
            )
        if escalate and not reasons:
            reasons = ["strong_negative"]
        if label != "neutral" and not escalate:
            score *= self._intensity(cues, label)
        return Sentiment(label, round(score, 3), escalate, reasons)

    def _intensity(self, cues: Cues, label: str) -> float:
        """0..1: how strongly the lexicon says the message feels ("有点慢" < "太慢了")."""
        options = self.settings.get("intensity", {})
        floor, scale = float(options.get("floor", 1.0)), float(options.get("scale", 1.0))
        if label == "negative":
            strength = max(cues.strongest_negative, 0.5 * min(cues.problems, 2))
        else:
            strength = cues.positive
        return floor + (1 - floor) * math.tanh(strength / scale)

    @staticmethod
    def _only_turned_complaints(cues: Cues) -> bool:
        """The message's only opinion is a complaint turned round ("没有不满意", "并不差",
        "不是不好"): nothing else in it (a threat, sarcasm, a complaint or a negated praise
        word) speaks of trouble; problem words alone are calm requests."""
        return bool(
            cues.double_negations
            and cues.negative == 0
            and cues.positive > 0
            and not cues.flag_count
            and not cues.negated_positive
            and not cues.sarcasm
        )

    def _reads_as_review(self, folded: str, cues: Cues) -> bool:
        """Enough Chinese to be descriptive, and not sarcastic (praise words meaning the opposite)
        unless it is long.

        Such text may be a product review, where the review model (trained on thousands of
        public review sentences) knows much more about which way it leans than the chat
        regressions trained on a few hundred of our own messages.  Sarcasm markers ("呵呵",
        "不愧是", "又" next to praise) mostly mean what they say in a short complaint, but in
        a long review they are as often friendly; from ``direction_sarcasm_min_chars`` Chinese
        characters on (0: never) the review model decides such text too.
        """
        review = self.settings.get("review_model", {})
        minimum = int(review.get("direction_min_chars", 0))
        if self._review is None or not minimum:
            return False
        length = len(_HAN.findall(folded))
        if cues.sarcasm:
            sarcastic_minimum = int(review.get("direction_sarcasm_min_chars", 0))
            return bool(sarcastic_minimum) and length >= max(minimum, sarcastic_minimum)
        return length >= minimum

    def _review_direction(
        self, label: str, direction_logit: float, probabilities: tuple[float, float, float]
    ) -> tuple[str, float]:
        """Keep the chat layer's polar-vs-neutral call; weigh the review model into the direction.

        The direction is the chat layer's positive-vs-negative log-odds plus the direction
        model's log-odds times ``review_model.direction_weight``.
        """
        negative, neutral, positive = probabilities
        weight = float(self.settings.get("review_model", {}).get("direction_weight", 1.0))
        tiny = 1e-9
        leaning = math.log((positive + tiny) / (negative + tiny)) + weight * direction_logit
        if label != "neutral":
            label = "positive" if leaning > 0 else "negative"
        score = math.tanh(leaning / 2) * (1 - neutral)
        return label, max(-1.0, min(1.0, score))


@lru_cache(maxsize=1)
def default_analyzer() -> SentimentAnalyzer:
    """The analyser for the project's files, cached on disk under ``var/sentiment``.

    The cache is keyed by the files' content, so editing the lexicon, training data or
    settings rebuilds it on next use.
    """
    path = CACHE_DIR / f"model-{source_fingerprint()}.pkl"
    if path.exists():
        try:
            return SentimentAnalyzer.load(path)
        except (OSError, ValueError, pickle.UnpicklingError, EOFError) as error:
            logger.warning("Rebuilding the sentiment model: %s", error)
    analyzer = SentimentAnalyzer.build()
    analyzer.save(path)
    return analyzer
