"""Handoff fixtures: a migrated database per test (SQLite and PostgreSQL), a settable clock,
and the services wired to both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from argon2 import PasswordHasher
from sqlalchemy.orm import sessionmaker

from bot.handoff.accounts import AgentAccounts, AgentView
from bot.handoff.policy import (
    DEFAULT_ESCALATION_POLICY_FILE,
    EscalationPolicy,
    read_escalation_policy,
)
from bot.handoff.service import HandoffService
from bot.store.db import make_engine, make_session_factory, session_scope, upgrade_database
from bot.store.models import Customer

SHANGHAI = timezone(timedelta(hours=8))
# A Wednesday, inside business hours (09:00-21:00 Asia/Shanghai).
WEDNESDAY_NOON = datetime(2026, 11, 25, 12, 0, tzinfo=SHANGHAI)
PASSWORD = "correct-horse-42"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    """The services' clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Team:
    agent1: AgentView
    agent2: AgentView
    lead: AgentView
    boss: AgentView
    console_token: str = ""


def add_customer(sessions: sessionmaker, name: str, phone: str, tier: str) -> int:
    """A customer of `tier`, for tier-dependent priority and SLA."""
    with session_scope(sessions) as session:
        customer = Customer(
            name=name, phone=phone, tier=tier, annual_spend=Decimal("0"), created_at=WEDNESDAY_NOON
        )
        session.add(customer)
        session.flush()
        return customer.id


@pytest.fixture
def escalation_policy() -> EscalationPolicy:
    return read_escalation_policy(DEFAULT_ESCALATION_POLICY_FILE)


@pytest.fixture
def clock() -> Clock:
    return Clock(WEDNESDAY_NOON)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker]:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def accounts(
    sessions: sessionmaker, escalation_policy: EscalationPolicy, clock: Clock
) -> AgentAccounts:
    return AgentAccounts(sessions, escalation_policy, clock)


@pytest.fixture
def handoffs(
    sessions: sessionmaker, escalation_policy: EscalationPolicy, clock: Clock
) -> HandoffService:
    return HandoffService(sessions, escalation_policy, clock)


@pytest.fixture
def team(accounts: AgentAccounts) -> Team:
    return Team(
        agent1=accounts.create_agent("agent1", "小王", "agent", PASSWORD),
        agent2=accounts.create_agent("agent2", "小李", "agent", PASSWORD),
        lead=accounts.create_agent("lead1", "陈组长", "supervisor", PASSWORD),
        boss=accounts.create_agent("boss1", "刘经理", "manager", PASSWORD),
    )


@pytest.fixture
def online(accounts: AgentAccounts, team: Team) -> Team:
    """The team with agent1's console open, so chats are queued rather than called back."""
    team.console_token, _csrf = accounts.open_session(team.agent1.id)
    return team
