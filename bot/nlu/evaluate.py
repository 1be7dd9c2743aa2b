"""`python -m bot nlu evaluate`: intent accuracy, macro-F1 and confusions on held-out data.

The held-out file (tests/data/nlu_holdout.yml) was written separately from the training data
and is never merged into it.  ``rasa test nlu`` keeps working too; this command prints the
figures the project tracks, in one short report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.settings import PROJECT_ROOT

HOLDOUT_FILE = PROJECT_ROOT / "tests" / "data" / "nlu_holdout.yml"


@dataclass
class IntentReport:
    total: int
    accuracy: float
    macro_f1: float
    accuracy_without_fallback: float = 0.0
    fallback_rate: float = 0.0
    confusions: list[tuple[str, str, int]] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def score(gold: list[str], predicted: list[str], texts: list[str]) -> IntentReport:
    """Accuracy, macro-F1 over gold intents, and (gold, predicted, count) confusion pairs."""
    from sklearn.metrics import f1_score

    labels = sorted(set(gold))
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    pairs = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    errors = [
        {"text": t, "gold": g, "predicted": p}
        for t, g, p in zip(texts, gold, predicted, strict=True)
        if g != p
    ]
    return IntentReport(
        total=len(gold),
        accuracy=correct / len(gold) if gold else 0.0,
        macro_f1=float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        confusions=[(g, p, n) for (g, p), n in pairs.most_common()],
        errors=errors,
    )


@dataclass(frozen=True)
class Prediction:
    intent: str
    """What the assistant acts on (``nlu_fallback`` when confidence is low)."""
    top_intent: str
    """The best real intent, ignoring the fallback threshold."""
    confidence: float


async def _predict(model: Path, texts: list[str]) -> list[Prediction]:
    import logging

    import structlog
    from rasa.core.agent import Agent

    logging.getLogger("rasa").setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    agent = Agent.load(str(model))
    predictions = []
    for text in texts:
        parsed = await agent.parse_message(text)
        ranking = [r for r in parsed.get("intent_ranking") or [] if r["name"] != "nlu_fallback"]
        top = ranking[0] if ranking else {"name": "", "confidence": 0.0}
        predictions.append(
            Prediction(
                intent=(parsed.get("intent") or {}).get("name") or "",
                top_intent=top["name"],
                confidence=float(top["confidence"]),
            )
        )
    return predictions


def evaluate(model: Path, holdout: Path = HOLDOUT_FILE) -> IntentReport:
    """Parse every held-out example with the trained model and score the intents.

    ``nlu_fallback`` counts as wrong: the customer did not get understood.
    """
    from rasa.shared.nlu.training_data.loading import load_data

    examples = [m for m in load_data(str(holdout)).intent_examples]
    texts = [m.get("text") for m in examples]
    gold = [m.get("intent") for m in examples]
    predictions = asyncio.run(_predict(model, texts))
    report = score(gold, [p.intent for p in predictions], texts)
    top = [p.top_intent for p in predictions]
    report.accuracy_without_fallback = sum(g == t for g, t in zip(gold, top, strict=True)) / max(
        1, len(gold)
    )
    report.fallback_rate = sum(p.intent == "nlu_fallback" for p in predictions) / max(1, len(gold))
    return report


def run_evaluate(args: argparse.Namespace) -> int:
    from bot.launcher import MODEL_FILE, ensure_model

    model = Path(args.model) if args.model else ensure_model()
    report = evaluate(model if args.model else MODEL_FILE, Path(args.holdout))
    if args.json:
        print(json.dumps(report.__dict__, ensure_ascii=False, indent=2))
        return 0
    print(f"examples   {report.total}")
    print(f"accuracy   {report.accuracy:.3f}")
    print(f"macro-F1   {report.macro_f1:.3f}")
    print(f"accuracy ignoring the fallback threshold  {report.accuracy_without_fallback:.3f}")
    print(f"fallback rate  {report.fallback_rate:.3f}")
    print("confusions (gold -> predicted: count)")
    for gold, predicted, count in report.confusions[:15]:
        print(f"  {gold} -> {predicted}: {count}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    nlu = subparsers.add_parser("nlu", help="NLU tools")
    commands = nlu.add_subparsers(dest="nlu_command", required=True)
    evaluate_cmd = commands.add_parser("evaluate", help="intent accuracy on held-out data")
    evaluate_cmd.add_argument("--holdout", default=str(HOLDOUT_FILE))
    evaluate_cmd.add_argument("--model", help="model archive (default: train/reuse ours)")
    evaluate_cmd.add_argument("--json", action="store_true")
    evaluate_cmd.set_defaults(handler=run_evaluate)
    build = commands.add_parser("build-spacy", help="rebuild the spaCy pipeline from the catalogue")
    build.set_defaults(handler=_run_build_spacy)


def _run_build_spacy(args: argparse.Namespace) -> int:
    from bot.nlu.spacy_pipeline import save_pipeline

    print(save_pipeline())
    return 0
