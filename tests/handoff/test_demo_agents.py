"""The demo data brings the console's demo accounts and the canned-reply library, once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import sessionmaker

from bot.demo import DEMO_DATA_FILE, DemoDataError, load_demo_data
from bot.handoff.accounts import AgentAccounts
from bot.handoff.canned import CannedReplies, read_canned_library

DEMO_PASSWORD = "demo-pass-2026"


def test_demo_accounts_log_in_with_the_demo_password(sessions: sessionmaker) -> None:
    report = load_demo_data(sessions)
    assert report.agents_added == 4
    assert report.canned_replies_added == len(read_canned_library().replies)
    accounts = AgentAccounts(sessions)
    roles = {agent.username: agent.role for agent in accounts.list_agents()}
    assert roles == {
        "agent1": "agent",
        "agent2": "agent",
        "lead1": "supervisor",
        "boss1": "manager",
    }
    agent = accounts.authenticate("lead1", DEMO_PASSWORD)
    assert agent is not None and agent.role == "supervisor"
    assert accounts.authenticate("agent1", "wrong") is None


def test_reloading_keeps_accounts_and_edited_replies(sessions: sessionmaker) -> None:
    load_demo_data(sessions)
    accounts = AgentAccounts(sessions)
    lead = accounts.by_username("lead1")
    canned = CannedReplies(sessions)
    reply = canned.search("七天无理由")[0]
    canned.update(reply.id, lead.id, text="主管的版本")
    accounts.update_agent("agent2", display_name="改过的名字")
    again = load_demo_data(sessions)
    assert (again.agents_added, again.canned_replies_added) == (0, 0)
    assert canned.get(reply.id).text == "主管的版本"
    assert accounts.by_username("agent2").display_name == "改过的名字"


def test_plain_passwords_are_refused_in_the_demo_file(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEMO_DATA_FILE.read_text(encoding="utf-8"))
    raw["agents"][0]["password_hash"] = DEMO_PASSWORD
    path = tmp_path / "demo.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DemoDataError, match="argon2"):
        load_demo_data(path=path)
