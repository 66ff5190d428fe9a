"""The audit trail: security events to the audit table and, as JSON, to the log.

Events describing a change are added in the same transaction as the change, so
the log never claims a sign-in that was rolled back. Events describing a refusal
(failed sign-in, lockout) are written in a transaction of their own; they are the
one thing a failed request writes.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import structlog

from authgate.clock import Clock
from authgate.domain.models import AuditEvent, ClientInfo
from authgate.domain.ports import UnitOfWork, UnitOfWorkFactory

_log = structlog.get_logger("authgate.audit")


class AuditTrail:
    """``sink`` receives each event once it is recorded (after its commit); by
    default the JSON log (``authgate.audit``)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        sink: Callable[[AuditEvent], None] | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._sink = sink or log_event

    def event(
        self,
        name: str,
        client: ClientInfo,
        *,
        user_id: UUID | None = None,
        session_id: UUID | None = None,
        reason: str | None = None,
        provider: str | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            name=name,
            occurred_at=self._clock.now(),
            user_id=user_id,
            session_id=session_id,
            reason=reason,
            provider=provider,
            client_address=client.address,
            user_agent=client.user_agent,
        )

    async def add(self, uow: UnitOfWork, event: AuditEvent) -> None:
        """Record ``event`` inside the caller's transaction; it reaches the log only
        once that transaction has committed, so the log never claims a change that
        was rolled back."""
        await uow.audit.add(event)
        sink = self._sink
        uow.after_commit(lambda: sink(event))

    async def record(self, event: AuditEvent) -> None:
        """Record ``event`` in a transaction of its own (for refusals)."""
        async with self._uow() as uow:
            await uow.audit.add(event)
        self._sink(event)

    def emit(self, event: AuditEvent) -> None:
        """Send ``event`` to the sink only (repeats not worth a row each)."""
        self._sink(event)


def log_event(event: AuditEvent) -> None:
    """The default sink: one structured log record per event."""
    _log.info(
        event.name,
        user_id=str(event.user_id) if event.user_id else None,
        session_id=str(event.session_id) if event.session_id else None,
        reason=event.reason,
        provider=event.provider,
        client_address=event.client_address,
        user_agent=event.user_agent,
        occurred_at=event.occurred_at.isoformat(),
    )
