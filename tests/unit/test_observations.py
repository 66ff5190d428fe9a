"""The Observer port as adapters emit it: the hashing queue and JWKS fetches."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from authgate.clock import FrozenClock
from authgate.crypto.passwords import Argon2Parameters, Argon2PasswordHasher
from authgate.domain.observations import NullObserver, RefreshOutcome, SignInOutcome
from authgate.identity.jwks import JwksCache
from authgate.metrics import PrometheusMetrics
from tests.support.idp import public_jwk, rsa_key


@dataclass
class Recorder(NullObserver):
    depths: list[int] = field(default_factory=list)
    fetches: list[tuple[str, bool]] = field(default_factory=list)

    def hashing_pending(self, depth: int) -> None:
        self.depths.append(depth)

    def jwks_fetch(self, provider: str, *, ok: bool) -> None:
        self.fetches.append((provider, ok))


async def test_the_hashing_queue_depth_is_reported_as_jobs_enter_and_leave() -> None:
    recorder = Recorder()
    hasher = Argon2PasswordHasher(
        Argon2Parameters(time_cost=1, memory_kib=8, parallelism=1), workers=1, observer=recorder
    )
    try:
        await asyncio.gather(*(hasher.hash(f"password {n}") for n in range(3)))
    finally:
        hasher.close()
    # Three jobs queued at once (one thread), then drained.
    assert recorder.depths[:3] == [1, 2, 3]
    assert recorder.depths[-1] == 0
    assert max(recorder.depths) == 3


async def test_jwks_fetches_and_failures_are_reported_by_provider_name() -> None:
    answers = [
        httpx.Response(503),
        httpx.Response(200, json={"keys": [public_jwk(rsa_key("observed"), "k1")]}),
    ]

    def handler(_request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    recorder = Recorder()
    clock = FrozenClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        cache = JwksCache(
            "https://keys.example/jwks",
            http=http,
            clock=clock,
            refetch_cooldown_seconds=1,
            label="google",
            observer=recorder,
        )
        assert not await cache.prefetch()
        clock.advance(2)
        assert await cache.prefetch()
    assert recorder.fetches == [("google", False), ("google", True)]


def test_the_prometheus_adapter_counts_what_it_is_told() -> None:
    metrics = PrometheusMetrics()
    metrics.sign_in(SignInOutcome.THROTTLED)
    metrics.refresh(RefreshOutcome.REUSED)
    metrics.jwks_fetch("apple", ok=True)
    metrics.jwks_fetch("apple", ok=False)
    metrics.hashing_pending(4)

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert value("authgate_signins_total", outcome="throttled") == 1
    assert value("authgate_signins_total", outcome="ok") == 0
    assert value("authgate_refreshes_total", outcome="reused") == 1
    assert value("authgate_jwks_fetches_total", provider="apple") == 2
    assert value("authgate_jwks_fetch_failures_total", provider="apple") == 1
    assert value("authgate_password_hash_pending") == 4
