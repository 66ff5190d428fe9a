"""The unit of work: the one owner of a transaction.

Leaving the block normally commits; an exception rolls back, so a failed request
writes nothing. Database outages surface as :class:`authgate.errors.Unavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from authgate.errors import Unavailable
from authgate.storage.audit import SqlAuditRepository
from authgate.storage.id_token_uses import SqlIdTokenUseRepository
from authgate.storage.mail_outbox import SqlMailOutboxRepository
from authgate.storage.one_time_tokens import SqlOneTimeTokenRepository
from authgate.storage.pruning import SqlPruningRepository
from authgate.storage.repositories import (
    SqlIdentityRepository,
    SqlSessionRepository,
    SqlUserRepository,
)

logger = logging.getLogger(__name__)


class SqlUnitOfWork:
    users: SqlUserRepository
    identities: SqlIdentityRepository
    sessions: SqlSessionRepository
    audit: SqlAuditRepository
    id_token_uses: SqlIdTokenUseRepository
    pruning: SqlPruningRepository
    one_time_tokens: SqlOneTimeTokenRepository
    mail_outbox: SqlMailOutboxRepository

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    async def __aenter__(self) -> Self:
        try:
            self._connection = await self._engine.connect()
            self._transaction = await self._connection.begin()
        except DBAPIError as exc:
            await self._close()
            raise Unavailable(detail_for_log=f"database: {exc.orig!r}") from exc
        except PoolTimeout as exc:
            # Every pooled connection stayed busy past the pool timeout: overload,
            # answered 503 with Retry-After like any unavailable database, not 500.
            await self._close()
            raise Unavailable(detail_for_log=f"database pool: {exc}") from exc
        self.users = SqlUserRepository(self._connection)
        self.identities = SqlIdentityRepository(self._connection)
        self.sessions = SqlSessionRepository(self._connection)
        self.audit = SqlAuditRepository(self._connection)
        self.id_token_uses = SqlIdTokenUseRepository(self._connection)
        self.pruning = SqlPruningRepository(self._connection)
        self.one_time_tokens = SqlOneTimeTokenRepository(self._connection)
        self.mail_outbox = SqlMailOutboxRepository(self._connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._transaction is None:
            raise RuntimeError("unit of work was not entered")
        try:
            if exc_type is None:
                await self._transaction.commit()
            else:
                await self._transaction.rollback()
        except DBAPIError as db_error:
            raise Unavailable(detail_for_log=f"database: {db_error.orig!r}") from db_error
        finally:
            await self._close()
        if exc_type is None:
            _run_after_commit(self._after_commit)
        if isinstance(exc, DBAPIError) and not isinstance(exc, IntegrityError):
            raise Unavailable(detail_for_log=f"database: {exc.orig!r}") from exc

    async def _close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


def _run_after_commit(callbacks: list[Callable[[], None]]) -> None:
    # The transaction is committed: a failing callback (a log line) must not turn
    # the request into an error now.
    for callback in callbacks:
        try:
            callback()
        except Exception:
            logger.exception("after-commit callback failed")
    callbacks.clear()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine)
