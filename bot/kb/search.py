"""Chinese-aware knowledge-base search.

Two signals, both over text folded the same way (Traditional → Simplified, full-width →
half-width, after-sales synonyms → the articles' wording):

* BM25 (``bm25s``) over each article's title, sample questions, tags, short answer and body,
  tokenised into jieba words plus character bigrams, so typos and unseen word splits still
  overlap;
* the best character n-gram TF-IDF cosine between the query and the article's title and
  sample questions, which rewards close paraphrases of what customers actually ask.

Their blend is the article's score in 0..1; below the threshold the answer is "not found"
rather than a wrong article.  The built index is pickled under ``var/`` keyed by a hash of
the articles and synonyms, so editing an article rebuilds it and never needs a Rasa retrain.
"""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import bm25s
import jieba
import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.kb.articles import ARTICLES_DIR, Article, content_fingerprint, load_articles
from bot.nlu.text import normalise_text
from bot.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

SYNONYMS_FILE = PROJECT_ROOT / "knowledge_base" / "synonyms.yml"
INDEX_DIR = PROJECT_ROOT / "var" / "kb_index"
INDEX_FORMAT = 1

DEFAULT_THRESHOLD = 0.30
COSINE_WEIGHT = 0.6
BM25_WEIGHT = 0.4
BM25_SATURATION = 12.0
"""bm25 / (bm25 + saturation) maps raw BM25 onto 0..1 before blending."""

_WORD = re.compile(r"[\u4e00-\u9fff]+|[a-z0-9]+")
_STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 哦 嘛 么 是 我 你 我们 你们 他 她 它 在 有 和 就 都 也 还 要 会 能 "
    "可以 怎么 怎样 什么 如何 一下 这个 那个 请问 请 麻烦 想 问 问下 一个 么 哈 嗯 吗".split()
)


def load_synonyms(path: Path = SYNONYMS_FILE) -> dict[str, str]:
    """variant → canonical, longest variants first so replacements never overlap badly."""
    if not path.exists():
        return {}
    groups = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    mapping: dict[str, str] = {}
    for canonical, variants in groups.items():
        for variant in variants or ():
            variant = normalise_text(str(variant)).lower()
            if variant and variant != canonical:
                mapping[variant] = str(canonical)
    return dict(sorted(mapping.items(), key=lambda kv: -len(kv[0])))


class TextFolder:
    """Normalise text and fold synonyms, identically for articles and queries."""

    def __init__(self, synonyms: dict[str, str]) -> None:
        self._pattern = re.compile("|".join(re.escape(v) for v in synonyms)) if synonyms else None
        self._synonyms = synonyms

    def fold(self, text: str) -> str:
        text = normalise_text(text).lower()
        if self._pattern is not None:
            text = self._pattern.sub(lambda m: self._synonyms[m.group(0)], text)
        return text

    @staticmethod
    def tokens(folded: str) -> list[str]:
        """jieba words (search mode) plus character bigrams of every Chinese run."""
        result: list[str] = []
        for run in _WORD.findall(folded):
            if run.isascii():
                result.append(run)
                continue
            result.extend(w for w in jieba.lcut_for_search(run) if w not in _STOPWORDS)
            result.extend(run[i : i + 2] for i in range(len(run) - 1))
        return result


@dataclass(frozen=True)
class Hit:
    id: str
    title: str
    score: float
    answer: str
    scenario: str


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
        self.articles = articles
        self.threshold = threshold
        self.folder = TextFolder(synonyms or {})
        fold = self.folder.fold
        documents = []
        probes: list[str] = []
        probe_owner: list[int] = []
        for index, article in enumerate(articles):
            title = fold(article.title)
            questions = [fold(q) for q in article.questions]
            documents.append(
                " ".join(
                    [title] * 3
                    + questions
                    + [fold(" ".join(article.tags))] * 2
                    + [fold(article.answer), fold(article.body)]
                )
            )
            for probe in [title, *questions]:
                probes.append(probe)
                probe_owner.append(index)
        self._bm25 = bm25s.BM25()
        self._bm25.index([self.folder.tokens(d) for d in documents], show_progress=False)
        self._vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=1
        )
        self._probe_matrix = self._vectorizer.fit_transform(probes)
        self._probe_owner = np.asarray(probe_owner)

    def scores(self, query: str) -> np.ndarray:
        """Blended score of every article for ``query`` (0..1)."""
        folded = self.folder.fold(query)
        n = len(self.articles)
        if not folded:
            return np.zeros(n)
        tokens = [t for t in self.folder.tokens(folded) if t in self._bm25.vocab_dict]
        bm25 = self._bm25.get_scores(tokens) if tokens else np.zeros(n)
        cosine_per_probe = (self._probe_matrix @ self._vectorizer.transform([folded]).T).toarray()
        cosine = np.zeros(n)
        np.maximum.at(cosine, self._probe_owner, cosine_per_probe.ravel())
        return COSINE_WEIGHT * cosine + BM25_WEIGHT * (bm25 / (bm25 + BM25_SATURATION))

    def search(self, query: str, k: int = 3, threshold: float | None = None) -> list[Hit]:
        """Top ``k`` articles scoring at least the threshold (empty: "not found")."""
        limit = self.threshold if threshold is None else threshold
        scores = self.scores(query)
        if k <= 0 or not scores.size:
            return []
        top = np.argsort(-scores)[:k]
        return [
            Hit(a.id, a.title, round(float(scores[i]), 4), a.answer, a.scenario)
            for i in top
            if scores[i] >= limit
            for a in (self.articles[i],)
        ]

    def article(self, article_id: str) -> Article | None:
        return next((a for a in self.articles if a.id == article_id), None)


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
        import time

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
