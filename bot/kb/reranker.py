"""The learned scorer that turns per-(query, article) match features into a probability.

Hand-tuned blends of BM25 and cosine cannot tell a paraphrase ("家里养猫 滤网多久清一次")
from a near-miss that merely shares the product word ("洗衣机能洗羽绒服吗"). A small
logistic regression over a dozen match features can, and it is retrained from the articles
themselves every time the index is built, so it never sees the evaluation set:

* positives: each sample question held out of the index, paired with its own article;
* negatives: the same question paired with the other top candidates, the same question with
  its own article removed (a realistic "no article answers this"), and chit-chat /
  out-of-scope utterances from the NLU training data paired with whatever they match.

Its probability is the search score, so the threshold means "how sure the answer is right".
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from bot.settings import PROJECT_ROOT

NLU_DIR = PROJECT_ROOT / "data" / "nlu"
NONE_INTENTS = (
    "out_of_scope",
    "greet",
    "goodbye",
    "thanks",
    "affirm",
    "deny",
    "bot_challenge",
    "ask_capabilities",
    "inform",
)
"""NLU intents whose examples are never knowledge questions: they teach "not found"."""

_ENTITY = re.compile(r"\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\{[^}]*\}")


def load_none_queries(
    directory: Path = NLU_DIR, intents: tuple[str, ...] = NONE_INTENTS
) -> list[str]:
    """Examples of the non-question intents, entity markup stripped (missing files: none)."""
    texts: list[str] = []
    for intent in intents:
        path = directory / f"{intent}.yml"
        if not path.exists():
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or ():
            if block.get("intent") != intent:
                continue
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    text = _ENTITY.sub(lambda m: m.group(1) or m.group(2) or "", line[2:]).strip()
                    if text:
                        texts.append(text)
    return texts


class Reranker:
    """Standardised features → logistic regression → P(this article answers the query)."""

    def __init__(self, c: float = 1.0) -> None:
        self._model: Pipeline = make_pipeline(
            StandardScaler(), LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        )

    def fit(self, features: np.ndarray, labels: np.ndarray) -> Reranker:
        self._model.fit(features, labels)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0)
        return self._model.predict_proba(features)[:, 1]
