"""The unit of work: the one owner of a transaction.

Leaving the block normally commits; an exception rolls back, so a failed request
writes nothing. Database outages surface as :class:`authgate.errors.Unavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from authgate.storage.audit import SqlAuditRepository
from authgate.storage.clients import SqlClientRepository
from authgate.storage.faults import is_database_outage, unavailable
from authgate.storage.id_token_uses import SqlIdTokenUseRepository
from authgate.storage.mail_outbox import SqlMailOutboxRepository
from authgate.storage.one_time_tokens import SqlOneTimeTokenRepository
from authgate.storage.pruning import SqlPruningRepository
from authgate.storage.repositories import (
    SqlIdentityRepository,
    SqlSessionRepository,
    SqlUserRepository,
)
from authgate.storage.signing_keys import SqlSigningKeyRepository

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
    signing_keys: SqlSigningKeyRepository
    clients: SqlClientRepository

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
        except Exception as exc:
            # Refused, reset, timed out, or every pooled connection stayed busy past
            # the pool timeout (overload): 503 with Retry-After, not 500.
            await self._close()
            if is_database_outage(exc):
                raise unavailable(exc) from exc
            raise
        self.users = SqlUserRepository(self._connection)
        self.identities = SqlIdentityRepository(self._connection)
        self.sessions = SqlSessionRepository(self._connection)
        self.audit = SqlAuditRepository(self._connection)
        self.id_token_uses = SqlIdTokenUseRepository(self._connection)
        self.pruning = SqlPruningRepository(self._connection)
        self.one_time_tokens = SqlOneTimeTokenRepository(self._connection)
        self.mail_outbox = SqlMailOutboxRepository(self._connection)
        self.signing_keys = SqlSigningKeyRepository(self._connection)
        self.clients = SqlClientRepository(self._connection)
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
        except Exception as end_error:
            if is_database_outage(end_error):
                # The connection died at COMMIT or ROLLBACK: an outage like any other.
                raise unavailable(end_error) from end_error
            raise
        finally:
            await self._close()
        if exc_type is None:
            _run_after_commit(self._after_commit)
        if exc is not None and is_database_outage(exc):
            raise unavailable(exc) from exc

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await connection.close()
        except Exception as exc:
            # Returning a broken connection to the pool only discards it; the
            # request's outcome is already decided above.
            if not is_database_outage(exc):
                raise
            logger.debug("closing a broken database connection: %r", exc)


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
