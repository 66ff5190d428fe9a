"""Migrations carry data across: 0003 moves rotation onto the successor's row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from authgate.storage.migrate import _config, upgrade
from tests.support.databases import ensure_mariadb

ROWS_AT_0002 = (
    "INSERT INTO users (id, email, email_key, email_verified, given_name, family_name, "
    "display_name, password_hash, created_at, updated_at) VALUES "
    "('{u}', 'a@b.io', 'a@b.io', 0, '', '', '', NULL, '2030-01-01 00:00:00', "
    "'2030-01-01 00:00:00')",
    "INSERT INTO sessions (id, user_id, created_at, absolute_expires_at) VALUES "
    "('{s}', '{u}', '2030-01-01 00:00:00', '2030-04-01 00:00:00')",
    # A parent rotated at 00:05 (old layout: rotated_at + successor_sealed on it)...
    "INSERT INTO refresh_tokens (id, session_id, parent_id, token_hash, issued_at, "
    "expires_at, rotated_at, successor_sealed) VALUES ('{p}', '{s}', NULL, '{ph}', "
    "'2030-01-01 00:00:00', '2030-01-31 00:00:00', '2030-01-01 00:05:00', :sealed)",
    # ...and its successor, issued at the same moment.
    "INSERT INTO refresh_tokens (id, session_id, parent_id, token_hash, issued_at, "
    "expires_at) VALUES ('{c}', '{s}', '{p}', '{ch}', '2030-01-01 00:05:00', "
    "'2030-01-31 00:05:00')",
)
IDS = {"u": "1" * 32, "s": "2" * 32, "p": "3" * 32, "c": "4" * 32, "ph": "a" * 64, "ch": "b" * 64}
SEALED = b"\x01sealed-successor"


def _migrate(engine: AsyncEngine, action: str, revision: str) -> Any:
    def run(sync_connection: Any) -> None:
        config = _config()
        config.attributes["connection"] = sync_connection
        getattr(command, action)(config, revision)

    return run


async def _recreate(server_url: URL, name: str, *, create: bool) -> None:
    server = create_async_engine(server_url)
    try:
        async with server.connect() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            if create:
                await connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    finally:
        await server.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[URL]:
    if request.param == "sqlite":
        yield make_url(f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}")
        return
    # A database of its own: the shared test database stays at head throughout.
    base = ensure_mariadb()
    name = f"{base.database}_migrations"
    asyncio.run(_recreate(base.set(database=""), name, create=True))
    try:
        yield base.set(database=name)
    finally:
        asyncio.run(_recreate(base.set(database=""), name, create=False))


@pytest.fixture
async def empty_engine(empty_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(empty_url)
    yield engine
    await engine.dispose()


async def _children(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT id, parent_id, sealed_for_parent FROM refresh_tokens ORDER BY id")
        )
        return [tuple(row) for row in result]


async def test_0003_moves_the_sealed_successor_onto_the_successor_and_back(
    empty_engine: AsyncEngine,
) -> None:
    async with empty_engine.begin() as connection:
        await connection.run_sync(_migrate(empty_engine, "upgrade", "0002"))
    async with empty_engine.begin() as connection:
        for statement in ROWS_AT_0002:
            await connection.execute(text(statement.format(**IDS)), {"sealed": SEALED})

    await upgrade(empty_engine)  # to head
    rows = await _children(empty_engine)
    parent_id, child_id = IDS["p"], IDS["c"]
    as_text = [(str(r[0]).replace("-", ""), r[1], r[2]) for r in rows]
    assert [(row[0], row[2]) for row in as_text] == [(parent_id, None), (child_id, SEALED)]
    # Only one successor per parent now, by index.
    async with empty_engine.connect() as connection:
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await connection.execute(
                text(
                    "INSERT INTO refresh_tokens (id, session_id, parent_id, token_hash, "
                    "issued_at, expires_at) VALUES (:i, :s, :p, :h, '2030-01-01 00:06:00', "
                    "'2030-01-31 00:06:00')"
                ),
                {"i": "5" * 32, "s": IDS["s"], "p": IDS["p"], "h": "c" * 64},
            )

    async with empty_engine.begin() as connection:
        await connection.run_sync(_migrate(empty_engine, "downgrade", "0002"))
    async with empty_engine.connect() as connection:
        result = await connection.execute(
            text("SELECT rotated_at, successor_sealed FROM refresh_tokens WHERE token_hash = :h"),
            {"h": IDS["ph"]},
        )
        rotated_at, sealed = result.one()
    assert str(rotated_at).startswith("2030-01-01 00:05:00")
    assert sealed == SEALED
