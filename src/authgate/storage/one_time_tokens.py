"""One-time tokens (verification, reset, email change) by SHA-256 of the token."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.domain.models import OneTimeToken
from authgate.storage.tables import one_time_tokens

_t = one_time_tokens
_INSERT = insert(_t)
_BY_HASH = select(_t).where(_t.c.token_hash == bindparam("token_hash"))
_USED_AT = bindparam("b_at", type_=_t.c.used_at.type)
# A newer link of the same purpose replaces the older ones.
_SUPERSEDE = (
    update(_t)
    .where(
        _t.c.user_id == bindparam("b_user_id"),
        _t.c.purpose == bindparam("b_purpose"),
        _t.c.used_at.is_(None),
    )
    .values(used_at=_USED_AT)
)
# Single use: of two concurrent consumers only one UPDATE finds used_at NULL (the
# second waits for the first's row lock, then re-reads the committed row).
_CONSUME = (
    update(_t).where(_t.c.id == bindparam("b_id"), _t.c.used_at.is_(None)).values(used_at=_USED_AT)
)
_INVALIDATE_USER = (
    update(_t)
    .where(_t.c.user_id == bindparam("b_user_id"), _t.c.used_at.is_(None))
    .values(used_at=_USED_AT)
)


def _token(row: Any) -> OneTimeToken:
    return OneTimeToken(
        id=row.id,
        user_id=row.user_id,
        purpose=row.purpose,
        token_hash=row.token_hash,
        email=row.email,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )


class SqlOneTimeTokenRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, token: OneTimeToken) -> None:
        await self._conn.execute(
            _SUPERSEDE,
            {"b_user_id": token.user_id, "b_purpose": token.purpose, "b_at": token.created_at},
        )
        await self._conn.execute(
            _INSERT,
            {
                "id": token.id,
                "user_id": token.user_id,
                "purpose": token.purpose,
                "token_hash": token.token_hash,
                "email": token.email,
                "created_at": token.created_at,
                "expires_at": token.expires_at,
                "used_at": token.used_at,
            },
        )

    async def find(self, token_hash: str) -> OneTimeToken | None:
        row = (await self._conn.execute(_BY_HASH, {"token_hash": token_hash})).first()
        return _token(row) if row else None

    async def consume(self, token_id: UUID, *, at: datetime) -> bool:
        result = await self._conn.execute(_CONSUME, {"b_id": token_id, "b_at": at})
        return result.rowcount == 1

    async def invalidate_user(self, user_id: UUID, *, at: datetime) -> None:
        await self._conn.execute(_INVALIDATE_USER, {"b_user_id": user_id, "b_at": at})

    async def invalidate_purpose(self, user_id: UUID, purpose: str, *, at: datetime) -> None:
        await self._conn.execute(
            _SUPERSEDE, {"b_user_id": user_id, "b_purpose": purpose, "b_at": at}
        )
