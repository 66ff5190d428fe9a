"""Provider ID tokens that started a session: one row per token, so none starts two.

Rows are only inserted here; removing expired ones is pruning's job.
"""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.domain.models import IdTokenUse
from authgate.storage.tables import id_token_uses

_INSERT_USE = insert(id_token_uses)


class SqlIdTokenUseRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, use: IdTokenUse) -> bool:
        try:
            # The primary key decides between concurrent uses. On MariaDB the loser
            # waits for the winner's transaction: its commit makes this a duplicate,
            # its rollback (a 404 or 409 that must not consume the token) lets this
            # insert through. SQLite runs the two transactions one after the other.
            await self._conn.execute(
                _INSERT_USE,
                {
                    "token_hash": use.token_hash,
                    "provider": use.provider,
                    "used_at": use.used_at,
                    "expires_at": use.expires_at,
                },
            )
        except IntegrityError:
            # No savepoint, as in SqlUserRepository.add: the caller ends the unit.
            return False
        return True
