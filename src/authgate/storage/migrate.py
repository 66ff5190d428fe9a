"""Apply migrations (``authgate migrate``, and ``serve`` at start) or print their DDL."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
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


class _PrimaryKeyNameIgnored(logging.Filter):
    """MySQL and MariaDB call every primary key PRIMARY and answer each named one in
    our DDL (``CONSTRAINT pk_users PRIMARY KEY``, kept for SQLite and the metadata's
    naming convention) with a note, which asyncmy logs as a warning. Exactly those go."""

    _NOTE = re.compile(r"Name '[^']*' ignored for PRIMARY key\.?")

    def filter(self, record: logging.LogRecord) -> bool:
        return not self._NOTE.fullmatch(record.getMessage())


@contextmanager
def _primary_key_notes_silenced() -> Iterator[None]:
    driver_log = logging.getLogger("asyncmy")
    note_filter = _PrimaryKeyNameIgnored()
    driver_log.addFilter(note_filter)
    try:
        yield
    finally:
        driver_log.removeFilter(note_filter)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def run(sync_connection: Any) -> None:
        config = _config()
        config.attributes["connection"] = sync_connection
        command.upgrade(config, revision)

    with _primary_key_notes_silenced():
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
