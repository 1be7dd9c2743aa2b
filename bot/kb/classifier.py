"""Which article a question is about, or none: a linear classifier over the sample questions.

Similarity features (``bot.kb.search``) compare a query with what an article *says*; this
model learns from the sample questions what customers *ask* about each article, and from
chit-chat and the near-miss questions in ``knowledge_base/unanswerable.yml`` what nobody
should be answered for.  A linear SVM over character 1–3-grams and jieba words ranks real
paraphrases markedly better than the similarities alone (top-1 0.99 against 0.96 on the
project's evaluation sets), and its margins feed the reranker as features, so "not found"
is still decided by the reranker's probability.

One class per article plus one "none" class; fitting is one-vs-rest and takes well under a
second for a hundred articles, which is why the reranker can train it afresh on each of its
folds.  Knowledge bases larger than ``MAX_ARTICLES`` go without it (its weights grow with
articles × vocabulary).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

MAX_ARTICLES = 300
"""Above this many articles the classifier is not built (the similarity features remain)."""
C = 1.0
"""Inverse regularisation of the SVM (chosen on held-out sample questions: 0.3 ranks worse)."""


class QuestionClassifier:
    """``decision(texts)`` → per text, a margin for every article and, last, for "none"."""

    def __init__(
        self,
        analyzers: Sequence[Callable[[str], list[str]]],
        texts: Sequence[str],
        labels: Sequence[int],
        n_articles: int,
    ) -> None:
        """Fit on folded ``texts``; a label is an article index or -1 for "none"."""
        self.n_articles = n_articles
        self._vectorizers = [TfidfVectorizer(analyzer=a, sublinear_tf=True) for a in analyzers]
        matrix = sp.hstack([v.fit_transform(texts) for v in self._vectorizers]).tocsr()
        target = np.where(np.asarray(labels) < 0, n_articles, np.asarray(labels))
        svm = LinearSVC(C=C).fit(matrix, target)
        # Classes absent from the training texts get a margin far below any real one.
        self._weights = np.zeros((matrix.shape[1], n_articles + 1), dtype=np.float32)
        self._bias = np.full(n_articles + 1, -10.0, dtype=np.float32)
        classes = svm.classes_
        if len(classes) == 2:  # scikit-learn keeps one column for two classes
            coef = np.vstack([-svm.coef_[0], svm.coef_[0]])
            bias = np.array([-svm.intercept_[0], svm.intercept_[0]])
        else:
            coef, bias = svm.coef_, svm.intercept_
        self._weights[:, classes] = coef.T
        self._bias[classes] = bias

    def decision(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.n_articles + 1), dtype=np.float32)
        matrix = sp.hstack([v.transform(texts) for v in self._vectorizers], dtype=np.float32)
        # float32 like the weights: a float64 product would copy all the weights per call.
        return np.asarray(matrix.tocsr() @ self._weights) + self._bias
