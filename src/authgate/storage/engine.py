"""Async engines per dialect, with the settings each needs to be correct under load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from authgate.private_files import create_private_file, make_private_directory

SQLITE_BUSY_TIMEOUT_SECONDS = 30


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


def create_engine(url: URL, *, pool_size: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        return _sqlite_engine(url)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it is a round trip on every checkout (a refresh makes five).
        # A connection broken by a server restart fails its request with 503 and is
        # discarded by the pool; recycling keeps idle connections under wait_timeout.
        pool_pre_ping=False,
        pool_recycle=1800,
        # Every unit of work ends in COMMIT or ROLLBACK itself; the pool's extra
        # reset ROLLBACK on return would be one more round trip per request.
        pool_reset_on_return=None,
        # READ COMMITTED: fewer gap locks on the unique-email insert path, and a
        # refresh that lost the rotation race re-reads the winner's committed row.
        isolation_level="READ COMMITTED",
    )


def _sqlite_engine(url: URL) -> AsyncEngine:
    ensure_sqlite_directory(url)
    engine = create_async_engine(
        url,
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
