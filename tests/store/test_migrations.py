"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.store.db import make_engine, upgrade_database
from bot.store.models import Base

EXPECTED_TABLES = {
    "alembic_version",
    "customers",
    "products",
    "orders",
    "order_items",
    "tickets",
    "ticket_events",
    "kb_searches",
    "attachments",
    "agents",
    "agent_sessions",
    "login_failures",
    "handoffs",
    "handoff_events",
    "canned_replies",
    "compensations",
    "csat_responses",
}


def test_upgrade_creates_every_table_at_head(db_url: str) -> None:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == EXPECTED_TABLES
            assert MigrationContext.configure(connection).get_current_revision() == "0004"
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_lookup_columns_are_indexed(db_url: str) -> None:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    try:
        inspector = inspect(engine)
        indexed = {
            (table, tuple(index["column_names"]))
            for table in ("orders", "tickets", "ticket_events", "order_items")
            for index in inspector.get_indexes(table)
        }
        unique = {
            (table, tuple(constraint["column_names"]))
            for table in ("customers", "products", "orders", "tickets")
            for constraint in inspector.get_unique_constraints(table)
        }
    finally:
        engine.dispose()
    assert {
        ("orders", ("customer_id",)),
        ("tickets", ("customer_id",)),
        ("tickets", ("status",)),
        ("tickets", ("sender_id",)),
        ("ticket_events", ("ticket_id",)),
    } <= indexed
    assert unique == {
        ("customers", ("phone",)),
        ("products", ("sku",)),
        ("orders", ("order_no",)),
        ("tickets", ("ticket_no",)),
    }


def test_upgrade_twice_is_harmless(db_url: str) -> None:
    upgrade_database(db_url)
    upgrade_database(db_url)
