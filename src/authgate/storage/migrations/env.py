"""Alembic environment: run by ``authgate migrate`` (online) and ``authgate migrate --sql``."""

from __future__ import annotations

from alembic import context

from authgate.storage.tables import metadata

config = context.config


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    # The caller (authgate.storage.migrate) opens the connection on our own engine,
    # so migrations run with the same dialect settings as the server.
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
