"""The learned scorer that turns per-(query, article) match features into a probability.

Hand-tuned blends of BM25 and cosine cannot tell a paraphrase ("家里养猫 滤网多久清一次")
from a near-miss that merely shares the product word ("洗衣机能洗羽绒服吗"). A small
logistic regression over a dozen match features does better, and it is retrained from the
articles themselves whenever the index is built (``bot.kb.search``), never from evaluation
questions.

Its weights are sign-constrained: more similarity or coverage may never lower the score, more
of the query unexplained may never raise it.  The training queries are sample questions held
out of the index, which differ from real customer phrasing (an article's sample questions are
deliberately about different details, so a held-out one often resembles *another* article's
questions); unconstrained weights learn that quirk and then rank real paraphrases worse.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import minimize
from scipy.special import expit

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
                    text = _ENTITY.sub(lambda m: m.group(1) or m.group(2) or "", line[2:])
                    if text.strip():
                        texts.append(text.strip())
    return list(dict.fromkeys(texts))


class Reranker:
    """Standardised features → sign-constrained logistic regression → P(article answers).

    ``signs[i]`` is +1 (weight ≥ 0), -1 (weight ≤ 0) or 0 (free) for feature ``i``.
    """

    def __init__(self, signs: tuple[int, ...], c: float = 1.0) -> None:
        self.signs = np.asarray(signs, dtype=int)
        self.c = c
        self.mean = np.zeros(len(signs))
        self.scale = np.ones(len(signs))
        self.coef = np.zeros(len(signs))
        self.intercept = 0.0

    def fit(self, features: np.ndarray, labels: np.ndarray) -> Reranker:
        self.mean = features.mean(axis=0)
        self.scale = features.std(axis=0)
        self.scale[self.scale < 1e-9] = 1.0
        z = (features - self.mean) / self.scale
        y = labels.astype(float)

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            margin = z @ theta[1:] + theta[0]
            value = np.sum(np.logaddexp(0.0, margin) - y * margin)
            value += 0.5 / self.c * theta[1:] @ theta[1:]
            residual = expit(margin) - y
            grad = np.concatenate([[residual.sum()], z.T @ residual + theta[1:] / self.c])
            return float(value), grad

        bounds = [(None, None)] + [
            (0.0, None) if s > 0 else (None, 0.0) if s < 0 else (None, None) for s in self.signs
        ]
        result = minimize(
            loss, np.zeros(len(self.signs) + 1), jac=True, method="L-BFGS-B", bounds=bounds
        )
        self.intercept, self.coef = float(result.x[0]), result.x[1:]
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0)
        return expit(((features - self.mean) / self.scale) @ self.coef + self.intercept)
