"""The mail queue (``mail_outbox``): rows are leased with ``locked_until`` so that
several drainers (instances, processes) never send one row twice."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.domain.models import OutboxMail
from authgate.storage.tables import mail_outbox

_m = mail_outbox
_INSERT = insert(_m)
_NOW = bindparam("now", type_=_m.c.next_attempt_at.type)
_DUE = (
    select(_m)
    .where(
        _m.c.sent_at.is_(None),
        _m.c.next_attempt_at <= _NOW,
        _m.c.attempts < bindparam("max_attempts"),
        or_(_m.c.locked_until.is_(None), _m.c.locked_until <= _NOW),
    )
    .order_by(_m.c.next_attempt_at)
    .limit(bindparam("limit"))
)
_B_NOW = bindparam("b_now", type_=_m.c.next_attempt_at.type)
# The lease itself: the same condition as _DUE, re-checked by the UPDATE on the
# committed row, so of two drainers that both read the row as due one leases it.
_LEASE = (
    update(_m)
    .where(
        _m.c.id == bindparam("b_id"),
        _m.c.sent_at.is_(None),
        or_(_m.c.locked_until.is_(None), _m.c.locked_until <= _B_NOW),
    )
    .values(locked_until=bindparam("b_until", type_=_m.c.locked_until.type))
)
_SENT = (
    update(_m)
    .where(_m.c.id == bindparam("b_id"))
    .values(sent_at=bindparam("b_at", type_=_m.c.sent_at.type), locked_until=None)
)
_FAILED = (
    update(_m)
    .where(_m.c.id == bindparam("b_id"))
    .values(
        attempts=bindparam("b_attempts", type_=_m.c.attempts.type),
        next_attempt_at=bindparam("b_next", type_=_m.c.next_attempt_at.type),
        last_error=bindparam("b_error", type_=_m.c.last_error.type),
        locked_until=None,
    )
)
_DELETE = delete(_m).where(_m.c.id == bindparam("b_id"))
_DELETE_UNSENT_FOR_USER = delete(_m).where(
    _m.c.user_id == bindparam("b_user_id"), _m.c.sent_at.is_(None)
)


def _mail(row: Any) -> OutboxMail:
    return OutboxMail(
        id=row.id,
        user_id=row.user_id,
        purpose=row.purpose,
        address=row.address,
        created_at=row.created_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
    )


class SqlMailOutboxRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, mail: OutboxMail) -> None:
        await self._conn.execute(
            _INSERT,
            {
                "id": mail.id,
                "user_id": mail.user_id,
                "purpose": mail.purpose,
                "address": mail.address,
                "created_at": mail.created_at,
                "attempts": mail.attempts,
                "next_attempt_at": mail.next_attempt_at or mail.created_at,
                "locked_until": None,
                "sent_at": None,
                "last_error": None,
            },
        )

    async def claim(
        self, *, now: datetime, lease_until: datetime, limit: int, max_attempts: int
    ) -> list[OutboxMail]:
        parameters = {"now": now, "limit": limit, "max_attempts": max_attempts}
        rows = (await self._conn.execute(_DUE, parameters)).all()
        claimed = []
        for row in rows:
            result = await self._conn.execute(
                _LEASE, {"b_id": row.id, "b_now": now, "b_until": lease_until}
            )
            if result.rowcount == 1:
                claimed.append(_mail(row))
        return claimed

    async def mark_sent(self, mail_id: UUID, *, at: datetime) -> None:
        await self._conn.execute(_SENT, {"b_id": mail_id, "b_at": at})

    async def mark_failed(
        self, mail_id: UUID, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        await self._conn.execute(
            _FAILED,
            {
                "b_id": mail_id,
                "b_attempts": attempts,
                "b_next": next_attempt_at,
                "b_error": error[:255],
            },
        )

    async def delete(self, mail_id: UUID) -> None:
        await self._conn.execute(_DELETE, {"b_id": mail_id})

    async def delete_unsent_for_user(self, user_id: UUID, *, purpose: str | None = None) -> None:
        statement = _DELETE_UNSENT_FOR_USER
        if purpose is not None:
            statement = statement.where(_m.c.purpose == purpose)
        await self._conn.execute(statement, {"b_user_id": user_id})
