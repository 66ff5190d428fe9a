"""Our access tokens, as the server's guard verifies them (authgate.resource's
TokenVerifier over the server's own keys): nbf is honoured, and each token has exactly
one byte form."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import jwt
import pytest

from authgate.bootstrap import trusted_keys_by_kid
from authgate.clock import FrozenClock
from authgate.crypto.access_token_verifier import access_token_verifier
from authgate.crypto.jwt_tokens import JwtAccessTokens, low_s_token
from authgate.crypto.keys import KeySet, generate_private_key, make_signing_key
from authgate.domain.models import User
from authgate.resource import Claims, InvalidToken, TokenVerifier
from tests.support.tokens import P256_ORDER, b64url, high_s_twin, unverified_parts, variants

if TYPE_CHECKING:
    from jwt.types import Options

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def signature_s(token: str) -> int:
    segment = token.rsplit(".", 1)[-1]
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    assert len(raw) == 64
    return int.from_bytes(raw[32:], "big")


def _user() -> User:
    return User(
        id=uuid4(),
        email="cow@cow.jp",
        email_key="cow@cow.jp",
        email_verified=False,
        given_name="Melvin",
        family_name="Friedman",
        display_name="",
        password_hash=None,
        created_at=NOW,
    )


class Guard:
    """The server's verifier at a time of the test's choosing."""

    def __init__(self, key_set: KeySet, *, leeway: int = 0) -> None:
        self.clock = FrozenClock(NOW)
        self.verifier: TokenVerifier = access_token_verifier(
            trusted_keys_by_kid(key_set),
            issuer="https://a",
            audiences=("x",),
            clock=self.clock,
            leeway_seconds=leeway,
        )

    async def verify(self, token: str, *, now: datetime = NOW) -> Claims:
        self.clock.set(now)
        return await self.verifier.verify(token)


def _tokens(algorithm: str = "ES256", *, leeway: int = 0) -> tuple[JwtAccessTokens, KeySet, Guard]:
    key_set = KeySet(signing=make_signing_key(generate_private_key(algorithm), algorithm))
    tokens = JwtAccessTokens(key_set, issuer="https://a", audiences=("x",), ttl_seconds=600)
    return tokens, key_set, Guard(key_set, leeway=leeway)


def is_low_s(segment: str) -> bool:
    return signature_s(segment) <= P256_ORDER // 2


def _with_nbf(tokens: JwtAccessTokens, key_set: KeySet, nbf: datetime) -> str:
    """One of our tokens, re-signed with our own key and an nbf claim."""
    header, claims = unverified_parts(tokens.issue(_user(), session_id=uuid4(), now=NOW))
    claims["nbf"] = int(nbf.timestamp())
    token = jwt.encode(claims, key_set.signing.private_key, algorithm="ES256", headers=header)
    return low_s_token(token)


async def test_nbf_in_the_future_is_refused_until_it_passes() -> None:
    tokens, key_set, guard = _tokens()
    token = _with_nbf(tokens, key_set, NOW + timedelta(seconds=30))
    with pytest.raises(InvalidToken):
        await guard.verify(token, now=NOW)
    with pytest.raises(InvalidToken):
        await guard.verify(token, now=NOW + timedelta(seconds=29))
    assert (await guard.verify(token, now=NOW + timedelta(seconds=30))).sub


async def test_nbf_has_the_same_leeway_as_exp() -> None:
    tokens, key_set, guard = _tokens(leeway=10)
    token = _with_nbf(tokens, key_set, NOW + timedelta(seconds=30))
    with pytest.raises(InvalidToken):
        await guard.verify(token, now=NOW + timedelta(seconds=19))
    assert (await guard.verify(token, now=NOW + timedelta(seconds=20))).sub


async def test_a_cached_token_is_judged_against_nbf_on_every_hit() -> None:
    tokens, key_set, guard = _tokens(leeway=10)
    token = _with_nbf(tokens, key_set, NOW + timedelta(seconds=30))
    # Accepted (and cached) within the leeway; the clock then moves back.
    assert (await guard.verify(token, now=NOW + timedelta(seconds=25))).sub
    with pytest.raises(InvalidToken):
        await guard.verify(token, now=NOW)
    assert (await guard.verify(token, now=NOW + timedelta(seconds=25))).sub


async def test_a_refused_early_token_is_not_cached() -> None:
    tokens, key_set, guard = _tokens()
    token = _with_nbf(tokens, key_set, NOW + timedelta(seconds=30))
    for _ in range(3):
        with pytest.raises(InvalidToken):
            await guard.verify(token, now=NOW)
    assert (await guard.verify(token, now=NOW + timedelta(seconds=31))).sub


async def test_a_non_numeric_nbf_is_refused() -> None:
    tokens, key_set, guard = _tokens()
    header, claims = unverified_parts(tokens.issue(_user(), session_id=uuid4(), now=NOW))
    claims["nbf"] = "soon"
    token = jwt.encode(claims, key_set.signing.private_key, algorithm="ES256", headers=header)
    with pytest.raises(InvalidToken):
        await guard.verify(low_s_token(token), now=NOW)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
async def test_only_the_issued_byte_form_verifies(algorithm: str) -> None:
    tokens, _, guard = _tokens(algorithm)
    token = tokens.issue(_user(), session_id=uuid4(), now=NOW)
    assert (await guard.verify(token, now=NOW)).sub  # now cached
    for name, variant in variants(token).items():
        assert variant != token, name
        with pytest.raises(InvalidToken):
            await guard.verify(variant, now=NOW)


async def test_the_high_s_twin_is_refused_even_after_the_original_was_cached() -> None:
    tokens, key_set, guard = _tokens("ES256")
    token = tokens.issue(_user(), session_id=uuid4(), now=NOW)
    twin = high_s_twin(token)
    # The twin is a valid ECDSA signature: a plain decoder accepts it.
    public = key_set.signing.private_key.public_key()
    lenient: Options = {"verify_exp": False, "verify_iat": False}
    assert jwt.decode(twin, public, algorithms=["ES256"], audience="x", options=lenient)["sub"]
    assert (await guard.verify(token, now=NOW)).sub
    with pytest.raises(InvalidToken):
        await guard.verify(twin, now=NOW)


async def test_freshly_issued_es256_tokens_are_all_low_s_and_signing_stays_cheap() -> None:
    tokens, _, guard = _tokens("ES256")
    user, session = _user(), uuid4()
    started = time.perf_counter()
    issued = [tokens.issue(user, session_id=session, now=NOW) for _ in range(1000)]
    per_token = (time.perf_counter() - started) / 1000
    assert all(signature_s(token) <= P256_ORDER // 2 for token in issued)
    # About half of raw ECDSA signatures are high-s; all of those were normalized
    # and still verify.
    for token in issued[:50]:
        assert (await guard.verify(token, now=NOW)).sub
    # Measured ~0.1 ms per token on a shared core; the bound only catches a blunder.
    assert per_token < 0.01


def test_low_s_normalization_keeps_a_valid_signature() -> None:
    key_set = KeySet(signing=make_signing_key(generate_private_key("ES256"), "ES256"))
    claims: dict[str, Any] = {"a": 1}
    seen_high = 0
    for _ in range(40):
        raw = jwt.encode(claims, key_set.signing.private_key, algorithm="ES256")
        seen_high += not is_low_s(raw.rsplit(".", 1)[1])
        normalized = low_s_token(raw)
        assert is_low_s(normalized.rsplit(".", 1)[1])
        assert (
            jwt.decode(normalized, key_set.signing.private_key.public_key(), algorithms=["ES256"])
            == claims
        )
    assert seen_high > 0  # 40 raw signatures all low-s: 1 in 2**40


async def test_es256_signatures_of_another_length_are_refused() -> None:
    tokens, _, guard = _tokens("ES256")
    signing_input = tokens.issue(_user(), session_id=uuid4(), now=NOW).rsplit(".", 1)[0]
    for raw in (b"\x00" * 63, b"\x01" * 65, b"\x01" * 96):
        with pytest.raises(InvalidToken):
            await guard.verify(f"{signing_input}.{b64url(raw)}")
