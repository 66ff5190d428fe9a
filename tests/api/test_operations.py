"""Operational behaviour: hash upgrades on sign-in, readiness, JWKS caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import start_api
from tests.support.rows import fetch_all


async def test_hashes_are_upgraded_at_sign_in_when_parameters_change(
    make_settings: Any, clock: Any
) -> None:
    cheap = {"password_hash_time_cost": 1, "password_hash_memory_kib": 8}
    async for api in start_api(make_settings(**cheap), clock):
        await api.sign_up("cow@cow.jp", "Moo00!_*&x")
        (user,) = await fetch_all(api.settings.effective_database_url, "users")
        assert "m=8,t=1,p=1" in user["password_hash"]
    stronger = {"password_hash_time_cost": 2, "password_hash_memory_kib": 16}
    async for api in start_api(make_settings(**stronger), clock):
        response = await api.client.post(
            "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "Moo00!_*&x"}
        )
        assert response.status_code == 200
        (user,) = await fetch_all(api.settings.effective_database_url, "users")
        assert "m=16,t=2,p=1" in user["password_hash"]
        again = await api.client.post(
            "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "Moo00!_*&x"}
        )
        assert again.status_code == 200


async def test_readiness_follows_the_database(
    make_settings: Any, clock: Any, tmp_path: Path
) -> None:
    async for api in start_api(make_settings(), clock):
        assert (await api.client.get("/readyz")).json() == {"status": "ok"}
        assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    unreachable = make_settings(database_url="mysql+asyncmy://root@127.0.0.1:1/none")
    async for api in start_api(unreachable, clock):
        response = await api.client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["code"] == "unavailable"
        assert "Retry-After" in response.headers
        assert (await api.client.get("/healthz")).status_code == 200
        sign_in = await api.client.post(
            "/api/v1/auth/credentials", json={"email": "a@cow.jp", "password": "x"}
        )
        assert sign_in.status_code == 503


async def test_jwks_is_public_and_cacheable(make_settings: Any, clock: Any) -> None:
    async for api in start_api(make_settings(jwks_max_age_seconds=600), clock):
        response = await api.client.get("/.well-known/jwks.json")
        assert response.headers["cache-control"] == "public, max-age=600"
        (key,) = response.json()["keys"]
        assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_readiness_waits_for_the_migrations(
    make_settings: Any, clock: Any, tmp_path: Path
) -> None:
    """AUTO_MIGRATE=false on a fresh database: reachable, but not ready."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    fresh = f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.db'}"
    async for api in start_api(make_settings(database_url=fresh, auto_migrate=False), clock):
        response = await api.client.get("/readyz")
        assert response.status_code == 503
        assert "not migrated" in response.json()["detail"]
        # Migrated, but to an older revision than the code needs.
        engine = create_async_engine(fresh)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE alembic_version (version_num TEXT)"))
            await connection.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
        await engine.dispose()
        behind = await api.client.get("/readyz")
        assert behind.status_code == 503
        assert "authgate migrate" in behind.json()["detail"]
