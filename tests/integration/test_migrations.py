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


# -- 0005: exact email keys -------------------------------------------------------------

USER_AT_0004 = (
    "INSERT INTO users (id, email, email_key, email_verified, given_name, family_name, "
    "display_name, password_hash, created_at, updated_at) VALUES "
    "(:id, :email, :key, 0, '', '', '', NULL, '2030-01-01 00:00:00', '2030-01-01 00:00:00')"
)
# (id, email, key written by 0004's NFKC + casefold rule, key under 0005's exact rule)
KEYED_AT_0004 = (
    ("a" * 32, "Stra\u00dfe@example.com", "strasse@example.com", "stra\u00dfe@example.com"),
    ("b" * 32, "Alice@example.com", "alice@example.com", "alice@example.com"),
    ("c" * 32, "\u01c5emo@example.com", "d\u017eemo@example.com", "\u01c6emo@example.com"),
    ("d" * 32, "x@b\u00fccher.de", "x@b\u00fccher.de", "x@b\u00fccher.de"),
    # An unverified provider email claims no key, before and after.
    ("e" * 32, "unverified@example.com", None, None),
)


async def _keys(engine: AsyncEngine) -> dict[str, str | None]:
    async with engine.connect() as connection:
        result = await connection.execute(text("SELECT id, email_key FROM users"))
        return {str(row[0]).replace("-", ""): row[1] for row in result}


async def _revision(engine: AsyncEngine) -> str | None:
    from authgate.storage.migrate import current_revision

    return await current_revision(engine)


async def _insert_users(engine: AsyncEngine, rows: Any) -> None:
    async with engine.begin() as connection:
        for user_id, email, key, *_ in rows:
            await connection.execute(
                text(USER_AT_0004), {"id": user_id, "email": email, "key": key}
            )


async def test_0005_recomputes_email_keys_exactly_and_back(empty_engine: AsyncEngine) -> None:
    from authgate.domain.emails import parse_email
    from authgate.storage.migrations import MigrationRefused

    async with empty_engine.begin() as connection:
        await connection.run_sync(_migrate(empty_engine, "upgrade", "0004"))
    await _insert_users(empty_engine, KEYED_AT_0004)

    async with empty_engine.begin() as connection:
        await connection.run_sync(_migrate(empty_engine, "upgrade", "0005"))
    assert await _revision(empty_engine) == "0005"
    assert await _keys(empty_engine) == {row[0]: row[3] for row in KEYED_AT_0004}
    # What the migration wrote is what sign-up computes now.
    for _, email, _, exact in KEYED_AT_0004:
        if exact is not None:
            assert parse_email(email).key == exact
    # ß and ss are two mailboxes now: the plain address can have its own account.
    plain = ("f" * 32, "strasse@example.com", "strasse@example.com")
    await _insert_users(empty_engine, [plain])

    # Going back would fold the two into one key: refused, naming both, nothing changed.
    before = await _keys(empty_engine)
    with pytest.raises(MigrationRefused) as refused:
        async with empty_engine.begin() as connection:
            await connection.run_sync(_migrate(empty_engine, "downgrade", "0004"))
    assert "a" * 32 in str(refused.value).replace("-", "")
    assert "f" * 32 in str(refused.value).replace("-", "")
    assert await _revision(empty_engine) == "0005"
    assert await _keys(empty_engine) == before

    async with empty_engine.begin() as connection:
        await connection.execute(text("DELETE FROM users WHERE id = :id"), {"id": "f" * 32})
    async with empty_engine.begin() as connection:
        await connection.run_sync(_migrate(empty_engine, "downgrade", "0004"))
    assert await _revision(empty_engine) == "0004"
    assert await _keys(empty_engine) == {row[0]: row[2] for row in KEYED_AT_0004}


async def test_0005_refuses_to_merge_accounts_and_changes_nothing(
    empty_engine: AsyncEngine,
) -> None:
    from authgate.storage.migrations import MigrationRefused

    async with empty_engine.begin() as connection:
        await connection.run_sync(_migrate(empty_engine, "upgrade", "0004"))
    # Written by hand (an import, an edit): two keys that differ at 0004 but whose
    # addresses are the same under the exact rule, next to a row that would change.
    rows = [
        ("1" * 32, "Bob@example.com", "bob@example.com"),
        ("2" * 32, "bob@example.com", "imported:bob@example.com"),
        ("3" * 32, "Stra\u00dfe@example.com", "strasse@example.com"),
    ]
    await _insert_users(empty_engine, rows)

    with pytest.raises(MigrationRefused) as refused:
        await upgrade(empty_engine)
    message = str(refused.value).replace("-", "")
    assert "1" * 32 in message
    assert "2" * 32 in message
    assert "3" * 32 not in message
    assert "bob@" not in message  # names accounts by id, not by address
    assert await _revision(empty_engine) == "0004"
    assert await _keys(empty_engine) == {row[0]: row[2] for row in rows}

    # The operator decides: the imported duplicate gets another address; then it runs.
    async with empty_engine.begin() as connection:
        await connection.execute(
            text("UPDATE users SET email = 'bob+old@example.com' WHERE id = :id"),
            {"id": "2" * 32},
        )
    await upgrade(empty_engine)
    assert await _keys(empty_engine) == {
        "1" * 32: "bob@example.com",
        "2" * 32: "bob+old@example.com",
        "3" * 32: "stra\u00dfe@example.com",
    }


def test_0005_offline_sql_says_keys_need_an_online_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from authgate.storage.migrate import offline_sql

    # Alembic may write the script to stdout itself instead of the buffer.
    sql = offline_sql(make_url("sqlite+aiosqlite:///x.db")) + capsys.readouterr().out
    assert "-- 0005 (upgrade): users.email_key must be recomputed" in sql


async def test_0005_refusal_is_one_line_from_the_cli(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from authgate.cli.main import main

    url = make_url(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_migrate(engine, "upgrade", "0004"))
        await _insert_users(
            engine,
            [
                ("1" * 32, "Bob@example.com", "bob@example.com"),
                ("2" * 32, "bob@example.com", "imported:bob@example.com"),
            ],
        )
    finally:
        await engine.dispose()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url.render_as_string())
    # main() runs its own event loop, as the installed command does.
    status = await asyncio.to_thread(main, ["migrate"])
    assert status == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "authgate: error" in line]
    assert len(lines) == 1
    assert lines[0].startswith("authgate: error: migration 0005 (upgrade) changed nothing: users ")


def test_head_revision_read_from_the_files_is_alembics_head() -> None:
    # head_revision reads the version files without Alembic (a shorter cold start).
    from alembic.script import ScriptDirectory

    from authgate.storage import migrate

    expected = ScriptDirectory.from_config(migrate._config()).get_current_head()
    assert migrate.head_revision() == expected is not None
