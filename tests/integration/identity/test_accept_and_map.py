"""Good tokens are accepted and mapped; provider-specific claim shapes are honoured."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import httpx
import pytest

from authgate.clock import FrozenClock
from authgate.domain.identity import IdTokenVerifier, VerifiedIdentity
from authgate.errors import InvalidIdToken
from authgate.identity import OidcVerifier, build_verifiers, generic_config
from tests.support.idp import (
    APPLE_ISSUER,
    GOOGLE_ISSUER,
    OMIT,
    FakeIdp,
    apple_claims,
    google_claims,
)

from .constants import APPLE_BUNDLE_ID, GOOGLE_IOS_CLIENT, GOOGLE_WEB_CLIENT, MakeVerifiers, Mint


def signed_part_hash(token: str) -> str:
    return hashlib.sha256(token.rpartition(".")[0].encode()).hexdigest()


def skewed_exp(token: str) -> datetime:
    """The token's exp + the fixtures' 60 s of clock skew."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return datetime.fromtimestamp(claims["exp"] + 60, UTC)


async def test_good_google_token_is_accepted_and_mapped(
    google: OidcVerifier, google_token: Mint
) -> None:
    token = google_token()
    identity = await google.verify(token, nonce=None)

    assert identity == VerifiedIdentity(
        provider="google",
        subject="110169484474386276334",
        email="alice@gmail.com",
        email_verified=True,
        is_private_email=False,
        given_name="Alice",
        family_name="Example",
        email_trusted=True,  # a Gmail address: Google is its authority
        token_hash=signed_part_hash(token),
        token_expires_at=skewed_exp(token),
    )


async def test_verifier_satisfies_the_domain_port(google: OidcVerifier) -> None:
    port: IdTokenVerifier = google
    assert port.name == "google"


async def test_google_legacy_issuer_spelling_is_accepted(
    google: OidcVerifier, google_token: Mint
) -> None:
    identity = await google.verify(google_token(iss="accounts.google.com"), nonce=None)
    assert identity.subject == "110169484474386276334"


async def test_google_token_for_second_configured_client_is_accepted(
    google: OidcVerifier, google_token: Mint
) -> None:
    token = google_token(aud=GOOGLE_IOS_CLIENT, azp=GOOGLE_IOS_CLIENT)
    assert (await google.verify(token, nonce=None)).provider == "google"


async def test_good_apple_token_with_string_booleans(
    apple: OidcVerifier, apple_token: Mint
) -> None:
    token = apple_token()
    identity = await apple.verify(token, nonce=None)

    assert identity == VerifiedIdentity(
        provider="apple",
        subject="001234.5f3a2b1c9d8e4f7a6b5c4d3e2f1a0b9c.1234",
        email="xk8c2m4q7z@privaterelay.appleid.com",
        email_verified=True,
        is_private_email=True,
        given_name=None,
        family_name=None,
        email_trusted=True,  # Apple vouches for its addresses, relay ones included
        token_hash=signed_part_hash(token),
        token_expires_at=skewed_exp(token),
    )


async def test_apple_json_booleans_are_also_understood(
    apple: OidcVerifier, apple_token: Mint
) -> None:
    identity = await apple.verify(
        apple_token(email_verified=True, is_private_email=False), nonce=None
    )
    assert identity.email_verified is True
    assert identity.is_private_email is False


@pytest.mark.parametrize("value", ["false", "False", "TRUE", "yes", "1", 1, None, OMIT])
async def test_apple_email_verified_only_true_for_true(
    apple: OidcVerifier, apple_token: Mint, value: object
) -> None:
    identity = await apple.verify(
        apple_token(email_verified=value, is_private_email=value), nonce=None
    )
    assert identity.email_verified is False
    assert identity.is_private_email is False


@pytest.mark.parametrize(
    ("value", "verified"),
    [
        (True, True),
        ("true", True),
        (False, False),
        ("false", False),
        ("True", False),
        (1, False),
        ("yes", False),
        (None, False),
        (OMIT, False),
    ],
)
async def test_email_verified_is_json_true_or_the_string_true_only(
    google: OidcVerifier, google_token: Mint, value: object, verified: bool
) -> None:
    # The same rule for every provider: Apple's string "true" is what others copy.
    identity = await google.verify(google_token(email_verified=value), nonce=None)
    assert identity.email_verified is verified


@pytest.mark.parametrize("email", [OMIT, None, 42, ["a@b.c"], ""])
async def test_email_must_be_a_string(
    google: OidcVerifier, google_token: Mint, email: object
) -> None:
    identity = await google.verify(google_token(email=email), nonce=None)
    assert identity.email is None
    # "verified" means nothing without an address.
    assert identity.email_verified is False


async def test_names_must_be_strings(google: OidcVerifier, google_token: Mint) -> None:
    identity = await google.verify(google_token(given_name=7, family_name=OMIT), nonce=None)
    assert identity.given_name is None
    assert identity.family_name is None


async def test_apple_token_is_refused_by_google_verifier(
    make_verifiers: MakeVerifiers, apple_token: Mint
) -> None:
    verifiers = make_verifiers()
    token = apple_token()
    assert (await verifiers["apple"].verify(token, nonce=None)).provider == "apple"

    with pytest.raises(InvalidIdToken):
        await verifiers["google"].verify(token, nonce=None)


async def test_google_token_is_refused_by_apple_verifier(
    make_verifiers: MakeVerifiers, google_token: Mint
) -> None:
    verifiers = make_verifiers()
    token = google_token()
    assert (await verifiers["google"].verify(token, nonce=None)).provider == "google"

    with pytest.raises(InvalidIdToken):
        await verifiers["apple"].verify(token, nonce=None)


async def test_key_sets_are_separate_per_provider(
    make_verifiers: MakeVerifiers, google_idp: FakeIdp, clock: FrozenClock
) -> None:
    # Google's key signing a token with Apple's issuer and audience: only the separate
    # key sets stop it (the issuer and audience checks would pass).
    apple = make_verifiers()["apple"]
    token = google_idp.sign(apple_claims(now=clock.now().timestamp(), bundle_id=APPLE_BUNDLE_ID))

    with pytest.raises(InvalidIdToken) as caught:
        await apple.verify(token, nonce=None)
    assert "unknown kid" in (caught.value.detail_for_log or "")


async def test_issuer_pin_stops_a_token_of_the_other_provider_on_shared_keys(
    make_verifiers: MakeVerifiers, google_idp: FakeIdp, clock: FrozenClock
) -> None:
    # Same key server, right audience, Apple's issuer: only the issuer pin refuses it.
    google = make_verifiers()["google"]
    token = google_idp.sign(
        google_claims(now=clock.now().timestamp(), client_id=GOOGLE_WEB_CLIENT, iss=APPLE_ISSUER)
    )

    with pytest.raises(InvalidIdToken) as caught:
        await google.verify(token, nonce=None)
    assert "issuer" in (caught.value.detail_for_log or "")


# -- which addresses a provider vouches for ------------------------------------------


@pytest.mark.parametrize(
    ("claims", "trusted"),
    [
        ({"email": "alice@gmail.com"}, True),
        ({"email": "Alice@GoogleMail.com"}, True),
        ({"email": "alice@example.com", "hd": "example.com"}, True),  # Workspace
        # A consumer Google account on another address: verified once, by a mail.
        ({"email": "alice@example.com"}, False),
        ({"email": "alice@example.com", "hd": ""}, False),
        ({"email": "alice@example.com", "hd": 7}, False),
        ({"email": "alice@gmail.com.evil.example"}, False),
        ({"email": "alice@evil-gmail.com"}, False),
        ({"email": "alice@gmail.com", "email_verified": False}, False),
        ({"email": "alice@example.com", "hd": "example.com", "email_verified": False}, False),
    ],
)
async def test_google_vouches_for_gmail_and_workspace_addresses_only(
    google: OidcVerifier, google_token: Mint, claims: dict[str, object], trusted: bool
) -> None:
    identity = await google.verify(google_token(**claims), nonce=None)
    assert identity.email_trusted is trusted


@pytest.mark.parametrize(
    ("email", "verified", "trusted"),
    [
        ("xk8c2m4q7z@privaterelay.appleid.com", "true", True),
        ("melvin@example.com", "true", True),
        ("melvin@example.com", "false", False),
    ],
)
async def test_apple_vouches_for_the_addresses_it_verified(
    apple: OidcVerifier, apple_token: Mint, email: str, verified: str, trusted: bool
) -> None:
    identity = await apple.verify(apple_token(email=email, email_verified=verified), nonce=None)
    assert identity.email_trusted is trusted


@pytest.mark.parametrize(("trust_email", "trusted"), [(False, False), (True, True)])
async def test_a_generic_provider_vouches_for_nothing_unless_configured(
    google_idp: FakeIdp,
    http: httpx.AsyncClient,
    clock: FrozenClock,
    trust_email: bool,
    trusted: bool,
) -> None:
    config = generic_config(
        "corp",
        GOOGLE_ISSUER,
        google_idp.jwks_url,
        [GOOGLE_WEB_CLIENT],
        trust_email=trust_email,
        require_nonce=False,
    )
    corp = build_verifiers([config], http=http, clock=clock)["corp"]
    token = google_idp.sign(
        google_claims(now=clock.now().timestamp(), client_id=GOOGLE_WEB_CLIENT, hd="corp.example")
    )
    identity = await corp.verify(token, nonce=None)
    assert identity.email_verified is True
    assert identity.email_trusted is trusted  # hd means nothing outside Google


async def test_an_email_over_254_characters_is_no_email(
    google: OidcVerifier, google_token: Mint
) -> None:
    at_limit = "a" * 64 + "@" + "b" * 179 + ".com"
    assert len(at_limit) == 248
    longest = "a" * 64 + "@" + "b" * 185 + ".com"
    assert len(longest) == 254
    assert (await google.verify(google_token(email=longest), nonce=None)).email == longest
    too_long = longest[:65] + "b" + longest[65:]
    identity = await google.verify(google_token(email=too_long, hd="x.example"), nonce=None)
    assert (identity.email, identity.email_verified, identity.email_trusted) == (
        None,
        False,
        False,
    )


async def test_the_use_key_ignores_the_signature_encoding(
    google: OidcVerifier, google_token: Mint
) -> None:
    # Same header and payload, another signature string: the same key, so a
    # signature twin (or a provider re-signing) cannot pass for a new token.
    token = google_token()
    header_payload = token.rpartition(".")[0]
    identity = await google.verify(token, nonce=None)
    assert identity.token_hash == hashlib.sha256(header_payload.encode()).hexdigest()
    assert identity.token_hash != hashlib.sha256(token.encode()).hexdigest()
    other = google_token(sub="someone-else")
    assert (await google.verify(other, nonce=None)).token_hash != identity.token_hash


@pytest.mark.parametrize("exp", [10**12, 1e300])
async def test_a_far_exp_is_recorded_until_the_last_storable_day(
    google: OidcVerifier, google_token: Mint, exp: float
) -> None:
    identity = await google.verify(google_token(exp=exp), nonce=None)
    assert identity.token_expires_at == datetime(9999, 12, 31, tzinfo=UTC)
