"""`python -m bot agents ...` and `python -m bot canned sync`, in process on a fresh SQLite file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.cli import main
from bot.handoff.accounts import AgentAccounts
from bot.store.db import session_factory, upgrade_database


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'assistant.db'}"
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", url)
    upgrade_database(url)
    return url


def run(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(list(args))


def test_add_list_passwd_disable(database: str, monkeypatch, capsys) -> None:
    assert run(monkeypatch, "agents", "list") == 0
    assert "no agents" in capsys.readouterr().out
    code = run(
        monkeypatch,
        "agents", "add", "Lead2", "--name", "周组长", "--role", "supervisor", "--password-stdin",
        stdin="s3cret-enough\n",
    )  # fmt: skip
    assert code == 0
    assert "added supervisor lead2" in capsys.readouterr().out
    assert run(monkeypatch, "agents", "list") == 0
    listing = capsys.readouterr().out
    assert "lead2" in listing and "周组长" in listing and "supervisor" in listing
    accounts = AgentAccounts(session_factory(database))
    assert accounts.authenticate("lead2", "s3cret-enough") is not None

    passwd = ("agents", "passwd", "lead2", "--password-stdin")
    assert run(monkeypatch, *passwd, stdin="new-password-1\n") == 0
    assert accounts.authenticate("lead2", "new-password-1") is not None
    assert run(monkeypatch, "agents", "disable", "lead2") == 0
    assert accounts.authenticate("lead2", "new-password-1") is None
    assert run(monkeypatch, "agents", "enable", "lead2") == 0
    assert accounts.authenticate("lead2", "new-password-1") is not None


def test_mistakes_are_reported_without_a_traceback(database: str, monkeypatch, capsys) -> None:
    add = ("agents", "add", "agent7", "--password-stdin")
    assert run(monkeypatch, *add, stdin="short\n") == 2
    assert "at least 8" in capsys.readouterr().err
    assert run(monkeypatch, *add, stdin="long-enough-1\n") == 0
    assert run(monkeypatch, *add, stdin="long-enough-1\n") == 2
    assert "already exists" in capsys.readouterr().err
    assert run(monkeypatch, "agents", "passwd", "ghost", "--password-stdin", stdin="x" * 9) == 2
    assert "unknown agent" in capsys.readouterr().err


def test_canned_sync_is_idempotent(database: str, monkeypatch, capsys) -> None:
    assert run(monkeypatch, "canned", "sync") == 0
    first = capsys.readouterr().out
    assert "+41 added" in first
    assert run(monkeypatch, "canned", "sync") == 0
    assert "+0 added, 0 refreshed" in capsys.readouterr().out
