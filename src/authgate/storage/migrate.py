"""Apply migrations (``authgate migrate``, and ``serve`` at start) or print their DDL.

Several instances may start at once on one empty database: each runs the
migrations under a database lock, so one migrates and the others, once it is
done, find the schema at head and do nothing.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from authgate.errors import Unavailable
from authgate.storage import tables
from authgate.storage.engine import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    create_engine,
    is_sqlite,
)

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported inside the functions that migrate: it costs ~0.4 s of a cold
# start (authgate.aws.handler), and serving requests only needs head_revision.
logger = logging.getLogger("authgate")
SCRIPT_LOCATION = "authgate.storage:migrations"
VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"
# How long an instance waits for another one's migrations before giving up. Long:
# a migration that rewrites a large table takes minutes, and giving up early would
# stop an instance that could have started.
MIGRATION_LOCK_TIMEOUT_SECONDS = 600


class MigrationLockTimeout(Unavailable):
    """Another instance held the migration lock for longer than we wait."""


class SchemaTooNew(Unavailable):
    """The database was migrated by newer code past the window this code serves."""


def _ahead_of_code(sync_connection: Any) -> bool:
    """True when a newer release has migrated the database and still serves this
    code (a rolling upgrade: nothing to do); raises when it no longer does. Alembic
    itself would fail on a revision it does not ship."""
    from alembic.runtime.migration import MigrationContext

    from authgate.storage import schema_window

    current = MigrationContext.configure(sync_connection).get_current_revision()
    known = schema_window.known_revisions()
    if current is None or current in known:
        return False
    oldest = sync_connection.execute(
        select(tables.schema_window.c.oldest_code_revision).where(tables.schema_window.c.id == 1)
    ).scalar()
    result = schema_window.verdict(
        database_revision=current,
        oldest_code_served=oldest,
        code_revision=known[-1],
        known_revisions=known,
    )
    if not result.ready:
        raise SchemaTooNew(result.reason)
    logger.info("not migrating: %s", result.reason)
    return True


def _config(url: URL | None = None, *, stdout: Any = None) -> Config:
    from alembic.config import Config

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


async def upgrade(
    engine: AsyncEngine,
    revision: str = "head",
    *,
    lock_timeout_seconds: int = MIGRATION_LOCK_TIMEOUT_SECONDS,
) -> None:
    def run(sync_connection: Any) -> None:
        if _ahead_of_code(sync_connection):
            return
        config = _config()
        config.attributes["connection"] = sync_connection
        from alembic import command

        command.upgrade(config, revision)

    with _primary_key_notes_silenced():
        if is_sqlite(engine.url):
            # Every transaction starts with BEGIN IMMEDIATE (storage.engine): the first
            # instance holds SQLite's write lock for the whole upgrade, and the others
            # wait for it (busy timeout) before they read alembic_version.
            async with engine.begin() as connection:
                await connection.run_sync(run)
            return
        async with engine.connect() as connection:
            await _lock(connection, lock_timeout_seconds)
            try:
                async with connection.begin():
                    await connection.run_sync(run)
            except BaseException:
                # Report the migration's failure, not the unlock's: with the
                # connection lost, the server has dropped the lock already.
                with contextlib.suppress(Exception):
                    await _unlock(connection)
                raise
            await _unlock(connection)


def migration_lock_name(database: str | None) -> str:
    """One lock per database (GET_LOCK names are server-wide), within MySQL's 64
    characters."""
    name = f"authgate_migrate:{database or ''}"
    if len(name) <= 64:
        return name
    return "authgate_migrate:" + hashlib.sha256(name.encode()).hexdigest()[:40]


async def _lock(connection: AsyncConnection, timeout_seconds: int) -> None:
    # GET_LOCK belongs to the session, not to a transaction: held across the
    # migrations' DDL (which MySQL commits implicitly), released by RELEASE_LOCK
    # below or by the server when this connection ends, even if we die.
    name = migration_lock_name(connection.engine.url.database)
    acquired = await connection.scalar(
        text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": timeout_seconds}
    )
    await connection.commit()
    if acquired != 1:
        raise MigrationLockTimeout(
            f"another instance has been migrating the database for over {timeout_seconds} s "
            f"(lock {name!r}); start again once it has finished"
        )


async def _unlock(connection: AsyncConnection) -> None:
    name = migration_lock_name(connection.engine.url.database)
    await connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
    await connection.commit()


async def upgrade_url(
    url: URL, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS
) -> None:
    engine = create_engine(url, pool_size=1, connect_timeout=connect_timeout)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def offline_sql(url: URL) -> str:
    """The DDL of every migration for ``url``'s dialect, for a DBA to review and run."""
    buffer = io.StringIO()
    from alembic import command

    command.upgrade(_config(url, stdout=buffer), "head", sql=True)
    return buffer.getvalue()


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(sync_connection: Any) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


def head_revision() -> str | None:
    """The newest migration's revision, read from the version files themselves.

    Each file assigns ``revision`` and ``down_revision`` at module level (Alembic's
    template); the head is the one revision no other names as its parent. Reading
    them spares the server Alembic's script machinery (~0.25 s of a cold start);
    tests/integration/test_migrations.py checks the answer equals Alembic's."""
    parents: set[str] = set()
    revisions: set[str] = set()
    for path in VERSIONS_DIR.glob("*.py"):
        values = _assignments(path, ("revision", "down_revision"))
        revision = values.get("revision")
        if isinstance(revision, str):
            revisions.add(revision)
        down = values.get("down_revision")
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple):
            parents.update(item for item in down if isinstance(item, str))
    heads = revisions - parents
    if len(heads) > 1:
        raise RuntimeError(f"several migration heads: {sorted(heads)}")
    return next(iter(heads), None)


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = value = None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            target, value = node.targets[0].id, node.value
        if target in names and value is not None:
            found[target] = ast.literal_eval(value)
    return found
