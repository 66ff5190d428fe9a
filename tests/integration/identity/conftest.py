"""Fixtures for ID-token verification: local key servers, a frozen clock, verifiers."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from authgate.clock import FrozenClock
from authgate.identity import OidcVerifier, apple_config, build_verifiers, google_config
from tests.support.idp import FakeIdp, apple_claims, google_claims

from .constants import (
    APPLE_BUNDLE_ID,
    COOLDOWN,
    GOOGLE_CLIENTS,
    GOOGLE_WEB_CLIENT,
    JWKS_TIMEOUT,
    MakeVerifiers,
)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def google_idp() -> Iterator[FakeIdp]:
    with FakeIdp("google", max_age=3600) as idp:
        yield idp


@pytest.fixture
def apple_idp() -> Iterator[FakeIdp]:
    with FakeIdp("apple", max_age=3600) as idp:
        yield idp


@pytest.fixture
def attacker_idp() -> Iterator[FakeIdp]:
    with FakeIdp("attacker", max_age=3600) as idp:
        yield idp


@pytest.fixture(scope="session")
def tls_context() -> ssl.SSLContext:
    # Building a TLS context (loading CA certificates) is the slowest part of creating a
    # client; the local key servers are plain http, so one per session is plenty.
    return ssl.create_default_context()


@pytest.fixture
async def http(tls_context: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: a proxy from the environment must not intercept 127.0.0.1.
    async with httpx.AsyncClient(trust_env=False, verify=tls_context) as client:
        yield client


@pytest.fixture
def make_verifiers(
    http: httpx.AsyncClient, clock: FrozenClock, google_idp: FakeIdp, apple_idp: FakeIdp
) -> MakeVerifiers:
    def make(**options: Any) -> dict[str, OidcVerifier]:
        settings: dict[str, Any] = {
            "refetch_cooldown_seconds": COOLDOWN,
            "clock_skew_seconds": 60.0,
            "jwks_timeout_seconds": JWKS_TIMEOUT,
            **options,
        }
        return build_verifiers(
            [
                google_config(GOOGLE_CLIENTS, jwks_url=google_idp.jwks_url),
                apple_config([APPLE_BUNDLE_ID], jwks_url=apple_idp.jwks_url),
            ],
            http=http,
            clock=clock,
            **settings,
        )

    return make


@pytest.fixture
def google(make_verifiers: MakeVerifiers) -> OidcVerifier:
    return make_verifiers()["google"]


@pytest.fixture
def apple(make_verifiers: MakeVerifiers) -> OidcVerifier:
    return make_verifiers()["apple"]


@pytest.fixture
def google_token(google_idp: FakeIdp, clock: FrozenClock) -> Callable[..., str]:
    """Mint a Google-shaped token now; keyword args override claims (OMIT drops one)."""

    def mint(*, sign: dict[str, Any] | None = None, **claims: object) -> str:
        payload = google_claims(now=clock.now().timestamp(), client_id=GOOGLE_WEB_CLIENT, **claims)
        return google_idp.sign(payload, **(sign or {}))

    return mint


@pytest.fixture
def apple_token(apple_idp: FakeIdp, clock: FrozenClock) -> Callable[..., str]:
    """Mint an Apple-shaped token now (no typ header, like Apple's)."""

    def mint(*, sign: dict[str, Any] | None = None, **claims: object) -> str:
        payload = apple_claims(now=clock.now().timestamp(), bundle_id=APPLE_BUNDLE_ID, **claims)
        options: dict[str, Any] = {"headers": {"typ": None}, **(sign or {})}
        return apple_idp.sign(payload, **options)

    return mint
