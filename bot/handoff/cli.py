"""`python -m bot agents list|add|passwd|disable|enable` and `python -m bot canned sync`.

Passwords are read without echo (or, for scripts, one line from stdin with `--password-stdin`)
so they never appear in the shell history or the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.handoff.accounts import AccountError, AgentAccounts, UnknownAgent
from bot.handoff.canned import CannedReplies, CannedReplyError
from bot.store.db import session_factory
from bot.store.models import AGENT_ROLES


def _cli_error(message: str) -> Exception:
    """bot.cli.CliError (clean message, exit code 2); imported late: bot.cli imports us."""
    from bot.cli import CliError

    return CliError(message)


def _accounts() -> AgentAccounts:
    return AgentAccounts(session_factory())


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise _cli_error("the passwords differ")
    return password


def _agents_list(_args: argparse.Namespace) -> int:
    from bot.cli import _table

    agents = _accounts().list_agents()
    if not agents:
        print("no agents (add one with `python -m bot agents add USERNAME`)")
        return 0
    rows = [
        (
            str(agent.id),
            agent.username,
            agent.display_name,
            agent.role,
            "yes" if agent.active else "no",
        )
        for agent in agents
    ]
    print(_table([("id", "username", "name", "role", "active"), *rows]))
    return 0


def _agents_add(args: argparse.Namespace) -> int:
    password = _read_password(args)
    try:
        agent = _accounts().create_agent(
            args.username, args.name or args.username, args.role, password
        )
    except AccountError as error:  # includes AgentExists
        raise _cli_error(str(error)) from error
    print(f"added {agent.role} {agent.username} (id {agent.id})")
    return 0


def _agents_passwd(args: argparse.Namespace) -> int:
    password = _read_password(args)
    try:
        _accounts().set_password(args.username, password)
    except UnknownAgent as error:
        raise _cli_error(f"unknown agent: {args.username}") from error
    except AccountError as error:
        raise _cli_error(str(error)) from error
    print(f"password changed for {args.username}; their sessions were ended")
    return 0


def _agents_set_active(args: argparse.Namespace) -> int:
    try:
        agent = _accounts().update_agent(args.username, active=args.active)
    except UnknownAgent as error:
        raise _cli_error(f"unknown agent: {args.username}") from error
    print(f"{agent.username} is now {'active' if agent.active else 'disabled'}")
    return 0


def _canned_sync(_args: argparse.Namespace) -> int:
    try:
        report = CannedReplies(session_factory()).sync_from_file()
    except CannedReplyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"canned replies: +{report.added} added, {report.refreshed} refreshed from the file, "
        f"{report.kept_edited} kept as edited by supervisors"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Command groups `agents` (console accounts) and `canned` (reply library)."""
    agents = subparsers.add_parser("agents", help="agent-console accounts")
    commands = agents.add_subparsers(dest="agents_command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="every account with role and status").set_defaults(
        handler=_agents_list
    )
    add = commands.add_parser("add", help="create an account (asks for the password)")
    add.add_argument("username")
    add.add_argument("--name", help="display name shown to colleagues (default: username)")
    add.add_argument("--role", choices=AGENT_ROLES, default="agent")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=_agents_add)
    passwd = commands.add_parser("passwd", help="set a new password (ends open sessions)")
    passwd.add_argument("username")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    passwd.set_defaults(handler=_agents_passwd)
    for name, active, text in (
        ("disable", False, "stop an account from logging in (ends open sessions)"),
        ("enable", True, "allow a disabled account again"),
    ):
        toggle = commands.add_parser(name, help=text)
        toggle.add_argument("username")
        toggle.set_defaults(handler=_agents_set_active, active=active)

    canned = subparsers.add_parser("canned", help="canned replies of the agent console")
    canned_commands = canned.add_subparsers(dest="canned_command", required=True, metavar="COMMAND")
    canned_commands.add_parser(
        "sync",
        help="add new replies from config/canned_replies.yml (supervisors' edits are kept)",
    ).set_defaults(handler=_canned_sync)
