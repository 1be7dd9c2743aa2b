"""`python -m bot`, run as a real process against a temporary SQLite database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

RunCli = Callable[..., subprocess.CompletedProcess]


def _runner(database_file: Path) -> RunCli:
    environment = {
        **os.environ,
        "ASSISTANT_DATABASE_URL": f"sqlite:///{database_file}",
        "RASA_TELEMETRY_ENABLED": "false",
        "PYTHONIOENCODING": "utf-8",
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            cwd=PROJECT_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
        )

    return run


@pytest.fixture
def fresh_cli(tmp_path: Path) -> RunCli:
    return _runner(tmp_path / "assistant.db")


@pytest.fixture(scope="module")
def demo_cli(tmp_path_factory: pytest.TempPathFactory) -> RunCli:
    run = _runner(tmp_path_factory.mktemp("cli") / "assistant.db")
    result = run("db", "demo")
    assert result.returncode == 0, result.stderr
    assert "products +16, customers +7, orders +13, tickets +3" in result.stdout
    return run


def test_help_lists_the_store_commands(fresh_cli: RunCli) -> None:
    result = fresh_cli("--help")
    assert result.returncode == 0, result.stderr
    for group in ("db", "tickets", "customers"):
        assert f"    {group} " in result.stdout


def test_upgrade_creates_an_empty_database(fresh_cli: RunCli) -> None:
    result = fresh_cli("db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "database upgraded" in result.stdout
    assert fresh_cli("tickets", "list").stdout.strip() == "no tickets"
    assert fresh_cli("customers", "list").stdout.strip() == "no customers"


def test_demo_twice_adds_nothing(demo_cli: RunCli) -> None:
    result = demo_cli("db", "demo")
    assert result.returncode == 0, result.stderr
    assert "products +0, customers +0, orders +0, tickets +0" in result.stdout


def test_tickets_list_newest_first_and_filtered(demo_cli: RunCli) -> None:
    listing = demo_cli("tickets", "list")
    assert listing.returncode == 0, listing.stderr
    numbers = [line.split()[0] for line in listing.stdout.splitlines()[1:]]
    assert numbers == ["T20261124-0001", "T20261120-0001", "T20261110-0001"]
    assert "处理中" in listing.stdout and "维修" in listing.stdout
    resolved = demo_cli("tickets", "list", "--status", "resolved")
    assert [line.split()[0] for line in resolved.stdout.splitlines()[1:]] == ["T20261110-0001"]


def test_tickets_show_prints_the_timeline(demo_cli: RunCli) -> None:
    result = demo_cli("tickets", "show", "t20261120-0001")
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "ticket T20261120-0001" in output
    for text in ("张伟", "SO20261101001", "已确认", "已给出方案", "维修师傅王强", "next step:"):
        assert text in output
    assert "2026-11-20 09:15" in output  # Beijing time
    assert "first response" in output and "按时完成" in output


def test_customers_list_masks_phone_numbers(demo_cli: RunCli) -> None:
    result = demo_cli("customers", "list")
    assert result.returncode == 0, result.stderr
    assert "王芳" in result.stdout and "钻石/VIP会员" in result.stdout
    assert "138****8000" in result.stdout
    assert "13800138000" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tickets", "show", "T20991231-0001"), "unknown ticket: T20991231-0001"),
        (("tickets", "show", "ticket-7"), "not a ticket number"),
        (("tickets", "list", "--status", "lost"), "invalid choice: 'lost'"),
        (("tickets", "list", "--limit", "0"), "must be a positive integer"),
        (("tickets",), "required: COMMAND"),
        (("teleport",), "invalid choice: 'teleport'"),
        ((), "required: COMMAND"),
    ],
)
def test_bad_requests_exit_with_2_and_say_why(
    demo_cli: RunCli, args: tuple[str, ...], message: str
) -> None:
    result = demo_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_schema_suggests_the_upgrade(fresh_cli: RunCli) -> None:
    result = fresh_cli("tickets", "list")
    assert result.returncode == 1
    assert "python -m bot db upgrade" in result.stderr
