"""Agent accounts: hashed passwords, throttled logins, sessions and presence (both backends)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from bot.handoff.accounts import (
    AccountError,
    AgentAccounts,
    AgentExists,
    LoginThrottled,
    UnknownAgent,
    has_role,
)
from bot.store.models import Agent, AgentSession
from tests.handoff.conftest import PASSWORD, Clock, Team


def test_passwords_are_stored_as_argon2_hashes(
    accounts: AgentAccounts, sessions: sessionmaker
) -> None:
    accounts.create_agent("Agent9", "小赵", "agent", PASSWORD)
    with sessions() as session:
        stored = session.execute(select(Agent.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_login_with_the_right_password_only(accounts: AgentAccounts, team: Team) -> None:
    agent = accounts.authenticate("agent1", PASSWORD)
    assert agent == team.agent1
    assert accounts.authenticate(" AGENT1 ", PASSWORD) == team.agent1  # usernames fold case
    assert accounts.authenticate("agent1", "wrong-password") is None
    assert accounts.authenticate("nobody", PASSWORD) is None


def test_inactive_agent_cannot_log_in_and_loses_sessions(
    accounts: AgentAccounts, team: Team
) -> None:
    token, _csrf = accounts.open_session(team.agent2.id)
    accounts.update_agent("agent2", active=False)
    assert accounts.authenticate("agent2", PASSWORD) is None
    assert accounts.session_for(token) is None


def test_five_failures_in_five_minutes_lock_the_username(
    accounts: AgentAccounts, team: Team, clock: Clock
) -> None:
    for _ in range(5):
        assert accounts.authenticate("agent1", "guess") is None
    with pytest.raises(LoginThrottled):
        accounts.authenticate("agent1", PASSWORD)
    assert accounts.authenticate("agent2", PASSWORD) == team.agent2  # others unaffected
    clock.advance(minutes=5, seconds=1)
    assert accounts.authenticate("agent1", PASSWORD) == team.agent1


def test_unknown_usernames_are_throttled_too(accounts: AgentAccounts) -> None:
    for _ in range(5):
        assert accounts.authenticate("ghost", "guess") is None
    with pytest.raises(LoginThrottled):
        accounts.authenticate("ghost", "guess")


def test_successful_login_clears_earlier_failures(accounts: AgentAccounts, team: Team) -> None:
    for _ in range(4):
        accounts.authenticate("agent1", "guess")
    assert accounts.authenticate("agent1", PASSWORD) == team.agent1
    for _ in range(4):
        accounts.authenticate("agent1", "guess")
    assert accounts.authenticate("agent1", PASSWORD) == team.agent1


def test_session_tokens_are_stored_hashed_and_expire(
    accounts: AgentAccounts, team: Team, clock: Clock, sessions: sessionmaker
) -> None:
    token, csrf = accounts.open_session(team.lead.id)
    view = accounts.session_for(token)
    assert view is not None
    assert view.agent == team.lead
    assert view.csrf_token == csrf
    assert token != csrf
    with sessions() as session:
        assert token not in session.execute(select(AgentSession.token_hash)).scalar_one()
    assert accounts.session_for("forged") is None
    assert accounts.session_for("") is None
    clock.advance(hours=12, seconds=1)
    assert accounts.session_for(token) is None
    assert not accounts.touch(token)


def test_logout_ends_the_session(accounts: AgentAccounts, team: Team) -> None:
    token, _ = accounts.open_session(team.agent1.id)
    accounts.close_session(token)
    assert accounts.session_for(token) is None


def test_password_change_ends_sessions_and_takes_effect(
    accounts: AgentAccounts, team: Team
) -> None:
    token, _ = accounts.open_session(team.agent1.id)
    accounts.set_password("agent1", "another-pass-77")
    assert accounts.session_for(token) is None
    assert accounts.authenticate("agent1", PASSWORD) is None
    assert accounts.authenticate("agent1", "another-pass-77") == team.agent1


def test_presence_follows_console_activity(
    accounts: AgentAccounts, team: Team, clock: Clock
) -> None:
    assert accounts.online_agents() == []
    token, _ = accounts.open_session(team.agent1.id)
    assert [agent.username for agent in accounts.online_agents()] == ["agent1"]
    clock.advance(seconds=91)
    assert accounts.online_agents() == []
    assert accounts.touch(token)
    assert [agent.username for agent in accounts.online_agents()] == ["agent1"]


def test_account_rules(accounts: AgentAccounts, team: Team) -> None:
    with pytest.raises(AgentExists):
        accounts.create_agent("AGENT1", "重复", "agent", PASSWORD)
    with pytest.raises(AccountError, match="role"):
        accounts.create_agent("agent3", "小孙", "admin", PASSWORD)
    with pytest.raises(AccountError, match="8"):
        accounts.create_agent("agent3", "小孙", "agent", "short")
    with pytest.raises(AccountError, match="username"):
        accounts.create_agent("two words", "小孙", "agent", PASSWORD)
    with pytest.raises(UnknownAgent):
        accounts.set_password("nobody", PASSWORD)
    promoted = accounts.update_agent("agent2", role="supervisor", display_name="李组长")
    assert (promoted.role, promoted.display_name) == ("supervisor", "李组长")
    assert [agent.username for agent in accounts.list_agents()] == [
        "agent1",
        "agent2",
        "lead1",
        "boss1",
    ]


def test_roles_are_ordered() -> None:
    assert has_role("manager", "supervisor")
    assert has_role("supervisor", "supervisor")
    assert not has_role("agent", "supervisor")
