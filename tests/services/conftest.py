"""Service fixtures: a migrated database per test (both backends) and the default policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import sessionmaker

from bot.demo import load_demo_data
from bot.policy import ServicePolicy, load_policy
from bot.store.db import make_engine, make_session_factory, upgrade_database


@pytest.fixture
def policy() -> ServicePolicy:
    return load_policy()


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker]:
    upgrade_database(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def demo_sessions(sessions: sessionmaker, policy: ServicePolicy) -> sessionmaker:
    """A database holding the demo data set."""
    load_demo_data(sessions, policy)
    return sessions
