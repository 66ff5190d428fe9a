"""``authgate prune``: delete what has outlived its retention, once, now."""

from __future__ import annotations

from authgate.clock import SystemClock
from authgate.config import Settings
from authgate.services.pruning import PruneReport, PruningService, RetentionPolicy
from authgate.storage.engine import create_engine
from authgate.storage.unit_of_work import SqlUnitOfWorkFactory


async def prune(settings: Settings) -> PruneReport:
    engine = create_engine(settings.effective_database_url, pool_size=1)
    try:
        service = PruningService(
            uow=SqlUnitOfWorkFactory(engine),
            clock=SystemClock(),
            policy=RetentionPolicy(
                session_retention_days=settings.session_retention_days,
                audit_retention_days=settings.audit_retention_days,
                reuse_leeway_seconds=settings.refresh_reuse_leeway_seconds,
            ),
        )
        return await service.run()
    finally:
        await engine.dispose()
