"""Users and tokens, created over HTTP like any client would."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from bench.servers import BenchError

PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway benchmark account


@dataclass(frozen=True)
class SeedUser:
    email: str
    password: str


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    if response.status_code != 200:
        raise BenchError(f"POST {path} returned {response.status_code}: {response.text[:300]}")
    data: dict[str, Any] = response.json()
    return data


async def _gather(
    base_url: str, bodies: list[tuple[str, dict[str, Any]]], concurrency: int
) -> list[dict[str, Any]]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:

        async def one(path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with limit:
                return await _post(client, path, body)

        return list(await asyncio.gather(*(one(path, body) for path, body in bodies)))


def sign_up_users(base_url: str, count: int, *, tag: str, concurrency: int) -> list[SeedUser]:
    users = [SeedUser(f"seed{tag}-{i}@bench.example.com", PASSWORD) for i in range(count)]
    bodies = [
        (
            "/api/v1/signup/credentials",
            {
                "email": user.email,
                "password": user.password,
                "passwordConfirm": user.password,
                "firstName": "Seed",
                "lastName": f"User {i}",
            },
        )
        for i, user in enumerate(users)
    ]
    asyncio.run(_gather(base_url, bodies, concurrency))
    return users


def sign_in(
    base_url: str, users: list[SeedUser], count: int, *, concurrency: int
) -> list[dict[str, Any]]:
    """``count`` sign-ins spread over ``users``: each returns a new session's tokens."""
    bodies = [
        (
            "/api/v1/auth/credentials",
            {"email": users[i % len(users)].email, "password": users[i % len(users)].password},
        )
        for i in range(count)
    ]
    return asyncio.run(_gather(base_url, bodies, concurrency))
