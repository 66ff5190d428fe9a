"""The audit repository: insert and read (the log is append-only; only pruning, in
storage/pruning.py, removes events older than the audit retention, and deleting an
account erases the address and user agent of its events)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.domain.models import AuditEvent
from authgate.storage.tables import audit_events


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value is not None else None


# Built once: see the note at the top of repositories.py.
_INSERT_EVENT = insert(audit_events)


_ERASE_CLIENT_DETAILS = (
    update(audit_events)
    .where(audit_events.c.user_id == bindparam("b_user_id"))
    .values(client_address=None, user_agent=None)
)


class SqlAuditRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def erase_client_details(self, user_id: UUID) -> None:
        await self._conn.execute(_ERASE_CLIENT_DETAILS, {"b_user_id": user_id})

    async def add(self, event: AuditEvent) -> None:
        await self._conn.execute(
            _INSERT_EVENT,
            {
                "id": uuid.uuid4(),
                "occurred_at": event.occurred_at,
                "name": event.name,
                "user_id": event.user_id,
                "session_id": event.session_id,
                "reason": _clip(event.reason, 64),
                "provider": _clip(event.provider, 64),
                "client_address": _clip(event.client_address, 64),
                # A user agent is attacker-chosen text: bounded, and never parsed.
                "user_agent": _clip(event.user_agent, 256),
            },
        )

    async def list(
        self, *, user_id: UUID | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        """The newest ``limit`` matching events, oldest first (as a log reads)."""
        statement = select(audit_events).order_by(
            audit_events.c.occurred_at.desc(), audit_events.c.id.desc()
        )
        if user_id is not None:
            statement = statement.where(audit_events.c.user_id == user_id)
        if since is not None:
            statement = statement.where(audit_events.c.occurred_at >= since)
        rows = (await self._conn.execute(statement.limit(limit))).all()
        return [_event(row) for row in reversed(rows)]


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        name=row.name,
        occurred_at=row.occurred_at,
        user_id=row.user_id,
        session_id=row.session_id,
        reason=row.reason,
        provider=row.provider,
        client_address=row.client_address,
        user_agent=row.user_agent,
    )
