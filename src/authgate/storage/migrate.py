"""Apply migrations (``authgate migrate``, and ``serve`` at start) or print their DDL."""

from __future__ import annotations

import io
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from authgate.storage.engine import create_engine

SCRIPT_LOCATION = "authgate.storage:migrations"


def _config(url: URL | None = None, *, stdout: Any = None) -> Config:
    config = Config(stdout=stdout) if stdout is not None else Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        # %-signs in passwords would be read as interpolation by configparser.
        config.set_main_option(
            "sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def run(sync_connection: Any) -> None:
        config = _config()
        config.attributes["connection"] = sync_connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def upgrade_url(url: URL) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def offline_sql(url: URL) -> str:
    """The DDL of every migration for ``url``'s dialect, for a DBA to review and run."""
    buffer = io.StringIO()
    command.upgrade(_config(url, stdout=buffer), "head", sql=True)
    return buffer.getvalue()


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(sync_connection: Any) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()
