"""The question classifier: which article a question was written for, or none."""

from __future__ import annotations

import numpy as np
import pytest

from bot.kb import search
from bot.kb.classifier import QuestionClassifier
from bot.kb.search import TextFolder, load_synonyms

QUESTIONS = {
    0: ["发票怎么开", "能开增值税专用发票吗", "发票抬头写错了", "电子发票在哪下载"],
    1: ["退货运费谁出", "退货要我自己付邮费吗", "七天无理由退货运费怎么算", "寄回去的快递费报销吗"],
    2: ["洗衣机漏水怎么办", "洗衣机底下有水", "滚筒洗衣机门封圈漏水", "洗衣服的时候地上全是水"],
}
NONE = ["你好", "谢谢", "今天天气怎么样", "讲个笑话", "你是机器人吗"]


@pytest.fixture(scope="module")
def folder() -> TextFolder:
    return TextFolder(load_synonyms())


@pytest.fixture(scope="module")
def classifier(folder: TextFolder) -> QuestionClassifier:
    texts = [folder.fold(q) for qs in QUESTIONS.values() for q in qs] + NONE
    labels = [a for a, qs in QUESTIONS.items() for _ in qs] + [-1] * len(NONE)
    result = search._question_classifier(texts, labels, len(QUESTIONS))
    assert result is not None
    return result


@pytest.mark.parametrize(
    ("question", "article"),
    [("发票开错了能重开吗", 0), ("退回去的邮费要我出吗", 1), ("洗衣机一洗衣服就往外渗水", 2)],
)
def test_a_paraphrase_is_classified_as_the_article_it_asks_about(
    classifier: QuestionClassifier, folder: TextFolder, question: str, article: int
) -> None:
    margins = classifier.decision([folder.fold(question)])[0]
    assert margins.shape == (len(QUESTIONS) + 1,)
    assert int(np.argmax(margins)) == article


def test_chit_chat_falls_in_the_none_class(
    classifier: QuestionClassifier, folder: TextFolder
) -> None:
    margins = classifier.decision([folder.fold("早上好呀")])[0]
    assert int(np.argmax(margins)) == len(QUESTIONS)  # the last column is "none"


def test_articles_without_training_questions_never_win(folder: TextFolder) -> None:
    texts = [folder.fold(q) for q in QUESTIONS[0] + QUESTIONS[2]]
    labels = [0] * len(QUESTIONS[0]) + [2] * len(QUESTIONS[2])
    classifier = QuestionClassifier(
        (search._char_ngrams, search._content_words), texts, labels, n_articles=3
    )
    margins = classifier.decision([folder.fold("退货运费谁出"), folder.fold("发票怎么开")])
    assert np.all(margins[:, 1] < margins[:, [0, 2]].min(axis=1))  # article 1 had no questions
    assert np.all(margins[:, 3] < margins[:, [0, 2]].min(axis=1))  # nor had "none"
    assert int(np.argmax(margins[1])) == 0
    assert classifier.decision([]).shape == (0, 4)


def test_no_classifier_for_a_single_class_or_a_large_knowledge_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert search._question_classifier(["发票怎么开", "发票抬头"], [0, 0], 1) is None
    monkeypatch.setattr(search, "CLASSIFIER_MAX_ARTICLES", 2)
    assert search._question_classifier(["发票怎么开", "退货运费"], [0, 1], 3) is None
