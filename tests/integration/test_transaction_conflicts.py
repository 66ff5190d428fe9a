"""A real InnoDB deadlock: the victim's unit of work is a TransactionConflict, and
the retry runner runs it again until it commits.

Two units of work update two users' rows in opposite orders; InnoDB's deadlock
detector rolls one back at once with error 1213, the same error Galera gives a
transaction that loses certification to another node.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from authgate.domain.models import User
from authgate.errors import TransactionConflict
from authgate.services.transactions import ConflictRetry
from authgate.storage.engine import create_engine
from authgate.storage.unit_of_work import SqlUnitOfWork
from tests.support.databases import empty_mariadb, ensure_mariadb

pytestmark = pytest.mark.mariadb


@pytest.fixture
def mariadb() -> Iterator[URL]:
    url = ensure_mariadb()  # runs its own event loop: a sync fixture
    yield url
    asyncio.run(empty_mariadb(url))


@pytest.fixture
async def engine(mariadb: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(mariadb, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


def _user(n: int) -> User:
    return User(
        id=uuid.uuid4(),
        email=f"cow{n}@cow.jp",
        email_key=f"cow{n}@cow.jp",
        email_verified=True,
        given_name="",
        family_name="",
        display_name="",
        password_hash=None,
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


async def _two_users(engine: AsyncEngine) -> tuple[User, User]:
    first, second = _user(1), _user(2)
    async with SqlUnitOfWork(engine) as uow:
        await uow.users.add(first)
        await uow.users.add(second)
    return first, second


class Crossing:
    """Two units of work that each lock one row, wait for the other, then lock the other's."""

    def __init__(self, engine: AsyncEngine, first: User, second: User) -> None:
        self.engine = engine
        self.rows = (first.id, second.id)
        self.holding = (asyncio.Event(), asyncio.Event())
        self.attempts = [0, 0]

    async def side(self, me: int) -> None:
        self.attempts[me] += 1
        mine, theirs = self.rows[me], self.rows[1 - me]
        async with SqlUnitOfWork(self.engine) as uow:
            await uow.users.set_password_hash(mine, f"side {me}")
            self.holding[me].set()
            await self.holding[1 - me].wait()
            await uow.users.set_password_hash(theirs, f"side {me}")


async def test_a_deadlock_victim_is_a_transaction_conflict(engine: AsyncEngine) -> None:
    crossing = Crossing(engine, *await _two_users(engine))
    results = await asyncio.wait_for(
        asyncio.gather(crossing.side(0), crossing.side(1), return_exceptions=True), 30
    )
    conflicts = [r for r in results if isinstance(r, TransactionConflict)]
    assert len(conflicts) == 1, results
    assert conflicts[0].detail_for_log is not None
    assert "1213" in conflicts[0].detail_for_log
    assert [r for r in results if r is None] == [None]


async def test_the_retried_victim_commits_after_the_winner(engine: AsyncEngine) -> None:
    first, second = await _two_users(engine)
    crossing = Crossing(engine, first, second)
    retry = ConflictRetry(attempts=3)
    await asyncio.wait_for(
        asyncio.gather(
            retry.run(lambda: crossing.side(0), name="side 0"),
            retry.run(lambda: crossing.side(1), name="side 1"),
        ),
        30,
    )
    assert sorted(crossing.attempts) == [1, 2]  # the victim ran twice, the winner once
    victim = crossing.attempts.index(2)
    async with SqlUnitOfWork(engine) as uow:
        hashes = {
            (await uow.users.get(first.id)).password_hash,  # type: ignore[union-attr]
            (await uow.users.get(second.id)).password_hash,  # type: ignore[union-attr]
        }
    # The victim's retry committed last, over both rows: nothing of its first try.
    assert hashes == {f"side {victim}"}


async def _sync_wait(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (await connection.exec_driver_sql("SELECT @@session.wsrep_sync_wait")).scalar_one()
        )


async def test_causal_reads_are_ignored_where_wsrep_is_off(mariadb: URL) -> None:
    # The shared test server is a plain MariaDB (wsrep_on=OFF): the setting must
    # neither fail the connect nor change the session. tests/galera shows it on.
    engine = create_engine(mariadb, pool_size=1, causal_reads=True)
    try:
        assert await _sync_wait(engine) == 0
    finally:
        await engine.dispose()
