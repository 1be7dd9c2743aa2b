"""Sentiment of customer messages: label, score, escalation and the reasons for it.

Plain Python, usable without Rasa::

    from bot.sentiment import default_analyzer
    default_analyzer().analyse("第三次坏了 再不解决我就打12315")
    # Sentiment(label='negative', score=-0.9, escalate=True, reasons=['threat', ...])
"""

from bot.sentiment.analyzer import Sentiment, SentimentAnalyzer, default_analyzer
from bot.sentiment.data import LabelledMessage, SentimentDataError, load_labelled
from bot.sentiment.lexicon import Cues, Lexicon, LexiconError

__all__ = [
    "Cues",
    "LabelledMessage",
    "Lexicon",
    "LexiconError",
    "Sentiment",
    "SentimentAnalyzer",
    "SentimentDataError",
    "default_analyzer",
    "load_labelled",
]
