"""Alembic environment: runs migrations online with the store's own engine settings."""

from alembic import context

from bot.store.db import make_engine
from bot.store.models import Base

if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run against a database")

engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
