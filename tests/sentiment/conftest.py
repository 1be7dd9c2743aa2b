"""One analyser for the whole sentiment test package (built once, then cached on disk)."""

from __future__ import annotations

import pytest

from bot.sentiment import SentimentAnalyzer, default_analyzer


@pytest.fixture(scope="session")
def analyzer() -> SentimentAnalyzer:
    return default_analyzer()
