"""The service policy file: defaults from the domain rules, and loud failures on bad config."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from bot import settings
from bot.policy import PolicyError, ServicePolicy, load_policy
from bot.store.models import NEED_CLASSES, TICKET_CATEGORIES, TICKET_STATUSES, TIERS

OPENED_AT = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)


def _after(minutes: float) -> datetime:
    return OPENED_AT + timedelta(minutes=minutes)


def test_normal_ticket_gets_5_minutes_2_hours_24_hours(policy: ServicePolicy) -> None:
    deadlines = policy.deadlines(OPENED_AT, "normal", "normal")
    assert (deadlines.first_response, deadlines.plan, deadlines.close) == (
        _after(5),
        _after(120),
        _after(24 * 60),
    )


def test_vip_works_in_half_the_time(policy: ServicePolicy) -> None:
    deadlines = policy.deadlines(OPENED_AT, "vip", "normal")
    assert (deadlines.first_response, deadlines.plan, deadlines.close) == (
        _after(2.5),
        _after(60),
        _after(12 * 60),
    )


def test_urgent_needs_a_plan_within_an_hour(policy: ServicePolicy) -> None:
    deadlines = policy.deadlines(OPENED_AT, "normal", "urgent")
    assert (deadlines.first_response, deadlines.plan, deadlines.close) == (
        _after(5),
        _after(60),
        _after(720),
    )
    vip_urgent = policy.deadlines(OPENED_AT, "vip", "urgent")
    assert vip_urgent.plan == _after(30)


def test_emotional_and_special_overrides(policy: ServicePolicy) -> None:
    emotional = policy.deadlines(OPENED_AT, "silver", "emotional")
    assert (emotional.plan, emotional.close) == (_after(60), _after(120))
    special = policy.deadlines(OPENED_AT, "gold", "special")
    assert (special.plan, special.close) == (_after(120), _after(2880))


def test_deadlines_refuse_naive_times(policy: ServicePolicy) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        policy.deadlines(datetime(2026, 11, 23, 9, 0), "normal", "normal")


def test_priority_follows_tier_then_need_class(policy: ServicePolicy) -> None:
    assert policy.priority_for("normal", "normal") == 4
    assert policy.priority_for("silver", "normal") == 3
    assert policy.priority_for("vip", "normal") == 2
    assert policy.priority_for("normal", "urgent") == 2
    assert policy.priority_for("vip", "urgent") == 1
    assert policy.priority_for("gold", "emotional") == 1
    for need_class in NEED_CLASSES:
        by_tier = [policy.priority_for(tier, need_class) for tier in TIERS]
        assert by_tier == sorted(by_tier, reverse=True), "higher tiers never get lower priority"
        assert all(1 <= priority <= 4 for priority in by_tier)


def test_intents_route_to_categories(policy: ServicePolicy) -> None:
    assert policy.category_for_intent("request_return") == "return_exchange"
    assert policy.category_for_intent("request_exchange") == "return_exchange"
    assert policy.category_for_intent("report_fault") == "repair"
    assert policy.category_for_intent("book_maintenance") == "installation_maintenance"
    assert policy.category_for_intent("query_order") == "logistics"
    assert policy.category_for_intent("price_dispute") == "price_billing"
    assert policy.category_for_intent("complain") == "complaint"
    assert policy.category_for_intent("ask_question") == "inquiry"
    assert policy.category_for_intent("greet") is None


def test_defaults_from_the_domain_rules(policy: ServicePolicy) -> None:
    assert policy.default_need_class("complaint") == "emotional"
    assert policy.default_need_class("return_exchange") == "normal"
    assert policy.return_review_minutes == 48 * 60
    assert not policy.needs_supervisor(Decimal("500"))
    assert policy.needs_supervisor(Decimal("500.01"))
    assert str(policy.timezone) == "Asia/Shanghai"


def test_every_status_has_a_label_and_next_step_text(policy: ServicePolicy) -> None:
    for status in TICKET_STATUSES:
        assert policy.status_label(status)
        assert policy.next_step_text(policy.next_step_key(status))
    assert set(policy.texts.categories) == set(TICKET_CATEGORIES)


def test_load_policy_is_cached_per_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.POLICY_FILE_ENV, raising=False)
    assert load_policy() is load_policy(settings.DEFAULT_POLICY_FILE)


def _write_policy(tmp_path: Path, change: dict) -> Path:
    raw = yaml.safe_load(settings.DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
    raw.update(change)
    path = tmp_path / "policy.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_policy_file_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _write_policy(tmp_path, {"return_review_minutes": 720})
    monkeypatch.setenv(settings.POLICY_FILE_ENV, str(path))
    assert load_policy().return_review_minutes == 720


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (
            {"sla": {"default": {"first_response": 5, "plan": 120, "close": 1440}}},
            "tier_multipliers",
        ),
        ({"category_need_classes": {"repair": "normal"}}, "default need class missing"),
        ({"intent_categories": {"complain": "grumbling"}}, "unknown categories: grumbling"),
        ({"business_timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"surprise": 1}, "extra fields not permitted"),
    ],
)
def test_invalid_policy_names_the_file_and_the_problem(
    tmp_path: Path, change: dict, complaint: str
) -> None:
    path = _write_policy(tmp_path, change)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert str(path) in str(raised.value)
    assert complaint in str(raised.value)


def test_missing_policy_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read service policy"):
        load_policy(tmp_path / "absent.yml")
