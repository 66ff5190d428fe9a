"""Each ``authgate serve`` process says it is alive, and checks who else is.

With ``memory://`` rate-limit counters every process counts alone: N instances
let N times as many password guesses through, and the per-account lock never
closes. Workers of one ``serve`` are already refused that in production
(``WORKERS>1`` with ``memory://``, config_checks); separate instances on one
database can only be seen there, through these heartbeat rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import urlsplit

from authgate.clock import Clock
from authgate.domain.instances import InstanceRecord, InstanceRegistry, RateLimitStorageKind

logger = logging.getLogger("authgate")

# A row not refreshed for this many intervals belongs to a dead process (kill -9,
# lost host): ignored by the check and pruned.
STALE_AFTER_INTERVALS = 3


def storage_kind(rate_limit_storage_url: str) -> RateLimitStorageKind:
    """``memory`` or ``redis`` (rediss, redis+sentinel...): the kind, never the URL."""
    return "memory" if urlsplit(rate_limit_storage_url).scheme == "memory" else "redis"


@dataclass(frozen=True)
class CountingAlone:
    """Another live instance shares the database while this one counts in memory."""

    others: tuple[InstanceRecord, ...]

    def message(self) -> str:
        first = self.others[0]
        return (
            "RATE_LIMIT_STORAGE_URL: is memory:// but "
            f"{len(self.others)} other authgate instance(s) are live on this database "
            f"(e.g. host {first.host} pid {first.pid}): each counts alone, so every "
            "limit and the account lock let that many times more attempts through; "
            "use redis://host:port/db on every instance"
        )


class InstanceHeartbeat:
    def __init__(
        self,
        *,
        registry: InstanceRegistry,
        clock: Clock,
        record: InstanceRecord,
        interval_seconds: float,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._record = record
        self._interval = interval_seconds
        self._stopping = asyncio.Event()

    @property
    def instance_id(self) -> str:
        return self._record.instance_id

    def _stale_before(self) -> timedelta:
        return timedelta(seconds=self._interval * STALE_AFTER_INTERVALS)

    async def others_live(self) -> list[InstanceRecord]:
        since = self._clock.now() - self._stale_before()
        return [
            row
            for row in await self._registry.live(seen_since=since)
            if row.instance_id != self._record.instance_id
        ]

    async def counting_alone(self) -> CountingAlone | None:
        """The finding when this process counts in memory and others are live.

        Raises what the registry raises (an outage): the caller decides."""
        if self._record.rate_limit_storage != "memory":
            return None
        others = await self.others_live()
        return CountingAlone(tuple(others)) if others else None

    async def beat_once(self) -> None:
        """Refresh our row and prune dead ones; an outage is logged, never raised
        (the next beat re-inserts a row pruned meanwhile)."""
        now = self._clock.now()
        try:
            await self._registry.beat(replace(self._record, last_seen_at=now))
            await self._registry.prune(seen_before=now - self._stale_before())
        except Exception as exc:
            logger.warning("instance heartbeat failed; retrying in %g s: %r", self._interval, exc)

    async def run_forever(self) -> None:
        """Beat until :meth:`stop`. Never cancelled mid-statement: a task cancelled
        inside the driver's greenlet can leave the connection half-used."""
        while not self._stopping.is_set():
            await self.beat_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)

    async def stop(self) -> None:
        """Stop beating and delete our row at a clean shutdown, so no one waits for
        it to go stale."""
        self._stopping.set()
        with contextlib.suppress(Exception):
            await self._registry.remove(self._record.instance_id)
