"""The heartbeat rows (``instances``): one short transaction per call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from authgate.domain.instances import InstanceRecord
from authgate.storage.tables import instances


class SqlInstanceRegistry:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def beat(self, record: InstanceRecord) -> None:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(instances)
                .where(instances.c.instance_id == record.instance_id)
                .values(last_seen_at=record.last_seen_at)
            )
            # MariaDB counts matched rows (the engine's client flag), so 0 means absent:
            # first beat, or our row was pruned while the database was away.
            if result.rowcount == 0:
                await connection.execute(
                    insert(instances).values(
                        instance_id=record.instance_id,
                        host=record.host[:255],
                        pid=record.pid,
                        rate_limit_storage=record.rate_limit_storage,
                        started_at=record.started_at,
                        last_seen_at=record.last_seen_at,
                    )
                )

    async def remove(self, instance_id: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(instances).where(instances.c.instance_id == instance_id)
            )

    async def live(self, *, seen_since: datetime) -> list[InstanceRecord]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(instances)
                .where(instances.c.last_seen_at >= seen_since)
                .order_by(instances.c.started_at)
            )
            return [
                InstanceRecord(
                    instance_id=row.instance_id,
                    host=row.host,
                    pid=row.pid,
                    rate_limit_storage="redis" if row.rate_limit_storage == "redis" else "memory",
                    started_at=row.started_at,
                    last_seen_at=row.last_seen_at,
                )
                for row in rows
            ]

    async def prune(self, *, seen_before: datetime) -> int:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(instances).where(instances.c.last_seen_at < seen_before)
            )
            return int(result.rowcount or 0)
