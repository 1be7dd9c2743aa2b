"""Escalation policy: when a chat goes to a person, queue priority, business hours.

The rules live in `config/escalation_policy.yml` so operations can tune them without a code
change. `EscalationPolicy.decide` is a pure function of the customer's recent turns, so the
Rasa policy, the action server and the tests all get the same answer for the same turns.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Extra, Field, root_validator, validator

# One validation helper for both policy files, so their errors read alike.
from bot.config_file import read_config_file
from bot.nlu.text import to_simplified
from bot.policy import _require_keys
from bot.settings import PROJECT_ROOT
from bot.store.models import TIERS

ESCALATION_POLICY_FILE_ENV = "ASSISTANT_ESCALATION_POLICY_FILE"
DEFAULT_ESCALATION_POLICY_FILE = PROJECT_ROOT / "config" / "escalation_policy.yml"

# Fixed order: ties between triggers of equal severity go to the earlier one.
TRIGGERS = (
    "sentiment_escalate",
    "negative_streak",
    "complaint",
    "request_human",
    "vip_open_ticket",
    "fallback_streak",
)
EMOTIONAL_TRIGGERS = frozenset({"sentiment_escalate", "negative_streak", "complaint"})
"""Triggers whose call-back runs on the emotional SLA clock."""
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SEVERITY = 5
# A week always contains the next opening time, if there is one at all.
_DAYS_TO_SEARCH = 8


class EscalationPolicyError(ValueError):
    """The escalation policy file is missing, unreadable or breaks a rule."""


@dataclass(frozen=True)
class TurnSignal:
    """What the NLU made of one customer message, as far as escalation cares."""

    intent: str | None
    sentiment_label: str | None = None
    sentiment_escalate: bool = False
    sentiment_reasons: tuple[str, ...] = ()
    fallback: bool = False


@dataclass(frozen=True)
class EscalationDecision:
    """Why a chat goes to a person and how serious it is (0..5)."""

    trigger: str
    reasons: tuple[str, ...]
    severity: int


class _StrictModel(BaseModel):
    class Config:
        extra = Extra.forbid
        allow_mutation = False


class SwitchableTrigger(_StrictModel):
    enabled: bool = True


class StreakTrigger(SwitchableTrigger):
    turns: int = Field(ge=1)


class NegativeStreakTrigger(StreakTrigger):
    labels: list[str] = Field(min_items=1)


class IntentTrigger(SwitchableTrigger):
    intents: list[str] = Field(min_items=1)


class RequestHumanTrigger(IntentTrigger):
    not_for_intents: list[str] = []
    """Intents whose person words ask about the bot ("你是真人吗"), not for a person."""


class VipOpenTicketTrigger(SwitchableTrigger):
    tiers: list[str] = Field(min_items=1)
    help_intents: list[str] = Field(min_items=1)
    offline_carry_on: dict[str, str] = {}
    """With nobody online, what the bot still does for the request (intent → action or form)."""

    @validator("offline_carry_on")
    def _carry_on_help_intents(cls, carry_on: dict[str, str], values: dict) -> dict[str, str]:
        unknown = sorted(set(carry_on) - set(values.get("help_intents") or ()))
        if unknown:
            raise ValueError(f"not among help_intents: {', '.join(unknown)}")
        return carry_on

    @validator("tiers")
    def _known_tiers(cls, tiers: list[str]) -> list[str]:
        unknown = sorted(set(tiers) - set(TIERS))
        if unknown:
            raise ValueError(f"unknown tiers: {', '.join(unknown)} (known: {', '.join(TIERS)})")
        return tiers


class Triggers(_StrictModel):
    sentiment_escalate: SwitchableTrigger
    negative_streak: NegativeStreakTrigger
    request_human: RequestHumanTrigger
    fallback_streak: StreakTrigger
    complaint: IntentTrigger
    vip_open_ticket: VipOpenTicketTrigger


class Severity(_StrictModel):
    triggers: dict[str, int]
    reasons: dict[str, int]
    default_reason: int = Field(ge=0, le=MAX_SEVERITY)

    @validator("triggers")
    def _every_trigger(cls, severities: dict[str, int]) -> dict[str, int]:
        _require_keys(severities, TRIGGERS, "trigger severity")
        return _in_range(severities)

    @validator("reasons")
    def _reasons_in_range(cls, severities: dict[str, int]) -> dict[str, int]:
        return _in_range(severities)


def _in_range(severities: dict[str, int]) -> dict[str, int]:
    wrong = sorted(name for name, value in severities.items() if not 0 <= value <= MAX_SEVERITY)
    if wrong:
        raise ValueError(f"severity must be 0..{MAX_SEVERITY} for: {', '.join(wrong)}")
    return severities


class PriorityWeights(_StrictModel):
    tier_weights: dict[str, float]
    severity_weight: float = Field(ge=0)
    points_per_waiting_minute: float = Field(ge=0)

    @validator("tier_weights")
    def _every_tier(cls, weights: dict[str, float]) -> dict[str, float]:
        _require_keys(weights, TIERS, "tier weight")
        return weights


class OpeningHours(_StrictModel):
    open: time
    close: time

    @root_validator(skip_on_failure=True)
    def _opens_before_closing(cls, values: dict) -> dict:
        if values["open"] >= values["close"]:
            raise ValueError("open must be before close (overnight shifts are not supported)")
        return values


class BusinessHours(_StrictModel):
    timezone: str
    days: dict[str, OpeningHours | None] = {}
    # A round-the-clock desk (or a test set-up): open whatever `days` says.
    always_open: bool = False

    @validator("timezone")
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {name!r}") from error
        return name

    @validator("days")
    def _known_days(cls, days: dict[str, OpeningHours | None]) -> dict[str, OpeningHours | None]:
        unknown = sorted(set(days) - set(WEEKDAYS))
        if unknown:
            raise ValueError(f"unknown weekdays: {', '.join(unknown)} (use {', '.join(WEEKDAYS)})")
        return days

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)

    def hours_on(self, weekday: int) -> OpeningHours | None:
        return self.days.get(WEEKDAYS[weekday])

    def is_open(self, moment: datetime) -> bool:
        """Whether `moment` (timezone-aware) falls inside opening hours."""
        local = _require_aware(moment).astimezone(self.zone)
        if self.always_open:
            return True
        hours = self.hours_on(local.weekday())
        return hours is not None and hours.open <= local.time() < hours.close

    def next_opening(self, moment: datetime) -> datetime | None:
        """`moment` itself when open, else the next opening time; None if never open."""
        local = _require_aware(moment).astimezone(self.zone)
        if self.is_open(local):
            return moment
        for offset in range(_DAYS_TO_SEARCH):
            day = local.date() + timedelta(days=offset)
            hours = self.hours_on(day.weekday())
            if hours is None:
                continue
            opening = datetime.combine(day, hours.open, tzinfo=self.zone)
            if opening > local:
                return opening
        return None


class LeaveQueue(_StrictModel):
    """Messages that take a customer who is still waiting for a person out of the queue."""

    words: list[str] = Field(min_items=1)
    """Typed words that say the customer will not wait ("算了 不等了", "不用转人工了")."""
    intents: list[str] = []
    """Short typed messages of these intents count too ("算了", "不用了")."""
    short_message_chars: int = Field(6, ge=0)
    payload_intents: list[str] = []
    """Buttons (payloads) of these intents count: the queued message's "不等了" buttons."""


class ConsoleSettings(_StrictModel):
    session_hours: float = Field(gt=0)
    login_failure_limit: int = Field(ge=1)
    login_failure_window_minutes: float = Field(gt=0)


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"refusing naive datetime {moment!r}: pass a timezone-aware value")
    return moment


class EscalationPolicy(_StrictModel):
    """The validated escalation policy, with the decisions and numbers the handoff needs."""

    triggers: Triggers
    severity: Severity
    priority: PriorityWeights
    business_hours: BusinessHours
    average_handling_minutes: float = Field(gt=0)
    agent_presence_timeout_seconds: float = Field(gt=0)
    live_channels: tuple[str, ...] = ("webchat", "wechat")
    """Channels an agent's message can reach; a chat on any other gets a call-back."""
    leave_queue: LeaveQueue
    console: ConsoleSettings

    @property
    def presence_timeout(self) -> timedelta:
        return timedelta(seconds=self.agent_presence_timeout_seconds)

    def decide(
        self,
        turns: Sequence[TurnSignal],
        customer_tier: str | None,
        has_open_ticket: bool,
        *,
        in_form: bool = False,
        person_offered: bool = False,
    ) -> EscalationDecision | None:
        """Whether the message just received (last of `turns`, oldest first) needs a person.

        ``in_form``: the message answers a form's question; ``person_offered``: this
        conversation already brought in a person or promised a call-back.  Either way a VIP
        is already being helped, so their open ticket alone brings in no one again.
        When several triggers fire, the most severe wins (ties: the order of TRIGGERS).
        """
        if not turns:
            return None
        fired = [
            decision
            for decision in (
                self._sentiment_escalate(turns),
                self._negative_streak(turns),
                self._intent_trigger("complaint", turns, ("complaint",)),
                self._intent_trigger("request_human", turns, ("request_person",)),
                None
                if in_form or person_offered
                else self._vip_open_ticket(turns, customer_tier, has_open_ticket),
                self._fallback_streak(turns),
            )
            if decision is not None
        ]
        if not fired:
            return None
        return max(
            fired, key=lambda decision: (decision.severity, -TRIGGERS.index(decision.trigger))
        )

    def leaves_queue(self, text: str | None, intent: str | None) -> bool:
        """Whether a message written while waiting for a person says the customer will not
        wait.  Impatience is not leaving: "等不了了 快点" must keep its place in the queue, so
        only the configured words (or a short cancel such as "算了") and buttons count."""
        rule = self.leave_queue
        written = (text or "").strip()
        if not written:
            return False
        if written.startswith("/"):
            return intent in rule.payload_intents
        folded = to_simplified(written).lower()
        if any(word in folded for word in rule.words):
            return True
        return intent in rule.intents and len(written) <= rule.short_message_chars

    def severity_for(self, trigger: str, reasons: Sequence[str]) -> int:
        """The trigger's severity, raised by any more serious reason."""
        reason_severities = (
            self.severity.reasons.get(reason, self.severity.default_reason) for reason in reasons
        )
        return max(self.severity.triggers[trigger], *reason_severities, 0)

    def priority_score(self, tier: str | None, severity: int, waiting: timedelta) -> float:
        """Queue priority: higher is served first; grows while the customer waits."""
        weights = self.priority
        minutes = max(waiting.total_seconds(), 0) / 60
        return round(
            weights.tier_weights[tier or "normal"]
            + severity * weights.severity_weight
            + minutes * weights.points_per_waiting_minute,
            2,
        )

    def estimated_wait_minutes(self, position: int, agents_online: int) -> int:
        """Rough wait for the chat at `position` (1 = next) with this many agents online."""
        if position < 1:
            raise ValueError("queue positions start at 1")
        return max(1, math.ceil(position * self.average_handling_minutes / max(agents_online, 1)))

    def _decision(self, trigger: str, reasons: Sequence[str]) -> EscalationDecision:
        unique = tuple(dict.fromkeys(reasons))
        return EscalationDecision(trigger, unique, self.severity_for(trigger, unique))

    def _sentiment_escalate(self, turns: Sequence[TurnSignal]) -> EscalationDecision | None:
        last = turns[-1]
        if not last.sentiment_escalate:
            return None
        if set(last.sentiment_reasons) == {"request_person"}:
            # Calmly asking for a person ("找你们主管") is the request_human trigger, even when
            # the intent model heard something else -- unless the words ask about the bot.
            rule = self.triggers.request_human
            if not rule.enabled or last.intent in rule.not_for_intents:
                return None
            return self._decision("request_human", last.sentiment_reasons)
        if not self.triggers.sentiment_escalate.enabled:
            return None
        return self._decision("sentiment_escalate", last.sentiment_reasons)

    def _negative_streak(self, turns: Sequence[TurnSignal]) -> EscalationDecision | None:
        rule = self.triggers.negative_streak
        streak = turns[-rule.turns :]
        if not rule.enabled or len(streak) < rule.turns:
            return None
        if not all(turn.sentiment_label in rule.labels for turn in streak):
            return None
        reasons = [reason for turn in streak for reason in turn.sentiment_reasons]
        return self._decision("negative_streak", reasons or ["negative"])

    def _intent_trigger(
        self, name: str, turns: Sequence[TurnSignal], reasons: tuple[str, ...]
    ) -> EscalationDecision | None:
        rule: IntentTrigger = getattr(self.triggers, name)
        last = turns[-1]
        if not rule.enabled or last.intent not in rule.intents:
            return None
        return self._decision(name, (*reasons, *last.sentiment_reasons))

    def _vip_open_ticket(
        self, turns: Sequence[TurnSignal], customer_tier: str | None, has_open_ticket: bool
    ) -> EscalationDecision | None:
        rule = self.triggers.vip_open_ticket
        last = turns[-1]
        if not (rule.enabled and has_open_ticket and customer_tier in rule.tiers):
            return None
        if last.intent not in rule.help_intents:
            return None
        return self._decision("vip_open_ticket", ("vip", *last.sentiment_reasons))

    def _fallback_streak(self, turns: Sequence[TurnSignal]) -> EscalationDecision | None:
        rule = self.triggers.fallback_streak
        streak = turns[-rule.turns :]
        if not rule.enabled or len(streak) < rule.turns:
            return None
        if not all(turn.fallback for turn in streak):
            return None
        return self._decision("fallback_streak", ("fallback",))


def escalation_policy_file() -> Path:
    """The policy file: ASSISTANT_ESCALATION_POLICY_FILE (relative to the project) or default."""
    configured = os.environ.get(ESCALATION_POLICY_FILE_ENV, "").strip()
    if not configured:
        return DEFAULT_ESCALATION_POLICY_FILE
    path = Path(configured).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def read_escalation_policy(path: Path) -> EscalationPolicy:
    """Parse and validate one file; errors name the file and the field path."""
    return read_config_file(path, EscalationPolicy, "escalation policy", EscalationPolicyError)


@lru_cache(maxsize=4)
def _cached_policy(path: Path) -> EscalationPolicy:
    return read_escalation_policy(path)


def load_escalation_policy(path: str | Path | None = None) -> EscalationPolicy:
    """The escalation policy (default: ASSISTANT_ESCALATION_POLICY_FILE), read once per path."""
    resolved = Path(path) if path is not None else escalation_policy_file()
    return _cached_policy(resolved.resolve())


def need_class_for(trigger: str, reasons: Sequence[str]) -> str:
    """Which SLA clock the call-back runs on: danger is urgent, upset customers emotional."""
    if "safety" in reasons:
        return "urgent"
    if trigger in EMOTIONAL_TRIGGERS or {"anger", "threat"} & set(reasons):
        return "emotional"
    return "normal"
