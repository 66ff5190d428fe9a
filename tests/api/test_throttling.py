"""Throttles through the API: per address, per account, lockout, and its release."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from authgate.bootstrap import Overrides
from authgate.crypto.passwords import Argon2PasswordHasher
from tests.conftest import Api, start_api
from tests.support.hashing import WatchedExecutor, parameters_of, watched_hasher
from tests.support.rows import fetch_all

SIGN_IN = "/api/v1/auth/credentials"
LIMITS = {
    "rate_limit_auth_per_ip": "6/minute",
    "rate_limit_signup_per_ip": "3/hour",
    "rate_limit_refresh_per_ip": "4/minute",
    "rate_limit_failed_signins_per_account": "3/15 minutes",
}


@pytest.fixture
async def api(make_settings: Any, clock: Any) -> AsyncIterator[Api]:
    async for value in start_api(make_settings(**LIMITS), clock):
        yield value


def client_at(api: Api, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://authgate.test")


def _assert_429(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "too_many_requests"
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


async def test_an_account_locks_after_failures_from_many_addresses(api: Api) -> None:
    await api.sign_up("cow@cow.jp", "Moo00!_*&x")
    # Spraying one account from three addresses still counts against the account.
    for i in range(3):
        async with client_at(api, f"198.51.100.{i}") as other:
            wrong = await other.post(SIGN_IN, json={"email": "cow@cow.jp", "password": f"no-{i}"})
            assert wrong.status_code == 401
    async with client_at(api, "198.51.100.9") as fresh:
        right = await fresh.post(SIGN_IN, json={"email": "cow@cow.jp", "password": "Moo00!_*&x"})
        wrong = await fresh.post(SIGN_IN, json={"email": "cow@cow.jp", "password": "nope"})
    retry_after = _assert_429(right)
    _assert_429(wrong)
    assert right.json() == wrong.json()  # the lock does not reveal a right guess
    assert "accessToken" not in right.text

    # The lock releases by itself when its window ends.
    api.clock.advance(retry_after)
    async with client_at(api, "198.51.100.10") as later:
        again = await later.post(SIGN_IN, json={"email": "cow@cow.jp", "password": "Moo00!_*&x"})
    assert again.status_code == 200
    events = await fetch_all(api.settings.effective_database_url, "audit_events")
    # One row when the lock started (the two refusals after it go to the log only),
    # naming the locked account.
    lockouts = [e for e in events if e["name"] == "lockout"]
    assert len(lockouts) == 1
    signed_up = next(e for e in events if e["name"] == "signup")
    assert lockouts[0]["user_id"] == signed_up["user_id"]


async def test_concurrent_guesses_cannot_outrun_the_lock(api: Api) -> None:
    """Twelve wrong passwords at once from twelve addresses: only the account's limit
    (3) are ever verified; the rest are refused before hashing. Were the lock read
    before verifying and counted after, all twelve would read "not locked"."""
    import asyncio

    await api.sign_up("cow@cow.jp", "Moo00!_*&x")

    async def guess(i: int) -> int:
        async with client_at(api, f"203.0.113.{i}") as attacker:
            body = {"email": "cow@cow.jp", "password": f"guess-{i}"}
            return (await attacker.post(SIGN_IN, json=body)).status_code

    statuses = await asyncio.gather(*(guess(i) for i in range(12)))
    assert sorted(statuses) == [401] * 3 + [429] * 9
    events = await fetch_all(api.settings.effective_database_url, "audit_events")
    failed = [e for e in events if e["name"] == "signin_failed"]
    assert len(failed) == 3  # one verified (and audited) failure per allowed attempt


async def test_unknown_emails_lock_the_same_way(api: Api) -> None:
    for _ in range(3):
        response = await api.client.post(SIGN_IN, json={"email": "ghost@cow.jp", "password": "x"})
        assert response.status_code == 401
    _assert_429(await api.client.post(SIGN_IN, json={"email": "ghost@cow.jp", "password": "x"}))


async def test_a_success_resets_the_failure_count(api: Api) -> None:
    await api.sign_up("cow@cow.jp", "Moo00!_*&x")
    for _ in range(2):
        await api.client.post(SIGN_IN, json={"email": "cow@cow.jp", "password": "nope"})
    ok = await api.client.post(SIGN_IN, json={"email": "cow@cow.jp", "password": "Moo00!_*&x"})
    assert ok.status_code == 200
    for _ in range(2):
        wrong = await api.client.post(SIGN_IN, json={"email": "cow@cow.jp", "password": "nope"})
        assert wrong.status_code == 401


async def test_sign_in_attempts_per_address(api: Api) -> None:
    async with client_at(api, "203.0.113.7") as noisy, client_at(api, "203.0.113.8") as quiet:
        for i in range(6):
            # Different accounts, so only the per-address limit can refuse.
            response = await noisy.post(SIGN_IN, json={"email": f"u{i}@cow.jp", "password": "x"})
            assert response.status_code == 401
        _assert_429(await noisy.post(SIGN_IN, json={"email": "u9@cow.jp", "password": "x"}))
        _assert_429(await noisy.post("/login", json={"email": "u9@cow.jp", "password": "x"}))
        other = await quiet.post(SIGN_IN, json={"email": "u9@cow.jp", "password": "x"})
        assert other.status_code == 401


async def test_sign_ups_per_address(api: Api) -> None:
    for i in range(3):
        await api.sign_up(f"new{i}@cow.jp")
    response = await api.client.post(
        "/register", json={"email": "new9@cow.jp", "password": "Moo00!_*&x"}
    )
    _assert_429(response)
    api.clock.advance(3600)
    await api.sign_up("new9@cow.jp")


async def test_refreshes_per_address(api: Api) -> None:
    token = (await api.sign_up())["refreshToken"]
    for _ in range(4):
        token = (await api.client.post("/api/v1/refresh", json={"refreshToken": token})).json()[
            "refreshToken"
        ]
    _assert_429(await api.client.post("/api/v1/refresh", json={"refreshToken": token}))
    # The Serverless seed's route shares the same per-address count.
    _assert_429(await api.client.post("/refreshToken", json={"refreshToken": token}))
    api.clock.advance(60)
    assert (
        await api.client.post("/api/v1/refresh", json={"refreshToken": token})
    ).status_code == 200


async def test_disabled_throttles_never_refuse(make_settings: Any, clock: Any) -> None:
    async for api in start_api(make_settings(**LIMITS, rate_limit_enabled=False), clock):
        for _ in range(10):
            response = await api.client.post(SIGN_IN, json={"email": "a@cow.jp", "password": "x"})
            assert response.status_code == 401


async def test_common_and_personal_passwords_are_refused(make_settings: Any, clock: Any) -> None:
    async for api in start_api(make_settings(), clock):
        await _refuse_weak_passwords(api)


async def _refuse_weak_passwords(api: Api) -> None:
    for password in ("password1", "qwerty123", "melvinfriedman", "cow@cow.jp"):
        response = await api.client.post(
            "/api/v1/signup/credentials",
            json={
                "email": "cow@cow.jp",
                "password": password,
                "firstName": "Melvin",
                "lastName": "Friedman",
            },
        )
        assert response.status_code == 422, password
        assert response.json()["code"] == "weak_password"
        assert "too easy to guess" in response.json()["detail"]


async def test_provider_routes_count_against_the_sign_in_limit(api: Api) -> None:
    # No provider is configured here: each attempt is still counted before the
    # provider is even looked up, so probing provider routes is throttled too.
    async with client_at(api, "203.0.113.20") as prober:
        for _ in range(6):
            response = await prober.post("/api/v1/auth/google", json={"jwt": "x.y.z"})
            assert response.status_code == 404
        _assert_429(await prober.post("/api/v1/signup/apple", json={"jwt": "x.y.z"}))


async def test_minimum_strength_comes_from_the_settings(make_settings: Any, clock: Any) -> None:
    body = {"email": "cow@cow.jp", "password": "password1", "passwordConfirm": "password1"}
    async for api in start_api(make_settings(password_min_strength=0), clock):
        accepted = await api.client.post("/api/v1/signup/credentials", json=body)
        assert accepted.status_code == 200
    async for api in start_api(make_settings(password_min_strength=4), clock):
        # zxcvbn scores this 3: fine by default (2), refused at 4.
        strong_enough_for_2 = {**body, "email": "horse@cow.jp", "password": "Moo00!_*&x"}
        strong_enough_for_2["passwordConfirm"] = strong_enough_for_2["password"]
        refused = await api.client.post("/api/v1/signup/credentials", json=strong_enough_for_2)
        assert refused.status_code == 422
        assert refused.json()["code"] == "weak_password"


@pytest.mark.serial  # its polling loops are bounded in wall time
async def test_a_hashing_flood_is_refused_fast_while_token_routes_keep_answering(
    make_settings: Any, clock: Any
) -> None:
    """Sign-ins that would queue past PASSWORD_HASH_MAX_PENDING get 503 at once;
    /secure, the JWKS and refresh, which never hash, are served during the flood.
    A gate holds the hashing threads, so "during" is a fact, not a timing."""
    settings = make_settings(password_hash_max_pending=4, password_hash_workers=1)
    with watched_hasher(parameters_of(settings), workers=1, max_pending=4) as (hasher, jobs):
        async for api in start_api(settings, clock, Overrides(hasher=hasher)):
            await _flood(api, hasher, jobs)


async def _flood(api: Api, hasher: Argon2PasswordHasher, jobs: WatchedExecutor) -> None:
    import asyncio

    tokens = await api.sign_up("cow@cow.jp", "Moo00!_*&x")
    assert api.services.hasher is hasher

    async def sign_in(i: int) -> httpx.Response:
        async with client_at(api, f"198.51.100.{i}") as client:
            body = {"email": f"flood{i}@cow.jp", "password": "wrong-password"}
            return await client.post(SIGN_IN, json=body)

    # Every hashing job started in the block waits at the gate until it ends.
    with jobs.held():
        flood = [asyncio.create_task(sign_in(i)) for i in range(12)]
        for _ in range(1000):
            if hasher.pending >= 4:
                break
            await asyncio.sleep(0.01)
        # Served while all four hashing slots are held:
        bearer = {"Authorization": f"Bearer {tokens['accessToken']}"}
        assert (await api.client.get("/secure", headers=bearer)).status_code == 200
        assert (await api.client.get("/.well-known/jwks.json")).status_code == 200
        body = {"refreshToken": tokens["refreshToken"]}
        assert (await api.client.post("/api/v1/refresh", json=body)).status_code == 200
        for _ in range(1000):
            if sum(task.done() for task in flood) >= 8:
                break
            await asyncio.sleep(0.01)
        assert hasher.pending == 4
        # The eight that found the queue full were answered before any hash finished.
        early = [task.result() for task in flood if task.done()]
        assert [r.status_code for r in early] == [503] * 8
        assert all("retry-after" in r.headers for r in early)
    answers = await asyncio.gather(*flood)
    assert sorted(r.status_code for r in answers) == [401] * 4 + [503] * 8
