"""Async engines per dialect, with the settings each needs to be correct under load."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from authgate.private_files import create_private_file, make_private_directory
from authgate.storage.faults import is_transport_gone

SQLITE_BUSY_TIMEOUT_SECONDS = 30
# DB_CONNECT_TIMEOUT_SECONDS: the whole MariaDB connect (TCP and handshake).
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
# DB_POOL_TIMEOUT_SECONDS: how long a request waits for a pooled connection when
# all are in use (SQLAlchemy's default is 30 s). A connect that fails does not wake
# the requests waiting for a slot, so with the database down the requests beyond
# the pool's size each wait this long for their 503. Together with the connect
# timeout it bounds every request: at most pool timeout + connect timeout.
DEFAULT_POOL_TIMEOUT_SECONDS = 10.0
# A Lambda container serves one request at a time: one connection (a little overflow
# for the rare nested unit of work), not DB_POOL_SIZE per container times hundreds of
# containers against Aurora's max_connections. A container is frozen between
# invocations, for minutes or hours: the server or a NAT may have dropped its
# connection meanwhile, so each checkout pings first (one round trip, cheap next to a
# 503) and connections are replaced after five minutes.
SERVERLESS_POOL: dict[str, Any] = {
    "pool_size": 1,
    "max_overflow": 2,
    "pool_pre_ping": True,
    "pool_recycle": 300,
}
# asyncmy.constants.CR.CR_CONN_HOST_ERROR: "Can't connect to MySQL server".
_CR_CONN_HOST_ERROR = 2003


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def ensure_sqlite_directory(url: URL) -> None:
    """Create the database file's directory (0700) and the file itself (0600).

    The file holds password hashes; SQLite would create it with 0644 under the usual
    umask. Created empty here first (SQLite treats an empty file as a new database),
    its -wal and -shm files then get its mode too (SQLite gives a WAL or shared
    memory file the permissions of its database)."""
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database)
        make_private_directory(path.parent)
        create_private_file(path)


def create_engine(
    url: URL,
    *,
    pool_size: int = 10,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    pool_timeout: float = DEFAULT_POOL_TIMEOUT_SECONDS,
    serverless: bool = False,
    causal_reads: bool = False,
) -> AsyncEngine:
    """``serverless``: a pool for an AWS Lambda container (see :data:`SERVERLESS_POOL`).
    ``causal_reads``: DATABASE_CAUSAL_READS (Galera only, see ``_make_causal``)."""
    if is_sqlite(url):
        return _sqlite_engine(url, pool_timeout=pool_timeout)
    pool: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size,
        # No pre-ping: it is a round trip on every checkout (a refresh makes five).
        # A connection broken by a server restart fails its request with 503 and is
        # discarded by the pool; recycling keeps idle connections under wait_timeout.
        "pool_pre_ping": False,
        "pool_recycle": 1800,
    }
    if serverless:
        pool = dict(SERVERLESS_POOL)
    return create_async_engine(
        url,
        # Bound parameters (password hashes, token hashes) never appear in the text
        # of a database error, which may reach a log.
        hide_parameters=True,
        async_creator=_bounded_connect(url, timeout=connect_timeout, causal_reads=causal_reads),
        pool_timeout=pool_timeout,
        **pool,
        # Every unit of work ends in COMMIT or ROLLBACK itself; the pool's extra
        # reset ROLLBACK on return would be one more round trip per request.
        pool_reset_on_return=None,
        # READ COMMITTED: fewer gap locks on the unique-email insert path, and a
        # refresh that lost the rotation race re-reads the winner's committed row.
        isolation_level="READ COMMITTED",
    )


def _bounded_connect(
    url: URL, *, timeout: float, causal_reads: bool = False
) -> Callable[[], Awaitable[Any]]:
    """asyncmy's connect, bounded in time, failing only with driver errors.

    asyncmy's own ``connect_timeout`` covers the TCP connect but not the handshake:
    a server (or a proxy in front of it) that accepts and never answers held each
    request forever. A connect that fails on a reset socket could also raise a bare
    RuntimeError, which SQLAlchemy passes through unwrapped (a 500). Both become
    the driver's OperationalError, which SQLAlchemy wraps like any failed connect.
    """
    import asyncmy
    from asyncmy.errors import OperationalError

    # The arguments SQLAlchemy itself would pass (URL query options included).
    cargs, cparams = url.get_dialect()().create_connect_args(url)

    async def connect() -> Any:
        try:
            async with asyncio.timeout(timeout):
                connection = await asyncmy.connect(*cargs, **cparams)
                if causal_reads:
                    await _make_causal(connection)
                return connection
        except TimeoutError as exc:
            raise OperationalError(
                _CR_CONN_HOST_ERROR,
                f"Can't connect to MySQL server on {url.host!r} "
                f"(no answer within {timeout:g} s: DB_CONNECT_TIMEOUT_SECONDS)",
            ) from exc
        except RuntimeError as exc:
            if not is_transport_gone(exc):
                raise
            raise OperationalError(
                _CR_CONN_HOST_ERROR,
                f"Can't connect to MySQL server on {url.host!r} (connection closed by peer)",
            ) from exc

    return connect


async def _make_causal(connection: Any) -> None:
    """On a Galera node, make every read of this connection causal.

    Galera replicates synchronously but applies asynchronously: a node may answer
    a read before applying a transaction another node has already committed, so a
    refresh token issued through node 1 and presented at once on node 2 could be
    "unknown" (a false 401 that logs the user out). ``wsrep_sync_wait=1`` makes each
    read wait for the node to catch up first (a cluster round trip per read). Only
    where wsrep is on: plain MariaDB has the variable too (it is a no-op there, but
    costs nothing to skip), MySQL has neither.
    """
    async with connection.cursor() as cursor:
        await cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
        row = await cursor.fetchone()
        if row is not None and str(row[1]).upper() == "ON":
            await cursor.execute("SET SESSION wsrep_sync_wait = 1")


def _sqlite_engine(url: URL, *, pool_timeout: float) -> AsyncEngine:
    ensure_sqlite_directory(url)
    engine = create_async_engine(
        url,
        hide_parameters=True,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        # Every transaction takes SQLite's one write lock (BEGIN IMMEDIATE below),
        # so a second connection in this process could only wait for it inside
        # SQLite's busy handler, which polls with sleeps of up to 100 ms and is
        # unfair: a p99 of 1.2-2.6 s for refreshes at 64-256 connections. With one
        # connection per process, requests queue for it in order in the event loop
        # (measured: p99 0.34 s at c64 and 0.86 s at c256, and more throughput
        # with 2 workers). Other processes still meet on the busy handler. Nothing
        # may hold a unit of work open while opening another: it would wait forever.
        pool_size=1,
        max_overflow=0,
        pool_timeout=pool_timeout,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN IMMEDIATE below
        # is what starts every transaction (SQLAlchemy's documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front: two refreshes of one token
        # queue on the busy timeout instead of both reading it as current and one
        # then failing to upgrade its read snapshot (SQLITE_BUSY_SNAPSHOT in WAL).
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
