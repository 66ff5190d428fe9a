"""The key cache against a real local key server: refetch, cool-down, outages, caching."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from authgate.clock import FrozenClock
from authgate.errors import InvalidIdToken, ProviderUnavailable
from authgate.identity import JwksCache, OidcVerifier
from tests.support.idp import FakeIdp, Mode, b64url, public_jwk, rsa_key

from .constants import COOLDOWN, JWKS_TIMEOUT, MakeVerifiers, Mint


async def warm(verifier: OidcVerifier, mint: Mint) -> None:
    await verifier.verify(mint(), nonce=None)


def unknown_kid_token(idp: FakeIdp, mint: Mint, kid: str) -> str:
    # Signed by a key the provider never published, under a kid it does not know.
    return mint(sign={"kid": kid, "key": rsa_key("unpublished")})


# -- unknown kid, cool-down, rotation ------------------------------------------------


async def test_unknown_kid_causes_exactly_one_refetch_then_is_refused(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    await warm(google, google_token)
    assert google_idp.request_count == 1
    clock.advance(COOLDOWN + 1)

    with pytest.raises(InvalidIdToken) as caught:
        await google.verify(unknown_kid_token(google_idp, google_token, "bogus-1"), nonce=None)
    assert "unknown kid" in (caught.value.detail_for_log or "")
    assert google_idp.request_count == 2


async def test_second_unknown_kid_within_the_cool_down_causes_no_fetch(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    await warm(google, google_token)
    clock.advance(COOLDOWN + 1)
    with pytest.raises(InvalidIdToken):
        await google.verify(unknown_kid_token(google_idp, google_token, "bogus-1"), nonce=None)
    assert google_idp.request_count == 2

    clock.advance(COOLDOWN - 1)
    for n in range(20):
        with pytest.raises(InvalidIdToken):
            await google.verify(
                unknown_kid_token(google_idp, google_token, f"bogus-{n}"), nonce=None
            )
    assert google_idp.request_count == 2

    clock.advance(2)  # cool-down over: the next unknown kid may ask again
    with pytest.raises(InvalidIdToken):
        await google.verify(unknown_kid_token(google_idp, google_token, "bogus-x"), nonce=None)
    assert google_idp.request_count == 3


async def test_cool_down_is_configurable(
    make_verifiers: MakeVerifiers, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    google = make_verifiers(refetch_cooldown_seconds=5)["google"]
    await warm(google, google_token)
    clock.advance(6)
    with pytest.raises(InvalidIdToken):
        await google.verify(unknown_kid_token(google_idp, google_token, "bogus"), nonce=None)
    assert google_idp.request_count == 2


async def test_known_kid_never_fetches(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint
) -> None:
    for _ in range(10):
        await warm(google, google_token)
    assert google_idp.request_count == 1


async def test_key_rotation_new_key_accepted_after_one_refetch(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    old_token = google_token()
    await google.verify(old_token, nonce=None)
    clock.advance(COOLDOWN + 1)

    google_idp.rotate()
    new_token = google_token()
    assert (await google.verify(new_token, nonce=None)).subject
    assert google_idp.request_count == 2
    # The withdrawn key is gone from the refreshed set.
    with pytest.raises(InvalidIdToken):
        await google.verify(old_token, nonce=None)
    await google.verify(new_token, nonce=None)
    assert google_idp.request_count == 2


async def test_200_concurrent_verifications_with_a_new_kid_cause_one_fetch(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    await warm(google, google_token)
    clock.advance(COOLDOWN + 1)
    google_idp.rotate()
    token = google_token()

    results = await asyncio.gather(*(google.verify(token, nonce=None) for _ in range(200)))

    assert len(results) == 200
    assert all(r.subject == results[0].subject for r in results)
    assert google_idp.request_count == 2


async def test_200_concurrent_verifications_on_a_cold_cache_cause_one_fetch(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint
) -> None:
    token = google_token()
    results = await asyncio.gather(*(google.verify(token, nonce=None) for _ in range(200)))
    assert len(results) == 200
    assert google_idp.request_count == 1


async def test_200_concurrent_bogus_kids_cause_one_fetch(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    await warm(google, google_token)
    clock.advance(COOLDOWN + 1)
    tokens = [unknown_kid_token(google_idp, google_token, f"bogus-{n % 7}") for n in range(200)]
    results = await asyncio.gather(
        *(google.verify(t, nonce=None) for t in tokens), return_exceptions=True
    )
    assert all(isinstance(r, InvalidIdToken) for r in results)
    assert google_idp.request_count == 2


async def test_a_caller_going_away_does_not_cancel_the_shared_fetch(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint
) -> None:
    google_idp.set_delay(0.2)
    token = google_token()
    first = asyncio.create_task(google.verify(token, nonce=None))
    # The fetch is on its way (the provider has the request, and is being slow).
    assert await asyncio.to_thread(google_idp.request_received.wait, 5)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first

    # The fetch carried on: the next caller joins it instead of being refused by the
    # cool-down or starting another one.
    assert (await google.verify(token, nonce=None)).subject
    assert google_idp.request_count == 1


# -- provider outages -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "close", "bad_json", "empty_set", "redirect"])
async def test_provider_down_with_warm_cache(
    google: OidcVerifier,
    google_idp: FakeIdp,
    google_token: Mint,
    clock: FrozenClock,
    mode: Mode,
) -> None:
    await warm(google, google_token)
    google_idp.go_down(mode)

    # Past the cache lifetime: the refresh fails, the cached keys stay in use.
    clock.advance(3600 + 1)
    assert (await google.verify(google_token(), nonce=None)).subject
    assert google_idp.request_count == 2
    assert google.keys.last_fetch_ok is False

    # An unknown kid cannot be settled while the provider is down.
    clock.advance(COOLDOWN + 1)
    with pytest.raises(ProviderUnavailable):
        await google.verify(unknown_kid_token(google_idp, google_token, "new"), nonce=None)
    assert google_idp.request_count == 3

    # Within the cool-down we do not ask again, and still cannot say the kid is bogus.
    with pytest.raises(ProviderUnavailable):
        await google.verify(unknown_kid_token(google_idp, google_token, "new"), nonce=None)
    assert google_idp.request_count == 3

    # The known key keeps working throughout.
    assert (await google.verify(google_token(), nonce=None)).subject


async def test_provider_back_up_after_outage_is_used_again(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    google_idp.go_down("500")
    with pytest.raises(ProviderUnavailable):
        await google.verify(google_token(), nonce=None)
    # Within the cool-down the cold cache does not hammer the provider.
    with pytest.raises(ProviderUnavailable):
        await google.verify(google_token(), nonce=None)
    assert google_idp.request_count == 1

    google_idp.come_back()
    clock.advance(COOLDOWN + 1)
    assert (await google.verify(google_token(), nonce=None)).subject
    assert google_idp.request_count == 2


async def test_provider_down_with_cold_cache_is_unavailable(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint
) -> None:
    google_idp.go_down("close")
    with pytest.raises(ProviderUnavailable):
        await google.verify(google_token(), nonce=None)


async def test_unreachable_provider_is_unavailable(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    # Port 9 (discard) on loopback: nothing listens there, the connection is refused.
    cache = JwksCache("http://127.0.0.1:9/keys", http=http, clock=clock)
    with pytest.raises(ProviderUnavailable):
        await cache.get_keys("any")
    assert cache.last_fetch_ok is False


@pytest.mark.serial  # asserts wall time
async def test_slow_provider_beyond_the_timeout_is_unavailable_quickly(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint
) -> None:
    google_idp.set_delay(JWKS_TIMEOUT + 0.45)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        await google.verify(google_token(), nonce=None)
    elapsed = time.monotonic() - started
    # Well before the provider would have answered (margin for a loaded CI machine).
    assert JWKS_TIMEOUT - 0.05 <= elapsed < JWKS_TIMEOUT + 0.35


@pytest.mark.serial  # asserts wall time
async def test_provider_trickling_its_answer_is_cut_off_at_the_timeout(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint
) -> None:
    # Every byte comes within httpx's per-read timeout; only a deadline on the whole
    # exchange stops this.
    google_idp.go_down("trickle")
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        await google.verify(google_token(), nonce=None)
    assert time.monotonic() - started < JWKS_TIMEOUT + 0.35


@pytest.mark.serial  # asserts wall time
async def test_slow_provider_within_the_timeout_is_accepted(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint
) -> None:
    google_idp.set_delay(0.1)
    assert (await google.verify(google_token(), nonce=None)).subject


# -- cache lifetime ---------------------------------------------------------------------


async def test_max_age_is_honoured(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    google_idp.set_max_age(300)
    await warm(google, google_token)

    clock.advance(299)
    await warm(google, google_token)
    assert google_idp.request_count == 1

    clock.advance(2)
    await warm(google, google_token)
    assert google_idp.request_count == 2


async def test_age_header_shortens_the_lifetime(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    # A response that sat in a cache for 500 s of its 600 s is fresh for 100 s more
    # (RFC 9111 §4.2.3).
    google_idp.set_max_age(600)
    google_idp.set_header("Age", "500")
    await warm(google, google_token)
    clock.advance(99)
    await warm(google, google_token)
    assert google_idp.request_count == 1
    clock.advance(2)
    await warm(google, google_token)
    assert google_idp.request_count == 2


async def test_tiny_max_age_is_raised_to_the_minimum(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    google_idp.set_max_age(0)
    await warm(google, google_token)
    clock.advance(59)
    await warm(google, google_token)
    assert google_idp.request_count == 1
    clock.advance(2)
    await warm(google, google_token)
    assert google_idp.request_count == 2


async def test_huge_max_age_is_capped_at_the_maximum(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    google_idp.set_max_age(365 * 24 * 3600)
    await warm(google, google_token)
    clock.advance(24 * 3600 - 1)
    await google.verify(google_token(), nonce=None)
    assert google_idp.request_count == 1
    clock.advance(2)
    await google.verify(google_token(), nonce=None)
    assert google_idp.request_count == 2


async def test_missing_max_age_uses_the_default_lifetime(
    make_verifiers: MakeVerifiers, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    google = make_verifiers(jwks_default_ttl_seconds=900)["google"]
    google_idp.set_max_age(None)
    await warm(google, google_token)
    clock.advance(899)
    await warm(google, google_token)
    assert google_idp.request_count == 1
    clock.advance(2)
    await warm(google, google_token)
    assert google_idp.request_count == 2


# -- what the set may contain ---------------------------------------------------------------


async def test_unusable_keys_are_ignored_and_the_good_one_works(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    good = google_idp.published()[0]
    spare = public_jwk(rsa_key("spare"), None)
    short = public_jwk(rsa_key("short", bits=1024), "short")
    private_numbers = rsa_key("leaked").private_numbers()
    leaked = {
        **public_jwk(rsa_key("leaked"), "leaked"),
        "d": b64url(private_numbers.d.to_bytes(256, "big")),
    }
    google_idp.set_published(
        [
            {"kty": "XYZ", "kid": "weird", "use": "sig"},
            {"kty": "RSA", "kid": "bad-material", "n": "!!!", "e": "AQAB"},
            {"kty": "RSA", "kid": "no-modulus", "e": "AQAB"},
            {"kty": "RSA", "kid": "int-modulus", "n": 12345, "e": "AQAB"},
            {"kty": "EC", "kid": "bad-curve", "crv": "P-999", "x": "AA", "y": "AA"},
            {"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": "A" * 43, "y": "A" * 43},
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {**spare, "kid": "for-encryption", "use": "enc"},
            {**spare, "kid": "wrong-ops", "key_ops": ["encrypt"]},
            {**spare, "kid": "wrong-alg", "alg": "ES256"},
            {**spare, "kid": 17},
            short,
            leaked,
            "not even an object",
            good,
        ]
    )

    assert (await google.verify(google_token(), nonce=None)).subject
    assert google_idp.request_count == 1

    for kid, key_name in [
        ("for-encryption", "spare"),
        ("wrong-ops", "spare"),
        ("wrong-alg", "spare"),
        ("short", "short"),
        ("leaked", "leaked"),
    ]:
        bits = 1024 if key_name == "short" else 2048
        token = google_token(sign={"kid": kid, "key": rsa_key(key_name, bits=bits)})
        with pytest.raises(InvalidIdToken):
            await google.verify(token, nonce=None)


async def test_a_set_without_usable_keys_does_not_replace_good_keys(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    await warm(google, google_token)
    google_idp.set_published([{"kty": "XYZ", "kid": "weird"}])
    clock.advance(3600 + 1)
    await warm(google, google_token)
    assert google_idp.request_count == 2


async def test_oversized_response_is_a_failed_fetch(
    http: httpx.AsyncClient, google_idp: FakeIdp, clock: FrozenClock
) -> None:
    google_idp.publish_raw({"kty": "XYZ", "padding": "x" * 300_000})
    cache = JwksCache(google_idp.jwks_url, http=http, clock=clock)
    with pytest.raises(ProviderUnavailable):
        await cache.get_keys(google_idp.current_kid)


async def test_prefetch_warms_the_cache(
    http: httpx.AsyncClient, google_idp: FakeIdp, clock: FrozenClock
) -> None:
    cache = JwksCache(google_idp.jwks_url, http=http, clock=clock)
    assert await cache.prefetch() is True
    assert await cache.prefetch() is True
    keys = await cache.get_keys(google_idp.current_kid)
    assert [k.kid for k in keys] == [google_idp.current_kid]
    assert google_idp.request_count == 1
