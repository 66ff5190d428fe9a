"""The app on the database ring: created at start, served as the JWKS, followed live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from authgate.bootstrap import key_ring_service
from authgate.clock import FrozenClock
from authgate.server_secret import load_server_secret
from authgate.storage.engine import create_engine
from authgate.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.conftest import Api, start_api


@pytest.fixture
async def ring_api(make_settings: Any, clock: FrozenClock) -> AsyncIterator[Api]:
    settings = make_settings(
        jwt_private_key_path=None, jwt_public_key_path=None, key_ring_refresh_seconds=0.05
    )
    async for value in start_api(settings, clock):
        yield value


async def _kids(api: Api) -> list[str]:
    response = await api.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    return [key["kid"] for key in response.json()["keys"]]


async def test_the_database_ring_signs_publishes_and_rotates(ring_api: Api) -> None:
    kids = await _kids(ring_api)
    assert len(kids) == 2  # current (first) and next
    tokens = await ring_api.sign_up()
    before = tokens["accessToken"]
    assert jwt.get_unverified_header(before)["kid"] == kids[0]
    bearer = {"Authorization": f"Bearer {before}"}
    assert (await ring_api.client.get("/secure", headers=bearer)).status_code == 200

    # Another process (the CLI) rotates the same database.
    settings = ring_api.settings
    engine = create_engine(settings.effective_database_url, pool_size=1)
    try:
        service, _ = key_ring_service(
            settings,
            uow=SqlUnitOfWorkFactory(engine),
            clock=ring_api.clock,
            server_secret=load_server_secret(settings).secret,
        )
        rotation = await service.rotate(force=True)
    finally:
        await engine.dispose()
    assert rotation.current == kids[1]
    for _ in range(100):
        if (await _kids(ring_api))[0] == rotation.current:
            break
        await asyncio.sleep(0.05)
    assert set(await _kids(ring_api)) == {rotation.current, rotation.next, kids[0]}
    assert (await ring_api.client.get("/secure", headers=bearer)).status_code == 200
    refreshed = await ring_api.client.post(
        "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert jwt.get_unverified_header(refreshed.json()["accessToken"])["kid"] == rotation.current
