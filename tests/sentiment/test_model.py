"""The flattened linear model: NB weighting and word features are folded into its tables."""

from __future__ import annotations

import numpy as np
import pytest

from bot.sentiment.model import WordScheme, _segmenter, fit_linear

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


SCHEME = WordScheme(negators=frozenset({"不", "没"}), turns=frozenset({"但是", "就是"}))


def test_word_scheme_reads_words_bigrams_negation_and_the_turn() -> None:
    features = SCHEME.features("房间还行，就是床太小")
    assert {"w:房间", "b:^|房间", "b:就是|床"} <= features
    assert "t:床" in features and "t:房间" not in features
    negated = SCHEME.features("质量好，不贵")
    assert "n:贵" in negated
    assert "n:好" not in negated and "n:质量" not in negated  # the scope ends at the clause


def test_word_scheme_uses_its_own_jieba_instance() -> None:
    import jieba

    assert _segmenter() is not jieba.dt


def test_word_features_are_learnt_and_folded_into_the_vocabulary() -> None:
    model = fit_linear(TEXTS, TARGETS, dense=None, max_n=1, C=10.0, nb_weighting=True, words=SCHEME)
    assert any(gram.startswith("w:") for gram in model.vocabulary)
    assert model.logits("质量很好")[0] > 0 > model.logits("质量很差")[0]
