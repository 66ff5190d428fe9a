"""Heartbeat rows on SQLite and MariaDB: beat, look, prune, remove."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from authgate.clock import FrozenClock
from authgate.domain.instances import InstanceRecord
from authgate.services.heartbeat import InstanceHeartbeat, storage_kind
from authgate.storage.instances import SqlInstanceRegistry
from authgate.storage.migrate import head_revision
from authgate.storage.schema_window import declared_window
from authgate.storage.tables import schema_window


def _heartbeat(
    registry: SqlInstanceRegistry, clock: FrozenClock, name: str, kind: str = "memory"
) -> InstanceHeartbeat:
    now = clock.now()
    return InstanceHeartbeat(
        registry=registry,
        clock=clock,
        record=InstanceRecord(
            instance_id=name * 32,
            host="h",
            pid=1,
            rate_limit_storage=storage_kind(f"{kind}://"),
            started_at=now,
            last_seen_at=now,
        ),
        interval_seconds=10,
    )


async def test_memory_instances_see_each_other_until_one_goes_stale(
    database_url: URL, clock: FrozenClock
) -> None:
    engine = create_async_engine(database_url)
    try:
        registry = SqlInstanceRegistry(engine)
        first, second = _heartbeat(registry, clock, "a"), _heartbeat(registry, clock, "b")
        redis = _heartbeat(registry, clock, "c", kind="redis")
        await first.beat_once()
        assert await first.counting_alone() is None  # alone
        await second.beat_once()
        await first.beat_once()  # a second beat refreshes, never duplicates
        finding = await first.counting_alone()
        assert finding is not None
        assert [row.instance_id for row in finding.others] == ["b" * 32]
        assert "RATE_LIMIT_STORAGE_URL" in finding.message()
        await redis.beat_once()
        assert await redis.counting_alone() is None  # shared counters: fine
        # b dies (kill -9): its row goes stale after 3 intervals and is pruned.
        clock.advance(31)
        await first.beat_once()
        await redis.beat_once()
        assert [row.instance_id for row in await registry.live(seen_since=clock.now())] == [
            "a" * 32,
            "c" * 32,
        ]
        assert await first.counting_alone() is not None  # c is live
        await redis.stop()
        assert await first.counting_alone() is None
        await first.stop()
        assert await registry.live(seen_since=clock.now() - timedelta(days=1)) == []
    finally:
        await engine.dispose()


async def test_the_head_migration_writes_its_window(database_url: URL) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            oldest = (
                await connection.execute(select(schema_window.c.oldest_code_revision))
            ).scalar()
        head = head_revision()
        assert head is not None
        assert oldest == declared_window(head)
    finally:
        await engine.dispose()
