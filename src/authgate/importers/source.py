"""The seed's database: its URL from ``--from``, and its rows, read only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

# mysql:// as the seeds' own settings spell it; the async driver is the one we ship.
_DRIVERS = {"mysql", "mysql+asyncmy", "mariadb", "mariadb+asyncmy"}


class SourceError(Exception):
    """The seed's database cannot be read; the message names --from, never a password."""


def source_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise SourceError("--from: not a database URL (mysql://user@host/db)") from None
    if url.drivername not in _DRIVERS:
        raise SourceError(
            f"--from: {url.drivername}:// is not supported; use mysql://user@host/db "
            "(or mysql+asyncmy://)"
        )
    if not url.database:
        raise SourceError("--from: the URL names no database (mysql://user@host/db)")
    query = dict(url.query)
    query.setdefault("charset", "utf8mb4")
    return url.set(drivername="mysql+asyncmy", query=query)


async def read_rows(url: URL, *, table: str, query: str) -> list[Mapping[str, Any]]:
    """Every row of the seed's user table, in a read-only transaction."""
    engine = create_async_engine(url, pool_size=1, max_overflow=0)
    where = f"{url.render_as_string(hide_password=True)}"
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SET SESSION TRANSACTION READ ONLY"))
            exists = await connection.execute(
                text(
                    "SELECT COUNT(*) FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name = :table"
                ),
                {"table": table},
            )
            if not exists.scalar_one():
                raise SourceError(f"--from {where}: no table {table} (is this the right seed?)")
            result = await connection.execute(text(query))
            return [dict(row._mapping) for row in result]
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0]
        raise SourceError(f"--from {where}: cannot read the seed's database: {reason}") from None
    except (SQLAlchemyError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceError(f"--from {where}: cannot read the seed's database: {reason}") from None
    finally:
        await engine.dispose()
