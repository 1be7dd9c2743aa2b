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
