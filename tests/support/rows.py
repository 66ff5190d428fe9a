"""Read the database directly, to assert what a request wrote (or did not)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from authgate.storage.tables import metadata

# The audit log is the one table a refused request writes to (its refusal is the
# event); "nothing written" means nothing in the tables that hold accounts and sessions.
AUDIT_TABLES = frozenset({"audit_events"})
# The server's own bookkeeping, written by the process rather than by a request: its
# heartbeat row and the migrations' window.
OPERATIONAL_TABLES = frozenset({"instances", "schema_window"})


async def count_rows(url: URL, *, include_audit: bool = False) -> dict[str, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            counts = {}
            for table in metadata.sorted_tables:
                if table.name in OPERATIONAL_TABLES:
                    continue
                if table.name in AUDIT_TABLES and not include_audit:
                    continue
                result = await connection.execute(select(func.count()).select_from(table))
                counts[table.name] = int(result.scalar_one())
            return counts
    finally:
        await engine.dispose()


async def fetch_all(url: URL, table_name: str) -> list[dict[str, Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(select(metadata.tables[table_name]))
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()
