"""Chinese-aware knowledge-base search.

All text is folded the same way (Traditional → Simplified, full-width → half-width,
after-sales synonyms → the articles' wording) and cut into segments: the title, each sample
question, the tags, the short answer and each body sentence.  For a query every article gets
cheap retrieval signals:

* BM25 over character bigrams (plus ASCII words), weighted by field, normalised by the
  query's own maximum so that scores mean the same for short and long queries;
* character 1–3-gram TF-IDF cosine to the title and sample questions (close paraphrases of
  what customers ask), to the body sentences (questions answered only in the body) and to
  the whole article.

The best candidates then get match features – notably *coverage*, the IDF-weighted share of
the query's words that occur in the article, with words unknown to the whole knowledge base
counted as missing – and a small logistic regression (``bot.kb.reranker``) turns them into
the probability that the article answers the query.  That probability is the hit's score;
below the threshold the answer is "not found" rather than a wrong article.  The regression
is retrained from the articles' own sample questions at every build, so new articles need
no manual tuning.  The built index is pickled under ``var/`` keyed by a hash of the articles
and synonyms, so editing an article rebuilds it and never needs a Rasa retrain.
"""

from __future__ import annotations

import logging
import pickle
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jieba
import jieba.posseg
import numpy as np
import scipy.sparse as sp
import yaml
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.utils import murmurhash3_32

from bot.kb.articles import ARTICLES_DIR, Article, content_fingerprint, load_articles
from bot.kb.reranker import Reranker, load_none_queries
from bot.nlu.text import MAX_MESSAGE_CHARS, normalise_text
from bot.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

SYNONYMS_FILE = PROJECT_ROOT / "knowledge_base" / "synonyms.yml"
INDEX_DIR = PROJECT_ROOT / "var" / "kb_index"
INDEX_FORMAT = 2

DEFAULT_THRESHOLD = 0.50
"""Minimum reranker probability for a hit."""

BM25_K1 = 1.2
BM25_B = 0.75
RERANK_ALL_UP_TO = 300
"""Knowledge bases up to this size rerank every article; larger ones only the candidates."""
CANDIDATES = 30
"""Per retrieval signal, how many articles reach the (more expensive) reranker."""
TRAIN_CANDIDATES = 10
"""Per training query, how many top candidates become labelled examples."""
MAX_TRAIN_QUERIES = 1200
"""Held-out sample questions used to train the reranker (bounds build time on big KBs)."""

_WORD = re.compile(r"[\u4e00-\u9fff]+|[a-z0-9]+(?:[-.][a-z0-9]+)*")
_SENTENCE_END = re.compile(r"[。；;！!？?\n]+|\s+\d+[.、)）]\s+|^\d+[.、)）]\s+")
_MARKDOWN = re.compile(r"[*#>`|_]+|\[([^\]]*)\]\([^)]*\)")
_STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 哦 嘛 么 是 我 你 我们 你们 他 她 它 在 有 和 就 都 也 还 要 会 能 "
    "可以 怎么 怎样 什么 如何 一下 这个 那个 请问 请 麻烦 想 问 问下 一个 哈 嗯 吗 啥 咋 "
    "咋办 怎么办 怎么样 为什么 为啥 多少 几 多久 是不是 能不能 可不可以 有没有 行不行 "
    "不 没 没有 给 把 被 让 说 个 这 那 哪 哪里 哪儿 得 地 着 过 又 再 吗 呗 啦 么 "
    "自己 一直 已经 现在 还是 或者 但是 因为 所以 如果 的话 之后 以后 时候 需要 应该 "
    "可能 比较 一般 好 用 去 来 了吗 么样".split()
)
_NOUN_TAGS = ("n", "vn", "eng")
_KINDS = ("title", "question", "tags", "answer", "body")
_FIELD_WEIGHT = np.array([3.0, 1.0, 2.0, 1.0, 1.0])
"""BM25 term-frequency weight of each segment kind (titles and tags say what it is about)."""
_TITLE, _QUESTION, _TAGS, _ANSWER, _BODY = range(len(_KINDS))

FEATURES = (
    "probe_max",
    "probe_top2",
    "sentence_max",
    "doc_cos",
    "centroid_cos",
    "bm25",
    "bm25_relative",
    "word_coverage",
    "word_coverage_probes",
    "bigram_coverage",
    "uncovered_max",
    "base_margin",
    "base_rank",
    "query_words",
    "noun_coverage",
    "uncovered_noun_max",
    "unknown_share",
    "covered_mass",
    "covered_specific",
    "bm25_raw",
)
"""Reranker inputs, in column order (see ``_Index.features``)."""


# ---- text folding ---------------------------------------------------------------------


def load_synonyms(path: Path = SYNONYMS_FILE) -> dict[str, str]:
    """variant → canonical, longest variants first so replacements never overlap badly."""
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

    Matching is case-insensitive (text and variants are lower-cased) and prefers the
    longest variant at each position, whatever order the mapping was given in.
    """

    def __init__(self, synonyms: dict[str, str]) -> None:
        folded: dict[str, str] = {}
        for variant, canonical in synonyms.items():
            key = normalise_text(variant).lower()
            if key:
                folded[key] = str(canonical).lower()
        self._synonyms = folded
        ordered = sorted(folded, key=lambda v: (-len(v), v))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def fold(self, text: str) -> str:
        text = normalise_text(text).lower()
        if self._pattern is not None:
            text = self._pattern.sub(lambda m: self._synonyms[m.group(0)], text)
        return text

    def fold_long(self, text: str) -> str:
        """``fold`` for article text, which may exceed the message length cap."""
        pieces = []
        for line in text.splitlines():
            while line:
                pieces.append(self.fold(line[:MAX_MESSAGE_CHARS]))
                line = line[MAX_MESSAGE_CHARS:]
        return "\n".join(p for p in pieces if p)

    @staticmethod
    def tokens(folded: str) -> list[str]:
        """Index terms: character bigrams of Chinese runs (a lone character as itself) and
        ASCII words; robust to typos and to word splits no segmenter agrees on."""
        result: list[str] = []
        for run in _WORD.findall(folded):
            if run.isascii() or len(run) == 1:
                result.append(run)
            else:
                result.extend(run[i : i + 2] for i in range(len(run) - 1))
        return result

    @staticmethod
    def words(folded: str) -> dict[str, bool]:
        """Content words of a query (jieba, dictionary only) → whether each is a noun;
        stopwords and punctuation dropped.  Nouns matter most for coverage: a question about
        an object the article never mentions is rarely answered by it."""
        result: dict[str, bool] = {}
        for run in _WORD.findall(folded):
            if run.isascii():
                result.setdefault(run, True)
                continue
            for pair in jieba.posseg.lcut(run, HMM=False):
                if pair.word not in _STOPWORDS:
                    result.setdefault(pair.word, pair.flag.startswith(_NOUN_TAGS))
        return result


def _char_ngrams(folded: str) -> list[str]:
    """Character 1–3-grams inside Chinese runs, whole ASCII words (for the TF-IDF cosine)."""
    grams: list[str] = []
    for run in _WORD.findall(folded):
        if run.isascii():
            grams.append(run)
            continue
        grams.extend(run)
        grams.extend(run[i : i + 2] for i in range(len(run) - 1))
        grams.extend(run[i : i + 3] for i in range(len(run) - 2))
    return grams


_GRAM_SPACE = 2**20
_HASHER = HashingVectorizer(
    analyzer=_char_ngrams, n_features=_GRAM_SPACE, alternate_sign=False, norm=None
)


def _gram_column(gram: str) -> int:
    """The column ``_HASHER`` puts ``gram`` in (sklearn's signed MurmurHash3, seed 0)."""
    return abs(murmurhash3_32(gram, seed=0)) % _GRAM_SPACE


def _sentences(text: str) -> list[str]:
    """Body text → sentences (Markdown emphasis, links and list numbers removed)."""
    text = _MARKDOWN.sub(lambda m: m.group(1) or "", text)
    return [s.strip(" ，,：:、") for s in _SENTENCE_END.split(text) if len(s.strip()) >= 2]


# ---- corpus and index -------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    id: str
    title: str
    score: float
    answer: str
    scenario: str


class _Corpus:
    """Every article cut into folded segments, tokenised once (folds reuse the work)."""

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
                if not folded:
                    continue
                texts.append(folded)
                owner.append(index)
                kinds.append(kind)
        self.texts = texts
        self.owner = np.asarray(owner, dtype=np.int64)
        self.kind = np.asarray(kinds, dtype=np.int64)
        self.n_articles = len(articles)
        self.vocabulary: dict[str, int] = {}
        self.terms = self._term_matrix(texts)
        self.grams = _HASHER.transform(texts).tocsr()

    def _term_matrix(self, texts: Iterable[str]) -> sp.csr_matrix:
        vocab = self.vocabulary
        indptr = [0]
        indices: list[int] = []
        for text in texts:
            for token in TextFolder.tokens(text):
                indices.append(vocab.setdefault(token, len(vocab)))
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float64)
        matrix = sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, len(vocab)))
        matrix.sum_duplicates()
        return matrix


def _l2_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ matrix)


def _sublinear(matrix: sp.csr_matrix) -> sp.csr_matrix:
    matrix = matrix.copy()
    matrix.data = 1.0 + np.log(matrix.data)
    return matrix


@dataclass
class _Query:
    folded: str
    term_ids: np.ndarray
    unknown_terms: int
    words: list[str]
    nouns: np.ndarray
    grams: sp.csr_matrix


class _Index:
    """Retrieval matrices over the corpus segments selected by ``mask``.

    The reranker is trained on indexes with some sample questions masked out (so each one is
    a query its article no longer contains verbatim) and used on the full index.
    """

    def __init__(self, corpus: _Corpus, mask: np.ndarray) -> None:
        n = corpus.n_articles
        self.n_articles = n
        rows = np.flatnonzero(mask)
        owner, kind = corpus.owner[rows], corpus.kind[rows]
        pick = sp.csr_matrix((np.ones(len(rows)), (owner, rows)), shape=(n, len(corpus.texts)))
        weighted = sp.csr_matrix((_FIELD_WEIGHT[kind], (owner, rows)), shape=(n, len(corpus.texts)))

        # BM25 over terms, and which terms each article (or its probes) contains.
        counts = (pick @ corpus.terms).tocsr()
        self.present = counts.astype(bool).tocsc()
        full_text: list[list[str]] = [[] for _ in range(n)]
        probe_text: list[list[str]] = [[] for _ in range(n)]
        for seg, article, segment_kind in zip(rows, owner, kind):
            full_text[article].append(corpus.texts[seg])
            if segment_kind in (_TITLE, _QUESTION, _TAGS):
                probe_text[article].append(corpus.texts[seg])
        self.full_text = ["\n".join(t) for t in full_text]
        self.probe_text = ["\n".join(t) for t in probe_text]
        df = np.asarray(self.present.sum(axis=0)).ravel()
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5))
        self.max_idf = float(np.log1p((n + 0.5) / 0.5))
        tf = (weighted @ corpus.terms).tocsr()
        length = np.asarray(tf.sum(axis=1)).ravel()
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / max(length.mean(), 1e-9))
        row_of = np.repeat(np.arange(n), np.diff(tf.indptr))
        tf.data = self.idf[tf.indices] * tf.data * (BM25_K1 + 1) / (tf.data + norm[row_of])
        self.bm25 = tf.tocsc()
        self.vocabulary = corpus.vocabulary

        # Character n-gram TF-IDF: probes (title, questions), sentences, whole articles.
        article_grams = (pick @ corpus.grams).tocsr()
        self.gram_df = np.bincount(article_grams.indices, minlength=article_grams.shape[1])
        self.gram_idf = (np.log((1.0 + n) / (1.0 + self.gram_df)) + 1.0).astype(np.float32)

        def tfidf(matrix: sp.csr_matrix) -> sp.csr_matrix:
            matrix = _sublinear(matrix)
            matrix.data *= self.gram_idf[matrix.indices]
            return _l2_rows(matrix)

        self.doc_vectors = tfidf(article_grams)
        probe_mask = (kind == _TITLE) | (kind == _QUESTION)
        self.probe_vectors = tfidf(corpus.grams[rows[probe_mask]])
        self.probe_owner = owner[probe_mask]
        self.probe_start = np.searchsorted(self.probe_owner, np.arange(n + 1))
        sentence_mask = ~probe_mask
        self.sentence_vectors = tfidf(corpus.grams[rows[sentence_mask]])
        self.sentence_owner = owner[sentence_mask]
        self.sentence_start = np.searchsorted(self.sentence_owner, np.arange(n + 1))
        centroid = sp.csr_matrix(
            (np.ones(len(self.probe_owner)), (self.probe_owner, np.arange(len(self.probe_owner)))),
            shape=(n, len(self.probe_owner)),
        )
        self.centroids = _l2_rows((centroid @ self.probe_vectors).tocsr())

    # -- query side ----------------------------------------------------------------

    def query(self, folded: str) -> _Query:
        ids = []
        unknown = 0
        for token in dict.fromkeys(TextFolder.tokens(folded)):
            term = self.vocabulary.get(token)
            if term is None:
                unknown += 1
            else:
                ids.append(term)
        grams = _sublinear(_HASHER.transform([folded]).tocsr())
        grams.data *= self.gram_idf[grams.indices]
        words = TextFolder.words(folded)
        return _Query(
            folded,
            np.asarray(ids, dtype=np.int64),
            unknown,
            list(words),
            np.fromiter(words.values(), dtype=bool, count=len(words)),
            _l2_rows(grams),
        )

    def retrieval(self, q: _Query) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(best probe cosine, query-normalised BM25, base score) for every article."""
        n = self.n_articles
        probe_cos = np.asarray((self.probe_vectors @ q.grams.T).todense()).ravel()
        probe_max = np.maximum.reduceat(probe_cos, self.probe_start[:-1]) if n else probe_cos
        self._probe_cos = probe_cos
        ids = q.term_ids
        ceiling = (self.idf[ids].sum() + q.unknown_terms * self.max_idf) * (BM25_K1 + 1)
        if len(ids) and ceiling > 0:
            raw = np.asarray(self.bm25[:, ids].sum(axis=1)).ravel()
            bm25 = raw / ceiling
        else:
            raw = bm25 = np.zeros(n)
        self._bm25_raw = raw
        return probe_max, bm25, 0.6 * probe_max + 0.4 * bm25

    def candidates(self, base: np.ndarray, probe_max: np.ndarray, bm25: np.ndarray) -> np.ndarray:
        n = self.n_articles
        if n <= RERANK_ALL_UP_TO:
            return np.arange(n)
        picked = set()
        for signal in (base, probe_max, bm25):
            picked.update(np.argpartition(-signal, CANDIDATES)[:CANDIDATES].tolist())
        return np.fromiter(sorted(picked), dtype=np.int64)

    def features(
        self,
        q: _Query,
        cands: np.ndarray,
        probe_max: np.ndarray,
        bm25: np.ndarray,
        base: np.ndarray,
    ) -> np.ndarray:
        """One row of ``FEATURES`` per candidate article (context features are relative to
        the other candidates, so pass the set actually competing)."""
        m = len(cands)
        out = np.zeros((m, len(FEATURES)))
        if not m:
            return out
        probe_cos = self._probe_cos
        bm25_raw = self._bm25_raw
        top2 = np.empty(m)
        for i, a in enumerate(cands):
            values = probe_cos[self.probe_start[a] : self.probe_start[a + 1]]
            best = np.sort(values)[-2:]
            top2[i] = best.mean()
        starts, ends = self.sentence_start[cands], self.sentence_start[cands + 1]
        sentence_rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
        sentence_cos = np.asarray(
            (self.sentence_vectors[sentence_rows] @ q.grams.T).todense()
        ).ravel()
        sentence_max = np.zeros(m)
        offsets = np.concatenate([[0], np.cumsum(ends - starts)])
        for i in range(m):
            if offsets[i + 1] > offsets[i]:
                sentence_max[i] = sentence_cos[offsets[i] : offsets[i + 1]].max()
        doc_cos = np.asarray((self.doc_vectors[cands] @ q.grams.T).todense()).ravel()
        centroid_cos = np.asarray((self.centroids[cands] @ q.grams.T).todense()).ravel()

        # Coverage: which of the query's words / bigrams occur in the article.
        coverage = self._word_coverage(q, cands)
        ids = q.term_ids
        if len(ids):
            weights = self.idf[ids]
            total = weights.sum() + q.unknown_terms * self.max_idf
            hit = self.present[:, ids][cands].toarray()
            bigram_cov = hit @ weights / total
        else:
            bigram_cov = np.zeros(m)

        cand_base = base[cands]
        order = np.argsort(-cand_base, kind="stable")
        rank = np.empty(m)
        rank[order] = np.arange(m)
        best, second = cand_base[order[0]], (cand_base[order[1]] if m > 1 else 0.0)
        margin = cand_base - np.where(rank == 0, second, best)
        cand_bm25 = bm25[cands]
        out[:, 0] = probe_max[cands]
        out[:, 1] = top2
        out[:, 2] = sentence_max
        out[:, 3] = doc_cos
        out[:, 4] = centroid_cos
        out[:, 5] = cand_bm25
        out[:, 6] = cand_bm25 / max(cand_bm25.max(), 1e-9)
        out[:, 7] = coverage[:, 0]
        out[:, 8] = coverage[:, 1]
        out[:, 9] = bigram_cov
        out[:, 10] = coverage[:, 3]
        out[:, 11] = margin
        out[:, 12] = np.log1p(rank)
        out[:, 13] = np.log1p(len(q.words))
        out[:, 14] = coverage[:, 2]
        out[:, 15] = coverage[:, 4]
        out[:, 16] = coverage[:, 5]
        out[:, 17] = coverage[:, 6]
        out[:, 18] = coverage[:, 7]
        out[:, 19] = bm25_raw[cands] / self.max_idf
        return out

    def _word_df(self, word: str) -> int:
        """Articles containing the word: exact for up to three characters (it is one of the
        hashed n-grams), else the rarest of its trigrams (an upper bound)."""
        pieces = (
            [word]
            if len(word) <= 3 or word.isascii()
            else [word[i : i + 3] for i in range(len(word) - 2)]
        )
        return min(int(self.gram_df[_gram_column(p)]) for p in pieces)

    def _word_coverage(self, q: _Query, cands: np.ndarray) -> np.ndarray:
        """Per candidate: word coverage (all text, probes only), noun coverage, the largest
        uncovered word and noun IDF, and the share of the query unknown to every article."""
        m = len(cands)
        out = np.zeros((m, 8))
        if not q.words:
            out[:, 2] = 1.0
            return out
        n = self.n_articles
        df = np.array([self._word_df(w) for w in q.words])
        weights = np.log1p((n - df + 0.5) / (df + 0.5))
        total = weights.sum()
        found = np.array([[w in self.full_text[a] for w in q.words] for a in cands])
        in_probes = np.array([[w in self.probe_text[a] for w in q.words] for a in cands])
        missing = np.where(found, 0.0, weights)
        out[:, 0] = found @ weights / total
        out[:, 1] = in_probes @ weights / total
        noun_weights = np.where(q.nouns, weights, 0.0)
        noun_total = noun_weights.sum()
        out[:, 2] = found @ noun_weights / noun_total if noun_total > 0 else 1.0
        out[:, 3] = missing.max(axis=1) / self.max_idf
        out[:, 4] = np.where(q.nouns, missing, 0.0).max(axis=1) / self.max_idf
        out[:, 5] = weights[df == 0].sum() / total
        out[:, 6] = found @ weights / self.max_idf
        out[:, 7] = found @ (weights > 0.4 * self.max_idf)
        return out


# ---- the knowledge base ---------------------------------------------------------------


class KnowledgeBase:
    """An index over the articles; ``search`` returns ranked hits above the threshold."""

    def __init__(
        self,
        articles: tuple[Article, ...],
        synonyms: dict[str, str] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        if not articles:
            raise ValueError("the knowledge base has no valid articles")
        started = time.perf_counter()
        self.articles = articles
        self.threshold = threshold
        self.folder = TextFolder(synonyms or {})
        self._ids = {a.id: i for i, a in enumerate(articles)}
        corpus = _Corpus(articles, self.folder)
        self._reranker = _train_reranker(corpus, self.folder)
        self._index = _Index(corpus, np.ones(len(corpus.texts), dtype=bool))
        log.info(
            "knowledge base: %d articles indexed in %.1f s",
            len(articles),
            time.perf_counter() - started,
        )

    def scores(self, query: str) -> np.ndarray:
        """Probability (0..1) that each article answers ``query``; 0 if not a candidate."""
        folded = self.folder.fold(query)
        n = len(self.articles)
        result = np.zeros(n)
        if not folded or not _WORD.search(folded):
            return result
        index = self._index
        q = index.query(folded)
        probe_max, bm25, base = index.retrieval(q)
        cands = index.candidates(base, probe_max, bm25)
        result[cands] = self._reranker.predict(index.features(q, cands, probe_max, bm25, base))
        return result

    def search(self, query: str, k: int = 3, threshold: float | None = None) -> list[Hit]:
        """Top ``k`` articles scoring at least the threshold (empty: "not found")."""
        limit = self.threshold if threshold is None else threshold
        if k <= 0:
            return []
        scores = self.scores(query)
        if not scores.size:
            return []
        top = np.argsort(-scores, kind="stable")[:k]
        return [
            Hit(a.id, a.title, round(float(scores[i]), 4), a.answer, a.scenario)
            for i in top
            if scores[i] > 0 and scores[i] >= limit
            for a in (self.articles[i],)
        ]

    def article(self, article_id: str) -> Article | None:
        index = self._ids.get(article_id)
        return None if index is None else self.articles[index]


def _fold_masks(corpus: _Corpus, rng: np.random.Generator) -> list[np.ndarray]:
    """Segment masks that each hold out some sample questions (at most one per article and
    never an article's last one), ``MAX_TRAIN_QUERIES`` held out in total."""
    questions = np.flatnonzero(corpus.kind == _QUESTION)
    by_article: dict[int, list[int]] = {}
    for seg in questions:
        by_article.setdefault(int(corpus.owner[seg]), []).append(int(seg))
    slots = max((len(v) for v in by_article.values()), default=0)
    total = sum(len(v) for v in by_article.values() if len(v) > 1)
    keep_share = min(1.0, MAX_TRAIN_QUERIES / max(total, 1))
    masks = []
    for slot in range(slots):
        held = [
            segs[slot]
            for segs in by_article.values()
            if len(segs) > 1 and slot < len(segs) and rng.random() < keep_share
        ]
        if held:
            mask = np.ones(len(corpus.texts), dtype=bool)
            mask[held] = False
            masks.append(mask)
    return masks


@dataclass
class _Examples:
    """Reranker training rows; ``query`` numbers the query each row came from and ``group``
    says how it was made (0 held-out question, 1 same without its article, 2 chit-chat)."""

    features: np.ndarray
    labels: np.ndarray
    query: np.ndarray
    group: np.ndarray


def _training_examples(corpus: _Corpus, folder: TextFolder) -> _Examples:
    """Labelled rows from held-out sample questions and out-of-scope chit-chat."""
    rng = np.random.default_rng(0)
    none_queries = [folder.fold(t) for t in dict.fromkeys(load_none_queries())]
    none_queries = [t for t in none_queries if t and _WORD.search(t)]
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    queries: list[int] = []
    groups: list[int] = []

    def add(features: np.ndarray, label: np.ndarray, group: int) -> None:
        rows.append(features)
        labels.append(label)
        queries.extend([len(rows)] * len(label))
        groups.extend([group] * len(label))

    masks = _fold_masks(corpus, rng) or [np.ones(len(corpus.texts), dtype=bool)]
    for number, mask in enumerate(masks):
        index = _Index(corpus, mask)
        for seg in np.flatnonzero(~mask):
            q = index.query(corpus.texts[seg])
            owner = int(corpus.owner[seg])
            probe_max, bm25, base = index.retrieval(q)
            order = np.argsort(-base, kind="stable")
            top = order[:TRAIN_CANDIDATES]
            if owner not in top:
                top = np.append(top[:-1], owner)
            add(index.features(q, top, probe_max, bm25, base), (top == owner).astype(int), 0)
            without = order[order != owner][:TRAIN_CANDIDATES]
            add(index.features(q, without, probe_max, bm25, base), np.zeros(len(without), int), 1)
        for text in none_queries[number :: len(masks)]:
            q = index.query(text)
            probe_max, bm25, base = index.retrieval(q)
            top = np.argsort(-base, kind="stable")[:TRAIN_CANDIDATES]
            add(index.features(q, top, probe_max, bm25, base), np.zeros(len(top), int), 2)
    return _Examples(
        np.vstack(rows), np.concatenate(labels), np.asarray(queries), np.asarray(groups)
    )


def _train_reranker(corpus: _Corpus, folder: TextFolder) -> Reranker:
    """Fit the reranker on held-out sample questions and out-of-scope chit-chat."""
    examples = _training_examples(corpus, folder)
    features, target = examples.features, examples.labels
    if target.min() == target.max():  # no held-out questions: trust the probe cosine
        target = (features[:, 0] >= np.quantile(features[:, 0], 0.9)).astype(int)
    return Reranker().fit(features, target)


# ---- building, storing and caching ------------------------------------------------------


def build_knowledge_base(
    directory: Path = ARTICLES_DIR, synonyms_file: Path = SYNONYMS_FILE
) -> KnowledgeBase:
    result = load_articles(directory)
    for error in result.errors:
        log.error("knowledge base article skipped: %s: %s", error.path, error.reason)
    return KnowledgeBase(result.articles, load_synonyms(synonyms_file))


def load_knowledge_base(
    directory: Path = ARTICLES_DIR,
    synonyms_file: Path = SYNONYMS_FILE,
    index_dir: Path = INDEX_DIR,
) -> KnowledgeBase:
    """The stored index if it matches the articles on disk, otherwise a fresh build (saved)."""
    extra = (synonyms_file,) if synonyms_file.exists() else ()
    key = f"{INDEX_FORMAT}-{content_fingerprint(directory, extra)[:20]}"
    stored = index_dir / f"kb-{key}.pickle"
    if stored.exists():
        try:
            with stored.open("rb") as handle:
                return pickle.load(handle)
        except (pickle.UnpicklingError, EOFError, AttributeError) as exc:
            log.warning("stored KB index %s unreadable (%s); rebuilding", stored, exc)
    kb = build_knowledge_base(directory, synonyms_file)
    index_dir.mkdir(parents=True, exist_ok=True)
    for old in index_dir.glob("kb-*.pickle"):
        old.unlink(missing_ok=True)
    tmp = stored.with_suffix(".tmp")
    with tmp.open("wb") as handle:
        pickle.dump(kb, handle, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(stored)
    return kb


class KnowledgeBaseCache:
    """Reload the knowledge base when its files change (checked at most every few seconds)."""

    def __init__(self, directory: Path = ARTICLES_DIR, check_every: float = 5.0) -> None:
        self._directory = directory
        self._check_every = check_every
        self._checked_at = float("-inf")
        self._stamp: tuple = ()
        self._kb: KnowledgeBase | None = None

    def _file_stamp(self) -> tuple:
        files = sorted(self._directory.glob("*.md"))
        if SYNONYMS_FILE.exists():
            files.append(SYNONYMS_FILE)
        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)

    def get(self) -> KnowledgeBase:
        now = time.monotonic()
        if self._kb is None or now - self._checked_at >= self._check_every:
            self._checked_at = now
            stamp = self._file_stamp()
            if self._kb is None or stamp != self._stamp:
                self._kb = load_knowledge_base(self._directory)
                self._stamp = stamp
        return self._kb


@lru_cache(maxsize=1)
def shared_cache() -> KnowledgeBaseCache:
    return KnowledgeBaseCache()
