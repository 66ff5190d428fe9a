"""Concurrent requests never lose or duplicate data."""

from __future__ import annotations

import asyncio

from tests.conftest import Api
from tests.support.rows import count_rows, fetch_all


async def test_twenty_simultaneous_refreshes_produce_one_successor(api: Api) -> None:
    token = (await api.sign_up())["refreshToken"]
    responses = await asyncio.gather(
        *(api.client.post("/api/v1/refresh", json={"refreshToken": token}) for _ in range(20))
    )
    assert [r.status_code for r in responses] == [200] * 20
    successors = {r.json()["refreshToken"] for r in responses}
    assert len(successors) == 1
    rows = await fetch_all(api.settings.effective_database_url, "refresh_tokens")
    assert len(rows) == 2
    (parent,) = [r for r in rows if r["parent_id"] is None]
    (child,) = [r for r in rows if r["parent_id"] is not None]
    assert child["parent_id"] == parent["id"]
    (successor,) = successors
    assert (
        await api.client.post("/api/v1/refresh", json={"refreshToken": successor})
    ).status_code == 200


async def test_twenty_simultaneous_sign_ups_of_one_email_make_one_account(api: Api) -> None:
    async def sign_up(i: int) -> int:
        response = await api.client.post(
            "/api/v1/signup/credentials",
            json={"email": "Race@Cow.jp" if i % 2 else "race@cow.jp", "password": "Moo00!_*&x"},
        )
        return response.status_code

    statuses = await asyncio.gather(*(sign_up(i) for i in range(20)))
    assert sorted(statuses) == [200] + [409] * 19
    counts = await count_rows(api.settings.effective_database_url)
    assert counts["users"] == 1
    assert counts["sessions"] == 1
    assert counts["refresh_tokens"] == 1
