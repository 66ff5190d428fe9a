"""A database that cannot be reached is a 503 with Retry-After: never a 500, never a stall.

These run the app on uvloop, the loop ``authgate serve`` uses: asyncmy's
``RuntimeError('Transport does not expose socket instance')`` only happens there,
when a reset arrives while the loop is busy between the TCP connect and the
driver's first socket option (as on a loaded server when MariaDB is killed).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from authgate.clock import SystemClock
from authgate.config import Settings, SettingsError, load_settings
from authgate.web.app import create_app
from tests.conftest import CHEAP_HASHING
from tests.support.faulty_servers import resetting_server, silent_server

SIGN_IN = ("POST", "/api/v1/auth/credentials", {"email": "cow@cow.jp", "password": "Moo00!_*&x"})
SIGN_UP = (
    "POST",
    "/api/v1/signup/credentials",
    {
        "email": "cow@cow.jp",
        "password": "Moo00!_*&x",
        "passwordConfirm": "Moo00!_*&x",
        "firstName": "Melvin",
        "lastName": "Friedman",
    },
)
REFRESH = ("POST", "/api/v1/refresh", {"refreshToken": secrets.token_urlsafe(32)})
LEGACY_REFRESH = ("POST", "/refreshToken", {"refreshToken": secrets.token_urlsafe(32)})
READYZ = ("GET", "/readyz", None)
REQUESTS = (SIGN_IN, SIGN_UP, REFRESH, LEGACY_REFRESH, READYZ)


def _settings(url: str, key_pair: tuple[Path, Path], tmp_path: Path, **extra: Any) -> Settings:
    return load_settings(
        database_url=url,
        jwt_private_key_path=key_pair[0],
        jwt_public_key_path=key_pair[1],
        authgate_data_dir=tmp_path / "data",
        rate_limit_enabled=False,
        **CHEAP_HASHING,
        **extra,
    )


def _on_uvloop(
    scenario: Callable[[httpx.AsyncClient], Awaitable[None]], settings: Settings
) -> None:
    async def main() -> None:
        app = create_app(settings, clock=SystemClock())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                await scenario(client)

    uvloop.run(main())


@contextmanager
def _busy_loop() -> Iterator[None]:
    """Keep the running loop busy: 10 ms of blocking work on every turn, so socket
    events pile up between turns as they do on a loaded server."""
    loop = asyncio.get_running_loop()
    running = True

    def work() -> None:
        time.sleep(0.01)
        if running:
            loop.call_soon(work)

    loop.call_soon(work)
    try:
        yield
    finally:
        running = False


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.request.url.path, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unavailable"
    assert int(response.headers["retry-after"]) > 0


def test_a_database_that_resets_every_connection_is_503(
    key_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    with resetting_server() as server:

        async def scenario(client: httpx.AsyncClient) -> None:
            for method, path, body in REQUESTS * 4:
                with _busy_loop():
                    response = await client.request(method, path, json=body)
                _assert_unavailable(response)
            # Concurrent requests (fewer than the pool holds) meet the reset at
            # every stage of the connect.
            responses = await asyncio.gather(
                *(client.request(m, p, json=b) for m, p, b in REQUESTS * 3)
            )
            for response in responses:
                _assert_unavailable(response)
            assert (await client.get("/healthz")).status_code == 200

        _on_uvloop(scenario, _settings(server.url, key_pair, tmp_path))
        assert server.accepted >= len(REQUESTS) * 4


def test_a_database_that_never_answers_is_503_within_the_connect_timeout(
    key_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    with silent_server() as server:

        async def scenario(client: httpx.AsyncClient) -> None:
            started = time.monotonic()
            # Without a bound on the handshake these never returned.
            async with asyncio.timeout(60):
                responses = await asyncio.gather(
                    *(client.request(m, p, json=b) for m, p, b in REQUESTS)
                )
            elapsed = time.monotonic() - started
            for response in responses:
                _assert_unavailable(response)
            # 1 s timeout; generous for a shared machine, far below "forever".
            assert elapsed < 20, elapsed

        settings = _settings(server.url, key_pair, tmp_path, db_connect_timeout_seconds=1)
        _on_uvloop(scenario, settings)
        assert server.accepted >= 1


def test_requests_beyond_the_pool_end_within_the_pool_timeout(
    key_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    """A failed connect does not wake the requests queued for a pool slot: they wait
    DB_POOL_TIMEOUT_SECONDS (SQLAlchemy's 30 s before), then answer 503."""
    with resetting_server() as server:

        async def scenario(client: httpx.AsyncClient) -> None:
            started = time.monotonic()
            async with asyncio.timeout(60):
                responses = await asyncio.gather(
                    *(client.request(m, p, json=b) for m, p, b in (SIGN_IN, REFRESH) * 10)
                )
            elapsed = time.monotonic() - started
            for response in responses:
                _assert_unavailable(response)
            assert elapsed < 15, elapsed

        settings = _settings(
            server.url, key_pair, tmp_path, db_pool_size=1, db_pool_timeout_seconds=1
        )
        _on_uvloop(scenario, settings)


@pytest.mark.parametrize("name", ["db_connect_timeout_seconds", "db_pool_timeout_seconds"])
def test_database_timeouts_must_be_positive(name: str) -> None:
    with pytest.raises(SettingsError, match=name.upper()):
        load_settings(**{name: 0})
