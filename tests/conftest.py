"""Fixtures shared by every test layer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import URL

from authgate.bootstrap import Overrides, Services
from authgate.clock import FrozenClock
from authgate.config import Settings, load_settings
from authgate.crypto.keys import write_key_pair
from authgate.web.app import create_app
from tests.support.databases import empty_mariadb, ensure_mariadb, sqlite_copy

# @pytest.mark.serial: run alone under xdist (tests/support/serial.py).
pytest_plugins = ["tests.support.serial"]

# Cheap argon2 for speed; one test checks the production parameters separately.
CHEAP_HASHING = {
    "password_hash_time_cost": 1,
    "password_hash_memory_kib": 8,
    "password_hash_parallelism": 1,
    "password_hash_workers": 2,
}


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """Undo a test's ``configure_logging``: its writer thread would otherwise outlive
    the test and write later tests' records to a stream pytest has closed."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    if root.handlers != handlers:
        from authgate.logs import stop_logging

        stop_logging()
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture(scope="session")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_key_pair(tmp_path_factory.mktemp("keys"), "RS256")


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[URL]:
    if request.param == "sqlite":
        yield sqlite_copy(tmp_path, tmp_path_factory.getbasetemp())
        return
    import asyncio

    url = ensure_mariadb()
    yield url
    asyncio.run(empty_mariadb(url))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def make_settings(database_url: URL, key_pair: tuple[Path, Path], tmp_path: Path) -> Any:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url.render_as_string(hide_password=False),
            "jwt_private_key_path": key_pair[0],
            "jwt_public_key_path": key_pair[1],
            "authgate_data_dir": tmp_path / "data",
            "refresh_reuse_leeway_seconds": 10,
            # No sign-up mail unless a test asks for it: the drainer's rows would
            # otherwise appear in the "nothing written" row counts of other tests.
            "email_verification": "off",
            **CHEAP_HASHING,
        }
        values.update(overrides)
        return load_settings(**values)

    return build


@dataclass
class Api:
    client: httpx.AsyncClient
    app: FastAPI
    clock: FrozenClock
    settings: Settings

    @property
    def services(self) -> Services:
        """The app's composition root (what its routes use)."""
        from authgate.web.deps import app_services

        return app_services(self.app)

    async def sign_up(self, email: str = "cow@cow.jp", password: str = "Moo00!_*&x") -> Any:
        response = await self.client.post(
            "/api/v1/signup/credentials",
            json={
                "email": email,
                "password": password,
                "passwordConfirm": password,
                "firstName": "Melvin",
                "lastName": "Friedman",
            },
        )
        assert response.status_code == 200, response.text
        return response.json()


async def start_api(
    settings: Settings, clock: FrozenClock, overrides: Overrides | None = None
) -> AsyncIterator[Api]:
    app = create_app(settings, clock=clock, overrides=overrides)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://authgate.test"
        ) as client:
            yield Api(client=client, app=app, clock=clock, settings=settings)


@pytest.fixture
async def api(make_settings: Any, clock: FrozenClock) -> AsyncIterator[Api]:
    async for value in start_api(make_settings(), clock):
        yield value
