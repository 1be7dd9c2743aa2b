"""Knowledge-base search at scale, and its quality on the real articles.

1. Writes 10,000 synthetic articles to a temp dir: each one recombines the real articles'
   titles, sample questions, answers and body sentences, with the product names swapped for
   random products, series and model codes and with random extra terms, so the vocabulary
   grows the way a real catalogue's does.
2. Builds the index over them (target ≤ 60 s) and times ~1,000 queries: perturbed sample
   questions, unseen questions and chit-chat (target p95 ≤ 20 ms on 2 cores).
3. Prints top-1 / top-3 / "not found" on every evaluation set (tests/data/kb_eval*.yml) for
   the real knowledge base, at the default threshold, without a threshold and for a few other
   thresholds.

Run: .venv/bin/python benchmarks/kb_search.py [--articles 10000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.kb.articles import CATEGORIES, SCENARIOS, Article, load_articles  # noqa: E402
from bot.kb.evaluate import EVAL_FILE, evaluate  # noqa: E402
from bot.kb.reranker import load_none_queries  # noqa: E402
from bot.kb.search import (  # noqa: E402
    KnowledgeBase,
    build_knowledge_base,
    load_synonyms,
    load_unanswerable,
)

EVAL_FILES = tuple(sorted(EVAL_FILE.parent.glob("kb_eval*.yml")))

PRODUCTS = (
    "空调 洗衣机 冰箱 电视 热水器 油烟机 净水器 空气净化器 扫地机 笔记本 手机 耳机 微波炉 "
    "电饭煲 吹风机 洗碗机 烤箱 电磁炉 豆浆机 榨汁机 加湿器 除湿机 电风扇 取暖器 投影仪 "
    "路由器 平板 智能手表 音箱 相机 剃须刀 电动牙刷 燃气灶 消毒柜 集成灶 冷柜 干衣机 "
    "破壁机 空气炸锅 咖啡机 电水壶 挂烫机 吸尘器 洗地机 显示器 打印机 台灯 门锁 摄像头"
).split()
SERIES = "尊享 畅享 悦享 旗舰 青春 星光 臻品 睿智 极光 云感 静音 节能 变频 智控 轻奢 雅致".split()


def _common_chars(articles: tuple[Article, ...]) -> str:
    text = "".join(a.body + a.answer + "".join(a.questions) for a in articles)
    return "".join(c for c in text if "\u4e00" <= c <= "\u9fff")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"[。；\n]+", text) if len(s.strip()) >= 4]


def _yaml_text(text: str) -> str:
    return '"' + text.replace("\\", "").replace('"', "'") + '"'


class _Variation:
    """One synthetic article's product, series, model code and extra terms."""

    def __init__(self, rng: random.Random, terms: list[str]) -> None:
        self.rng = rng
        self.product = f"{rng.choice(SERIES)}{rng.choice(PRODUCTS)}"
        letters = "ABCDEFGHKMNPQRSTXYZ"
        self.code = f"{rng.choice(letters)}{rng.choice(letters)}-{rng.randint(10, 9999)}"
        self.extra = rng.sample(terms, 6)

    def apply(self, text: str) -> str:
        text = _PRODUCT.sub(self.product, text)
        if self.rng.random() < 0.3:
            if self.rng.random() < 0.5:
                return f"{text}（{self.code}）"
            return f"{self.rng.choice(self.extra)}{text}"
        return text

    def feature_sentence(self) -> str:
        first, second = self.rng.sample(self.extra, 2)
        return f"{self.product}{self.code}支持{first}和{second}功能"


_PRODUCT = re.compile("|".join(sorted(PRODUCTS, key=len, reverse=True)))


def write_synthetic_articles(
    directory: Path, count: int, seed: int = 7
) -> list[tuple[str, list[str]]]:
    """Write ``count`` articles; returns each one's product and own sample questions."""
    rng = random.Random(seed)
    real = load_articles().articles
    chars = _common_chars(real)
    terms = [
        "".join(rng.choice(chars) for _ in range(rng.choice((2, 2, 3, 4)))) for _ in range(20000)
    ]
    made: list[tuple[str, list[str]]] = []
    for number in range(count):
        base, other = rng.choice(real), rng.choice(real)
        variation = _Variation(rng, terms)
        title = f"{variation.apply(base.title)} {variation.product}{rng.choice(variation.extra)}"
        own = [variation.apply(q) for q in rng.sample(base.questions, min(len(base.questions), 5))]
        questions = own + [variation.apply(q) for q in rng.sample(other.questions, 2)]
        body = _sentences(base.body) + rng.sample(_sentences(other.body), 2)
        body = [variation.apply(s) for s in body]
        body += [variation.feature_sentence() for _ in range(2)]
        rng.shuffle(body)
        tags = [variation.product, rng.choice(variation.extra), *base.tags[:2]]
        article_id = f"synthetic-{number:05d}"
        front = [
            "---",
            f"id: {article_id}",
            f"title: {_yaml_text(title)}",
            f"category: {rng.choice(CATEGORIES)}",
            f"scenario: {rng.choice(SCENARIOS)}",
            f"tags: [{', '.join(_yaml_text(t) for t in tags)}]",
            "updated: 2026-10-01",
            "version: 1",
            f"products: [{variation.code}]",
            f"answer: {_yaml_text(variation.apply(base.answer))}",
            "questions:",
            *(f"  - {_yaml_text(q)}" for q in questions),
            "---",
        ]
        text = "\n".join(front) + "\n" + "。\n".join(body) + "。\n"
        (directory / f"{article_id}.md").write_text(text, encoding="utf-8")
        made.append((variation.product, own))
    return made


def _perturb(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(0, 2)):
        if len(chars) > 3:
            del chars[rng.randrange(len(chars))]
    prefix = rng.choice(("", "", "请问", "你好 ", "麻烦问下 ", "我想问一下 "))
    return prefix + "".join(chars)


def queries_for(
    made: list[tuple[str, list[str]]], count: int, seed: int = 11
) -> list[tuple[str, str | None]]:
    """(query, the synthetic article it names by product, if any): perturbed sample
    questions of synthetic and real articles, and chit-chat."""
    rng = random.Random(seed)
    chit_chat = load_none_queries()
    real = [q for a in load_articles().articles for q in a.questions]
    result: list[tuple[str, str | None]] = []
    while len(result) < count:
        roll = rng.random()
        if roll < 0.6:
            number = rng.randrange(len(made))
            product, own = made[number]
            question = rng.choice(own)
            source = f"synthetic-{number:05d}" if product in question else None
            result.append((_perturb(question, rng), source))
        elif roll < 0.85:
            result.append((_perturb(rng.choice(real), rng), None))
        else:
            result.append((rng.choice(chit_chat), None))
    return result


def scale(articles: int, queries: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        made = write_synthetic_articles(directory, articles)
        print(f"wrote {articles} synthetic articles in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        loaded = load_articles(directory)
        load_seconds = time.perf_counter() - started
        assert not loaded.errors, loaded.errors[:3]
        started = time.perf_counter()
        kb = KnowledgeBase(loaded.articles, load_synonyms(), unanswerable=load_unanswerable())
        build_seconds = time.perf_counter() - started
        print(
            f"index build: {build_seconds:.1f} s for {len(kb.articles)} articles "
            f"(+ {load_seconds:.1f} s parsing the files; target ≤ 60 s)"
        )
        batch = queries_for(made, queries)
        kb.search(batch[0][0])  # warm-up (jieba's dictionary, lazy imports)
        timings = []
        in_top3 = sourced = 0
        for query, source in batch:
            started = time.perf_counter()
            hits = kb.search(query, threshold=0.0)
            timings.append((time.perf_counter() - started) * 1000)
            if source is not None:
                sourced += 1
                in_top3 += source in [h.id for h in hits]
        p50, p95, p99 = np.percentile(timings, [50, 95, 99])
        print(
            f"{len(batch)} queries: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, "
            f"max {max(timings):.1f} ms (target p95 ≤ 20 ms)"
        )
        print(
            f"  sanity: for {in_top3}/{sourced} perturbed sample questions that name their "
            "synthetic article's product, that article is in the top 3"
        )


def quality() -> None:
    started = time.perf_counter()
    kb = build_knowledge_base()
    seconds = time.perf_counter() - started
    print(f"real knowledge base: {len(kb.articles)} articles, built in {seconds:.1f} s")
    default = kb.threshold
    for eval_file in EVAL_FILES:
        print(f"quality on {eval_file.relative_to(eval_file.parents[2])}:")
        for threshold in sorted({0.0, 0.15, 0.2, default, 0.3, 0.35, 0.4, 0.5}):
            report = evaluate(kb, eval_file, threshold=threshold)
            label = " (default)" if threshold == default else ""
            print(
                f"  threshold {threshold:.2f}{label}: top-1 {report.top1:.3f}"
                f"  top-3 {report.top3:.3f}  not-found {report.not_found_rate:.3f}"
                f"  ({report.answerable} answerable, {report.unanswerable} unanswerable)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    if not args.skip_scale:
        scale(args.articles, args.queries)
    quality()


if __name__ == "__main__":
    main()
