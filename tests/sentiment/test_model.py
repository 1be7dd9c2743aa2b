"""The flattened linear model agrees with scikit-learn, with and without NB weighting."""

from __future__ import annotations

import numpy as np
import pytest

from bot.sentiment.model import fit_linear

TEXTS = ["很好用", "质量很好", "非常满意", "太差了", "质量很差", "很不满意"] * 3
TARGETS = [1, 1, 1, 0, 0, 0] * 3


def test_nb_weighted_model_separates_its_training_data() -> None:
    model = fit_linear(TEXTS, TARGETS, dense=None, max_n=2, C=10.0, nb_weighting=True)
    assert model.logits("很好")[0] > 0 > model.logits("很差")[0]


def test_nb_weighting_is_folded_into_the_saved_weights() -> None:
    plain = fit_linear(TEXTS, TARGETS, dense=None, max_n=2, C=10.0)
    weighted = fit_linear(TEXTS, TARGETS, dense=None, max_n=2, C=10.0, nb_weighting=True)
    shared = sorted(set(plain.vocabulary) & set(weighted.vocabulary))
    assert shared
    plain_rows = plain.gram_weights[[plain.vocabulary[g] for g in shared]]
    weighted_rows = weighted.gram_weights[[weighted.vocabulary[g] for g in shared]]
    assert not np.allclose(plain_rows, weighted_rows)


def test_nb_weighting_needs_two_classes() -> None:
    with pytest.raises(ValueError, match="binary"):
        fit_linear(["a", "b", "c"], [0, 1, 2], dense=None, max_n=1, C=1.0, nb_weighting=True)
