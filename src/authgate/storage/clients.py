"""Registered OAuth clients (``clients``) and revoking the sessions of one.

Grant types and audiences are stored space-separated: neither may contain a space
(``oauth.clients`` validates both before anything is written)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.domain.models import OAuthClient
from authgate.errors import Conflict
from authgate.storage.tables import clients, refresh_tokens, sessions

_INSERT = insert(clients)
_BY_ID = select(clients).where(clients.c.client_id == bindparam("client_id"))
_ALL = select(clients).order_by(clients.c.client_id)
_DELETE = delete(clients).where(clients.c.client_id == bindparam("client_id"))
_REVOKE_SESSIONS = (
    update(sessions)
    .where(sessions.c.client_id == bindparam("b_client_id"), sessions.c.revoked_at.is_(None))
    .values(
        revoked_at=bindparam("b_at", type_=sessions.c.revoked_at.type),
        revoked_reason=bindparam("b_reason", type_=sessions.c.revoked_reason.type),
    )
)
_CLEAR_SEALED_COPIES = (
    update(refresh_tokens)
    .where(
        refresh_tokens.c.session_id.in_(
            select(sessions.c.id).where(sessions.c.client_id == bindparam("b_client_id"))
        ),
        refresh_tokens.c.sealed_for_parent.is_not(None),
    )
    .values(sealed_for_parent=None)
)


def _client(row: Any) -> OAuthClient:
    return OAuthClient(
        client_id=row.client_id,
        secret_hash=row.secret_hash,
        grant_types=tuple(row.grant_types.split()),
        audiences=tuple(row.audiences.split()),
        may_introspect=bool(row.may_introspect),
        created_at=row.created_at,
    )


class SqlClientRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, client: OAuthClient) -> None:
        try:
            await self._conn.execute(
                _INSERT,
                {
                    "client_id": client.client_id,
                    "secret_hash": client.secret_hash,
                    "grant_types": " ".join(client.grant_types),
                    "audiences": " ".join(client.audiences),
                    "may_introspect": client.may_introspect,
                    "created_at": client.created_at,
                },
            )
        except IntegrityError:
            raise Conflict(f"A client with the id {client.client_id!r} exists already.") from None

    async def get(self, client_id: str) -> OAuthClient | None:
        row = (await self._conn.execute(_BY_ID, {"client_id": client_id})).first()
        return None if row is None else _client(row)

    async def list_all(self) -> list[OAuthClient]:
        return [_client(row) for row in await self._conn.execute(_ALL)]

    async def delete(self, client_id: str) -> bool:
        result = await self._conn.execute(_DELETE, {"client_id": client_id})
        return bool(result.rowcount)

    async def revoke_sessions(self, client_id: str, *, at: datetime, reason: str) -> int:
        result = await self._conn.execute(
            _REVOKE_SESSIONS, {"b_client_id": client_id, "b_at": at, "b_reason": reason}
        )
        await self._conn.execute(_CLEAR_SEALED_COPIES, {"b_client_id": client_id})
        return int(result.rowcount)
