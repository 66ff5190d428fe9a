"""Live ``authgate serve`` processes on one database, and the port that records them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

RateLimitStorageKind = Literal["memory", "redis"]


@dataclass(frozen=True)
class InstanceRecord:
    """One process's heartbeat: who it is, and where it counts rate limits
    (the kind only; the URL may hold a password)."""

    instance_id: str
    host: str
    pid: int
    rate_limit_storage: RateLimitStorageKind
    started_at: datetime
    last_seen_at: datetime


class InstanceRegistry(Protocol):
    async def beat(self, record: InstanceRecord) -> None:
        """Insert the row, or refresh its ``last_seen_at``."""
        ...

    async def remove(self, instance_id: str) -> None: ...

    async def live(self, *, seen_since: datetime) -> list[InstanceRecord]:
        """Every row refreshed at or after ``seen_since``."""
        ...

    async def prune(self, *, seen_before: datetime) -> int:
        """Delete rows not refreshed since ``seen_before`` (dead processes)."""
        ...
