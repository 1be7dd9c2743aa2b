"""The lexicon and rules layer: what a message says about feeling, read from word lists.

Word lists live in ``config/sentiment/lexicon.yml`` so they can be tuned without a code change.
This layer understands negation ("不是不满意", "一点也不好"), degree ("有点慢" vs "慢死了"),
sarcasm markers, threats, safety risks, repeated failure, requests for a person, profanity,
emoji and question form, and turns them into a few numbers (``Cues``) and reason tags that the
trained classifier and the escalation rules use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.settings import PROJECT_ROOT

LEXICON_FILE = PROJECT_ROOT / "config" / "sentiment" / "lexicon.yml"

FLAG_CATEGORIES = ("threat", "safety", "repeated_failure", "request_person", "profanity")
"""Cue lists that are plain yes/no signals; each is also a reason tag when present."""

_CLAUSE_BREAK = re.compile(r"[,.!?;:，。！？；：、~～\n…]+")
_MODIFIER_REACH = 1
"""A negator or degree word acts on a sentiment word at most this many characters later."""


class LexiconError(ValueError):
    """The lexicon file is missing a section or holds a malformed entry."""


@dataclass(frozen=True)
class _Role:
    """What one matched term can do in the polarity scan."""

    polarity: float = 0.0  # signed weight of a sentiment word
    problem: bool = False
    neutral: bool = False
    negation: str = ""  # "strong" | "normal" | "weak"
    degree_before: float = 0.0
    degree_after: float = 0.0
    sarcasm: str = ""  # "strong" | "weak"


@dataclass
class Cues:
    """Everything the rules layer read from one message."""

    positive: float = 0.0
    negative: float = 0.0  # a magnitude: always >= 0
    problems: int = 0
    strongest_negative: float = 0.0
    negated_positive: bool = False
    double_negations: int = 0  # complaints turned round: "不是不满意", "并不差", "不是不好"
    question: bool = False
    exclamations: int = 0
    sarcasm_strong: bool = False
    sarcasm_weak: bool = False
    flags: dict[str, bool] = field(default_factory=dict)

    @property
    def sarcasm(self) -> bool:
        """Praise words used against a problem, or a marker that is sarcastic on its own."""
        troubled = self.problems > 0 or self.negative > 0 or self.flag_count > 0
        return self.sarcasm_strong or (self.sarcasm_weak and self.positive > 0 and troubled)

    @property
    def flag_count(self) -> int:
        return sum(self.flags.values())

    def reasons(self) -> list[str]:
        """Machine tags explaining the cues, in a stable order."""
        tags = [name for name in FLAG_CATEGORIES if self.flags.get(name)]
        if self.sarcasm:
            tags.append("sarcasm")
        if self.strongest_negative >= 3:
            tags.append("anger")
        return tags


def _term_pattern(term: str) -> str:
    escaped = re.escape(term)
    if term[:1].isascii() and term[:1].isalnum():
        escaped = r"(?<![a-z0-9])" + escaped
    if term[-1:].isascii() and term[-1:].isalnum():
        escaped += r"(?![a-z])"
    return escaped


def _alternation(terms: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any term, longest first so "不满意" beats "不" at the same place."""
    unique = sorted({t.lower() for t in terms if t}, key=lambda t: (-len(t), t))
    if not unique:
        return re.compile(r"(?!x)x")
    return re.compile("|".join(_term_pattern(t) for t in unique))


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise LexiconError(f"{where}: expected a list of words")
    return [str(v).strip().lower() for v in value if str(v).strip()]


def _weighted(section: Any, where: str) -> dict[str, float]:
    if not isinstance(section, dict):
        raise LexiconError(f"{where}: expected weight: [words] pairs")
    weights: dict[str, float] = {}
    for weight, words in section.items():
        try:
            number = float(weight)
        except (TypeError, ValueError) as error:
            raise LexiconError(f"{where}: weight {weight!r} is not a number") from error
        for word in _strings(words, f"{where}.{weight}"):
            weights.setdefault(word, number)
    return weights


def _fault_absence(faults: Iterable[str]) -> re.Pattern[str]:
    """A fault said to be absent: the fault and a closing negator ("一点问题都没有", "啥毛病也没")
    or a negator before it ("没坏", "一点都没出过问题", "不漏水了") — but not the A-not-A
    questions "有没有坏", "是不是坏了", "会不会漏水", nor a fault that is still the subject of
    what follows ("问题都没有解决"), nor the bare agreement "没问题" (a lexicon word of its own:
    "没问题 那就周五吧" agrees, "完全没问题" praises)."""
    words = "|".join(re.escape(f) for f in sorted(faults, key=len, reverse=True))
    after = rf"(?:一点|任何|啥|什么)?(?:{words})(?:都|也)?(?:没有|没)(?:了|啊|呀|哦|呢)?(?=\s|$)"
    before = (
        rf"(?<![有是会能要])(?!没有?问题)(?:一点|从来|完全|根本|再)?(?:都|也)?(?:没有|没|不再|不)"
        rf"(?:出过|出|有过|再)?(?:{words})"
    )
    return re.compile(f"{after}|{before}")


def _turns(section: Any) -> tuple[re.Pattern[str] | None, float]:
    """The ``turns`` section: words after which the verdict comes, and the weight of what
    precedes the last of them.  ``clause_start`` words turn only at the start of a clause
    or straight after an ``after_praise`` word ("就是物流太慢" and "不错就是慢" turn,
    "就是这个" inside a clause does not)."""
    if not isinstance(section, dict):
        raise LexiconError("turns: expected a mapping")
    anywhere = _strings(section.get("anywhere", []), "turns.anywhere")
    clause_start = _strings(section.get("clause_start", []), "turns.clause_start")
    weight = section.get("weight_before", 1.0)
    if not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise LexiconError("turns.weight_before: expected a number from 0 to 1")
    after_praise = _strings(section.get("after_praise", []), "turns.after_praise")
    parts = [f"(?:{_alternation(anywhere).pattern})"] if anywhere else []
    if clause_start:
        starts = [r"(?<=[\s,.!?;:，。！？；：、~～…])"]
        # "东西不错就是物流太慢": straight after praise, with no comma, it turns as well
        starts += [f"(?<={re.escape(word)})" for word in after_praise]
        parts.append(f"(?:{'|'.join(starts)})(?:{_alternation(clause_start).pattern})")
    return (re.compile("|".join(parts)) if parts else None), float(weight)


def _word_groups(groups: Any) -> list[list[re.Pattern[str]]]:
    """``safety_together``: groups of word lists that flag a risk only when every list has a
    word in the message (a gas word and a smell: "燃气灶关了还一直有气味")."""
    if not isinstance(groups, list):
        raise LexiconError("safety_together: expected a list of groups of word lists")
    compiled = []
    for index, group in enumerate(groups):
        if not isinstance(group, list) or len(group) < 2:
            raise LexiconError(f"safety_together[{index}]: expected at least two word lists")
        compiled.append(
            [_alternation(_strings(words, f"safety_together[{index}]")) for words in group]
        )
    return compiled


def _rewrites(section: Any) -> list[tuple[re.Pattern[str], str]]:
    """``rewrites``: regular expressions for phrasings said in many ways ("等了四十天"), each
    rewritten to one lexicon term before a message is read."""
    if not isinstance(section, list):
        raise LexiconError("rewrites: expected a list of {pattern, as} mappings")
    compiled = []
    for index, entry in enumerate(section):
        if not isinstance(entry, dict) or not {"pattern", "as"} <= set(entry):
            raise LexiconError(f"rewrites[{index}]: expected a mapping with 'pattern' and 'as'")
        try:
            compiled.append((re.compile(str(entry["pattern"])), str(entry["as"])))
        except re.error as error:
            raise LexiconError(f"rewrites[{index}]: bad pattern: {error}") from error
    return compiled


class Lexicon:
    """Compiled word lists; ``read(text)`` scans one folded, lower-cased message."""

    def __init__(self, data: dict[str, Any]) -> None:
        required = (
            "positive negative problem neutral negators degree_before degree_after sarcasm "
            "question_markers exclamation flag_exclusions"
        ).split() + list(FLAG_CATEGORIES)
        missing = [name for name in required if name not in data]
        if missing:
            raise LexiconError(f"lexicon missing sections: {', '.join(missing)}")
        roles: dict[str, dict[str, Any]] = {}

        def add(words: Iterable[str], **role: Any) -> None:
            for word in words:
                roles.setdefault(word, {}).update(role)

        for word, weight in _weighted(data["positive"], "positive").items():
            add([word], polarity=weight)
        for word, weight in _weighted(data["negative"], "negative").items():
            add([word], polarity=-weight)
        add(_strings(data["problem"], "problem"), problem=True)
        add(_strings(data["neutral"], "neutral"), neutral=True)
        for level in ("strong", "normal", "weak"):
            add(_strings(data["negators"].get(level, []), f"negators.{level}"), negation=level)
        for word, factor in _weighted(data["degree_before"], "degree_before").items():
            add([word], degree_before=factor)
        for word, factor in _weighted(data["degree_after"], "degree_after").items():
            add([word], degree_after=factor)
        for level in ("strong", "weak"):
            add(_strings(data["sarcasm"].get(level, []), f"sarcasm.{level}"), sarcasm=level)
        self._roles = {word: _Role(**role) for word, role in roles.items()}
        self._scan = _alternation(self._roles)
        self._flags = {name: _alternation(_strings(data[name], name)) for name in FLAG_CATEGORIES}
        self._flag_exclusions = _alternation(_strings(data["flag_exclusions"], "flag_exclusions"))
        self._safety_together = _word_groups(data.get("safety_together") or [])
        self._question = _alternation(_strings(data["question_markers"], "question_markers"))
        self._exclamation = _alternation(_strings(data["exclamation"], "exclamation"))
        faults = _strings(data.get("faults") or [], "faults")
        self._fault_absent = _fault_absence(faults) if faults else None
        self._turn, self._before_turn_weight = _turns(data.get("turns") or {})
        self._rewrites = _rewrites(data.get("rewrites") or [])

    @classmethod
    def load(cls, path: Path = LEXICON_FILE) -> Lexicon:
        """Read and compile the lexicon file, naming it in any error."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise LexiconError("expected a mapping of sections")
            return cls(data)
        except (OSError, yaml.YAMLError, LexiconError) as error:
            raise LexiconError(f"{path}: {error}") from error

    def read(self, folded: str) -> Cues:
        """Scan one message (Simplified, emoji kept) and return its cues."""
        text = folded.lower()
        for pattern, replacement in self._rewrites:
            text = pattern.sub(replacement, text)
        flag_text = self._flag_exclusions.sub(" ", text)
        cues = Cues(
            flags={name: bool(pattern.search(flag_text)) for name, pattern in self._flags.items()},
            question=bool(self._question.search(text)),
            exclamations=len(self._exclamation.findall(text)) + text.count("!") // 3,
        )
        if any(all(part.search(flag_text) for part in group) for group in self._safety_together):
            cues.flags["safety"] = True
        turns = list(self._turn.finditer(text)) if self._turn else []
        split = turns[-1].start() if turns else 0
        if split:
            # "东西不错，就是物流太慢了": the verdict follows the last turn; what came before
            # it counts for less (its strongest complaint still shows how angry the text is).
            self._read_span(text[:split], cues)
            cues.positive *= self._before_turn_weight
            cues.negative *= self._before_turn_weight
        self._read_span(text[split:], cues)
        if cues.sarcasm:  # praise said in anger counts against the service
            cues.negative += cues.positive
            cues.positive = 0.0
        return cues

    def _read_span(self, text: str, cues: Cues) -> None:
        for clause in _CLAUSE_BREAK.split(text):
            if self._fault_absent is not None:
                # "一点问题都没有" / "没坏" is good news: a complaint turned round.
                clause, absent = self._fault_absent.subn(" ", clause)
                cues.positive += absent
                cues.double_negations += absent
            if clause.strip():
                self._read_clause(clause, cues)

    def _read_clause(self, clause: str, cues: Cues) -> None:
        matches = [
            (m.start(), m.end(), self._roles[m.group(0)]) for m in self._scan.finditer(clause)
        ]
        negation = ""
        cancelled = False  # two negators in a row ("不是不" + 好): they cancel
        degree = 1.0
        modifier_end = -1
        last_word: tuple[int, float] | None = None  # (end, contribution) of the last word
        for index, (start, end, role) in enumerate(matches):
            if modifier_end >= 0 and start - modifier_end > _MODIFIER_REACH:
                negation, cancelled, degree, modifier_end = "", False, 1.0, -1
            if role.sarcasm == "strong":
                cues.sarcasm_strong = True
            elif role.sarcasm == "weak":
                cues.sarcasm_weak = True
            if role.neutral:
                continue
            if role.degree_after and last_word and start - last_word[0] <= 1:
                boosted = last_word[1] * role.degree_after
                self._add(cues, boosted - last_word[1])
                if boosted < 0:
                    cues.strongest_negative = max(cues.strongest_negative, -boosted)
                last_word = None
                continue
            next_is_word = index + 1 < len(matches) and matches[index + 1][0] - end <= 1
            acts_as_degree = role.degree_before and (
                not role.polarity or (next_is_word and matches[index + 1][2].polarity)
            )
            if role.negation:
                cancelled = bool(negation)  # a second negator cancels the first
                negation = "" if negation else role.negation
                modifier_end = end
                continue
            if acts_as_degree:
                degree *= role.degree_before
                modifier_end = end
                continue
            if role.problem and not role.polarity:
                if not negation:
                    cues.problems += 1
                negation, cancelled, degree, modifier_end = "", False, 1.0, -1
                continue
            if not role.polarity:
                continue
            if cancelled and role.polarity > 0:
                cues.double_negations += 1
            value = self._modified(role.polarity, negation, degree, cues)
            self._add(cues, value)
            if value < 0:
                cues.strongest_negative = max(cues.strongest_negative, -value)
            last_word = (end, value)
            negation, cancelled, degree, modifier_end = "", False, 1.0, -1

    @staticmethod
    def _modified(polarity: float, negation: str, degree: float, cues: Cues) -> float:
        """Apply a preceding negator and degree word to one sentiment word."""
        value = polarity * degree
        if not negation:
            return value
        if polarity > 0:
            cues.negated_positive = True
            factor = {"strong": -1.5, "normal": -0.9, "weak": -0.5}[negation]
        else:
            cues.double_negations += 1
            factor = {"strong": -0.8, "normal": -0.5, "weak": -0.3}[negation]
        return value * factor

    @staticmethod
    def _add(cues: Cues, value: float) -> None:
        if value >= 0:
            cues.positive += value
        else:
            cues.negative -= value
