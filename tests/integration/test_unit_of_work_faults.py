"""The unit of work turns a database lost mid-transaction or at commit into 503.

A proxy in front of the real MariaDB resets every connection at a chosen moment;
socket errors that a driver might let through unwrapped are raised by hand.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from authgate.errors import Unavailable
from authgate.storage.engine import create_engine
from authgate.storage.faults import ASYNCMY_TRANSPORT_GONE
from authgate.storage.migrate import upgrade_url
from authgate.storage.unit_of_work import SqlUnitOfWork
from tests.support.databases import empty_mariadb, ensure_mariadb
from tests.support.faulty_servers import CuttingProxy


@pytest.fixture
def mariadb() -> Iterator[URL]:
    url = ensure_mariadb()  # runs its own event loop: a sync fixture
    yield url
    asyncio.run(empty_mariadb(url))


@pytest.fixture
async def proxied(mariadb: URL) -> AsyncIterator[tuple[AsyncEngine, CuttingProxy]]:
    with CuttingProxy(mariadb.host or "127.0.0.1", mariadb.port or 3306) as proxy:
        engine = create_engine(mariadb.set(host="127.0.0.1", port=proxy.port), pool_size=2)
        try:
            yield engine, proxy
        finally:
            await engine.dispose()


async def _read_then_cut(engine: AsyncEngine, proxy: CuttingProxy, *, read_after_cut: bool) -> None:
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.users.get(uuid.uuid4()) is None
        proxy.cut()
        if read_after_cut:
            await uow.users.get(uuid.uuid4())
    # Leaving the block commits: with the connection cut, the COMMIT fails.


async def _read_then_raise(engine: AsyncEngine, error: BaseException) -> None:
    async with SqlUnitOfWork(engine) as uow:
        await uow.users.get(uuid.uuid4())
        raise error


@pytest.mark.mariadb
async def test_connection_lost_mid_transaction_is_unavailable(
    proxied: tuple[AsyncEngine, CuttingProxy],
) -> None:
    engine, proxy = proxied
    with pytest.raises(Unavailable) as raised:
        await _read_then_cut(engine, proxy, read_after_cut=True)
    assert raised.value.detail_for_log is not None
    assert raised.value.detail_for_log.startswith("database:")


@pytest.mark.mariadb
async def test_connection_lost_at_commit_is_unavailable(
    proxied: tuple[AsyncEngine, CuttingProxy],
) -> None:
    engine, proxy = proxied
    with pytest.raises(Unavailable):
        await _read_then_cut(engine, proxy, read_after_cut=False)
    # The pool recovers once the database is back: the broken connection was dropped.
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.users.get(uuid.uuid4()) is None


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = make_url(f"sqlite+aiosqlite:///{tmp_path / 'faults.db'}")
    await upgrade_url(url)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "fault",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        BrokenPipeError(32, "Broken pipe"),
        TimeoutError(),
        RuntimeError(ASYNCMY_TRANSPORT_GONE),
    ],
    ids=repr,
)
async def test_socket_errors_that_escape_the_driver_are_unavailable(
    sqlite_engine: AsyncEngine, fault: BaseException
) -> None:
    with pytest.raises(Unavailable) as raised:
        await _read_then_raise(sqlite_engine, fault)
    assert raised.value.__cause__ is fault


@pytest.mark.parametrize(
    "bug", [RuntimeError("some other runtime error"), KeyError("x"), ValueError("y")], ids=repr
)
async def test_a_bug_inside_the_transaction_stays_a_bug(
    sqlite_engine: AsyncEngine, bug: Exception
) -> None:
    with pytest.raises(type(bug)) as raised:
        await _read_then_raise(sqlite_engine, bug)
    assert raised.value is bug
