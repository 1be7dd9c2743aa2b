"""Service policy (SLA clocks, priorities, routing, texts) loaded from YAML and validated.

The business rules live in `config/service_policy.yml` so operations can tune them without a
code change; this module refuses a file that would leave any tier, need class, category or
status without a rule, naming the file in the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Extra, Field, ValidationError, root_validator, validator

from bot import settings
from bot.config_file import read_config_file
from bot.store.models import (
    DELIVERY_STATUSES,
    HIGHEST_PRIORITY,
    LOWEST_PRIORITY,
    NEED_CLASSES,
    ORDER_STATUSES,
    TICKET_CATEGORIES,
    TICKET_STATUSES,
    TIERS,
)


class PolicyError(ValueError):
    """The policy file is missing, unreadable or breaks a rule."""


class SlaStatus(str, Enum):
    """Where one SLA clock of a ticket stands."""

    MET = "met"  # milestone reached on time
    BREACHED = "breached"  # reached late, or not reached and overdue
    PENDING = "pending"  # not reached yet, still within time
    WAIVED = "waived"  # ticket cancelled before the milestone


@dataclass(frozen=True)
class SlaDeadlines:
    """When a ticket must get its first response, a plan, and be closed (aware UTC)."""

    first_response: datetime
    plan: datetime
    close: datetime


def _require_keys(mapping: dict, expected: tuple[str, ...], what: str) -> None:
    missing = sorted(set(expected) - set(mapping))
    unknown = sorted(set(mapping) - set(expected))
    if missing:
        raise ValueError(f"{what} missing for: {', '.join(missing)}")
    if unknown:
        raise ValueError(f"unknown {what} keys: {', '.join(unknown)}")


class _StrictModel(BaseModel):
    class Config:
        extra = Extra.forbid
        allow_mutation = False


class SlaMinutes(_StrictModel):
    first_response: float = Field(gt=0)
    plan: float = Field(gt=0)
    close: float = Field(gt=0)

    @root_validator(skip_on_failure=True)
    def _clocks_in_order(cls, values: dict) -> dict:
        if not values["first_response"] <= values["plan"] <= values["close"]:
            raise ValueError("expected first_response <= plan <= close")
        return values


class SlaOverride(_StrictModel):
    first_response: float | None = Field(default=None, gt=0)
    plan: float | None = Field(default=None, gt=0)
    close: float | None = Field(default=None, gt=0)


class SlaPolicy(_StrictModel):
    default: SlaMinutes
    tier_multipliers: dict[str, float]
    need_class_overrides: dict[str, SlaOverride] = {}

    @validator("tier_multipliers")
    def _every_tier(cls, multipliers: dict[str, float]) -> dict[str, float]:
        _require_keys(multipliers, TIERS, "tier multiplier")
        if any(value <= 0 for value in multipliers.values()):
            raise ValueError("tier multipliers must be positive")
        return multipliers

    @validator("need_class_overrides")
    def _known_need_classes(cls, overrides: dict[str, SlaOverride]) -> dict[str, SlaOverride]:
        unknown = sorted(set(overrides) - set(NEED_CLASSES))
        if unknown:
            raise ValueError(f"unknown need classes: {', '.join(unknown)}")
        return overrides

    @root_validator(skip_on_failure=True)
    def _overrides_stay_ordered(cls, values: dict) -> dict:
        default: SlaMinutes = values["default"]
        for need_class, override in values["need_class_overrides"].items():
            merged = {**default.dict(), **override.dict(exclude_none=True)}
            try:
                SlaMinutes(**merged)
            except ValidationError as error:
                raise ValueError(f"need class {need_class!r}: {error}") from error
        return values

    def minutes(self, need_class: str) -> SlaMinutes:
        override = self.need_class_overrides.get(need_class)
        if override is None:
            return self.default
        return SlaMinutes(**{**self.default.dict(), **override.dict(exclude_none=True)})


class PriorityLevel(_StrictModel):
    min_score: int = Field(ge=0)
    priority: int = Field(ge=HIGHEST_PRIORITY, le=LOWEST_PRIORITY)


class PriorityPolicy(_StrictModel):
    tier_weights: dict[str, int]
    need_class_weights: dict[str, int]
    levels: list[PriorityLevel]

    @validator("tier_weights")
    def _every_tier(cls, weights: dict[str, int]) -> dict[str, int]:
        _require_keys(weights, TIERS, "tier weight")
        return weights

    @validator("need_class_weights")
    def _every_need_class(cls, weights: dict[str, int]) -> dict[str, int]:
        _require_keys(weights, NEED_CLASSES, "need-class weight")
        return weights

    @validator("levels")
    def _levels_cover_every_score(cls, levels: list[PriorityLevel]) -> list[PriorityLevel]:
        if not levels:
            raise ValueError("at least one priority level is needed")
        if min(level.min_score for level in levels) != 0:
            raise ValueError("one level must have min_score 0 so every ticket gets a priority")
        return sorted(levels, key=lambda level: level.min_score, reverse=True)

    def priority_for(self, tier: str, need_class: str) -> int:
        score = self.tier_weights[tier] + self.need_class_weights[need_class]
        return next(level.priority for level in self.levels if score >= level.min_score)


class CompensationPolicy(_StrictModel):
    agent_limit_cny: Decimal = Field(ge=0)


class ReturnWindows(_StrictModel):
    """Days from delivery: 7-day no-reason returns, 15-day exchanges for defects, 15-day
    price protection."""

    no_reason_return: int = Field(7, gt=0)
    defect_exchange: int = Field(15, gt=0)
    price_protection: int = Field(15, gt=0)


class StatusText(_StrictModel):
    label: str
    next_step: str


class PolicyTexts(_StrictModel):
    ticket_statuses: dict[str, StatusText]
    next_steps: dict[str, str]
    categories: dict[str, str]
    need_classes: dict[str, str]
    tiers: dict[str, str]
    order_statuses: dict[str, str]
    delivery_statuses: dict[str, str]
    sla_states: dict[str, str]

    @validator("ticket_statuses")
    def _every_ticket_status(cls, texts: dict[str, StatusText]) -> dict[str, StatusText]:
        _require_keys(texts, TICKET_STATUSES, "ticket status text")
        return texts

    @validator("categories")
    def _every_category(cls, labels: dict[str, str]) -> dict[str, str]:
        _require_keys(labels, TICKET_CATEGORIES, "category label")
        return labels

    @validator("need_classes")
    def _every_need_class(cls, labels: dict[str, str]) -> dict[str, str]:
        _require_keys(labels, NEED_CLASSES, "need-class label")
        return labels

    @validator("tiers")
    def _every_tier(cls, labels: dict[str, str]) -> dict[str, str]:
        _require_keys(labels, TIERS, "tier label")
        return labels

    @validator("order_statuses")
    def _every_order_status(cls, labels: dict[str, str]) -> dict[str, str]:
        _require_keys(labels, ORDER_STATUSES, "order status label")
        return labels

    @validator("delivery_statuses")
    def _every_delivery_status(cls, labels: dict[str, str]) -> dict[str, str]:
        _require_keys(labels, DELIVERY_STATUSES, "delivery status label")
        return labels

    @validator("sla_states")
    def _every_sla_state(cls, labels: dict[str, str]) -> dict[str, str]:
        _require_keys(labels, tuple(state.value for state in SlaStatus), "SLA state label")
        return labels

    @root_validator(skip_on_failure=True)
    def _next_steps_exist(cls, values: dict) -> dict:
        missing = sorted(
            {text.next_step for text in values["ticket_statuses"].values()}
            - set(values["next_steps"])
        )
        if missing:
            raise ValueError(f"next_steps has no text for: {', '.join(missing)}")
        return values


class ServicePolicy(_StrictModel):
    """The validated policy, with the calculations the services need."""

    business_timezone: str
    sla: SlaPolicy
    return_review_minutes: float = Field(gt=0)
    return_windows: ReturnWindows = ReturnWindows()
    compensation: CompensationPolicy
    intent_categories: dict[str, str]
    category_need_classes: dict[str, str]
    priority: PriorityPolicy
    texts: PolicyTexts

    @validator("business_timezone")
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {name!r}") from error
        return name

    @validator("intent_categories")
    def _intents_open_known_categories(cls, mapping: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(mapping.values()) - set(TICKET_CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories: {', '.join(unknown)}")
        return mapping

    @validator("category_need_classes")
    def _every_category_has_need_class(cls, mapping: dict[str, str]) -> dict[str, str]:
        _require_keys(mapping, TICKET_CATEGORIES, "default need class")
        unknown = sorted(set(mapping.values()) - set(NEED_CLASSES))
        if unknown:
            raise ValueError(f"unknown need classes: {', '.join(unknown)}")
        return mapping

    @property
    def timezone(self) -> tzinfo:
        return ZoneInfo(self.business_timezone)

    def deadlines(self, opened_at: datetime, tier: str, need_class: str) -> SlaDeadlines:
        """SLA deadlines of a ticket opened at `opened_at` (must be timezone-aware)."""
        if opened_at.tzinfo is None:
            raise ValueError("opened_at must be timezone-aware")
        minutes = self.sla.minutes(need_class)
        multiplier = self.sla.tier_multipliers[tier]

        def due(after_minutes: float) -> datetime:
            return opened_at + timedelta(minutes=after_minutes * multiplier)

        return SlaDeadlines(
            first_response=due(minutes.first_response),
            plan=due(minutes.plan),
            close=due(minutes.close),
        )

    def priority_for(self, tier: str, need_class: str) -> int:
        """Ticket priority, 1 (highest) to 4, from customer tier and need class."""
        return self.priority.priority_for(tier, need_class)

    def category_for_intent(self, intent: str) -> str | None:
        """Ticket category an intent opens, or None when the intent opens no ticket."""
        return self.intent_categories.get(intent)

    def default_need_class(self, category: str) -> str:
        return self.category_need_classes[category]

    def needs_supervisor(self, compensation_cny: Decimal) -> bool:
        """Agents grant compensation alone only up to the configured limit per case."""
        return compensation_cny > self.compensation.agent_limit_cny

    def status_label(self, status: str) -> str:
        return self.texts.ticket_statuses[status].label

    def next_step_key(self, status: str) -> str:
        return self.texts.ticket_statuses[status].next_step

    def next_step_text(self, key: str) -> str:
        return self.texts.next_steps[key]


@lru_cache(maxsize=4)
def _cached_policy(path: Path) -> ServicePolicy:
    return read_config_file(path, ServicePolicy, "service policy", PolicyError)


def load_policy(path: str | Path | None = None) -> ServicePolicy:
    """The service policy (default: ASSISTANT_POLICY_FILE), read once per path."""
    resolved = Path(path) if path is not None else settings.policy_file()
    return _cached_policy(resolved.resolve())
