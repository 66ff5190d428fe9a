"""Test databases: the same suite on SQLite and MariaDB, selected by URL.

SQLite: one migrated template per session, copied for each test (fast, isolated).
MariaDB: one database migrated once per session and emptied after each test.
Unreachable MariaDB skips its tests locally but FAILS them when CI=true (or
AUTHGATE_TEST_REQUIRE_MARIADB=1): CI must never pass on a silent skip.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from authgate.storage.migrate import upgrade_url
from authgate.storage.tables import metadata

DEFAULT_MARIADB_URL = "mysql+asyncmy://root@127.0.0.1:3306/authgate_test?charset=utf8mb4"
_CHECKOUT = Path(__file__).resolve().parents[2]


def mariadb_url() -> URL:
    """The configured test database, renamed for this checkout and pytest-xdist worker.

    Each suite empties its database after every test: two checkouts (or two xdist
    workers) sharing one database would wipe each other's rows mid-test.
    """
    url = make_url(os.environ.get("AUTHGATE_TEST_MARIADB_URL", DEFAULT_MARIADB_URL))
    checkout = hashlib.sha256(str(_CHECKOUT).encode()).hexdigest()[:8]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    suffix = f"_{checkout}_{worker}"
    # MariaDB allows 64 characters: shorten the configured name, never the suffix.
    return url.set(database=f"{(url.database or 'authgate_test')[: 64 - len(suffix)]}{suffix}")


def mariadb_required() -> bool:
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("AUTHGATE_TEST_REQUIRE_MARIADB") == "1"
    )


async def _prepare_mariadb(url: URL) -> None:
    server = create_async_engine(url.set(database=""))
    try:
        async with server.connect() as connection:
            await connection.execute(
                text(
                    f"CREATE DATABASE IF NOT EXISTS `{url.database}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            )
    finally:
        await server.dispose()
    # Start each session from an empty schema so a changed migration is really run.
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for table in [*metadata.sorted_tables, "alembic_version"]:
                await connection.execute(text(f"DROP TABLE IF EXISTS `{table}`"))
            await connection.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    finally:
        await engine.dispose()
    await upgrade_url(url)


_mariadb_state: dict[str, str | None] = {}


def ensure_mariadb() -> URL:
    """Migrate the MariaDB test database once per session; skip or fail if unreachable."""
    url = mariadb_url()
    if "error" not in _mariadb_state:
        try:
            asyncio.run(_prepare_mariadb(url))
            _mariadb_state["error"] = None
        except Exception as exc:
            _mariadb_state["error"] = f"{type(exc).__name__}: {exc}"
    error = _mariadb_state["error"]
    if error is not None:
        message = f"MariaDB at {url.render_as_string()} is unreachable: {error}"
        if mariadb_required():
            pytest.fail(f"{message} (CI=true: MariaDB tests are required)", pytrace=False)
        pytest.skip(message)
    return url


async def empty_mariadb(url: URL) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                # The window row belongs to the migrations, like alembic_version.
                if table.name != "schema_window":
                    await connection.execute(table.delete())
    finally:
        await engine.dispose()


_sqlite_template: dict[str, Path] = {}


def sqlite_copy(tmp_path: Path, template_dir: Path) -> URL:
    if "path" not in _sqlite_template:
        template = template_dir / "template.db"
        asyncio.run(upgrade_url(make_url(f"sqlite+aiosqlite:///{template}")))
        _sqlite_template["path"] = template
    target = tmp_path / "authgate.db"
    shutil.copyfile(_sqlite_template["path"], target)
    return make_url(f"sqlite+aiosqlite:///{target}")
