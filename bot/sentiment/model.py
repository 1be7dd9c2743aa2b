"""The trained parts: linear models over character n-grams (and, for reviews, words) plus the
lexicon cues.

Training uses scikit-learn; prediction does not.  A fitted model is turned into plain
dictionaries (feature → weights) so one message costs a few dictionary look-ups and, for the
review model, one jieba segmentation: well under a millisecond.  A saved model loads without
scikit-learn's per-call overhead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from bot.sentiment.lexicon import Cues


def char_ngrams(text: str, max_n: int) -> set[str]:
    """Distinct character 1..max_n-grams of a folded, lower-cased message (spaces dropped)."""
    compact = "".join(text.lower().split())
    return {
        compact[start : start + n]
        for n in range(1, max_n + 1)
        for start in range(len(compact) - n + 1)
    }


_CLAUSE_BREAK = re.compile(r"[\s,.!?;:，。！？；：、~～…\"'“”‘’()（）【】《》<>]+")


@lru_cache(maxsize=1)
def _segmenter() -> Any:  # noqa: ANN401 - jieba has no public type
    """A private jieba instance: the NLU pipeline adds catalogue words to jieba's global one,
    which would make review features differ between training and use."""
    import jieba

    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


@dataclass(frozen=True)
class WordScheme:
    """Word features of a review on top of its character n-grams.

    Per clause: jieba words (``w:``), word bigrams with clause edges (``b:``), words after a
    negator in the same clause (``n:``, so "不" + "满意" differs from "满意"), and every word
    after a turn such as "但是"/"不过"/"就是" (``t:``, so "房间还行，就是床小了" can lean on
    what follows the turn).  Cross-validated on the training part of the review corpus this
    adds about half a point over character n-grams alone.
    """

    negators: frozenset[str]
    turns: frozenset[str]

    def features(self, text: str) -> set[str]:
        found: set[str] = set()
        turned = False
        segmenter = _segmenter()
        for clause in _CLAUSE_BREAK.split(text.lower()):
            if not clause:
                continue
            negated = False
            previous = "^"
            for word in segmenter.lcut(clause):
                turned = turned or word in self.turns
                found.add(f"w:{word}")
                found.add(f"b:{previous}|{word}")
                if negated:
                    found.add(f"n:{word}")
                if turned:
                    found.add(f"t:{word}")
                negated = negated or word in self.negators
                previous = word
            found.add(f"b:{previous}|$")
        return found


def text_features(text: str, max_n: int, words: WordScheme | None) -> set[str]:
    """Character n-grams, plus the word features when there is a word scheme."""
    grams = char_ngrams(text, max_n)
    return grams | words.features(text) if words else grams


@dataclass
class NgramLinearModel:
    """``intercept + Σ rows of known grams / sqrt(#known grams) + dense @ dense_weights``.

    The same arithmetic as a scikit-learn logistic regression on L2-normalised binary n-gram
    features (scaled by ``ngram_scale``) stacked with dense features.
    """

    max_n: int
    vocabulary: dict[str, int]
    gram_weights: np.ndarray  # (n_grams, n_outputs)
    dense_weights: np.ndarray  # (n_dense, n_outputs)
    intercept: np.ndarray  # (n_outputs,)
    ngram_scale: float = 1.0
    words: WordScheme | None = None

    def logits(self, text: str, dense: Sequence[float] = ()) -> np.ndarray:
        vocabulary = self.vocabulary  # one look-up per feature: the hot loop of a message
        features = text_features(text, self.max_n, self.words)
        rows = [row for row in map(vocabulary.get, features) if row is not None]
        total = self.intercept.copy()
        if rows:
            total += self.gram_weights[rows].sum(axis=0) * (self.ngram_scale / math.sqrt(len(rows)))
        if len(dense):
            total += np.asarray(dense, dtype=float) @ self.dense_weights
        return total


def _design(
    texts: Sequence[str],
    dense: np.ndarray | None,
    max_n: int,
    words: WordScheme | None,
    scale: float,
    min_df: int,
):
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    vectorizer = CountVectorizer(
        analyzer=lambda text: list(text_features(text, max_n, words)), binary=True, min_df=min_df
    )
    grams = normalize(vectorizer.fit_transform(texts)) * scale
    matrix = grams if dense is None else sparse.hstack([grams, sparse.csr_matrix(dense)]).tocsr()
    return vectorizer.get_feature_names_out(), matrix


def _nb_ratios(matrix, targets: np.ndarray) -> np.ndarray:
    """log(P(gram | positive) / P(gram | negative)) with add-one smoothing, per column."""
    present = matrix > 0
    positive = np.asarray(present[targets == 1].sum(axis=0)).ravel() + 1.0
    negative = np.asarray(present[targets == 0].sum(axis=0)).ravel() + 1.0
    return np.log(positive / positive.sum()) - np.log(negative / negative.sum())


def fit_linear(
    texts: Sequence[str],
    targets: Sequence[int],
    dense: np.ndarray | None,
    max_n: int,
    C: float,
    ngram_scale: float = 1.0,
    min_df: int = 1,
    nb_weighting: bool = False,
    words: WordScheme | None = None,
) -> NgramLinearModel:
    """Fit a (multinomial or binary) logistic regression and flatten it for fast prediction.

    ``nb_weighting`` (binary targets only) scales each n-gram by its naive-Bayes log-count
    ratio before fitting (NB-LR, Wang & Manning 2012): on noisy review sentences this
    generalises better than plain n-grams.  The ratio is folded into the saved weights, so
    prediction stays the same arithmetic.  ``words`` adds word features (``WordScheme``).
    """
    from sklearn.linear_model import LogisticRegression

    names, matrix = _design(texts, dense, max_n, words, ngram_scale, min_df)
    classes = sorted(set(targets))
    ratios = None
    if nb_weighting:
        if len(classes) != 2 or dense is not None:
            raise ValueError("nb_weighting needs binary targets and no dense features")
        ratios = _nb_ratios(matrix, np.asarray(targets))
        matrix = matrix.multiply(ratios).tocsr()
    solver = "liblinear" if len(classes) == 2 else "lbfgs"
    regression = LogisticRegression(C=C, max_iter=3000, solver=solver, class_weight="balanced")
    regression.fit(matrix, targets)
    coef = regression.coef_.T  # (features, outputs)
    if ratios is not None:
        coef = coef * ratios[:, None]
    n_grams = len(names)
    kept = [i for i in range(n_grams) if np.any(coef[i])]
    return NgramLinearModel(
        max_n=max_n,
        vocabulary={names[i]: row for row, i in enumerate(kept)},
        gram_weights=coef[kept].copy(),
        dense_weights=coef[n_grams:].copy(),
        intercept=regression.intercept_.copy(),
        ngram_scale=ngram_scale,
        words=words,
    )


DENSE_FEATURES = (
    "positive",
    "negative",
    "net",
    "problems",
    "question",
    "question_without_emotion",
    "exclamations",
    "sarcasm",
    "sarcasm_strong",
    "negated_positive",
    "strong_negative",
    "threat",
    "safety",
    "repeated_failure",
    "request_person",
    "profanity",
    "review_polarity",
)


def dense_features(cues: Cues, review_polarity: float) -> list[float]:
    """The lexicon cues (and the review model's log-odds) as numbers, in DENSE_FEATURES order."""
    calm_question = (
        cues.question and cues.negative < 2 and not cues.flag_count and not cues.exclamations
    )
    return [
        math.log1p(cues.positive),
        math.log1p(cues.negative),
        math.tanh((cues.positive - cues.negative) / 3),
        min(cues.problems, 3) / 3,
        float(cues.question),
        float(calm_question),
        min(cues.exclamations, 3) / 3,
        float(cues.sarcasm),
        float(cues.sarcasm_strong),
        float(cues.negated_positive),
        min(cues.strongest_negative, 4) / 4,
        float(cues.flags.get("threat", False)),
        float(cues.flags.get("safety", False)),
        float(cues.flags.get("repeated_failure", False)),
        float(cues.flags.get("request_person", False)),
        float(cues.flags.get("profanity", False)),
        math.tanh(review_polarity / 2),
    ]
