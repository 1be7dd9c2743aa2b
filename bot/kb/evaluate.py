"""Search quality on a labelled question set: top-1, top-3 and correct "not found".

The set (tests/data/kb_eval.yml) is for measuring only: nothing in it may be copied into the
articles, the synonyms or the scorer's training data, or the numbers stop meaning anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.kb.search import KnowledgeBase
from bot.settings import PROJECT_ROOT

EVAL_FILE = PROJECT_ROOT / "tests" / "data" / "kb_eval.yml"
LEAK_OVERLAP = 0.5
"""Character-bigram Jaccard overlap from which a training text counts as a copy of an
evaluation question."""


def evaluation_questions(directory: Path = EVAL_FILE.parent) -> list[str]:
    """Every question of every evaluation set (``kb_eval*.yml``), answerable or not."""
    questions: list[str] = []
    for path in sorted(directory.glob("kb_eval*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        questions += [case["q"] for case in data.get("answerable") or []]
        questions += list(data.get("unanswerable") or [])
    return questions


def _bigrams(text: str) -> set[str]:
    kept = "".join(c for c in text if c.isalnum())
    return {kept[i : i + 2] for i in range(len(kept) - 1)}


def leaked(texts: list[str], questions: list[str]) -> list[tuple[str, str]]:
    """(text, evaluation question) pairs that overlap by ``LEAK_OVERLAP`` or more: training
    data this close to an evaluation question would make the measured figures lie."""
    asked = [(question, _bigrams(question)) for question in questions]
    found = []
    for text in texts:
        grams = _bigrams(text)
        for question, other in asked:
            if len(grams & other) >= LEAK_OVERLAP * max(1, len(grams | other)):
                found.append((text, question))
    return found


@dataclass
class SearchReport:
    answerable: int
    top1: float
    top3: float
    unanswerable: int
    not_found_rate: float
    misses: list[dict] = field(default_factory=list)
    false_hits: list[dict] = field(default_factory=list)


def evaluate(
    kb: KnowledgeBase, eval_file: Path = EVAL_FILE, threshold: float | None = None
) -> SearchReport:
    """Top-1 / top-3 over the answerable questions and the share of unanswerable ones that
    find nothing, at ``threshold`` (default: the knowledge base's own)."""
    data = yaml.safe_load(eval_file.read_text(encoding="utf-8"))
    answerable = data.get("answerable") or []
    unanswerable = data.get("unanswerable") or []
    top1 = top3 = 0
    misses = []
    for case in answerable:
        hits = kb.search(case["q"], k=3, threshold=threshold)
        ids = [h.id for h in hits]
        top1 += bool(ids) and ids[0] == case["id"]
        top3 += case["id"] in ids
        if not ids or ids[0] != case["id"]:
            misses.append({"q": case["q"], "expected": case["id"], "got": ids})
    false_hits = []
    for question in unanswerable:
        hits = kb.search(question, k=1, threshold=threshold)
        if hits:
            false_hits.append({"q": question, "got": hits[0].id, "score": hits[0].score})
    return SearchReport(
        answerable=len(answerable),
        top1=top1 / max(1, len(answerable)),
        top3=top3 / max(1, len(answerable)),
        unanswerable=len(unanswerable),
        not_found_rate=1 - len(false_hits) / max(1, len(unanswerable)),
        misses=misses,
        false_hits=false_hits,
    )
