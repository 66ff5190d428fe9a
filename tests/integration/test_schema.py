"""The migrated schema is exactly the tables the code uses, on every database."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from authgate.storage.migrate import current_revision, head_revision
from authgate.storage.tables import metadata


async def test_migrations_match_the_table_definitions(database_url: URL) -> None:
    engine = create_async_engine(database_url)

    def diff(sync_connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            sync_connection, opts={"compare_type": True, "compare_server_default": False}
        )
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_email_key_unique_index_is_binary_on_every_database(database_url: URL) -> None:
    engine = create_async_engine(database_url)
    insert = text(
        "INSERT INTO users (id, email, email_key, email_verified, given_name, family_name, "
        "display_name, created_at, updated_at) VALUES (:id, :e, :e, 0, '', '', '', "
        "'2030-01-01 00:00:00', '2030-01-01 00:00:00')"
    )
    try:
        async with engine.begin() as connection:
            # Distinct keys that a case- or accent-insensitive collation would merge.
            for i, key in enumerate(["a@x.io", "A@x.io", "\u00e0@x.io"]):
                await connection.execute(insert, {"id": f"{i:032x}", "e": key})
        async with engine.connect() as connection:
            count = await connection.execute(text("SELECT COUNT(*) FROM users"))
            assert count.scalar_one() == 3
    finally:
        await engine.dispose()


async def test_a_pool_that_stays_busy_is_unavailable_not_an_error(tmp_path: Any) -> None:
    import pytest

    from authgate.errors import Unavailable
    from authgate.storage.unit_of_work import SqlUnitOfWork

    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}", pool_size=1, max_overflow=0, pool_timeout=0.1
    )
    try:
        async with SqlUnitOfWork(engine):
            with pytest.raises(Unavailable) as caught:
                async with SqlUnitOfWork(engine):
                    pass
        assert "pool" in (caught.value.detail_for_log or "")
        async with SqlUnitOfWork(engine):  # the connection came back
            pass
    finally:
        await engine.dispose()


async def test_database_errors_never_show_bound_parameters(database_url: URL) -> None:
    # Error texts can reach a log: password and token hashes must not be in them.
    import pytest
    from sqlalchemy.exc import IntegrityError

    from authgate.storage.engine import create_engine

    engine = create_engine(database_url)
    secret = "argon2-hash-that-must-not-be-logged"
    insert = text(
        "INSERT INTO users (id, email, email_key, email_verified, given_name, family_name, "
        "display_name, password_hash, created_at, updated_at) VALUES (:id, 'a@x.io', "
        "'a@x.io', 0, '', '', '', :hash, '2030-01-01 00:00:00', '2030-01-01 00:00:00')"
    )
    try:
        async with engine.begin() as connection:
            await connection.execute(insert, {"id": "1" * 32, "hash": secret})
        with pytest.raises(IntegrityError) as failed:
            async with engine.begin() as connection:
                await connection.execute(insert, {"id": "2" * 32, "hash": secret})
        assert secret not in str(failed.value)
    finally:
        await engine.dispose()
