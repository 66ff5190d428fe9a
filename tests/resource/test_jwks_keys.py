"""JwksKeys against a real HTTP server on 127.0.0.1 that counts its fetches."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from authgate.resource import (
    InvalidToken,
    JwksKeys,
    TokenVerifier,
    VerifierUnavailable,
)
from tests.resource.support import (
    AUDIENCE,
    ISSUER,
    Clock,
    JwksPublisher,
    LocalServer,
    ec_key,
    jwks,
    local_server,
    mint,
    rsa_key,
)

OLD = rsa_key("old")
NEW = rsa_key("new")


@pytest.fixture
def publisher() -> JwksPublisher:
    return JwksPublisher(jwks(OLD))


@pytest.fixture
def server(publisher: JwksPublisher) -> Iterator[LocalServer]:
    with local_server(publisher) as running:
        yield running


def make(
    server: LocalServer, monotonic: Clock | None = None, **options: Any
) -> tuple[TokenVerifier, JwksKeys]:
    keys = JwksKeys(f"{server.url}/jwks.json", clock=monotonic or Clock(0.0), **options)
    return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, now=Clock()), keys


async def test_keys_are_fetched_once_and_cached(server: LocalServer) -> None:
    verifier, keys = make(server)
    for _ in range(5):
        assert (await verifier.verify(mint(OLD))).sub  # a new token (new jti) each time
    assert server.count == 1
    method, path, headers, _ = server.requests[0]
    assert (method, path) == ("GET", "/jwks.json")
    assert "application/jwk-set+json" in headers["accept"]
    assert keys.fetch_count == 1


async def test_concurrent_misses_share_one_fetch(server: LocalServer) -> None:
    server.delay = 0.3  # every caller arrives while the first fetch is in flight
    verifier, _ = make(server)
    tokens = [mint(OLD) for _ in range(20)]
    results = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert len(results) == 20
    assert server.count == 1


async def test_an_unknown_kid_refetches_but_not_inside_the_cool_down(
    server: LocalServer, publisher: JwksPublisher
) -> None:
    monotonic = Clock(0.0)
    verifier, _ = make(server, monotonic, refetch_cooldown_seconds=30)
    assert (await verifier.verify(mint(OLD))).sub
    assert server.count == 1

    # The issuer starts signing with a key it has not published to us yet.
    stranger = mint(NEW)
    for _ in range(10):  # a stream of unknown kids inside the cool-down: no fetch
        with pytest.raises(InvalidToken, match="no key 'new'"):
            await verifier.verify(stranger)
    assert server.count == 1

    monotonic.advance(31)
    with pytest.raises(InvalidToken):
        await verifier.verify(stranger)  # one refetch: still not published
    assert server.count == 2

    publisher.document = jwks(OLD, NEW)  # rotation: the new key is published
    with pytest.raises(InvalidToken):
        await verifier.verify(stranger)  # cool-down again
    assert server.count == 2
    monotonic.advance(31)
    assert (await verifier.verify(stranger)).sub  # picked up without a restart
    assert (await verifier.verify(mint(OLD))).sub  # the previous key still verifies
    assert server.count == 3


@pytest.mark.parametrize(
    ("cache_control", "lifetime"),
    [
        ("public, max-age=120", 120),
        ("max-age=500, max-age=120", 120),  # the shortest of several
        (None, 300),  # default_cache_seconds
        ("no-store", 30),  # clamped up to min_cache_seconds
        ("max-age=0", 30),
        ("max-age=999999999", 3600),  # clamped down to max_cache_seconds
        ("max-age=nonsense", 300),
    ],
)
async def test_cache_control_max_age_within_bounds(
    server: LocalServer, publisher: JwksPublisher, cache_control: str | None, lifetime: int
) -> None:
    publisher.cache_control = cache_control
    monotonic = Clock(0.0)
    verifier, _ = make(server, monotonic, max_cache_seconds=3600)
    assert (await verifier.verify(mint(OLD))).sub
    monotonic.advance(lifetime - 1)
    assert (await verifier.verify(mint(OLD))).sub
    assert server.count == 1
    monotonic.advance(2)
    assert (await verifier.verify(mint(OLD))).sub
    assert server.count == 2  # stale: fetched again, even for a known kid


async def test_an_expired_set_is_fetched_again_even_inside_the_cool_down(
    server: LocalServer, publisher: JwksPublisher
) -> None:
    # A short max-age (the issuer's JWKS_MAX_AGE_SECONDS) with a longer refetch
    # cool-down: expiry alone must bring a fetch, or a key retired upstream would
    # keep verifying here for the whole cool-down.
    publisher.cache_control = "max-age=1"
    monotonic = Clock(0.0)
    verifier, _ = make(server, monotonic, min_cache_seconds=0, refetch_cooldown_seconds=30)
    token = mint(OLD)
    assert (await verifier.verify(token)).sub  # fetched, and cached as verified
    publisher.document = jwks(NEW)  # OLD retired upstream
    monotonic.advance(2)  # expired, well inside the cool-down
    with pytest.raises(InvalidToken, match="no longer trusted"):
        await verifier.verify(token)
    assert server.count == 2


async def test_age_shortens_the_lifetime(server: LocalServer, publisher: JwksPublisher) -> None:
    publisher.cache_control = "max-age=300"
    original = publisher.__call__

    def with_age(*args: Any) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = original(*args)
        return status, {**headers, "Age": "250"}, body

    server.respond = with_age
    monotonic = Clock(0.0)
    verifier, _ = make(server, monotonic)
    await verifier.verify(mint(OLD))
    monotonic.advance(51)
    await verifier.verify(mint(OLD))
    assert server.count == 2


async def test_a_failed_refetch_keeps_the_keys_we_have(
    server: LocalServer, publisher: JwksPublisher
) -> None:
    monotonic = Clock(0.0)
    verifier, _ = make(server, monotonic)
    assert (await verifier.verify(mint(OLD))).sub
    publisher.status = 500
    monotonic.advance(301)
    assert (await verifier.verify(mint(OLD))).sub  # stale keys, fetch failed
    assert server.count == 2
    assert (await verifier.verify(mint(OLD))).sub  # inside the cool-down: no new attempt
    assert server.count == 2
    publisher.status = 200
    monotonic.advance(31)
    assert (await verifier.verify(mint(OLD))).sub
    assert server.count == 3


async def test_no_keys_at_all_is_unavailable_not_invalid(
    server: LocalServer, publisher: JwksPublisher
) -> None:
    publisher.status = 503
    monotonic = Clock(0.0)
    verifier, _ = make(server, monotonic)
    with pytest.raises(VerifierUnavailable):
        await verifier.verify(mint(OLD))
    with pytest.raises(VerifierUnavailable):
        await verifier.verify(mint(OLD))  # inside the cool-down: no new attempt
    assert server.count == 1
    publisher.status = 200
    monotonic.advance(31)
    assert (await verifier.verify(mint(OLD))).sub


@pytest.mark.parametrize(
    "document",
    [
        {"keys": "nope"},
        {"nokeys": []},
        [],
        {"keys": [{"kty": "RSA", "kid": "broken", "n": "AQAB", "e": "AQAB"}]},
    ],
)
async def test_a_broken_document_gives_no_keys(
    server: LocalServer, publisher: JwksPublisher, document: Any
) -> None:
    publisher.document = document
    verifier, _ = make(server)
    with pytest.raises((VerifierUnavailable, InvalidToken)):
        await verifier.verify(mint(OLD))


async def test_a_document_nested_too_deep_for_json_is_a_failed_fetch(
    server: LocalServer, publisher: JwksPublisher
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000  # under the size cap; json raises RecursionError

    def respond(*_: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, deep

    server.respond = respond
    verifier, _ = make(server)
    with pytest.raises(VerifierUnavailable):
        await verifier.verify(mint(OLD))


async def test_one_odd_key_does_not_hide_the_others(
    server: LocalServer, publisher: JwksPublisher
) -> None:
    odd = {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"}  # a symmetric key is never trusted
    publisher.document = {"keys": [odd, ec_key("p256").jwk(), OLD.jwk()]}
    verifier, keys = make(server)
    assert (await verifier.verify(mint(OLD))).sub
    assert await keys.keys_for("sym") == ()


async def test_an_oversized_document_is_refused(
    server: LocalServer, publisher: JwksPublisher
) -> None:
    publisher.document = {"keys": [OLD.jwk()], "padding": "x" * 300_000}
    verifier, _ = make(server)
    with pytest.raises(VerifierUnavailable):
        await verifier.verify(mint(OLD))


async def test_redirects_are_not_followed(server: LocalServer) -> None:
    def redirect(*_: Any) -> tuple[int, dict[str, str], bytes]:
        return 302, {"Location": "https://evil.example/jwks.json"}, b""

    server.respond = redirect
    verifier, _ = make(server)
    with pytest.raises(VerifierUnavailable):
        await verifier.verify(mint(OLD))
    assert server.count == 1


async def test_an_injected_client_is_used_and_left_open(server: LocalServer) -> None:
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(str(request.url))

    async with httpx.AsyncClient(event_hooks={"request": [hook]}) as client:
        verifier, _ = make(server, http_client=client)
        assert (await verifier.verify(mint(OLD))).sub
        assert seen == [f"{server.url}/jwks.json"]
        assert not client.is_closed


def test_from_jwks_url_builds_a_jwks_source() -> None:
    verifier = TokenVerifier.from_jwks_url(
        "https://auth.example.test/.well-known/jwks.json",
        issuer=ISSUER,
        audience=AUDIENCE,
        leeway_seconds=5,
    )
    assert isinstance(verifier.keys, JwksKeys)
    assert verifier.keys.url.endswith("/.well-known/jwks.json")


@pytest.mark.parametrize(
    "url",
    ["http://auth.example.test/jwks.json", "ftp://127.0.0.1/jwks.json", "https:///jwks.json"],
)
def test_keys_come_over_https_or_loopback_only(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        JwksKeys(url)


def test_plain_http_elsewhere_is_an_explicit_choice() -> None:
    assert JwksKeys("http://authgate:3000/.well-known/jwks.json", allow_http=True).url
    assert JwksKeys("http://localhost:3000/.well-known/jwks.json").url
    assert JwksKeys("http://[::1]:3000/.well-known/jwks.json").url


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(server: LocalServer) -> None:
    server.delay = 0.3
    verifier, _ = make(server)
    first = asyncio.create_task(verifier.verify(mint(OLD)))
    second = asyncio.create_task(verifier.verify(mint(OLD)))
    await asyncio.sleep(0.05)
    first.cancel()
    assert (await second).sub
    assert server.count == 1
