"""Escalation decisions, priority and business hours follow config/escalation_policy.yml."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from bot.handoff.policy import (
    DEFAULT_ESCALATION_POLICY_FILE,
    EscalationPolicy,
    EscalationPolicyError,
    TurnSignal,
    load_escalation_policy,
    need_class_for,
    read_escalation_policy,
)
from bot.settings import PROJECT_ROOT, project_domain

SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture
def policy() -> EscalationPolicy:
    return load_escalation_policy(DEFAULT_ESCALATION_POLICY_FILE)


def _raw() -> dict:
    return yaml.safe_load(DEFAULT_ESCALATION_POLICY_FILE.read_text(encoding="utf-8"))


def _with(tmp_path: Path, raw: dict) -> EscalationPolicy:
    path = tmp_path / "escalation.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return read_escalation_policy(path)


def calm(intent: str | None = "ask_question") -> TurnSignal:
    return TurnSignal(intent=intent, sentiment_label="neutral")


def negative(*reasons: str) -> TurnSignal:
    return TurnSignal(intent="report_fault", sentiment_label="negative", sentiment_reasons=reasons)


def fallback() -> TurnSignal:
    return TurnSignal(intent="nlu_fallback", fallback=True)


def test_calm_conversation_stays_with_the_bot(policy: EscalationPolicy) -> None:
    assert policy.decide([calm(), calm("query_order")], "normal", False) is None
    assert policy.decide([], "vip", True) is None


def test_flagged_message_escalates_with_its_reasons(policy: EscalationPolicy) -> None:
    turn = TurnSignal("report_fault", "angry", True, ("safety", "anger"))
    decision = policy.decide([calm(), turn], None, False)
    assert decision is not None
    assert decision.trigger == "sentiment_escalate"
    assert decision.reasons == ("safety", "anger")
    assert decision.severity == 5  # safety outranks anger


def test_two_negative_turns_in_a_row_escalate_but_one_does_not(policy: EscalationPolicy) -> None:
    assert policy.decide([calm(), negative()], None, False) is None
    assert policy.decide([negative(), calm(), negative()], None, False) is None
    decision = policy.decide([negative("anger"), negative("anger")], None, False)
    assert decision is not None
    assert (decision.trigger, decision.reasons, decision.severity) == (
        "negative_streak",
        ("anger",),
        3,
    )


def test_asking_for_a_person_escalates(policy: EscalationPolicy) -> None:
    decision = policy.decide([calm(), calm("request_human")], None, False)
    assert decision is not None
    assert (decision.trigger, decision.reasons, decision.severity) == (
        "request_human",
        ("request_person",),
        2,
    )


def test_a_calm_request_for_a_person_flagged_by_sentiment_counts_as_asking_for_one(
    policy: EscalationPolicy,
) -> None:
    asked = TurnSignal(
        intent="inform",
        sentiment_label="neutral",
        sentiment_escalate=True,
        sentiment_reasons=("request_person",),
    )
    decision = policy.decide([asked], None, False)
    assert decision is not None
    assert (decision.trigger, decision.severity) == ("request_human", 2)
    angry = TurnSignal(
        intent="request_human",
        sentiment_label="negative",
        sentiment_escalate=True,
        sentiment_reasons=("request_person", "anger"),
    )
    decision = policy.decide([angry], None, False)
    assert decision is not None and decision.trigger == "sentiment_escalate"


def test_asking_whether_the_bot_is_a_person_is_not_asking_for_one(
    policy: EscalationPolicy,
) -> None:
    challenge = TurnSignal(
        intent="bot_challenge",
        sentiment_label="neutral",
        sentiment_escalate=True,
        sentiment_reasons=("request_person",),  # "你是真人吗" has the word "真人"
    )
    assert policy.decide([challenge], None, False) is None


def test_two_fallbacks_in_a_row_escalate(policy: EscalationPolicy) -> None:
    assert policy.decide([calm(), fallback()], None, False) is None
    decision = policy.decide([fallback(), fallback()], None, False)
    assert decision is not None
    assert (decision.trigger, decision.severity) == ("fallback_streak", 1)


def test_complaint_escalates(policy: EscalationPolicy) -> None:
    decision = policy.decide([calm("complain")], "normal", False)
    assert decision is not None
    assert decision.trigger == "complaint"


def test_vip_with_an_open_ticket_asking_for_help_escalates(policy: EscalationPolicy) -> None:
    turns = [calm("query_ticket_status")]
    decision = policy.decide(turns, "vip", True)
    assert decision is not None
    assert decision.trigger == "vip_open_ticket"
    assert policy.decide(turns, "gold", True) is None
    assert policy.decide(turns, "vip", False) is None
    assert policy.decide([calm("greet")], "vip", True) is None
    # Already being helped: answering a form, or a person was offered in this conversation.
    assert policy.decide(turns, "vip", True, in_form=True) is None
    assert policy.decide(turns, "vip", True, person_offered=True) is None


def test_most_severe_trigger_wins(policy: EscalationPolicy) -> None:
    # A complaint (3) after a second fallback (1): the complaint is reported.
    decision = policy.decide([fallback(), TurnSignal("complain", fallback=True)], None, False)
    assert decision is not None
    assert (decision.trigger, decision.severity) == ("complaint", 3)
    # Equal severity (the safety reason lifts both to 5): the earlier trigger in TRIGGERS wins.
    turns = [negative(), TurnSignal("complain", "negative", False, ("safety",))]
    decision = policy.decide(turns, None, False)
    assert decision is not None
    assert (decision.trigger, decision.severity) == ("negative_streak", 5)


def test_switched_off_trigger_never_fires(tmp_path: Path) -> None:
    raw = _raw()
    raw["triggers"]["request_human"]["enabled"] = False
    raw["triggers"]["fallback_streak"]["turns"] = 3
    policy = _with(tmp_path, raw)
    assert policy.decide([calm("request_human")], None, False) is None
    assert policy.decide([fallback(), fallback()], None, False) is None
    assert policy.decide([fallback(), fallback(), fallback()], None, False) is not None


def test_offline_carry_on_names_actions_and_forms_of_the_domain() -> None:
    domain = project_domain()
    actions = {a if isinstance(a, str) else next(iter(a)) for a in domain["actions"]}
    carry_on = load_escalation_policy(DEFAULT_ESCALATION_POLICY_FILE).triggers.vip_open_ticket
    assert carry_on.offline_carry_on
    assert set(carry_on.offline_carry_on.values()) <= actions | set(domain["forms"])


def test_vip_goes_first_and_waiting_raises_priority(policy: EscalationPolicy) -> None:
    vip = policy.priority_score("vip", 1, timedelta(0))
    normal = policy.priority_score("normal", 1, timedelta(0))
    assert vip > normal
    assert policy.priority_score("normal", 1, timedelta(minutes=5)) > normal
    assert policy.priority_score(None, 1, timedelta(0)) == normal
    assert policy.priority_score("normal", 5, timedelta(0)) > normal


def test_wait_estimate_grows_with_position_and_shrinks_with_agents(
    policy: EscalationPolicy,
) -> None:
    one = policy.estimated_wait_minutes(1, 1)
    assert one >= 1
    assert policy.estimated_wait_minutes(3, 1) > one
    assert policy.estimated_wait_minutes(3, 3) < policy.estimated_wait_minutes(3, 1)
    with pytest.raises(ValueError):
        policy.estimated_wait_minutes(0, 1)


def test_business_hours_in_shanghai_time(policy: EscalationPolicy) -> None:
    hours = policy.business_hours
    wednesday_noon = datetime(2026, 11, 25, 12, 0, tzinfo=SHANGHAI)
    wednesday_late = datetime(2026, 11, 25, 22, 30, tzinfo=SHANGHAI)
    assert hours.is_open(wednesday_noon)
    assert hours.is_open(wednesday_noon.astimezone(timezone.utc))
    assert not hours.is_open(wednesday_late)
    assert hours.next_opening(wednesday_noon) == wednesday_noon
    assert hours.next_opening(wednesday_late) == datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    friday_night = datetime(2026, 11, 27, 23, 0, tzinfo=SHANGHAI)
    assert hours.next_opening(friday_night) == datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)
    with pytest.raises(ValueError):
        hours.is_open(datetime(2026, 11, 25, 12, 0))


def test_closed_days_are_skipped_and_never_open_gives_none(tmp_path: Path) -> None:
    raw = _raw()
    raw["business_hours"]["days"] = {"mon": {"open": "09:00", "close": "17:00"}, "tue": None}
    policy = _with(tmp_path, raw)
    wednesday = datetime(2026, 11, 25, 12, 0, tzinfo=SHANGHAI)
    assert policy.business_hours.next_opening(wednesday) == datetime(
        2026, 11, 30, 9, 0, tzinfo=SHANGHAI
    )
    raw["business_hours"]["days"] = {}
    assert _with(tmp_path, raw).business_hours.next_opening(wednesday) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw["severity"]["triggers"].pop("complaint"), "complaint"),
        (lambda raw: raw["severity"]["reasons"].update(safety=9), "safety"),
        (lambda raw: raw["priority"]["tier_weights"].pop("gold"), "gold"),
        (lambda raw: raw["triggers"]["vip_open_ticket"].update(tiers=["platinum"]), "platinum"),
        (lambda raw: raw["triggers"]["negative_streak"].update(turns=0), "turns"),
        (
            lambda raw: raw["triggers"]["vip_open_ticket"]["offline_carry_on"].update(greet="x"),
            "not among help_intents: greet",
        ),
        (lambda raw: raw["business_hours"].update(timezone="Mars/Base"), "Mars/Base"),
        (
            lambda raw: raw["business_hours"]["days"].update(
                mon={"open": "18:00", "close": "09:00"}
            ),
            "open must be before close",
        ),
        (lambda raw: raw["business_hours"]["days"].update(funday=None), "funday"),
        (lambda raw: raw.update(surprise=1), "surprise"),
    ],
)
def test_invalid_policy_is_refused_with_file_and_field(tmp_path: Path, change, message) -> None:
    raw = _raw()
    change(raw)
    with pytest.raises(EscalationPolicyError) as error:
        _with(tmp_path, raw)
    assert "escalation.yml" in str(error.value)
    assert message in str(error.value)


def test_unreadable_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EscalationPolicyError, match="cannot read"):
        read_escalation_policy(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("triggers: [", encoding="utf-8")
    with pytest.raises(EscalationPolicyError, match="not valid YAML"):
        read_escalation_policy(broken)


def test_environment_selects_the_policy_file(tmp_path: Path, monkeypatch) -> None:
    raw = _raw()
    raw["average_handling_minutes"] = 42
    path = tmp_path / "custom.yml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_ESCALATION_POLICY_FILE", str(path))
    assert load_escalation_policy().average_handling_minutes == 42


def test_a_round_the_clock_desk_is_always_open(tmp_path: Path) -> None:
    raw = _raw()
    raw["business_hours"] = {"timezone": "Asia/Shanghai", "always_open": True}
    hours = _with(tmp_path, raw).business_hours
    sunday_night = datetime(2026, 11, 29, 3, 0, tzinfo=SHANGHAI)
    assert hours.is_open(sunday_night)
    assert hours.next_opening(sunday_night) == sunday_night


def test_the_tracker_window_is_long_enough_for_every_streak() -> None:
    """The Rasa policy sees only the bounded tracker window (endpoints.yml ``keep_turns``);
    a streak longer than that could never fire."""
    from bot.handoff.policy import load_escalation_policy

    endpoints = yaml.safe_load((PROJECT_ROOT / "endpoints.yml").read_text(encoding="utf-8"))
    triggers = load_escalation_policy(PROJECT_ROOT / "config" / "escalation_policy.yml").triggers
    longest = max(triggers.negative_streak.turns, triggers.fallback_streak.turns)
    assert longest <= endpoints["tracker_store"]["keep_turns"]


def test_need_class_follows_the_danger_and_the_mood() -> None:
    assert need_class_for("sentiment_escalate", ["safety"]) == "urgent"
    assert need_class_for("negative_streak", ["anger"]) == "emotional"
    assert need_class_for("request_human", []) == "normal"
    assert need_class_for("request_human", ["threat"]) == "emotional"
