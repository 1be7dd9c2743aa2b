"""Chinese-aware knowledge-base search.

All text is folded the same way (Traditional → Simplified, full-width → half-width, after-sales
synonyms → the articles' wording) and every article is cut into segments: the title, each
sample question, the tags, and each sentence of the short answer and the body.  A query is
matched in two stages:

1. retrieval, cheap enough for every article: character 1–3-gram TF-IDF cosine to the whole
   article and to the centroid of its title and sample questions, and BM25 over character
   unigrams and bigrams (typos and word splits no segmenter agrees on still overlap);
2. reranking of the best candidates (all of them in a small knowledge base) on match features,
   notably *coverage*: which of the query's words (jieba) occur in the article, weighted by
   IDF, words unknown to the whole knowledge base counting as missing.  That is what tells a
   paraphrase from a near-miss that only shares the product word ("洗衣机能洗羽绒服吗").
   Three more describe the competition and the query itself: a naive-Bayes posterior over the
   candidates (which article the query's terms point to), the lead in retrieval score over the
   best rival, and how closely the query resembles a known unanswered question.  In a
   knowledge base of up to a few hundred articles, a classifier trained on the sample
   questions (``bot.kb.classifier``) adds its margin for the article, its lead over the best
   rival and its margin for "no article".

A sign-constrained logistic regression (``bot.kb.reranker``) turns the features into the
probability that the article answers the query; it is the hit's score, and below the threshold
the answer is "not found" rather than a wrong article.  The regression is retrained at every
build from the articles' own sample questions (positives), chit-chat from the NLU data and the
near-miss questions in ``knowledge_base/unanswerable.yml`` that share an article's words but
are not answered by it (negatives), with the question classifier refitted on each fold without
the questions it is asked, so editing articles never needs manual tuning or a Rasa retrain.
The built index is pickled under ``var/`` keyed by a hash of the articles, the synonyms, the
near-misses and the search code.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pickle
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import jieba
import jieba.posseg
import numpy as np
import scipy.sparse as sp
import yaml
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32

from bot.kb.articles import ARTICLES_DIR, Article, content_fingerprint, load_articles
from bot.kb.classifier import MAX_ARTICLES as CLASSIFIER_MAX_ARTICLES
from bot.kb.classifier import QuestionClassifier
from bot.kb.reranker import Reranker, load_none_queries
from bot.nlu.catalogue import skus_mentioned
from bot.nlu.text import MAX_MESSAGE_CHARS, normalise_text
from bot.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

SYNONYMS_FILE = PROJECT_ROOT / "knowledge_base" / "synonyms.yml"
UNANSWERABLE_FILE = PROJECT_ROOT / "knowledge_base" / "unanswerable.yml"
INDEX_DIR = PROJECT_ROOT / "var" / "kb_index"
INDEX_FORMAT = 6
_CODE_FILES = ("search.py", "reranker.py", "classifier.py")
"""The modules whose code shapes a stored index: any change to them rebuilds it."""

DEFAULT_THRESHOLD = 0.15
"""Minimum reranker probability for a hit.  ``benchmarks/kb_search.py`` prints the trade-off
between answering paraphrases and saying "not found" to questions no article answers; over
the three evaluation sets together (492 answerable, 180 unanswerable questions) 0.15 gives
top-1 0.970, top-3 0.972 and not-found 0.928; 0.1 gives 0.980 / 0.984 / 0.906."""
RUNNER_UP_FLOOR = 0.002
"""Alternatives shown after a good best hit must still score at least this.  The question
classifier makes the scores peaked: after a confident best hit, a related article (the second
candidate offered when the first did not help) often scores only 0.002–0.02."""

BM25_K1 = 1.2
BM25_B = 0.75
RERANK_ALL_UP_TO = 300
"""Knowledge bases up to this size rerank every article; larger ones only the candidates."""
CANDIDATES = 30
"""Per retrieval signal, how many articles reach the reranker in a large knowledge base."""
TRAIN_CANDIDATES = 10
"""Per training query, how many of the best-retrieved articles become labelled examples."""
NB_ALPHA = 0.1
"""Additive smoothing of the naive-Bayes term counts."""
MAX_TRAIN_QUERIES = 800
"""Held-out sample questions used for training (bounds the build time of big KBs)."""

FEATURES: tuple[tuple[str, int], ...] = (
    ("doc_cos", 1),
    ("centroid_cos", 1),
    ("probe_max", 1),
    ("sentence_max", 1),
    ("bm25", 1),
    ("bm25_relative", 1),
    ("word_coverage", 1),
    ("covered_mass", 1),
    ("noun_coverage", 1),
    ("segment_coverage", 1),
    ("uncovered_noun", -1),
    ("unknown_share", -1),
    ("query_words", 0),
    ("likelihood", 1),
    ("base_margin", 1),
    ("near_miss", -1),
    ("classifier_margin", 1),
    ("classifier_lead", 1),
    ("classifier_none", -1),
    ("comparison", -1),
)
"""Reranker inputs in column order, with the sign their weight is allowed to take."""

_WORD = re.compile(r"[\u4e00-\u9fff]+|[a-z0-9]+(?:[-.][a-z0-9]+)*")
_SENTENCE_END = re.compile(r"[。；;！!？?\n]+|\s+\d+[.、)）]\s+|^\d+[.、)）]\s+")
_MARKDOWN = re.compile(r"\[([^\]]*)\]\([^)]*\)|[*#>`|_]+")
_STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 哦 嘛 么 是 我 你 我们 你们 他 她 它 在 有 和 就 都 也 还 要 会 能 "
    "可以 怎么 怎样 什么 如何 一下 这个 那个 请问 请 麻烦 想 问 问下 一个 哈 嗯 啥 咋 "
    "咋办 怎么办 怎么样 为什么 为啥 多少 几 多久 是不是 能不能 可不可以 有没有 行不行 "
    "不 没 没有 给 把 被 让 说 个 这 那 哪 哪里 哪儿 得 地 着 过 又 再 呗 啦 "
    "自己 一直 已经 现在 还是 或者 但是 因为 所以 如果 的话 之后 以后 时候 需要 应该 "
    "可能 比较 一般 好 用 去 来 了吗 么样 您 家 们 "
    "很 太 挺 蛮 特别 非常 十分 有点 有些 有点儿 越来越 超级 极其 相当 格外 实在".split()
)
_LEAD_IN = re.compile(
    r"^(?:(?:你好|您好|hi|hello|在吗|在不在|亲|客服)[\s,，.。!！?？~～]*)*"
    r"(?:(?:我|俺)?(?:就|还)?(?:想|要)?"
    r"(?:问问|问一下|问下|咨询一下|咨询下|咨询|了解一下|了解下|请教一下|请教|打听一下|打听下)"
    r"[\s,，:：]*)?"
)
"""How a message may open before the question ("你好，我想问问积分怎么用"): taken off so the
question is scored on what it asks, however politely it starts."""
_DEGREE_PREFIX = "很太挺蛮"
"""Degree adverbs jieba glues to the word they modify ("很大", "太慢", "挺好用"): the word
counts without them, so "噪音很大" matches an article that says "噪音大"."""
_NOUN_TAGS = ("n", "vn", "eng")
_COMPARISON = re.compile(
    r"哪个(?:更|好|强|划算|省|耐用|实用|适合|合适)|选哪|哪款|哪种(?:更|好)|哪家(?:更|好)|哪个牌子"
    r"|(?:好|强|划算|实用)还是|还是.{1,12}(?:更好|好|划算|省电|耐用)[吗呢啊些]*$"
    r"|有什么区别|有啥区别|什么区别|区别大|对比一下|比较一下"
)
"""Buying-advice comparisons ("侧吸好还是顶吸好", "哪个更省电"): an after-sales article
rarely answers one, so the reranker may only lower a score for it."""
_TITLE, _QUESTION, _TAGS, _ANSWER, _BODY = range(5)
_FIELD_WEIGHT = np.array([3.0, 1.0, 2.0, 1.0, 1.0])
"""BM25 term-frequency weight per segment kind: titles and tags say what an article is about."""
_HASH_SPACE = 2**20


# ---- text folding ---------------------------------------------------------------------


def load_unanswerable(path: Path = UNANSWERABLE_FILE) -> tuple[str, ...]:
    """Questions no article answers (a missing file means none): the scorer's near-miss
    negatives, which teach it "not found" where sharing a product word is not enough."""
    if not path.exists():
        return ()
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return tuple(dict.fromkeys(str(e).strip() for e in entries if str(e).strip()))


def load_synonyms(path: Path = SYNONYMS_FILE) -> dict[str, str]:
    """variant → canonical (both normalised and lower-cased), longest variants first."""
    if not path.exists():
        return {}
    groups = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    mapping: dict[str, str] = {}
    for canonical, variants in groups.items():
        target = normalise_text(str(canonical)).lower()
        for variant in variants or ():
            variant = normalise_text(str(variant)).lower()
            if variant and variant != target:
                mapping[variant] = target
    return dict(sorted(mapping.items(), key=lambda kv: (-len(kv[0]), kv[0])))


class TextFolder:
    """Normalise text and fold synonyms, identically for articles and queries.

    Matching is case-insensitive and takes the longest variant at each position whatever
    order the mapping came in.  A variant that starts or ends with a Latin letter only matches
    as a whole word there, so "sh" (售后) never fires inside "washer".
    """

    def __init__(self, synonyms: dict[str, str]) -> None:
        self._synonyms: dict[str, str] = {}
        for variant, canonical in synonyms.items():
            key = normalise_text(variant).lower()
            if key:
                self._synonyms[key] = normalise_text(canonical).lower()
        self._pattern = re.compile(_trie_pattern(self._synonyms)) if self._synonyms else None

    def fold(self, text: str) -> str:
        text = normalise_text(text).lower()
        text = _LEAD_IN.sub("", text, count=1) or text
        if self._pattern is not None:
            text = self._pattern.sub(lambda m: self._synonyms[m.group(0)], text)
        return text

    def fold_long(self, text: str) -> str:
        """``fold`` for article text, which may exceed the message length cap."""
        pieces = []
        for line in text.splitlines():
            for start in range(0, len(line), MAX_MESSAGE_CHARS):
                pieces.append(self.fold(line[start : start + MAX_MESSAGE_CHARS]))
        return "\n".join(p for p in pieces if p)

    @staticmethod
    def tokens(folded: str) -> list[str]:
        """BM25 terms: characters and character bigrams of Chinese runs, ASCII words."""
        result: list[str] = []
        for run in _WORD.findall(folded):
            if run.isascii():
                result.append(run)
            else:
                result.extend(run)
                result.extend(run[i : i + 2] for i in range(len(run) - 1))
        return result

    @staticmethod
    def words(folded: str) -> dict[str, bool]:
        """Content words (jieba, dictionary only) → whether each is a noun.  Stopwords are
        dropped; nouns matter most, as a question about an object the article never mentions
        is rarely answered by it."""
        result: dict[str, bool] = {}
        for run in _WORD.findall(folded):
            if run.isascii():
                result.setdefault(run, True)
                continue
            for word, noun in _tagged_words(run):
                result.setdefault(word, noun)
        return result


@lru_cache(maxsize=1 << 16)
def _tagged_words(run: str) -> tuple[tuple[str, bool], ...]:
    """(word, is a noun) for a run of Chinese characters, stopwords dropped.  Cached: an index
    build segments every sample question once per training fold."""
    tagged = []
    for pair in jieba.posseg.lcut(run, HMM=False):
        word, noun = pair.word, pair.flag.startswith(_NOUN_TAGS)
        if len(word) > 1 and word[0] in _DEGREE_PREFIX and not noun:
            word = word[1:]
        if word not in _STOPWORDS:
            tagged.append((word, noun))
    return tuple(tagged)


def _is_latin_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()


def _trie_pattern(variants: Iterable[str]) -> str:
    """One regular expression matching the longest variant at each position.

    The variants are merged into a prefix tree, so at each position the engine follows the
    text's own characters instead of trying hundreds of alternatives one by one (five times
    faster on article text).  Deeper branches come before a variant's end, so a longer
    variant wins and backtracking falls back to a shorter one.  Latin letters at a variant's
    start or end only match at a word edge on that side.
    """
    tree: dict = {}
    for variant in variants:
        node = tree
        for char in variant:
            node = node.setdefault(char, {})
        node[""] = {}

    def rest(node: dict, last: str) -> str:
        branches = [re.escape(char) + rest(node[char], char) for char in sorted(node) if char]
        if "" in node:
            branches.append("(?![a-z])" if _is_latin_letter(last) else "")
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    def first(char: str) -> str:
        # The word-edge check comes after the first character, so that every branch starts
        # with a literal: the engine then skips positions no variant can start at.
        literal = re.escape(char)
        return literal + (f"(?<![a-z]{literal})" if _is_latin_letter(char) else "")

    return "|".join(first(char) + rest(tree[char], char) for char in sorted(tree))


def _char_ngrams(folded: str) -> list[str]:
    """Character 1–3-grams of Chinese runs and whole ASCII words (for TF-IDF cosines)."""
    grams: list[str] = []
    for run in _WORD.findall(folded):
        if run.isascii():
            grams.append(run)
            continue
        grams.extend(run)
        grams.extend(run[i : i + 2] for i in range(len(run) - 1))
        grams.extend(run[i : i + 3] for i in range(len(run) - 2))
    return grams


def _content_words(folded: str) -> list[str]:
    """The question classifier's word analyzer (a module function, so the index pickles)."""
    return list(TextFolder.words(folded))


def _question_classifier(
    texts: Sequence[str], labels: Sequence[int], n_articles: int
) -> QuestionClassifier | None:
    """The classifier over folded questions (label -1: no article), if the knowledge base is
    small enough and there is something to tell apart."""
    if n_articles > CLASSIFIER_MAX_ARTICLES or len(set(labels)) < 2:
        return None
    return QuestionClassifier((_char_ngrams, _content_words), texts, labels, n_articles)


def _hasher(analyzer: Callable[[str], list[str]]) -> HashingVectorizer:
    return HashingVectorizer(
        analyzer=analyzer, n_features=_HASH_SPACE, alternate_sign=False, norm=None
    )


_GRAMS = _hasher(_char_ngrams)
_TERMS = _hasher(TextFolder.tokens)


def _hash_column(feature: str) -> int:
    """The column a ``HashingVectorizer`` gives ``feature`` (signed MurmurHash3, seed 0)."""
    return abs(murmurhash3_32(feature, seed=0)) % _HASH_SPACE


def _sentences(text: str) -> list[str]:
    """Answer or body text → sentences (Markdown emphasis, links and list numbers removed)."""
    text = _MARKDOWN.sub(lambda m: m.group(1) or "", text)
    return [s.strip(" ，,：:、") for s in _SENTENCE_END.split(text) if len(s.strip()) >= 2]


@dataclass(frozen=True)
class Hit:
    id: str
    title: str
    score: float
    answer: str
    scenario: str
    category: str = ""


# ---- corpus and index -------------------------------------------------------------------


class _Columns:
    """The hashed columns a corpus actually uses, renumbered densely."""

    def __init__(self, matrix: sp.csr_matrix) -> None:
        self.hashed = np.unique(matrix.indices)

    def compact(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        indices = np.searchsorted(self.hashed, matrix.indices)
        return sp.csr_matrix(
            (matrix.data.astype(np.float32), indices, matrix.indptr),
            shape=(matrix.shape[0], len(self.hashed)),
        )

    def lookup(self, hashed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dense column, known?) for hashed columns; unknown ones get column 0."""
        position = np.searchsorted(self.hashed, hashed)
        if not len(self.hashed):
            return np.zeros(len(hashed), dtype=np.int64), np.zeros(len(hashed), dtype=bool)
        position[position >= len(self.hashed)] = 0
        known = self.hashed[position] == hashed
        return np.where(known, position, 0), known


class _Corpus:
    """Every article cut into folded segments and vectorised once; folds reuse the work."""

    def __init__(self, articles: Sequence[Article], folder: TextFolder) -> None:
        texts: list[str] = []
        owner: list[int] = []
        kinds: list[int] = []
        for index, article in enumerate(articles):
            parts = [(_TITLE, article.title)]
            parts += [(_QUESTION, q) for q in article.questions]
            if article.tags:
                parts.append((_TAGS, " ".join(article.tags)))
            parts += [(_ANSWER, s) for s in _sentences(article.answer)]
            parts += [(_BODY, s) for s in _sentences(article.body)]
            for kind, raw in parts:
                folded = folder.fold_long(raw)
                if folded:
                    texts.append(folded)
                    owner.append(index)
                    kinds.append(kind)
        self.n_articles = len(articles)
        self.texts = texts
        self.owner = np.asarray(owner, dtype=np.int64)
        self.kind = np.asarray(kinds, dtype=np.int64)
        terms = _TERMS.transform(texts).tocsr()
        self.term_columns = _Columns(terms)
        self.terms = self.term_columns.compact(terms)
        grams = _GRAMS.transform(texts).tocsr()
        self.gram_columns = _Columns(grams)
        self.grams = self.gram_columns.compact(grams)


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ matrix)


def _tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    matrix = counts.copy()
    matrix.data = (1.0 + np.log(matrix.data)) * idf[matrix.indices]
    return _row_normalised(matrix)


def _starts(owner: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(owner, np.arange(n + 1))


@dataclass
class _Query:
    folded: str
    terms: np.ndarray
    """Dense term columns of the query's known BM25 terms."""
    unknown_terms: int
    grams: sp.csc_matrix
    """The query's TF-IDF vector over the known n-gram columns (a column vector), normalised
    with the unknown n-grams included so that unmatched text lowers every cosine."""
    hashed_grams: sp.csr_matrix
    """The same vector over every hashed n-gram column (a row), for query-to-query cosines."""
    words: list[str]
    nouns: np.ndarray
    comparison: bool


@dataclass
class _Signals:
    """Retrieval scores of every article for one query."""

    doc_cos: np.ndarray
    centroid_cos: np.ndarray
    bm25: np.ndarray
    likelihood: np.ndarray
    """Per article, the multinomial naive-Bayes posterior that the query's terms came from it."""
    near_miss: float
    """The query's best cosine to a known unanswered question."""
    classifier: np.ndarray
    """The question classifier's margin per article and, last, for "none" (zeros without one)."""

    @property
    def base(self) -> np.ndarray:
        return 0.5 * self.doc_cos + 0.5 * self.bm25


class _Index:
    """Retrieval matrices over the corpus segments selected by ``mask``.

    The reranker is trained on indexes with some sample questions masked out (each becomes a
    query its article no longer contains verbatim) and used on the full index.
    """

    def __init__(
        self,
        corpus: _Corpus,
        mask: np.ndarray,
        near_misses: Sequence[str] = (),
        classifier: QuestionClassifier | None = None,
    ) -> None:
        n = corpus.n_articles
        self.n_articles = n
        self.classifier = classifier
        self.term_columns = corpus.term_columns
        self.gram_columns = corpus.gram_columns
        rows = np.flatnonzero(mask)
        owner, kind = corpus.owner[rows], corpus.kind[rows]
        shape = (n, len(corpus.texts))
        pick = sp.csr_matrix((np.ones(len(rows), np.float32), (owner, rows)), shape=shape)
        weighted = sp.csr_matrix((_FIELD_WEIGHT[kind], (owner, rows)), shape=shape)

        self.segments: list[list[str]] = [[] for _ in range(n)]
        for segment, article in zip(rows, owner, strict=True):
            self.segments[article].append(corpus.texts[segment])
        self.full_text = ["\n".join(parts) for parts in self.segments]
        """Per article, its folded text: word coverage is a substring test on it."""

        # BM25 over terms (weights precomputed per article and term, read by column).
        tf = (weighted @ corpus.terms).tocsr()
        term_df = np.bincount(tf.indices, minlength=tf.shape[1])
        self.term_idf = np.log1p((n - term_df + 0.5) / (term_df + 0.5))
        self.max_idf = math.log1p((n + 0.5) / 0.5)
        length = np.asarray(tf.sum(axis=1)).ravel()
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / max(float(length.mean()), 1e-9))
        row_of = np.repeat(np.arange(n), np.diff(tf.indptr))
        counts = tf.copy()
        tf.data = self.term_idf[tf.indices] * tf.data * (BM25_K1 + 1) / (tf.data + norm[row_of])
        self.bm25 = tf.tocsc()

        # Multinomial naive-Bayes query likelihood over the same terms (field-weighted counts):
        # log P(q|a) = Σ_t log(1 + n_at/α) − |q|·log(N_a + αV) + const, read by column too.
        # Unlike BM25 it is a posterior over articles: "which article do these terms point to".
        self.nb_norm = np.log(length + NB_ALPHA * tf.shape[1])
        counts.data = np.log1p(counts.data / NB_ALPHA)
        self.nb = counts.tocsc()

        # Character n-gram TF-IDF: whole articles, probe centroids, probes, sentences.
        article_grams = (pick @ corpus.grams).tocsr()
        self.gram_df = np.bincount(article_grams.indices, minlength=article_grams.shape[1])
        self.gram_idf = np.log((1.0 + n) / (1.0 + self.gram_df)) + 1.0
        self.docs = _tfidf(article_grams, self.gram_idf).tocsc()
        is_probe = (kind == _TITLE) | (kind == _QUESTION)
        self.probes = _tfidf(corpus.grams[rows[is_probe]], self.gram_idf)
        self.probe_start = _starts(owner[is_probe], n)
        self.sentences = _tfidf(corpus.grams[rows[~is_probe]], self.gram_idf)
        self.sentence_start = _starts(owner[~is_probe], n)
        probe_owner = owner[is_probe]
        centroid = sp.csr_matrix(
            (np.ones(len(probe_owner)), (probe_owner, np.arange(len(probe_owner)))),
            shape=(n, len(probe_owner)),
        )
        self.centroids = _row_normalised((centroid @ self.probes).tocsr()).tocsc()
        hashed = self._gram_vectors(list(near_misses))[1]
        self.near_miss_columns = _Columns(hashed)
        self.near_misses = self.near_miss_columns.compact(hashed)

    def _gram_vectors(self, folded: list[str]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Normalised TF-IDF rows, over the known n-gram columns and over the whole hashed
        space.  N-grams no article contains get the largest IDF and count in the norm, so
        they lower every cosine with an article but still match between two queries (what
        sets a near-miss apart is often exactly the word no article uses)."""
        if not folded:
            return sp.csr_matrix((0, len(self.gram_idf))), sp.csr_matrix((0, _HASH_SPACE))
        grams = _GRAMS.transform(folded).tocsr()
        columns, known = self.gram_columns.lookup(grams.indices)
        idf = np.where(known, self.gram_idf[columns], math.log(1.0 + self.n_articles) + 1)
        grams.data = (1.0 + np.log(grams.data)) * idf
        row_of = np.repeat(np.arange(len(folded)), np.diff(grams.indptr))
        norms = np.sqrt(np.bincount(row_of, grams.data**2, minlength=len(folded)))
        grams.data /= np.where(norms > 0, norms, 1.0)[row_of]
        known_rows = sp.csr_matrix(
            (grams.data[known], (row_of[known], columns[known])),
            shape=(len(folded), len(self.gram_idf)),
        )
        return known_rows, grams

    # -- query side --------------------------------------------------------------------

    def query(self, folded: str) -> _Query:
        hashed_terms = np.unique(_TERMS.transform([folded]).indices)
        terms, known = self.term_columns.lookup(hashed_terms)
        vector, hashed = self._gram_vectors([folded])
        words = TextFolder.words(folded)
        return _Query(
            folded,
            terms[known],
            int((~known).sum()),
            vector.T.tocsc(),
            hashed,
            list(words),
            np.fromiter(words.values(), dtype=bool, count=len(words)),
            bool(_COMPARISON.search(folded)),
        )

    def retrieval(self, q: _Query) -> _Signals:
        columns = q.grams.indices
        values = q.grams.data
        doc_cos = self.docs[:, columns] @ values
        centroid_cos = self.centroids[:, columns] @ values
        ceiling = (self.term_idf[q.terms].sum() + q.unknown_terms * self.max_idf) * (BM25_K1 + 1)
        if len(q.terms) and ceiling > 0:
            bm25 = np.asarray(self.bm25[:, q.terms].sum(axis=1)).ravel() / ceiling
        else:
            bm25 = np.zeros(self.n_articles)
        nb = np.asarray(self.nb[:, q.terms].sum(axis=1)).ravel() - len(q.terms) * self.nb_norm
        nb = np.exp(nb - nb.max())
        near_miss = 0.0
        if self.near_misses.shape[0]:
            row = q.hashed_grams
            columns, known = self.near_miss_columns.lookup(row.indices)
            vector = np.zeros(self.near_misses.shape[1])
            vector[columns[known]] = row.data[known]
            near_miss = float((self.near_misses @ vector).max())
        if self.classifier is not None:
            classifier = self.classifier.decision([q.folded])[0].astype(float)
        else:
            classifier = np.zeros(self.n_articles + 1)
        return _Signals(
            np.asarray(doc_cos).ravel(),
            np.asarray(centroid_cos).ravel(),
            bm25,
            nb / nb.sum(),
            near_miss,
            classifier,
        )

    def candidates(self, signals: _Signals) -> np.ndarray:
        n = self.n_articles
        if n <= RERANK_ALL_UP_TO:
            return np.arange(n)
        picked: set[int] = set()
        for score in (signals.base, signals.doc_cos, signals.bm25, signals.centroid_cos):
            picked.update(np.argpartition(-score, CANDIDATES)[:CANDIDATES].tolist())
        return np.fromiter(sorted(picked), dtype=np.int64)

    def features(self, q: _Query, cands: np.ndarray, signals: _Signals) -> np.ndarray:
        """One row of ``FEATURES`` per candidate.  ``bm25_relative``, ``likelihood`` (the
        naive-Bayes posterior renormalised over the candidates) and ``base_margin`` (the lead
        in retrieval score over the best *other* candidate, negative for all but the leader)
        describe the competition between candidates, so pass the set that actually competes:
        a training query whose article is left out then looks like a question no article
        answers, with its mass spread over the rivals."""
        m = len(cands)
        out = np.zeros((m, len(FEATURES)))
        if not m:
            return out
        bm25 = signals.bm25[cands]
        out[:, 0] = signals.doc_cos[cands]
        out[:, 1] = signals.centroid_cos[cands]
        out[:, 2] = self._best_segment(self.probes, self.probe_start, cands, q)
        out[:, 3] = self._best_segment(self.sentences, self.sentence_start, cands, q)
        out[:, 4] = bm25
        out[:, 5] = bm25 / max(float(bm25.max()), 1e-9)
        out[:, 6:12] = self._coverage(q, cands)
        out[:, 12] = math.log1p(len(q.words))
        likelihood = signals.likelihood[cands]
        out[:, 13] = likelihood / max(float(likelihood.sum()), 1e-300)
        base = signals.base[cands]
        order = np.argsort(-base)
        rival = np.full(m, base[order[0]])
        if m > 1:
            rival[order[0]] = base[order[1]]
        out[:, 14] = base - rival
        out[:, 15] = signals.near_miss
        margins = signals.classifier[:-1]
        if np.any(margins):
            # The lead over the best rival among *all* articles and "none", not only the
            # candidates: the classifier knows the article a question was written for.
            none = signals.classifier[-1]
            first = int(np.argmax(margins))
            runner_up = np.delete(margins, first).max(initial=none)
            rival = np.where(cands == first, runner_up, margins[first])
            out[:, 16] = margins[cands]
            out[:, 17] = margins[cands] - np.maximum(rival, none)
            out[:, 18] = none
        out[:, 19] = float(q.comparison)
        return out

    @staticmethod
    def _best_segment(
        matrix: sp.csr_matrix, starts: np.ndarray, cands: np.ndarray, q: _Query
    ) -> np.ndarray:
        """Per candidate, the best cosine between the query and one of its segments."""
        lo, hi = starts[cands], starts[cands + 1]
        if len(cands) == len(starts) - 1 and np.all(cands[1:] > cands[:-1]):
            block = matrix  # every article, in order: no row gathering needed
        else:
            block = matrix[np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])]
        cosine = np.append(np.asarray((block @ q.grams).todense()).ravel(), 0.0)
        sizes = hi - lo
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        best = np.maximum.reduceat(cosine, offsets)
        return np.where(sizes > 0, best, 0.0)

    def _word_df(self, word: str) -> int:
        """Articles containing ``word``: exact up to three characters (it is one of the
        hashed n-grams), else the rarest of its trigrams (an upper bound)."""
        if word.isascii() or len(word) <= 3:
            pieces = [word]
        else:
            pieces = [word[i : i + 3] for i in range(len(word) - 2)]
        columns, known = self.gram_columns.lookup(np.array([_hash_column(p) for p in pieces]))
        return int(np.where(known, self.gram_df[columns], 0).min())

    def _coverage(self, q: _Query, cands: np.ndarray) -> np.ndarray:
        """Columns: the IDF-weighted share of the query's words in the article, their summed
        IDF (in units of the largest), the same share among nouns and within the article's
        best single segment (a paraphrase's words cluster in the sentence that answers it,
        a near-miss's are scattered), the largest uncovered noun IDF, and the share of the
        query that no article contains."""
        m = len(cands)
        out = np.zeros((m, 6))
        if not q.words:
            out[:, 2] = 1.0
            return out
        n = self.n_articles
        df = np.array([self._word_df(w) for w in q.words])
        weights = np.log1p((n - df + 0.5) / (df + 0.5))
        total = weights.sum()
        found = np.array([[w in self.full_text[a] for w in q.words] for a in cands], dtype=float)
        nouns = np.where(q.nouns, weights, 0.0)
        out[:, 0] = found @ weights / total
        out[:, 1] = found @ weights / self.max_idf
        out[:, 2] = found @ nouns / nouns.sum() if nouns.sum() > 0 else 1.0
        for i, a in enumerate(cands):
            hits = zip(q.words, weights, found[i], strict=True)
            present = [(w, weight) for w, weight, hit in hits if hit]
            if present:
                out[i, 3] = max(
                    sum(weight for w, weight in present if w in segment)
                    for segment in self.segments[a]
                )
        out[:, 3] /= total
        out[:, 4] = ((1.0 - found) * nouns).max(axis=1) / self.max_idf
        out[:, 5] = weights[df == 0].sum() / total
        return out


# ---- training -------------------------------------------------------------------------


@dataclass
class _Examples:
    """Reranker training rows; ``query`` numbers the query each row came from and ``group``
    tells how it was made: 0 held-out question, 1 the same without its article, 2 chit-chat,
    3 a question the index contains verbatim, 4 a near-miss no article answers."""

    features: np.ndarray
    labels: np.ndarray
    query: np.ndarray
    group: np.ndarray


def _held_out_questions(corpus: _Corpus, rng: np.random.Generator) -> list[list[int]]:
    """Per fold, the question segments it hides: one of each chosen article's questions
    (never its only one), ``MAX_TRAIN_QUERIES`` over all folds."""
    by_article: dict[int, list[int]] = {}
    for segment in np.flatnonzero(corpus.kind == _QUESTION):
        by_article.setdefault(int(corpus.owner[segment]), []).append(int(segment))
    eligible = [segments for segments in by_article.values() if len(segments) > 1]
    if not eligible:
        return []
    slots = max(len(segments) for segments in eligible)
    folds = max(1, min(slots, math.ceil(MAX_TRAIN_QUERIES / len(eligible))))
    per_fold = MAX_TRAIN_QUERIES // folds
    held: list[list[int]] = []
    for fold in range(folds):
        pool = [segments[fold] for segments in eligible if fold < len(segments)]
        if len(pool) > per_fold:
            pool = [int(s) for s in rng.choice(pool, per_fold, replace=False)]
        if pool:
            held.append(sorted(pool))
    return held


def _corpus_classifier(
    corpus: _Corpus, mask: np.ndarray, none_texts: Sequence[str]
) -> QuestionClassifier | None:
    """The question classifier over the titles and sample questions ``mask`` keeps."""
    probes = np.flatnonzero(mask & (corpus.kind <= _QUESTION))
    texts = [corpus.texts[i] for i in probes] + list(none_texts)
    labels = corpus.owner[probes].tolist() + [-1] * len(none_texts)
    return _question_classifier(texts, labels, corpus.n_articles)


def _folded_queries(folder: TextFolder, texts: Sequence[str]) -> list[str]:
    folded = (folder.fold(t[:MAX_MESSAGE_CHARS]) for t in texts)
    return [t for t in dict.fromkeys(folded) if _WORD.search(t)]


def _training_examples(
    corpus: _Corpus, folder: TextFolder, unanswerable: Sequence[str] = ()
) -> _Examples:
    """Labelled rows from held-out and seen sample questions, out-of-scope chit-chat and
    near-miss questions no article answers."""
    rng = np.random.default_rng(0)
    none_queries = _folded_queries(folder, load_none_queries())
    near_misses = _folded_queries(folder, unanswerable)
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    queries: list[np.ndarray] = []
    groups: list[np.ndarray] = []
    last: list = [None, None]

    def add(index: _Index, text: str, group: int, owner: int = -1, drop: bool = False) -> None:
        if last[0] is not index or last[1] != text:  # held-out questions are asked twice
            q = index.query(text)
            last[:] = [index, text, q, index.retrieval(q)]
        q, signals = last[2], last[3]
        order = np.argsort(-signals.base, kind="stable")
        if drop:
            order = order[order != owner]
            # As if the article did not exist: the classifier must not point at it either.
            margins = signals.classifier.copy()
            margins[owner] = margins.min() - 1.0
            signals = dataclasses.replace(signals, classifier=margins)
        top = order[:TRAIN_CANDIDATES]
        if owner >= 0 and not drop and owner not in top:
            top = np.append(top[:-1], owner)
        rows.append(index.features(q, top, signals))
        labels.append((top == owner).astype(int))
        queries.append(np.full(len(top), len(rows)))
        groups.append(np.full(len(top), group))

    held_out = _held_out_questions(corpus, rng) or [[]]
    for number, held in enumerate(held_out):
        mask = np.ones(len(corpus.texts), dtype=bool)
        mask[held] = False
        # The fold's own near-miss queries are hidden from the near-miss probes, as its
        # sample questions are from the index: "near_miss" must generalise, not recall.
        asked = near_misses[number :: len(held_out)]
        chat = none_queries[number :: len(held_out)]
        unasked = [t for t in near_misses if t not in set(asked)]
        hidden = set(chat)
        classifier = _corpus_classifier(
            corpus, mask, [t for t in none_queries if t not in hidden] + unasked
        )
        index = _Index(corpus, mask, unasked, classifier)
        for segment in held:
            owner = int(corpus.owner[segment])
            add(index, corpus.texts[segment], 0, owner)
            add(index, corpus.texts[segment], 1, owner, drop=True)
        for text in chat:
            add(index, text, 2)
        for text in asked:
            add(index, text, 4)
        # Verbatim questions and titles are asked too; without them nothing tells the model
        # that an exact match is a sure hit (held-out questions never match exactly).
        seen = np.flatnonzero(mask & (corpus.kind <= _QUESTION))
        share = min(1.0, len(held) / max(len(seen), 1) / 2)
        for segment in seen:
            if rng.random() < share:
                add(index, corpus.texts[segment], 3, int(corpus.owner[segment]))
    return _Examples(
        np.vstack(rows), np.concatenate(labels), np.concatenate(queries), np.concatenate(groups)
    )


def _train_reranker(
    corpus: _Corpus, folder: TextFolder, unanswerable: Sequence[str] = ()
) -> Reranker:
    examples = _training_examples(corpus, folder, unanswerable)
    features, target = examples.features, examples.labels
    if target.min() == target.max():  # e.g. a single article: fall back to the cosine
        target = (features[:, 0] >= np.median(features[:, 0])).astype(int)
    return Reranker(tuple(sign for _, sign in FEATURES)).fit(features, target)


# ---- the knowledge base ---------------------------------------------------------------


class KnowledgeBase:
    """An index over the articles; ``search`` returns ranked hits above the threshold."""

    def __init__(
        self,
        articles: tuple[Article, ...],
        synonyms: dict[str, str] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        unanswerable: Sequence[str] = (),
    ) -> None:
        if not articles:
            raise ValueError("the knowledge base has no valid articles")
        started = time.perf_counter()
        self.articles = tuple(articles)
        self.threshold = threshold
        self.folder = TextFolder(synonyms or {})
        self._ids = {a.id: i for i, a in enumerate(self.articles)}
        corpus = _Corpus(self.articles, self.folder)
        self._reranker = _train_reranker(corpus, self.folder, unanswerable)
        everything = np.ones(len(corpus.texts), dtype=bool)
        near_misses = _folded_queries(self.folder, unanswerable)
        none_texts = _folded_queries(self.folder, load_none_queries()) + near_misses
        self._index = _Index(
            corpus, everything, near_misses, _corpus_classifier(corpus, everything, none_texts)
        )
        log.info(
            "knowledge base: %d articles indexed in %.1f s",
            len(self.articles),
            time.perf_counter() - started,
        )

    def scores(self, query: str) -> np.ndarray:
        """Probability (0..1) that each article answers ``query``; 0 if not a candidate."""
        result = np.zeros(len(self.articles))
        folded = self.folder.fold(query)
        if not _WORD.search(folded):
            return result
        index = self._index
        q = index.query(folded)
        signals = index.retrieval(q)
        cands = index.candidates(signals)
        result[cands] = self._reranker.predict(index.features(q, cands, signals))
        named = skus_mentioned(query)
        if named:
            # An article about other products than the one named is never its answer
            # ("空调显示E5" is not about the washing machine's codes).
            result[~self._about_any(named)] = 0.0
        return result

    def _about_any(self, skus: frozenset[str]) -> np.ndarray:
        """Which articles may answer a question naming ``skus``: those about one of them and
        those about no single product (policies that list several, like installation)."""
        allowed = self._product_free.copy()
        for sku in skus:
            allowed |= self._by_product.get(sku, False)
        return allowed

    @cached_property
    def _product_free(self) -> np.ndarray:
        return np.array([len(article.products) != 1 for article in self.articles], dtype=bool)

    @cached_property
    def _by_product(self) -> dict[str, np.ndarray]:
        skus = {sku for article in self.articles for sku in article.products}
        return {
            sku: np.array([sku in article.products for article in self.articles], dtype=bool)
            for sku in skus
        }

    def search(self, query: str, k: int = 3, threshold: float | None = None) -> list[Hit]:
        """Top ``k`` articles, or [] ("not found") when even the best is below the threshold.

        "Not found" is decided on the best article: once it is good enough, the runners-up
        are shown too (above a small floor) as alternatives.
        """
        limit = self.threshold if threshold is None else threshold
        if k <= 0:
            return []
        scores = self.scores(query)
        top = np.argsort(-scores, kind="stable")[:k]
        if not top.size or scores[top[0]] <= 0 or scores[top[0]] < limit:
            return []
        return [
            Hit(a.id, a.title, round(float(scores[i]), 4), a.answer, a.scenario, a.category)
            for i in top
            if scores[i] >= RUNNER_UP_FLOOR
            for a in (self.articles[i],)
        ]

    def article(self, article_id: str) -> Article | None:
        index = self._ids.get(article_id)
        return None if index is None else self.articles[index]


# ---- building, storing and caching ------------------------------------------------------


def build_knowledge_base(
    directory: Path = ARTICLES_DIR,
    synonyms_file: Path = SYNONYMS_FILE,
    unanswerable_file: Path = UNANSWERABLE_FILE,
) -> KnowledgeBase:
    result = load_articles(directory)
    for error in result.errors:
        log.error("knowledge base article skipped: %s: %s", error.path, error.reason)
    return KnowledgeBase(
        result.articles,
        load_synonyms(synonyms_file),
        unanswerable=load_unanswerable(unanswerable_file),
    )


def load_knowledge_base(
    directory: Path = ARTICLES_DIR,
    synonyms_file: Path = SYNONYMS_FILE,
    index_dir: Path = INDEX_DIR,
    unanswerable_file: Path = UNANSWERABLE_FILE,
) -> KnowledgeBase:
    """The stored index if it matches the articles on disk, otherwise a fresh build (saved).

    The key covers the articles, the synonyms, the near-miss questions and the search code
    itself, so an index built by older code or data is never loaded.
    """
    code = tuple(Path(__file__).with_name(name) for name in _CODE_FILES)
    extra = code + tuple(p for p in (synonyms_file, unanswerable_file) if p.exists())
    key = f"{INDEX_FORMAT}-{content_fingerprint(directory, extra)[:20]}"
    stored = index_dir / f"kb-{key}.pickle"
    if stored.exists():
        try:
            with stored.open("rb") as handle:
                return pickle.load(handle)
        except (pickle.UnpicklingError, EOFError, AttributeError) as exc:
            log.warning("stored KB index %s unreadable (%s); rebuilding", stored, exc)
    kb = build_knowledge_base(directory, synonyms_file, unanswerable_file)
    index_dir.mkdir(parents=True, exist_ok=True)
    for old in index_dir.glob("kb-*.pickle"):
        old.unlink(missing_ok=True)
    # A private temporary file: two processes rebuilding at once never mix their bytes.
    handle, tmp = tempfile.mkstemp(dir=index_dir, suffix=".tmp")
    with os.fdopen(handle, "wb") as out:
        pickle.dump(kb, out, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, stored)
    return kb


class KnowledgeBaseCache:
    """Reload the knowledge base when its files change (checked at most every few seconds).

    Only the first load blocks.  After an edit the index is rebuilt on a background thread
    (about 14 s for the shipped articles) while questions are still answered from the
    previous index, which is swapped out once the new one is ready; a build that fails is
    logged and leaves the previous index in place.
    """

    def __init__(
        self,
        directory: Path = ARTICLES_DIR,
        check_every: float = 5.0,
        index_dir: Path = INDEX_DIR,
    ) -> None:
        self._directory = directory
        self._index_dir = index_dir
        self._check_every = check_every
        self._checked_at = float("-inf")
        self._stamp: tuple = ()
        self._kb: KnowledgeBase | None = None
        self._lock = threading.Lock()
        self._rebuild: threading.Thread | None = None
        self._failed_stamp: tuple | None = None

    def _file_stamp(self) -> tuple:
        files = sorted(self._directory.glob("*.md"))
        files += [p for p in (SYNONYMS_FILE, UNANSWERABLE_FILE) if p.exists()]
        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)

    def _load(self) -> KnowledgeBase:
        return load_knowledge_base(self._directory, index_dir=self._index_dir)

    def _rebuild_in_background(self, stamp: tuple) -> None:
        try:
            kb = self._load()
        except Exception:
            log.exception("knowledge base rebuild failed; still answering from the old index")
            with self._lock:
                self._failed_stamp = stamp  # retried only once the files change again
            return
        with self._lock:
            self._kb, self._stamp = kb, stamp

    def get(self) -> KnowledgeBase:
        with self._lock:
            now = time.monotonic()
            if self._kb is not None and now - self._checked_at < self._check_every:
                return self._kb
            self._checked_at = now
            stamp = self._file_stamp()
            if self._kb is None:
                self._kb, self._stamp = self._load(), stamp
            elif stamp not in (self._stamp, self._failed_stamp) and not self.rebuilding:
                self._rebuild = threading.Thread(
                    target=self._rebuild_in_background,
                    args=(stamp,),
                    name="kb-rebuild",
                    daemon=True,
                )
                self._rebuild.start()
            return self._kb

    @property
    def rebuilding(self) -> bool:
        return self._rebuild is not None and self._rebuild.is_alive()

    def wait_for_rebuild(self, timeout: float | None = None) -> bool:
        """Block until a background rebuild (if any) has finished; False on timeout."""
        thread = self._rebuild
        if thread is not None:
            thread.join(timeout)
        return not self.rebuilding


@lru_cache(maxsize=1)
def shared_cache() -> KnowledgeBaseCache:
    return KnowledgeBaseCache()
