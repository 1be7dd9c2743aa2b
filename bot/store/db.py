"""Engines, sessions and schema migrations for the store (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from bot import settings

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _json_dumps(value: Any) -> str:
    # Keep Chinese readable in the database instead of \uXXXX escapes.
    return json.dumps(value, ensure_ascii=False)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    """SQLite needs per-connection opt-ins for referential integrity and concurrent writers."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def make_engine(url: str | None = None) -> Engine:
    """A new engine for `url` (default: the configured database), tuned per backend."""
    resolved = url or settings.database_url()
    engine = create_engine(resolved, future=True, json_serializer=_json_dumps, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker:
    """Sessions whose loaded values stay readable after commit (no lazy reload surprises)."""
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)


@lru_cache(maxsize=8)
def _cached_session_factory(url: str) -> sessionmaker:
    return make_session_factory(make_engine(url))


def session_factory(url: str | None = None) -> sessionmaker:
    """Process-wide session factory per database URL, so engines and pools are shared."""
    return _cached_session_factory(url or settings.database_url())


@contextmanager
def session_scope(factory: sessionmaker | None = None) -> Iterator[Session]:
    """One transaction per change: commit when the block succeeds, roll back on any error."""
    session: Session = (factory or session_factory())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration built in code, so no alembic.ini is needed."""
    from alembic.config import Config  # imported here: services and actions never migrate

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats % as interpolation; passwords may contain it.
    config.set_main_option("sqlalchemy.url", (url or settings.database_url()).replace("%", "%%"))
    return config


def upgrade_database(url: str | None = None) -> None:
    """Bring the schema to the newest migration (`alembic upgrade head`)."""
    from alembic import command

    config = alembic_config(url)
    log.info(
        "upgrading database %s",
        make_url(config.get_main_option("sqlalchemy.url")).render_as_string(hide_password=True),
    )
    command.upgrade(config, "head")
