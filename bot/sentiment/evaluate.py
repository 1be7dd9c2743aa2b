"""`python -m bot sentiment evaluate|analyse`: the figures issue #5 sets targets for.

``evaluate`` scores a labelled file (default: the held-out ``tests/data/sentiment_holdout.yml``,
never trained on): 3-way label accuracy, escalation recall, false escalations among messages
that should not escalate, and negative-vs-positive accuracy on the review-style subset; with
``--public`` also on the held-out part of the public product-review corpus, and ``--reviews``
on any labelled review file someone else wrote (a public set kept outside the repository, say
ChnSentiCorp or waimai_10k).  ``analyse`` prints one message's sentiment as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.sentiment.analyzer import SentimentAnalyzer, default_analyzer, load_settings
from bot.sentiment.data import (
    HOLDOUT_FILE,
    LabelledMessage,
    SentimentDataError,
    load_labelled,
    load_review_file,
    review_corpus,
)

TARGETS = {
    "accuracy": (">=", 0.85),
    "escalation_recall": (">=", 0.95),
    "false_escalation_rate": ("<=", 0.05),
    "review_accuracy": (">=", 0.88),
}


@dataclass
class SentimentReport:
    total: int
    accuracy: float
    escalation_recall: float
    false_escalation_rate: float
    review_total: int
    review_accuracy: float
    milliseconds_per_message: float
    errors: list[dict] = field(default_factory=list)

    def meets_targets(self) -> dict[str, bool]:
        """Each target metric this report measures: whether it reaches it (a file without
        review-style messages says nothing about reviews)."""
        return {
            name: (getattr(self, name) >= bound if op == ">=" else getattr(self, name) <= bound)
            for name, (op, bound) in TARGETS.items()
            if name != "review_accuracy" or self.review_total
        }


def _ratio(hits: int, total: int) -> float:
    return hits / total if total else 0.0


def _leans_positive(label: str, score: float) -> bool:
    """Neg-vs-pos decision: the label when it is polar, else the sign of the score."""
    return label == "positive" if label != "neutral" else score > 0


def evaluate(analyzer: SentimentAnalyzer, messages: list[LabelledMessage]) -> SentimentReport:
    """Score the analyser on labelled messages; ``errors`` lists every wrong label or escalation."""
    started = time.perf_counter()
    results = [analyzer.analyse(m.text) for m in messages]
    elapsed = time.perf_counter() - started
    pairs = list(zip(messages, results, strict=True))
    should = [r.escalate for m, r in pairs if m.escalate]
    calm = [r.escalate for m, r in pairs if not m.escalate]
    reviews = [(m, r) for m, r in pairs if m.style == "review" and m.label != "neutral"]
    return SentimentReport(
        total=len(pairs),
        accuracy=_ratio(sum(m.label == r.label for m, r in pairs), len(pairs)),
        escalation_recall=_ratio(sum(should), len(should)),
        false_escalation_rate=_ratio(sum(calm), len(calm)),
        review_total=len(reviews),
        review_accuracy=_ratio(
            sum((m.label == "positive") == _leans_positive(r.label, r.score) for m, r in reviews),
            len(reviews),
        ),
        milliseconds_per_message=1000 * elapsed / max(1, len(pairs)),
        errors=[
            {
                "text": m.text,
                "gold": f"{m.label}{' +escalate' if m.escalate else ''}",
                "predicted": f"{r.label}{' +escalate' if r.escalate else ''}",
                "score": r.score,
                "reasons": r.reasons,
            }
            for m, r in pairs
            if m.label != r.label or m.escalate != r.escalate
        ],
    )


def public_review_accuracy(analyzer: SentimentAnalyzer) -> tuple[int, float]:
    """Neg-vs-pos accuracy on the public review sentences kept out of training."""
    review = load_settings().get("review_model", {})
    sentences = review_corpus(
        held_out=True,
        share=int(review.get("holdout_share", 5)),
        max_chars=int(review.get("max_chars", 200)),
    )
    return len(sentences), polarity_accuracy(analyzer, sentences)


def polarity_accuracy(analyzer: SentimentAnalyzer, reviews: list[tuple[str, int]]) -> float:
    """Share of (text, 1/0) reviews the analyser leans the labelled way on."""
    correct = 0
    for text, polarity in reviews:
        result = analyzer.analyse(text)
        correct += _leans_positive(result.label, result.score) == bool(polarity)
    return _ratio(correct, len(reviews))


def _print_report(report: SentimentReport) -> None:
    met = report.meets_targets()
    rows = (
        ("messages", f"{report.total}", ""),
        ("3-way label accuracy", f"{report.accuracy:.3f}", "accuracy"),
        ("escalation recall", f"{report.escalation_recall:.3f}", "escalation_recall"),
        (
            "false escalations (calm)",
            f"{report.false_escalation_rate:.3f}",
            "false_escalation_rate",
        ),
        (
            f"neg-vs-pos on reviews ({report.review_total})",
            f"{report.review_accuracy:.3f}",
            "review_accuracy",
        ),
        ("ms per message", f"{report.milliseconds_per_message:.3f}", ""),
    )
    for name, value, target in rows:
        verdict = ""
        if target and target not in met:
            value = "n/a"
        elif target:
            op, bound = TARGETS[target]
            verdict = f"  target {op} {bound}: {'ok' if met[target] else 'MISSED'}"
        print(f"{name:<32}{value:>8}{verdict}")
    print(f"misclassified ({len(report.errors)}):")
    for error in report.errors:
        print(
            f"  {error['gold']} -> {error['predicted']} ({error['score']:+.2f} "
            f"{','.join(error['reasons']) or '-'}): {error['text']}"
        )


def _run_evaluate(args: argparse.Namespace) -> int:
    try:
        messages = load_labelled(Path(args.file))
        review_files = {path: load_review_file(Path(path)) for path in args.reviews}
    except SentimentDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    analyzer = default_analyzer()
    report = evaluate(analyzer, messages)
    public = public_review_accuracy(analyzer) if args.public else None
    scored = [
        {"file": path, "total": len(reviews), "accuracy": polarity_accuracy(analyzer, reviews)}
        for path, reviews in review_files.items()
    ]
    if args.json:
        data = asdict(report) | {"meets_targets": report.meets_targets()}
        if public:
            data["public_reviews"] = {"total": public[0], "accuracy": public[1]}
        if scored:
            data["review_files"] = scored
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    _print_report(report)
    if public:
        print(f"public product reviews, neg-vs-pos ({public[0]} held out): {public[1]:.3f}")
    for item in scored:
        print(f"{item['file']}, neg-vs-pos ({item['total']}): {item['accuracy']:.3f}")
    return 0


def _run_analyse(args: argparse.Namespace) -> int:
    result = default_analyzer().analyse(args.text)
    print(json.dumps(result.as_dict(), ensure_ascii=False))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """The `sentiment` command group."""
    sentiment = subparsers.add_parser("sentiment", help="sentiment of customer messages")
    commands = sentiment.add_subparsers(dest="sentiment_command", required=True)
    evaluate_cmd = commands.add_parser("evaluate", help="accuracy and escalation on labelled data")
    evaluate_cmd.add_argument("--file", default=str(HOLDOUT_FILE), help="labelled YAML file")
    evaluate_cmd.add_argument(
        "--public", action="store_true", help="also score the public review sentences"
    )
    evaluate_cmd.add_argument(
        "--reviews",
        action="append",
        default=[],
        metavar="FILE",
        help="also score a labelled review file (CSV/TSV: label 1/0 and text); repeatable",
    )
    evaluate_cmd.add_argument("--json", action="store_true")
    evaluate_cmd.set_defaults(handler=_run_evaluate)
    analyse = commands.add_parser("analyse", help="one message's sentiment as JSON")
    analyse.add_argument("text")
    analyse.set_defaults(handler=_run_analyse)
