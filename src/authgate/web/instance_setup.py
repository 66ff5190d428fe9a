"""Builds this process's heartbeat and runs the start-up check of ``authgate serve``
(part of the composition root)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from authgate.clock import Clock, SystemClock
from authgate.config import Settings, SettingsError
from authgate.domain.instances import InstanceRecord
from authgate.services.heartbeat import InstanceHeartbeat, storage_kind
from authgate.storage.engine import create_engine
from authgate.storage.faults import is_database_outage
from authgate.storage.instances import SqlInstanceRegistry

logger = logging.getLogger("authgate")

# "pid:id": the row ``serve`` wrote before starting uvicorn, taken over by the app in
# that same process (WORKERS=1) so there is no moment without a row. With WORKERS>1
# the supervisor deletes its row after the check and each worker writes its own.
INSTANCE_ID_ENV: Final = "AUTHGATE_INSTANCE_ID"


def _instance_id() -> str:
    pid, _, instance_id = os.environ.get(INSTANCE_ID_ENV, "").partition(":")
    if pid == str(os.getpid()) and len(instance_id) == 32:
        return instance_id
    return uuid.uuid4().hex


def build_heartbeat(settings: Settings, *, engine: AsyncEngine, clock: Clock) -> InstanceHeartbeat:
    now = clock.now()
    return InstanceHeartbeat(
        registry=SqlInstanceRegistry(engine),
        clock=clock,
        record=InstanceRecord(
            instance_id=_instance_id(),
            host=socket.gethostname(),
            pid=os.getpid(),
            rate_limit_storage=storage_kind(settings.rate_limit_storage_url),
            started_at=now,
            last_seen_at=now,
        ),
        interval_seconds=settings.instance_heartbeat_seconds,
    )


async def check_counting_alone(settings: Settings) -> None:
    """Before serving: write our row, then look for other live instances.

    Row first, look second: two instances starting together each see the other
    (both refuse) rather than neither. Production refuses a memory:// instance
    beside others (SettingsError, one line); development warns. A database that
    cannot be used yet does not stop the start: requests answer 503 meanwhile.
    """
    engine = create_engine(
        settings.effective_database_url,
        pool_size=1,
        connect_timeout=settings.db_connect_timeout_seconds,
    )
    try:
        heartbeat = build_heartbeat(settings, engine=engine, clock=SystemClock())
        try:
            await heartbeat.beat_once()
            finding = await heartbeat.counting_alone()
        except Exception as exc:
            # Away, not migrated, or broken: the requests will say so (503, or 500 for
            # a broken one) and /readyz keeps the balancer away; the check is skipped.
            logger.warning(
                "cannot check for other instances on the database (%s): %r",
                "unavailable" if is_database_outage(exc) else "unexpected answer",
                exc,
            )
            return
        if settings.workers == 1:
            os.environ[INSTANCE_ID_ENV] = f"{os.getpid()}:{heartbeat.instance_id}"
        else:
            # The supervisor serves nothing: each worker writes its own row.
            await heartbeat.stop()
        if finding is None:
            return
        if settings.is_production:
            await heartbeat.stop()
            raise SettingsError(finding.message())
        logger.warning("%s", finding.message())
    finally:
        await engine.dispose()
