"""The reranker's competition and near-miss features, computed on a few real articles."""

from __future__ import annotations

import numpy as np
import pytest

from bot.kb import search
from bot.kb.articles import load_articles
from bot.kb.search import FEATURES, TextFolder, load_synonyms

ARTICLES = ("invoice", "return-shipping-fee", "warranty-period", "troubleshoot-washer-leak")
NEAR_MISSES = ("发票抬头能写英文吗", "洗衣机能洗羽绒服吗")
COLUMN = {name: i for i, (name, _) in enumerate(FEATURES)}


@pytest.fixture(scope="module")
def folder() -> TextFolder:
    return TextFolder(load_synonyms())


@pytest.fixture(scope="module")
def corpus(folder: TextFolder) -> search._Corpus:
    articles = {a.id: a for a in load_articles().articles}
    return search._Corpus(tuple(articles[i] for i in ARTICLES), folder)


def features(
    corpus: search._Corpus, folder: TextFolder, query: str, near_misses: tuple[str, ...] = ()
) -> np.ndarray:
    index = search._Index(
        corpus, np.ones(len(corpus.texts), dtype=bool), [folder.fold(t) for t in near_misses]
    )
    q = index.query(folder.fold(query))
    return index.features(q, np.arange(len(ARTICLES)), index.retrieval(q))


def test_likelihood_is_a_posterior_over_the_candidates_that_points_at_the_article(
    corpus: search._Corpus, folder: TextFolder
) -> None:
    rows = features(corpus, folder, "发票抬头开错了怎么重开")
    likelihood = rows[:, COLUMN["likelihood"]]
    assert likelihood.sum() == pytest.approx(1.0)
    assert int(np.argmax(likelihood)) == ARTICLES.index("invoice")
    assert likelihood.max() > 0.9


def test_base_margin_is_positive_only_for_the_retrieval_leader(
    corpus: search._Corpus, folder: TextFolder
) -> None:
    rows = features(corpus, folder, "洗衣机底下漏水")
    margin = rows[:, COLUMN["base_margin"]]
    leader = ARTICLES.index("troubleshoot-washer-leak")
    assert margin[leader] > 0
    assert np.all(np.delete(margin, leader) < 0)
    # Every rival trails the leader by exactly as much as the leader leads the runner-up.
    assert -np.delete(margin, leader).max() == pytest.approx(margin[leader])


def test_near_miss_measures_the_resemblance_to_known_unanswered_questions(
    corpus: search._Corpus, folder: TextFolder
) -> None:
    column = COLUMN["near_miss"]
    asked = features(corpus, folder, "发票抬头能写英文吗", NEAR_MISSES)[:, column]
    paraphrase = features(corpus, folder, "发票抬头可以用英文写吗", NEAR_MISSES)[:, column]
    other = features(corpus, folder, "保修期是多久", NEAR_MISSES)[:, column]
    without_probes = features(corpus, folder, "发票抬头能写英文吗")[:, column]
    assert np.all(asked == asked[0])  # a property of the query, the same for every candidate
    assert asked[0] == pytest.approx(1.0)
    assert other[0] < 0.3 < paraphrase[0] < asked[0]
    assert np.all(without_probes == 0.0)


def test_training_near_misses_never_find_themselves_among_the_probes(
    corpus: search._Corpus, folder: TextFolder
) -> None:
    examples = search._training_examples(corpus, folder, NEAR_MISSES)
    near_miss_rows = examples.group == 4
    assert near_miss_rows.any()
    assert np.all(examples.features[near_miss_rows, COLUMN["near_miss"]] < 0.9)
    assert np.all(examples.labels[near_miss_rows] == 0)


def classifier_features(
    corpus: search._Corpus, folder: TextFolder, query: str, classifier: bool = True
) -> np.ndarray:
    everything = np.ones(len(corpus.texts), dtype=bool)
    model = search._corpus_classifier(corpus, everything, ["你好", "谢谢"]) if classifier else None
    index = search._Index(corpus, everything, (), model)
    q = index.query(folder.fold(query))
    columns = [COLUMN[name] for name in ("classifier_margin", "classifier_lead", "classifier_none")]
    return index.features(q, np.arange(len(ARTICLES)), index.retrieval(q))[:, columns]


def test_classifier_lead_is_positive_only_for_the_article_it_picks(
    corpus: search._Corpus, folder: TextFolder
) -> None:
    rows = classifier_features(corpus, folder, "洗衣机洗着洗着地上全是水")
    leader = ARTICLES.index("troubleshoot-washer-leak")
    margin, lead, none = rows[:, 0], rows[:, 1], rows[:, 2]
    assert int(np.argmax(margin)) == leader
    assert lead[leader] > 0 and np.all(np.delete(lead, leader) < 0)
    assert np.all(none == none[0])  # "none" is a property of the query


def test_without_a_classifier_its_features_are_zero(
    corpus: search._Corpus, folder: TextFolder
) -> None:
    assert np.all(classifier_features(corpus, folder, "洗衣机漏水", classifier=False) == 0.0)


def test_a_dropped_article_is_hidden_from_the_classifier_features_too(
    corpus: search._Corpus, folder: TextFolder
) -> None:
    examples = search._training_examples(corpus, folder, NEAR_MISSES)
    lead = examples.features[:, COLUMN["classifier_lead"]]
    gains = []
    for query in np.unique(examples.query[examples.group == 0]):
        asked, dropped = examples.query == query, examples.query == query + 1
        assert np.all(examples.group[dropped] == 1)  # the same question, its article left out
        rivals = asked & (examples.labels == 0)
        # Without the article, its rivals only compete with each other and "none".
        gains.append(lead[dropped].max() - lead[rivals].max())
    assert min(gains) >= -1e-9
    assert max(gains) > 0.1


@pytest.mark.parametrize(
    ("query", "comparison"),
    [
        ("洗衣机滚筒好还是波轮好", True),
        ("这两款热水器哪个更省电", True),
        ("发票和收据有什么区别", True),
        ("退货运费谁出", False),
        ("快递能放驿站吗 还是要本人签收", False),
    ],
)
def test_comparison_marks_buying_advice_questions(
    corpus: search._Corpus, folder: TextFolder, query: str, comparison: bool
) -> None:
    column = features(corpus, folder, query)[:, COLUMN["comparison"]]
    assert np.all(column == float(comparison))
