"""Several instances starting at once on an empty database all come up.

Before the migration lock, 7 of 18 instances starting together on an empty
MariaDB exited with "Table 'users' already exists".
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from authgate.storage.migrate import head_revision
from authgate.storage.tables import metadata
from tests.e2e.server import authgate_command, clean_environment
from tests.support.databases import ensure_mariadb

pytestmark = pytest.mark.e2e


async def _run(url: URL, *statements: str) -> list[list[tuple[Any, ...]]]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            results: list[list[tuple[Any, ...]]] = []
            for statement in statements:
                result = await connection.execute(text(statement))
                results.append([tuple(row) for row in result] if result.returns_rows else [])
            return results
    finally:
        await engine.dispose()


@pytest.fixture
def fresh_mariadb() -> Iterator[URL]:
    """A new, empty database on the test server, dropped afterwards."""
    server = ensure_mariadb()
    name = f"authgate_race_{uuid.uuid4().hex[:12]}"
    asyncio.run(_run(server.set(database=""), f"CREATE DATABASE `{name}`"))
    try:
        yield server.set(database=name)
    finally:
        asyncio.run(_run(server.set(database=""), f"DROP DATABASE IF EXISTS `{name}`"))


def _migrate_at_once(
    url: URL, workdir: Path, instances: int
) -> list[subprocess.CompletedProcess[str]]:
    env = clean_environment(DATABASE_URL=url.render_as_string(hide_password=False))
    processes = [
        subprocess.Popen(
            authgate_command("migrate"),
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(instances)
    ]
    finished = []
    for process in processes:
        output, _ = process.communicate(timeout=120)
        finished.append(subprocess.CompletedProcess(process.args, process.returncode, output))
    return finished


def _assert_all_succeeded(finished: list[subprocess.CompletedProcess[str]]) -> None:
    failures = [f"exit {run.returncode}:\n{run.stdout}" for run in finished if run.returncode]
    assert not failures, "\n\n".join(failures)


@pytest.mark.mariadb
def test_simultaneous_migrations_on_an_empty_mariadb_all_succeed(
    fresh_mariadb: URL, tmp_path: Path
) -> None:
    _assert_all_succeeded(_migrate_at_once(fresh_mariadb, tmp_path, 6))
    versions, tables = asyncio.run(
        _run(
            fresh_mariadb,
            "SELECT version_num FROM alembic_version",
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
        )
    )
    assert versions == [(head_revision(),)]
    assert {name for (name,) in tables} == {*metadata.tables, "alembic_version"}


def test_simultaneous_migrations_on_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    database = tmp_path / "data" / "authgate.db"
    url = URL.create("sqlite+aiosqlite", database=str(database))
    # SQLite needs no lock of ours: BEGIN IMMEDIATE holds its write lock through
    # the whole upgrade. Three processes, to keep the suite's time down.
    _assert_all_succeeded(_migrate_at_once(url, tmp_path, 3))
    (versions,) = asyncio.run(_run(url, "SELECT version_num FROM alembic_version"))
    assert versions == [(head_revision(),)]
