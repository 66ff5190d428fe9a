"""The signing-key ring on SQLite and MariaDB: the rules, one change under races, and
a runtime ring that follows the database."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from authgate.clock import FrozenClock
from authgate.crypto.access_token_verifier import access_token_verifier
from authgate.crypto.jwt_tokens import JwtAccessTokens
from authgate.crypto.key_encryption import PrivateKeySealer, SealedKeyMaker
from authgate.crypto.keyring import KeyRing, KeyRingRefresher, RingLoader
from authgate.domain.models import User
from authgate.domain.signing_keys import KeyState
from authgate.errors import Unavailable
from authgate.resource import InvalidToken
from authgate.server_secret import ServerSecret
from authgate.services.signing_keys import (
    KeyRingPolicy,
    KeyRingRefused,
    Rotation,
    SigningKeyService,
)
from authgate.storage.engine import create_engine
from authgate.storage.tables import signing_keys
from authgate.storage.unit_of_work import SqlUnitOfWorkFactory

SECRET = ServerSecret(secrets.token_urlsafe(32).encode())
MAX_AGE = 360
TTL = 900
INSTANCES = 4


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
async def engines(database_url: URL) -> AsyncIterator[list[AsyncEngine]]:
    # One engine per "instance": their transactions really race on the database.
    made = [create_engine(database_url, pool_size=2) for _ in range(INSTANCES)]
    yield made
    for engine in made:
        await engine.dispose()


def make_service(
    engine: AsyncEngine, clock: FrozenClock, *, rotation_days: int = 0, algorithm: str = "EdDSA"
) -> SigningKeyService:
    return SigningKeyService(
        uow=SqlUnitOfWorkFactory(engine),
        clock=clock,
        maker=SealedKeyMaker(PrivateKeySealer(SECRET.key_encryption_keys())),
        policy=KeyRingPolicy(
            algorithm=algorithm,
            publish_before_use_seconds=MAX_AGE,
            token_lifetime_seconds=TTL,
            rotation_days=rotation_days,
        ),
    )


async def ring_states(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT state FROM signing_keys"))
        return sorted(row[0] for row in rows)


async def test_rotate_and_retire_rules(engines: list[AsyncEngine], clock: FrozenClock) -> None:
    ring = make_service(engines[0], clock)
    assert await ring.ensure_ring()
    with pytest.raises(KeyRingRefused, match="published for less than"):
        await ring.rotate()
    clock.advance(MAX_AGE)
    rotation = await ring.rotate()
    assert rotation.previous is not None
    assert await ring_states(engines[0]) == ["current", "next", "previous"]
    with pytest.raises(KeyRingRefused, match="current key"):
        await ring.retire(rotation.current, force=True)
    with pytest.raises(KeyRingRefused, match="may still be live"):
        await ring.retire(rotation.previous)
    clock.advance(TTL + 60)
    await ring.retire(rotation.previous)
    listed = {key.kid: key for key in await ring.list_keys()}
    retired = listed[rotation.previous]
    assert retired.state is KeyState.RETIRED
    assert retired.sealed_private_key is None  # the private half is erased
    assert (retired.created_at, retired.activated_at, retired.deactivated_at) == (
        clock.now() - timedelta(seconds=MAX_AGE + TTL + 60),
        clock.now() - timedelta(seconds=MAX_AGE + TTL + 60),
        clock.now() - timedelta(seconds=TTL + 60),
    )
    assert retired.retired_at == clock.now()


async def _all(calls: list[Callable[[], Any]]) -> list[Any]:
    return await asyncio.gather(*(call() for call in calls), return_exceptions=True)


async def test_concurrent_first_starts_create_one_ring(
    engines: list[AsyncEngine], clock: FrozenClock
) -> None:
    services = [make_service(engine, clock) for engine in engines]
    created = await _all([service.ensure_ring for service in services])
    assert created.count(True) == 1, created
    assert created.count(False) == INSTANCES - 1, created
    assert await ring_states(engines[0]) == ["current", "next"]


async def test_concurrent_rotations_rotate_once(
    engines: list[AsyncEngine], clock: FrozenClock
) -> None:
    services = [make_service(engine, clock) for engine in engines]
    await services[0].ensure_ring()
    clock.advance(MAX_AGE)
    results = await _all([service.rotate for service in services])
    rotations = [r for r in results if isinstance(r, Rotation)]
    refused = [r for r in results if isinstance(r, KeyRingRefused)]
    assert len(rotations) == 1, results
    assert len(refused) == INSTANCES - 1, results
    assert await ring_states(engines[0]) == ["current", "next", "previous"]


async def test_scheduled_rotation_happens_once_across_instances(
    engines: list[AsyncEngine], clock: FrozenClock
) -> None:
    services = [make_service(engine, clock, rotation_days=7) for engine in engines]
    await services[0].ensure_ring()
    clock.advance(timedelta(days=7).total_seconds())
    runs = await _all([service.run_scheduled for service in services])
    assert not [run for run in runs if isinstance(run, BaseException)], runs
    assert sum(1 for run in runs if run.rotation is not None) == 1, runs
    assert await ring_states(engines[0]) == ["current", "next", "previous"]
    clock.advance(TTL + 60)
    runs = await _all([service.run_scheduled for service in services])
    assert sorted(len(run.retired) for run in runs) == [0] * (INSTANCES - 1) + [1], runs
    assert await ring_states(engines[0]) == ["current", "next", "retired"]


def _user() -> User:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    return User(
        id=uuid.uuid4(),
        email="cow@cow.jp",
        email_key="cow@cow.jp",
        email_verified=True,
        given_name="Melvin",
        family_name="Friedman",
        display_name="",
        password_hash=None,
        created_at=now,
    )


async def test_runtime_ring_follows_rotation_and_retirement(
    engines: list[AsyncEngine], clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    ring_service = make_service(engines[0], clock, algorithm="ES256")
    await ring_service.ensure_ring()
    loader = RingLoader(
        SqlUnitOfWorkFactory(engines[1]), PrivateKeySealer(SECRET.key_encryption_keys())
    )
    first = await loader.load()
    ring = KeyRing(first)
    refresher = KeyRingRefresher(ring, loader, interval_seconds=1)
    tokens = JwtAccessTokens(ring, issuer="https://auth.test", audiences=("a",), ttl_seconds=TTL)
    # The guard's verifier reads the same ring (as web/app.py builds it).
    verifier = access_token_verifier(
        ring.trusted_keys, issuer="https://auth.test", audiences=("a",), clock=clock
    )
    old_kid = ring.signing().kid
    assert len(first.by_kid) == 2  # current and next are both published
    token = tokens.issue(_user(), session_id=_user().id, now=clock.now())
    assert (await verifier.verify(token)).sub  # now cached as verified

    rotation = await ring_service.rotate(force=True)
    assert await refresher.run_once()
    assert ring.signing().kid == rotation.current != old_kid
    assert ring.trusted_keys(old_kid)[0].kid == old_kid  # previous: still trusted
    assert (await verifier.verify(token)).sub
    newer = tokens.issue(_user(), session_id=_user().id, now=clock.now())
    assert newer != token
    assert ring.key_set is not None
    assert set(ring.key_set.by_kid) == {rotation.current, rotation.next, old_kid}

    await ring_service.retire(old_kid, force=True)
    await refresher.run_once()
    assert ring.trusted_keys(old_kid) == ()
    assert old_kid.encode() not in ring.jwks_body
    # The verified-token cache held it: retirement empties it for that key.
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
    assert (await verifier.verify(newer)).sub

    # A database that fails keeps the last good ring and logs it.
    good = ring.key_set
    await engines[1].dispose()
    async with engines[0].begin() as connection:
        await connection.execute(
            update(signing_keys)
            .where(signing_keys.c.state == "current")
            .values(private_key_sealed=b"\x01" + b"\x00" * 40)
        )
    broken = RingLoader(
        SqlUnitOfWorkFactory(engines[0]), PrivateKeySealer(SECRET.key_encryption_keys())
    )
    with caplog.at_level(logging.ERROR):
        assert not await KeyRingRefresher(ring, broken, interval_seconds=1).run_once()
    assert ring.key_set is good
    assert "keeping the last one" in caplog.text


async def test_a_ring_not_loaded_at_start_is_created_and_loaded_later(
    engines: list[AsyncEngine], clock: FrozenClock
) -> None:
    # What a server started while its database was away holds: nothing to sign
    # with (503), nothing to verify with, an empty JWKS; then the refresher catches up.
    ring_service = make_service(engines[0], clock)
    loader = RingLoader(
        SqlUnitOfWorkFactory(engines[0]), PrivateKeySealer(SECRET.key_encryption_keys())
    )
    ring = KeyRing(None)
    with pytest.raises(Unavailable):
        ring.signing()
    assert ring.jwks_body == b'{"keys":[]}'
    assert ring.trusted_keys("anything") == ()
    refresher = KeyRingRefresher(ring, loader, interval_seconds=1, ensure=ring_service.ensure_ring)
    assert await refresher.run_once()
    assert await ring_states(engines[0]) == ["current", "next"]
    assert ring.trusted_keys(ring.signing().kid)[0].algorithm == "EdDSA"


async def test_a_ring_holds_keys_of_several_algorithms_after_a_change(
    engines: list[AsyncEngine], clock: FrozenClock
) -> None:
    # JWT_ALGORITHM changed from RS256 to EdDSA: it takes effect at the next key made.
    await make_service(engines[0], clock, algorithm="RS256").ensure_ring()
    loader = RingLoader(
        SqlUnitOfWorkFactory(engines[0]), PrivateKeySealer(SECRET.key_encryption_keys())
    )
    ring = KeyRing(await loader.load())
    tokens = JwtAccessTokens(ring, issuer="https://auth.test", audiences=("a",), ttl_seconds=TTL)
    rsa_token = tokens.issue(_user(), session_id=uuid.uuid4(), now=clock.now())
    changed = make_service(engines[0], clock, algorithm="EdDSA")
    await changed.rotate(force=True)  # current: the RS256 next key; next: EdDSA
    await changed.rotate(force=True)  # current: EdDSA; previous: both RS256 keys
    ring.replace(await loader.load())
    assert ring.signing().algorithm == "EdDSA"
    assert ring.key_set is not None
    assert sorted(key.algorithm for key in ring.key_set.by_kid.values()) == [
        "EdDSA",
        "EdDSA",
        "RS256",
        "RS256",
    ]
    ed_token = tokens.issue(_user(), session_id=uuid.uuid4(), now=clock.now())
    assert jwt.get_unverified_header(ed_token)["alg"] == "EdDSA"
    verifier = access_token_verifier(
        ring.trusted_keys, issuer="https://auth.test", audiences=("a",), clock=clock
    )
    for token in (rsa_token, ed_token):
        assert (await verifier.verify(token)).sub
