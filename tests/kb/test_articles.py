"""Knowledge-base article files: parsing, validation and per-file error reporting."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest

from bot.kb import articles
from bot.kb.articles import (
    ARTICLES_DIR,
    SCENARIOS,
    ArticleError,
    content_fingerprint,
    load_articles,
    parse_article,
)
from bot.kb.evaluate import evaluation_questions, leaked

FRONT = """id: {id}
title: {title}
category: return_exchange
scenario: {scenario}
tags: [退货, 运费]
updated: 2026-10-18
version: 2
products: [WM-D100]
answer: 质量问题退货运费由我们承担。
questions:
  - 退货运费谁出
  - 退货要钱吗
"""


def article_text(
    article_id: str,
    title: str = "退货运费说明",
    scenario: str = "new_user_guide",
    body: str = "正文内容。",
) -> str:
    return f"---\n{FRONT.format(id=article_id, title=title, scenario=scenario)}---\n{body}\n"


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_by_file(errors: tuple[ArticleError, ...]) -> dict[str, str]:
    return {Path(error.path).name: error.reason for error in errors}


def test_a_valid_article_is_parsed(tmp_path: Path) -> None:
    text = article_text("return-fee", body="\n**运费**：我们出。\n")
    path = write(tmp_path, "return-fee.md", text)
    article = parse_article(path)
    assert article.id == "return-fee"
    assert article.title == "退货运费说明"
    assert (article.category, article.scenario) == ("return_exchange", "new_user_guide")
    assert article.tags == ("退货", "运费")
    assert article.products == ("WM-D100",)
    assert article.updated == date(2026, 10, 18)
    assert article.version == 2
    assert article.answer == "质量问题退货运费由我们承担。"
    assert article.questions == ("退货运费谁出", "退货要钱吗")
    assert article.body == "**运费**：我们出。"
    assert article.path == str(path)


BROKEN = {
    "bad-yaml.md": ("---\nid: bad-yaml\ntitle: [未闭合\n---\n正文\n", "not valid YAML"),
    "unknown-scenario.md": (
        article_text("unknown-scenario", scenario="after_sales"),
        "unknown scenario 'after_sales'",
    ),
    "wrong-name.md": (article_text("another-id"), "does not match the file name 'wrong-name.md'"),
    "no-body.md": (article_text("no-body", body="   \n\n"), "no body"),
    "no-front-matter.md": ("# 标题\n正文\n", "missing YAML front matter"),
    "not-closed.md": ("---\nid: not-closed\ntitle: 标题\n", "not closed"),
    "list-front.md": ("---\n- a\n- b\n---\n正文\n", "must be a mapping"),
    "no-questions.md": (
        article_text("no-questions").replace("questions:\n  - 退货运费谁出\n  - 退货要钱吗\n", ""),
        "questions",
    ),
    "bad-category.md": (
        article_text("bad-category").replace("return_exchange", "gossip"),
        "unknown category 'gossip'",
    ),
    "extra-field.md": (
        article_text("extra-field").replace("version: 2\n", "version: 2\nauthor: 小王\n"),
        "author",
    ),
    "Bad_ID.md": (article_text("Bad_ID"), "id"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_article_is_reported_with_path_and_reason(tmp_path: Path, name: str) -> None:
    text, reason = BROKEN[name]
    broken = write(tmp_path, name, text)
    good = write(tmp_path, "good-one.md", article_text("good-one"))

    result = load_articles(tmp_path)

    assert [a.id for a in result.articles] == ["good-one"]
    assert result.articles[0].path == str(good)
    assert len(result.errors) == 1
    assert result.errors[0].path == str(broken)
    assert reason in result.errors[0].reason
    with pytest.raises(ValueError, match="."):
        parse_article(broken)


def test_all_broken_articles_are_reported_and_the_valid_ones_load(tmp_path: Path) -> None:
    for name, (text, _) in BROKEN.items():
        write(tmp_path, name, text)
    write(tmp_path, "alpha.md", article_text("alpha"))
    write(tmp_path, "beta.md", article_text("beta", scenario="troubleshooting"))
    (tmp_path / "notes.txt").write_text("not an article", encoding="utf-8")
    (tmp_path / "latin1.md").write_bytes("---\nid: latin1\n---\ncaf\xe9\n".encode("latin-1"))

    result = load_articles(tmp_path)

    assert [a.id for a in result.articles] == ["alpha", "beta"]
    reasons = errors_by_file(result.errors)
    assert set(reasons) == set(BROKEN) | {"latin1.md"}
    for name, (_, reason) in BROKEN.items():
        assert reason in reasons[name]


def test_duplicate_id_is_reported_for_the_second_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # id == file name already makes duplicates impossible within one directory; this checks
    # the safety net behind it by relaxing the file-name rule.
    strict = articles.parse_article
    shadow = tmp_path / "shadow"

    def ignoring_file_name(path: Path):
        copy = write(shadow, "same-id.md", path.read_text(encoding="utf-8"))
        return dataclasses.replace(strict(copy), path=str(path))

    monkeypatch.setattr(articles, "parse_article", ignoring_file_name)
    first = write(tmp_path / "kb", "a-first.md", article_text("same-id"))
    second = write(tmp_path / "kb", "b-second.md", article_text("same-id"))

    result = load_articles(tmp_path / "kb")

    assert [(a.id, a.path) for a in result.articles] == [("same-id", str(first))]
    assert result.errors == (
        ArticleError(str(second), f"duplicate id 'same-id' (first in {first})"),
    )


def test_empty_directory_has_no_articles(tmp_path: Path) -> None:
    result = load_articles(tmp_path)
    assert (result.articles, result.errors) == ((), ())


def test_the_real_articles_are_all_valid() -> None:
    result = load_articles()
    assert result.errors == ()
    assert len(result.articles) >= 40
    ids = [a.id for a in result.articles]
    assert len(ids) == len(set(ids))
    assert {"return-shipping-fee", "invoice", "troubleshoot-ac-not-cooling"} <= set(ids)
    assert {a.scenario for a in result.articles} == set(SCENARIOS)
    assert all(Path(a.path).parent == ARTICLES_DIR for a in result.articles)


def test_no_sample_question_resembles_an_evaluation_question() -> None:
    """The search trains on the articles' sample questions: a near copy of an evaluation
    question there would make the measured figures lie."""
    questions = [q for a in load_articles().articles for q in (a.title, *a.questions)]
    assert leaked(questions, evaluation_questions()) == []


def test_a_copied_evaluation_question_is_caught() -> None:
    question = evaluation_questions()[0]
    assert leaked(["无关的句子", question + "呢"], [question]) == [(question + "呢", question)]


def test_fingerprint_follows_the_content(tmp_path: Path) -> None:
    path = write(tmp_path, "alpha.md", article_text("alpha"))
    synonyms = write(tmp_path / "extra", "synonyms.yml", "退货: [退貨]\n")
    before = content_fingerprint(tmp_path)
    assert content_fingerprint(tmp_path) == before
    with_synonyms = content_fingerprint(tmp_path, (synonyms,))
    assert with_synonyms != before

    path.write_text(article_text("alpha", title="退货运费新说明"), encoding="utf-8")
    assert content_fingerprint(tmp_path) != before

    synonyms.write_text("退货: [退貨, 退掉]\n", encoding="utf-8")
    assert content_fingerprint(tmp_path, (synonyms,)) != with_synonyms
