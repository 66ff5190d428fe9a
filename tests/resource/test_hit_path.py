"""The verified-token cache: what a hit re-checks, and that it stays cheap.

A client presents one token on every request, so the hit is the hot path of every
guarded route (authgate's own included). It must re-check time, the key's presence and
the audience, and must not await a coroutine when the key source can answer from
memory (bench/verify_hit.py measures it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pytest

from authgate.resource import (
    InvalidToken,
    JwksKeys,
    KeyLookup,
    StaticKeys,
    SyncKeySource,
    TokenVerifier,
    TrustedKey,
)
from tests.resource.support import (
    AUDIENCE,
    ISSUER,
    NOW,
    Clock,
    JwksPublisher,
    LocalServer,
    claims,
    jwks,
    local_server,
    mint,
    rsa_key,
)

KEY = rsa_key("hit")


class CountingLookup(KeyLookup):
    """KeyLookup that counts how often each path is asked."""

    def __init__(self, keys: Mapping[str, tuple[TrustedKey, ...]]) -> None:
        super().__init__(lambda kid: keys.get(kid, ()))
        self.awaited = 0
        self.synchronous = 0

    async def keys_for(self, kid: str) -> Sequence[TrustedKey]:
        self.awaited += 1
        return await super().keys_for(kid)

    def keys_now(self, kid: str) -> Sequence[TrustedKey]:
        self.synchronous += 1
        return super().keys_now(kid)


def test_static_keys_lookups_and_fresh_jwks_answer_synchronously() -> None:
    trusted = TrustedKey.from_jwk(KEY.jwk())
    assert isinstance(StaticKeys([trusted]), SyncKeySource)
    assert isinstance(KeyLookup(lambda kid: ()), SyncKeySource)
    assert isinstance(JwksKeys("https://auth.example.test/jwks.json"), SyncKeySource)


async def test_a_hit_awaits_nothing_and_sees_a_retired_key() -> None:
    ring = {KEY.kid: (TrustedKey.from_jwk(KEY.jwk()),)}
    lookup = CountingLookup(ring)
    verifier = TokenVerifier(lookup, issuer=ISSUER, audience=AUDIENCE, now=Clock())
    token = mint(KEY)
    first = await verifier.verify(token)
    assert lookup.awaited == 1  # the miss: a full verification
    for _ in range(5):
        assert await verifier.verify(token) is first
    assert (lookup.awaited, lookup.synchronous) == (1, 5)
    del ring[KEY.kid]
    with pytest.raises(InvalidToken, match="no longer trusted"):
        await verifier.verify(token)


async def test_a_hit_rechecks_the_window_both_ways_and_the_audience() -> None:
    clock = Clock()
    payload = claims(nbf=int(NOW) + 30, aud=[AUDIENCE, "billing"])
    token = mint(KEY, payload)
    verifier = TokenVerifier(
        StaticKeys.from_jwks(jwks(KEY)),
        issuer=ISSUER,
        audience=AUDIENCE,
        leeway_seconds=10,
        now=clock,
    )
    clock.value = NOW + 20  # within the leeway of nbf: accepted, cached
    assert (await verifier.verify(token)).sub
    assert (await verifier.verify(token, audience="billing")).sub  # per-call audience
    with pytest.raises(InvalidToken, match="audience"):
        await verifier.verify(token, audience="shipping")
    clock.value = NOW + 19  # the clock moved back: before nbf - leeway
    with pytest.raises(InvalidToken, match="nbf"):
        await verifier.verify(token)
    clock.value = NOW + 20
    assert (await verifier.verify(token)).sub
    clock.value = payload["exp"] + 10
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(token)


async def test_a_token_outside_the_default_audience_is_refused_from_the_cache_too() -> None:
    token = mint(KEY, claims(aud="billing"))
    verifier = TokenVerifier(
        StaticKeys.from_jwks(jwks(KEY)), issuer=ISSUER, audience=AUDIENCE, now=Clock()
    )
    assert (await verifier.verify(token, audience="billing")).sub  # cached now
    for _ in range(2):
        with pytest.raises(InvalidToken, match="audience"):
            await verifier.verify(token)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server(JwksPublisher(jwks(KEY))) as running:
        yield running


async def test_a_refetched_jwks_keeps_cached_tokens_by_an_equal_key(server: LocalServer) -> None:
    monotonic = Clock(0.0)
    keys = JwksKeys(
        f"{server.url}/jwks.json", clock=monotonic, min_cache_seconds=30, max_cache_seconds=30
    )
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, now=Clock())
    token = mint(KEY)
    first = await verifier.verify(token)
    assert keys.keys_now(KEY.kid) is not None
    monotonic.advance(31)  # stale: the hit awaits a refetch, which parses new objects
    assert keys.keys_now(KEY.kid) is None
    assert await verifier.verify(token) is first
    assert server.count == 2
    assert await verifier.verify(token) is first  # fresh again: synchronous
    assert server.count == 2
