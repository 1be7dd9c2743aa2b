"""Command line for operators: `python -m bot db|tickets|customers ...`.

Other parts of the project add command groups from their own modules: a module that defines
`register(subparsers)` and is listed in `OTHER_COMMAND_MODULES`. `register` adds sub-parsers
and sets `handler` on each, a function taking the parsed arguments and returning the exit
code; it may raise `CliError` for a clean message and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import unicodedata
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from bot import settings
from bot.demo import DemoDataError, load_demo_data
from bot.policy import PolicyError, ServicePolicy, load_policy
from bot.services.customers import CustomerService, mask_phone
from bot.services.tickets import TicketService, TicketView, UnknownTicket, is_valid_ticket_no
from bot.store.db import session_factory, upgrade_database
from bot.store.models import TICKET_STATUSES

USAGE_ERROR = 2
RUNTIME_ERROR = 1
# Modules contributing command groups through `register(subparsers)`; add yours here.
OTHER_COMMAND_MODULES = (
    "bot.launcher",
    "bot.nlu.evaluate",
    "bot.kb.cli",
    "bot.sentiment.evaluate",
    "bot.handoff.cli",
)


class CliError(Exception):
    """A problem with what the user asked for; reported without a traceback, exit code 2."""


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned by display width, so Chinese (double-width) text lines up."""
    widths = [max(_display_width(row[index]) for row in rows) for index in range(len(rows[0]))]
    lines = (
        "  ".join(
            cell + " " * (width - _display_width(cell))
            for cell, width in zip(row, widths, strict=True)
        )
        for row in rows
    )
    return "\n".join(line.rstrip() for line in lines)


def _local(moment: datetime | None, policy: ServicePolicy) -> str:
    return "-" if moment is None else moment.astimezone(policy.timezone).strftime("%Y-%m-%d %H:%M")


def _redacted_database_url() -> str:
    return make_url(settings.database_url()).render_as_string(hide_password=True)


def _db_upgrade(_args: argparse.Namespace) -> int:
    upgrade_database()
    print(f"database upgraded: {_redacted_database_url()}")
    return 0


def _db_demo(_args: argparse.Namespace) -> int:
    upgrade_database()
    report = load_demo_data(session_factory())
    print(
        f"demo data loaded into {_redacted_database_url()}: "
        f"products +{report.products_added}, customers +{report.customers_added}, "
        f"orders +{report.orders_added}, tickets +{report.tickets_added}, "
        f"agents +{report.agents_added}, canned replies +{report.canned_replies_added}"
    )
    return 0


def _tickets_list(args: argparse.Namespace) -> int:
    policy = load_policy()
    tickets = TicketService(session_factory(), policy).list_tickets(args.status, args.limit)
    if not tickets:
        print("no tickets")
        return 0
    header = ("ticket", "status", "category", "priority", "customer", f"opened ({policy.timezone})")
    rows = [
        (
            ticket.ticket_no,
            ticket.status_label,
            ticket.category_label,
            str(ticket.priority),
            ticket.customer_name,
            _local(ticket.created_at, policy),
        )
        for ticket in tickets
    ]
    print(_table([header, *rows]))
    return 0


def _indent(block: str) -> str:
    return "\n".join(f"  {line}" for line in block.splitlines())


def _ticket_report(ticket: TicketView, service: TicketService, policy: ServicePolicy) -> str:
    texts = policy.texts
    sla = service.sla_state(ticket)
    deadlines = (
        ("first response", ticket.deadlines.first_response, sla.first_response),
        ("plan", ticket.deadlines.plan, sla.plan),
        ("close", ticket.deadlines.close, sla.close),
    )
    timeline = [
        (_local(event.created_at, policy), event.status_label, event.actor, event.note)
        for event in ticket.events
    ]
    return "\n".join(
        [
            f"ticket {ticket.ticket_no}: {ticket.summary}",
            f"  status    {ticket.status_label} ({ticket.status})",
            f"  category  {ticket.category_label}, need: {texts.need_classes[ticket.need_class]}, "
            f"priority {ticket.priority}",
            f"  customer  {ticket.customer_name} (#{ticket.customer_id}), "
            f"order {ticket.order_no or '-'}, channel {ticket.channel}",
            f"deadlines ({policy.timezone}):",
            _indent(
                _table(
                    [
                        (name, _local(due, policy), texts.sla_states[state])
                        for name, due, state in deadlines
                    ]
                )
            ),
            "timeline:",
            _indent(_table(timeline)),
            f"next step: {ticket.next_step_text}",
        ]
    )


def _tickets_show(args: argparse.Namespace) -> int:
    if not is_valid_ticket_no(args.ticket_no):
        raise CliError(f"not a ticket number: {args.ticket_no!r} (expected e.g. T20261123-0007)")
    policy = load_policy()
    service = TicketService(session_factory(), policy)
    try:
        ticket = service.timeline(args.ticket_no)
    except UnknownTicket as error:
        raise CliError(f"unknown ticket: {args.ticket_no}") from error
    print(_ticket_report(ticket, service, policy))
    return 0


def _customers_list(_args: argparse.Namespace) -> int:
    policy = load_policy()
    customers = CustomerService(session_factory()).list_customers()
    if not customers:
        print("no customers")
        return 0
    header = ("id", "name", "phone", "tier", "annual spend (CNY)")
    rows = [
        (
            str(customer.id),
            customer.name,
            mask_phone(customer.phone),
            policy.texts.tiers[customer.tier],
            f"{customer.annual_spend:,.2f}",
        )
        for customer in customers
    ]
    print(_table([header, *rows]))
    return 0


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """The store's command groups: db, tickets, customers."""
    db = subparsers.add_parser("db", help="database schema and demo data")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_commands.add_parser("upgrade", help="apply migrations (alembic upgrade head)").set_defaults(
        handler=_db_upgrade
    )
    db_commands.add_parser(
        "demo", help="upgrade, then load the demo data (idempotent)"
    ).set_defaults(handler=_db_demo)

    tickets = subparsers.add_parser("tickets", help="after-sales tickets")
    ticket_commands = tickets.add_subparsers(
        dest="tickets_command", required=True, metavar="COMMAND"
    )
    listing = ticket_commands.add_parser("list", help="newest tickets first")
    listing.add_argument("--status", choices=TICKET_STATUSES, help="only tickets in this status")
    listing.add_argument("--limit", type=_positive_int, default=50, help="at most this many")
    listing.set_defaults(handler=_tickets_list)
    show = ticket_commands.add_parser("show", help="one ticket with its timeline and SLA state")
    show.add_argument("ticket_no", help="ticket number, e.g. T20261123-0007")
    show.set_defaults(handler=_tickets_show)

    customers = subparsers.add_parser("customers", help="customers and their tiers")
    customer_commands = customers.add_subparsers(
        dest="customers_command", required=True, metavar="COMMAND"
    )
    customer_commands.add_parser("list", help="all customers (phones masked)").set_defaults(
        handler=_customers_list
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="After-sales assistant: operator commands.",
    )
    subparsers = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    register(subparsers)
    for module_name in OTHER_COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # jieba announces every dictionary load on stderr; operators only need its warnings.
    logging.getLogger("jieba").setLevel(logging.WARNING)
    try:
        return args.handler(args)
    except CliError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except (PolicyError, DemoDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return RUNTIME_ERROR
    except (OperationalError, ProgrammingError) as error:
        print(
            f"database error: {error.orig}\n"
            "hint: run `python -m bot db upgrade` to create or update the schema",
            file=sys.stderr,
        )
        return RUNTIME_ERROR
