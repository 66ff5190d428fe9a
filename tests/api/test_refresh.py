"""Rotating refresh tokens: rotation, leeway, reuse detection, expiry, revocation."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from tests.conftest import Api, start_api
from tests.support.rows import count_rows, fetch_all

REFRESH = "/api/v1/refresh"
REVOKE = "/api/v1/revoke"


async def _refresh(api: Api, token: str) -> Any:
    return await api.client.post(REFRESH, json={"refreshToken": token})


async def test_refresh_rotates_and_keeps_the_session(api: Api) -> None:
    first = await api.sign_up()
    api.clock.advance(60)
    response = await _refresh(api, first["refreshToken"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refreshToken"] != first["refreshToken"]
    old = jwt.decode(first["accessToken"], options={"verify_signature": False})
    new = jwt.decode(second["accessToken"], options={"verify_signature": False})
    assert new["sid"] == old["sid"]
    assert new["jti"] != old["jti"]
    assert new["iat"] == old["iat"] + 60
    # The successor works, and rotates in turn.
    assert (await _refresh(api, second["refreshToken"])).status_code == 200


async def test_retry_within_the_leeway_returns_the_same_successor(api: Api) -> None:
    first = await api.sign_up()
    successor = (await _refresh(api, first["refreshToken"])).json()
    api.clock.advance(9)
    retry = await _refresh(api, first["refreshToken"])
    assert retry.status_code == 200
    assert retry.json()["refreshToken"] == successor["refreshToken"]
    assert retry.json()["accessToken"] != successor["accessToken"]
    # No new branch: still exactly two tokens in the family.
    assert (await count_rows(api.settings.effective_database_url))["refresh_tokens"] == 2
    assert (await _refresh(api, successor["refreshToken"])).status_code == 200


async def test_replay_after_the_leeway_revokes_the_whole_family(api: Api) -> None:
    first = await api.sign_up()
    successor = (await _refresh(api, first["refreshToken"])).json()
    api.clock.advance(11)
    replay = await _refresh(api, first["refreshToken"])
    assert replay.status_code == 401
    assert replay.json()["code"] == "invalid_refresh_token"
    # The thief's copy and the victim's current token are both dead now.
    assert (await _refresh(api, successor["refreshToken"])).status_code == 401
    (session,) = await fetch_all(api.settings.effective_database_url, "sessions")
    assert session["revoked_reason"] == "reuse_detected"
    # Other sessions of the same user are untouched.
    other = await api.client.post(
        "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "Moo00!_*&x"}
    )
    assert (await _refresh(api, other.json()["refreshToken"])).status_code == 200


async def test_an_older_ancestor_gets_no_leeway(api: Api) -> None:
    t0 = (await api.sign_up())["refreshToken"]
    t1 = (await _refresh(api, t0)).json()["refreshToken"]
    t2 = (await _refresh(api, t1)).json()["refreshToken"]
    # Well inside the leeway, but t0's successor t1 has itself rotated: theft.
    assert (await _refresh(api, t0)).status_code == 401
    assert (await _refresh(api, t2)).status_code == 401


async def test_zero_leeway_is_strict(make_settings: Any, clock: Any) -> None:
    async for api in start_api(make_settings(refresh_reuse_leeway_seconds=0), clock):
        t0 = (await api.sign_up())["refreshToken"]
        t1 = (await _refresh(api, t0)).json()["refreshToken"]
        assert (await _refresh(api, t0)).status_code == 401
        assert (await _refresh(api, t1)).status_code == 401


async def test_idle_expiry(make_settings: Any, clock: Any) -> None:
    settings = make_settings(refresh_token_ttl_seconds=100, refresh_token_absolute_ttl_seconds=1000)
    async for api in start_api(settings, clock):
        token = (await api.sign_up())["refreshToken"]
        api.clock.advance(99)
        token = (await _refresh(api, token)).json()["refreshToken"]  # restarts the idle clock
        api.clock.advance(99)
        token = (await _refresh(api, token)).json()["refreshToken"]
        api.clock.advance(100)
        response = await _refresh(api, token)
        assert response.status_code == 401


async def test_absolute_expiry_is_counted_from_sign_in(make_settings: Any, clock: Any) -> None:
    settings = make_settings(refresh_token_ttl_seconds=100, refresh_token_absolute_ttl_seconds=250)
    async for api in start_api(settings, clock):
        token = (await api.sign_up())["refreshToken"]
        for _ in range(2):
            api.clock.advance(90)
            response = await _refresh(api, token)
            assert response.status_code == 200
            token = response.json()["refreshToken"]
        api.clock.advance(90)  # 270 s after sign-in, though only 90 s idle
        assert (await _refresh(api, token)).status_code == 401


async def test_revoke_ends_the_session_and_always_answers_200(api: Api) -> None:
    tokens = await api.sign_up()
    successor = (await _refresh(api, tokens["refreshToken"])).json()["refreshToken"]
    response = await api.client.post(REVOKE, json={"refreshToken": tokens["refreshToken"]})
    assert (response.status_code, response.json()) == (200, {})
    assert (await _refresh(api, successor)).status_code == 401
    for token in (successor, "never-issued", "x" * 500):
        response = await api.client.post(REVOKE, json={"refreshToken": token})
        assert (response.status_code, response.json()) == (200, {})


@pytest.mark.parametrize("token", ["", "garbage", "x" * 513, "A" * 43])
async def test_malformed_or_unknown_refresh_tokens_are_401_or_422(api: Api, token: str) -> None:
    await api.sign_up()
    before = await count_rows(api.settings.effective_database_url)
    response = await _refresh(api, token)
    assert response.status_code in (401, 422)
    assert response.headers["content-type"] == "application/problem+json"
    assert await count_rows(api.settings.effective_database_url) == before


async def test_serverless_refresh_and_revoke_check_the_email(api: Api) -> None:
    tokens = await api.sign_up("cow@cow.jp")
    before = await count_rows(api.settings.effective_database_url)
    mismatch = await api.client.post(
        "/refreshToken", json={"email": "horse@cow.jp", "refreshToken": tokens["refreshToken"]}
    )
    assert mismatch.status_code == 401
    assert await count_rows(api.settings.effective_database_url) == before
    ignored = await api.client.post(
        "/revokeToken", json={"email": "horse@cow.jp", "refreshToken": tokens["refreshToken"]}
    )
    assert ignored.status_code == 200
    rotated = await api.client.post(
        "/refreshToken", json={"email": "COW@cow.jp", "refreshToken": tokens["refreshToken"]}
    )
    assert rotated.status_code == 200
    no_email = await api.client.post(
        "/refreshToken", json={"refreshToken": rotated.json()["refreshToken"]}
    )
    assert no_email.status_code == 200
    revoked = await api.client.post(
        "/revokeToken", json={"refreshToken": no_email.json()["refreshToken"]}
    )
    assert revoked.status_code == 200
    gone = await api.client.post(
        "/refreshToken", json={"refreshToken": no_email.json()["refreshToken"]}
    )
    assert gone.status_code == 401


async def test_the_database_holds_no_usable_refresh_token(api: Api) -> None:
    first = await api.sign_up()
    second = (await _refresh(api, first["refreshToken"])).json()
    rows = await fetch_all(api.settings.effective_database_url, "refresh_tokens")
    dump = repr(rows)
    for token in (first["refreshToken"], second["refreshToken"]):
        assert token not in dump
        assert token.encode() not in b"".join(r["sealed_for_parent"] or b"" for r in rows)
    assert all(len(r["token_hash"]) == 64 for r in rows)
