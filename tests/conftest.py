"""Shared fixtures.

Store fixtures: `sqlite_url` (a fresh file per test), `postgres_url` (a blank schema per test
in a throwaway database created for the test session) and `db_url`, which runs a test on both.
Server fixtures: `trained_model`, and `webchat`, the running servers every web chat, browser
and handoff test shares.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

# `pytest` (unlike `python -m pytest`) does not put the project root on sys.path.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

POSTGRES_SERVER_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'assistant.db'}"


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """A uniquely named database for this test session, dropped afterwards."""
    server = create_engine(
        POSTGRES_SERVER_URL,
        future=True,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    name = f"assistant_test_{uuid.uuid4().hex[:12]}"
    unreachable = None
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        unreachable = str(error.orig).strip()
    if unreachable is not None:
        server.dispose()
        pytest.fail(
            f"PostgreSQL is required but unreachable at {POSTGRES_SERVER_URL}: {unreachable}\n"
            "Start the server (user `postgres`, trust authentication) and rerun.",
            pytrace=False,
        )
    try:
        yield make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture
def postgres_url(postgres_database_url: str) -> str:
    """The session's PostgreSQL database, emptied so each test starts from nothing."""
    engine = create_engine(postgres_database_url, future=True)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return postgres_database_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The assistant's Rasa model, trained once if data or config changed since last time."""
    from bot.launcher import ensure_model

    return ensure_model()


@pytest.fixture(scope="session")
def webchat(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The running web chat servers (tests/browser/webchat_server.py), started once."""
    from bot.launcher import stop_servers
    from tests.browser.webchat_server import start_webchat_server

    server, processes = start_webchat_server(trained_model, tmp_path_factory.mktemp("webchat"))
    try:
        yield server
    finally:
        stop_servers(processes)


@pytest.fixture
def demo_factory(sqlite_url: str):
    """A session factory over a fresh SQLite database holding the demo data."""
    from bot.demo import load_demo_data
    from bot.store.db import make_engine, make_session_factory, upgrade_database

    upgrade_database(sqlite_url)
    engine = make_engine(sqlite_url)
    factory = make_session_factory(engine)
    load_demo_data(factory)
    yield factory
    engine.dispose()
