"""Migrations on MariaDB run under a per-database lock (GET_LOCK)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from authgate.errors import Unavailable
from authgate.storage.engine import create_engine
from authgate.storage.migrate import (
    MigrationLockTimeout,
    head_revision,
    migration_lock_name,
    upgrade,
)
from tests.support.databases import ensure_mariadb

pytestmark = pytest.mark.mariadb


@pytest.fixture
def fresh_mariadb() -> Iterator[URL]:
    server = ensure_mariadb()

    async def run(statement: str) -> None:
        engine = create_async_engine(server.set(database=""))
        try:
            async with engine.begin() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    name = f"authgate_lock_{uuid.uuid4().hex[:12]}"
    asyncio.run(run(f"CREATE DATABASE `{name}`"))
    try:
        yield server.set(database=name)
    finally:
        asyncio.run(run(f"DROP DATABASE IF EXISTS `{name}`"))


async def _held_lock_then(url: URL, hold_seconds: float, *, lock_timeout: int) -> float:
    """Hold the migration lock from another session while ``upgrade`` runs."""
    holder = create_async_engine(url)
    engine = create_engine(url, pool_size=1)
    try:
        async with holder.connect() as connection:
            name = migration_lock_name(url.database)
            got = await connection.scalar(text("SELECT GET_LOCK(:n, 0)"), {"n": name})
            assert got == 1

            async def release_later() -> None:
                await asyncio.sleep(hold_seconds)
                await connection.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})

            started = time.monotonic()
            await asyncio.gather(
                upgrade(engine, lock_timeout_seconds=lock_timeout), release_later()
            )
            return time.monotonic() - started
    finally:
        await engine.dispose()
        await holder.dispose()


async def _revision(url: URL) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        await engine.dispose()


def test_upgrade_waits_for_the_instance_holding_the_lock(fresh_mariadb: URL) -> None:
    waited = asyncio.run(_held_lock_then(fresh_mariadb, 1.5, lock_timeout=60))
    assert waited >= 1.4
    assert asyncio.run(_revision(fresh_mariadb)) == head_revision()


def test_upgrade_gives_up_with_a_clear_error_when_the_lock_is_never_released(
    fresh_mariadb: URL,
) -> None:
    with pytest.raises(MigrationLockTimeout, match="another instance") as raised:
        asyncio.run(_held_lock_then(fresh_mariadb, 3, lock_timeout=1))
    # The CLI prints Unavailable errors as one line naming the database settings.
    assert isinstance(raised.value, Unavailable)


def test_lock_names_are_per_database_and_fit_mysql_limit() -> None:
    assert migration_lock_name("a") != migration_lock_name("b")
    long_names = {migration_lock_name("x" * 64), migration_lock_name("y" * 64)}
    assert len(long_names) == 2
    assert all(len(name) <= 64 for name in long_names)


async def _fail_then_try_the_lock(url: URL) -> object:
    engine = create_engine(url, pool_size=1)
    other = create_async_engine(url)
    try:
        with pytest.raises(CommandError):
            await upgrade(engine, "no-such-revision")
        async with other.connect() as connection:
            name = migration_lock_name(url.database)
            return await connection.scalar(text("SELECT GET_LOCK(:n, 0)"), {"n": name})
    finally:
        await engine.dispose()
        await other.dispose()


def test_a_failed_migration_releases_the_lock(fresh_mariadb: URL) -> None:
    assert asyncio.run(_fail_then_try_the_lock(fresh_mariadb)) == 1
