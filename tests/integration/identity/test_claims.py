"""Claim checks: issuer, audience, azp, times, subject, nonce."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from authgate.clock import FrozenClock
from authgate.errors import InvalidIdToken
from authgate.identity import OidcVerifier, build_verifiers, generic_config, google_config
from tests.support.idp import OMIT, FakeIdp, hashed_nonce

from .constants import (
    GOOGLE_IOS_CLIENT,
    GOOGLE_WEB_CLIENT,
    UNTRUSTED_CLIENT,
    MakeVerifiers,
    Mint,
)

NOW_OFFSET_REFUSED = 61  # just beyond the 60 s leeway
NOW_OFFSET_TOLERATED = 30  # within it


async def refused(verifier: OidcVerifier, token: str, *, nonce: str | None = None) -> str:
    with pytest.raises(InvalidIdToken) as caught:
        await verifier.verify(token, nonce=nonce)
    return caught.value.detail_for_log or ""


def now(clock: FrozenClock) -> int:
    return int(clock.now().timestamp())


# -- iss --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    [
        "https://accounts.google.com/",
        "http://accounts.google.com",
        "https://accounts.google.com.evil.example",
        "HTTPS://ACCOUNTS.GOOGLE.COM",
        " https://accounts.google.com",
        "https://evil.example",
        "",
        ["https://accounts.google.com"],
        OMIT,
    ],
)
async def test_wrong_or_look_alike_google_issuer_is_refused(
    google: OidcVerifier, google_token: Mint, issuer: object
) -> None:
    assert "issuer" in await refused(google, google_token(iss=issuer))


@pytest.mark.parametrize(
    "issuer", ["http://appleid.apple.com", "https://appleid.apple.com/", "appleid.apple.com"]
)
async def test_look_alike_apple_issuer_is_refused(
    apple: OidcVerifier, apple_token: Mint, issuer: str
) -> None:
    assert "issuer" in await refused(apple, apple_token(iss=issuer))


# -- aud / azp --------------------------------------------------------------------


async def test_foreign_audience_is_refused(google: OidcVerifier, google_token: Mint) -> None:
    token = google_token(aud=UNTRUSTED_CLIENT, azp=OMIT)
    assert "audience" in await refused(google, token)


async def test_multi_audience_with_an_untrusted_member_is_refused(
    google: OidcVerifier, google_token: Mint
) -> None:
    token = google_token(aud=[GOOGLE_WEB_CLIENT, UNTRUSTED_CLIENT])
    assert "audience" in await refused(google, token)


async def test_multi_audience_of_trusted_members_is_accepted(
    google: OidcVerifier, google_token: Mint
) -> None:
    token = google_token(aud=[GOOGLE_WEB_CLIENT, GOOGLE_IOS_CLIENT])
    assert (await google.verify(token, nonce=None)).subject


@pytest.mark.parametrize("aud", [OMIT, None, [], 42, [GOOGLE_WEB_CLIENT, 42]])
async def test_missing_or_malformed_audience_is_refused(
    google: OidcVerifier, google_token: Mint, aud: object
) -> None:
    await refused(google, google_token(aud=aud))


async def test_untrusted_azp_is_refused(google: OidcVerifier, google_token: Mint) -> None:
    assert "azp" in await refused(google, google_token(azp=UNTRUSTED_CLIENT))


async def test_azp_of_another_trusted_client_is_accepted(
    google: OidcVerifier, google_token: Mint
) -> None:
    # Google's Android/iOS flows: aud is the server's client id, azp the app's.
    token = google_token(aud=GOOGLE_WEB_CLIENT, azp=GOOGLE_IOS_CLIENT)
    assert (await google.verify(token, nonce=None)).subject


async def test_apple_token_for_another_app_is_refused(
    apple: OidcVerifier, apple_token: Mint
) -> None:
    assert "audience" in await refused(apple, apple_token(aud="com.other.app"))


# -- exp / iat / nbf --------------------------------------------------------------


async def test_expired_token_is_refused(
    google: OidcVerifier, google_token: Mint, clock: FrozenClock
) -> None:
    token = google_token(iat=now(clock) - 3600, exp=now(clock) - NOW_OFFSET_REFUSED)
    assert "expired" in await refused(google, token)


async def test_expiry_within_the_leeway_is_tolerated(
    google: OidcVerifier, google_token: Mint, clock: FrozenClock
) -> None:
    token = google_token(iat=now(clock) - 3600, exp=now(clock) - NOW_OFFSET_TOLERATED)
    assert (await google.verify(token, nonce=None)).subject


async def test_expiry_follows_the_injected_clock(
    google: OidcVerifier, google_token: Mint, clock: FrozenClock
) -> None:
    token = google_token()  # exp = now + 1 h
    assert (await google.verify(token, nonce=None)).subject
    clock.advance(3600 + NOW_OFFSET_REFUSED)
    assert "expired" in await refused(google, token)


async def test_leeway_is_configurable(
    make_verifiers: MakeVerifiers, google_token: Mint, clock: FrozenClock
) -> None:
    strict = make_verifiers(clock_skew_seconds=0)["google"]
    token = google_token(iat=now(clock) - 3600, exp=now(clock) - 1)
    assert "expired" in await refused(strict, token)


async def test_iat_in_the_future_is_refused(
    google: OidcVerifier, google_token: Mint, clock: FrozenClock
) -> None:
    token = google_token(iat=now(clock) + NOW_OFFSET_REFUSED)
    assert "future" in await refused(google, token)


async def test_iat_slightly_ahead_is_tolerated(
    google: OidcVerifier, google_token: Mint, clock: FrozenClock
) -> None:
    token = google_token(iat=now(clock) + NOW_OFFSET_TOLERATED)
    assert (await google.verify(token, nonce=None)).subject


@pytest.mark.parametrize("claim", ["exp", "iat"])
@pytest.mark.parametrize("value", [OMIT, None, "1893499200", True, float("nan"), float("inf")])
async def test_exp_and_iat_are_required_numbers(
    google: OidcVerifier, google_token: Mint, claim: str, value: object
) -> None:
    assert claim in await refused(google, google_token(**{claim: value}))


async def test_huge_integer_exp_is_refused(google: OidcVerifier, google_token: Mint) -> None:
    assert "exp" in await refused(google, google_token(exp=10**400))


async def test_nbf_in_the_future_is_refused(
    google: OidcVerifier, google_token: Mint, clock: FrozenClock
) -> None:
    token = google_token(nbf=now(clock) + NOW_OFFSET_REFUSED)
    assert "nbf" in await refused(google, token)


async def test_nbf_within_the_leeway_is_tolerated(
    google: OidcVerifier, google_token: Mint, clock: FrozenClock
) -> None:
    token = google_token(nbf=now(clock) + NOW_OFFSET_TOLERATED)
    assert (await google.verify(token, nonce=None)).subject


async def test_nbf_that_is_not_a_number_is_refused(
    google: OidcVerifier, google_token: Mint
) -> None:
    assert "nbf" in await refused(google, google_token(nbf="soon"))


# -- sub ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sub", [OMIT, None, "", 1234567890, "x" * 256, "has space", "tab\there", "é", "a\x00b"]
)
async def test_missing_or_invalid_sub_is_refused(
    google: OidcVerifier, google_token: Mint, sub: object
) -> None:
    assert "sub" in await refused(google, google_token(sub=sub))


async def test_sub_of_255_characters_is_accepted(google: OidcVerifier, google_token: Mint) -> None:
    sub = "s" * 255
    assert (await google.verify(google_token(sub=sub), nonce=None)).subject == sub


# -- nonce --------------------------------------------------------------------------


async def test_matching_nonce_is_accepted(apple: OidcVerifier, apple_token: Mint) -> None:
    token = apple_token(nonce=hashed_nonce("n-0S6_WzA2Mj"))
    assert (await apple.verify(token, nonce="n-0S6_WzA2Mj")).subject


async def test_nonce_mismatch_is_refused(apple: OidcVerifier, apple_token: Mint) -> None:
    token = apple_token(nonce=hashed_nonce("n-0S6_WzA2Mj"))
    assert "nonce mismatch" in await refused(apple, token, nonce="another-nonce")


async def test_unhashed_nonce_in_the_token_is_refused(
    apple: OidcVerifier, apple_token: Mint
) -> None:
    # The token must carry sha256(nonce); the raw nonce in the token means the client
    # skipped the hashing, and the check must not silently accept either form.
    token = apple_token(nonce="n-0S6_WzA2Mj")
    assert "nonce mismatch" in await refused(apple, token, nonce="n-0S6_WzA2Mj")


async def test_token_nonce_without_request_nonce_is_refused(
    apple: OidcVerifier, apple_token: Mint
) -> None:
    token = apple_token(nonce=hashed_nonce("n-0S6_WzA2Mj"))
    assert "request gave none" in await refused(apple, token, nonce=None)


async def test_request_nonce_without_token_nonce_is_refused(
    google: OidcVerifier, google_token: Mint
) -> None:
    assert "token has none" in await refused(google, google_token(), nonce="n-0S6_WzA2Mj")


async def test_empty_request_nonce_is_refused(apple: OidcVerifier, apple_token: Mint) -> None:
    token = apple_token(nonce=hashed_nonce(""))
    assert "empty" in await refused(apple, token, nonce="")


@pytest.mark.parametrize("token_nonce", [42, ["x"], {"a": 1}])
async def test_non_string_token_nonce_is_refused(
    google: OidcVerifier, google_token: Mint, token_nonce: object
) -> None:
    await refused(google, google_token(nonce=token_nonce), nonce="n-0S6_WzA2Mj")


async def test_non_ascii_nonces_do_not_crash(google: OidcVerifier, google_token: Mint) -> None:
    token = google_token(nonce="é" * 64)
    await refused(google, token, nonce="\ud800")


# -- requireNonce -------------------------------------------------------------------


async def test_google_and_apple_need_no_nonce_by_default(
    google: OidcVerifier, apple: OidcVerifier, google_token: Mint, apple_token: Mint
) -> None:
    # The seed apps send none; GOOGLE_REQUIRE_NONCE / APPLE_REQUIRE_NONCE turn it on.
    assert not google.config.require_nonce
    assert not apple.config.require_nonce
    assert (await google.verify(google_token(), nonce=None)).subject
    assert (await apple.verify(apple_token(), nonce=None)).subject


async def test_a_provider_that_requires_a_nonce_refuses_tokens_without_one(
    google_idp: FakeIdp, http: httpx.AsyncClient, clock: FrozenClock, google_token: Mint
) -> None:
    google = build_verifiers(
        [google_config(GOOGLE_WEB_CLIENT, google_idp.jwks_url, require_nonce=True)],
        http=http,
        clock=clock,
    )["google"]
    raw = "n-0S6_WzA2Mj"
    assert "requires a nonce" in await refused(google, google_token(), nonce=None)
    assert "requires a nonce" in await refused(google, google_token(), nonce=raw)
    with_nonce = google_token(nonce=hashed_nonce(raw))
    assert "requires a nonce" in await refused(google, with_nonce, nonce=None)
    assert "mismatch" in await refused(google, with_nonce, nonce="other")
    # Compared as before: the token carries sha256(nonce), the request the raw value.
    assert (await google.verify(with_nonce, nonce=raw)).subject


@pytest.mark.parametrize(("require", "accepted"), [(None, False), (True, False), (False, True)])
async def test_generic_providers_require_a_nonce_unless_configured_not_to(
    google_idp: FakeIdp,
    http: httpx.AsyncClient,
    clock: FrozenClock,
    google_token: Mint,
    require: bool | None,
    accepted: bool,
) -> None:
    options: dict[str, Any] = {} if require is None else {"require_nonce": require}
    config = generic_config(
        "corp", "https://accounts.google.com", google_idp.jwks_url, [GOOGLE_WEB_CLIENT], **options
    )
    corp = build_verifiers([config], http=http, clock=clock)["corp"]
    if accepted:
        assert (await corp.verify(google_token(), nonce=None)).subject
    else:
        assert "requires a nonce" in await refused(corp, google_token(), nonce=None)
    assert (await corp.verify(google_token(nonce=hashed_nonce("n")), nonce="n")).subject
