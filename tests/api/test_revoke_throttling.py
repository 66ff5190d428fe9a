"""Revocation is counted per client address: past the limit, 429 and nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.conftest import Api, start_api
from tests.support.rows import count_rows, fetch_all


@pytest.fixture
async def api(make_settings: Any, clock: Any) -> AsyncIterator[Api]:
    async for value in start_api(make_settings(rate_limit_revoke_per_ip="3/minute"), clock):
        yield value


def client_at(api: Api, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://authgate.test")


def _assert_429(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "too_many_requests"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    return retry_after


async def _revoked_sessions(api: Api) -> int:
    sessions = await fetch_all(api.settings.effective_database_url, "sessions")
    return sum(1 for s in sessions if s["revoked_at"] is not None)


async def test_revocations_past_the_limit_are_429_and_write_nothing(api: Api) -> None:
    token = (await api.sign_up())["refreshToken"]
    async with client_at(api, "198.51.100.7") as attacker:
        # Unknown tokens count too: the limit is on requests, not on successes.
        for path in ("/api/v1/revoke", "/revokeToken", "/api/v1/revoke"):
            response = await attacker.post(path, json={"refreshToken": "x" * 43})
            assert response.status_code == 200, response.text
        before = await count_rows(api.settings.effective_database_url, include_audit=True)
        for path in ("/api/v1/revoke", "/revokeToken"):
            retry_after = _assert_429(await attacker.post(path, json={"refreshToken": token}))
        assert await count_rows(api.settings.effective_database_url, include_audit=True) == before
        assert await _revoked_sessions(api) == 0

        # Another address has its own count; the window's end frees this one.
        async with client_at(api, "198.51.100.8") as neighbour:
            response = await neighbour.post("/api/v1/revoke", json={"refreshToken": "y" * 43})
            assert response.status_code == 200
        api.clock.advance(retry_after)
        refreshed = (await api.sign_up("calf@cow.jp"))["refreshToken"]
        response = await attacker.post("/api/v1/revoke", json={"refreshToken": refreshed})
        assert response.status_code == 200
    assert await _revoked_sessions(api) == 1


async def test_the_limit_can_be_switched_off_with_the_rest(make_settings: Any, clock: Any) -> None:
    settings = make_settings(rate_limit_revoke_per_ip="1/minute", rate_limit_enabled=False)
    async for api in start_api(settings, clock):
        for _ in range(3):
            response = await api.client.post("/api/v1/revoke", json={"refreshToken": "x" * 43})
            assert response.status_code == 200
