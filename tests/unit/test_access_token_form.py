"""Our access tokens: nbf is honoured, and each token has exactly one byte form."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import jwt
import pytest

from authgate.crypto.jwt_tokens import JwtAccessTokens, is_low_s, low_s_token
from authgate.crypto.keys import KeySet, generate_private_key, make_signing_key
from authgate.domain.models import User
from authgate.errors import InvalidAccessToken
from tests.support.tokens import P256_ORDER, b64url, high_s_twin, unverified_parts, variants

if TYPE_CHECKING:
    from jwt.types import Options

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def signature_s(token: str) -> int:
    segment = token.rsplit(".", 1)[1]
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


def _tokens(algorithm: str = "ES256", *, leeway: int = 0) -> tuple[JwtAccessTokens, KeySet]:
    key_set = KeySet(signing=make_signing_key(generate_private_key(algorithm), algorithm))
    tokens = JwtAccessTokens(
        key_set, issuer="https://a", audiences=("x",), ttl_seconds=600, leeway_seconds=leeway
    )
    return tokens, key_set


def _with_nbf(tokens: JwtAccessTokens, key_set: KeySet, nbf: datetime) -> str:
    """One of our tokens, re-signed with our own key and an nbf claim."""
    header, claims = unverified_parts(tokens.issue(_user(), session_id=uuid4(), now=NOW))
    claims["nbf"] = int(nbf.timestamp())
    token = jwt.encode(claims, key_set.signing.private_key, algorithm="ES256", headers=header)
    return low_s_token(token)


def test_nbf_in_the_future_is_refused_until_it_passes() -> None:
    tokens, key_set = _tokens()
    token = _with_nbf(tokens, key_set, NOW + timedelta(seconds=30))
    with pytest.raises(InvalidAccessToken):
        tokens.verify(token, now=NOW)
    with pytest.raises(InvalidAccessToken):
        tokens.verify(token, now=NOW + timedelta(seconds=29))
    assert tokens.verify(token, now=NOW + timedelta(seconds=30)).subject


def test_nbf_has_the_same_leeway_as_exp() -> None:
    tokens, key_set = _tokens(leeway=10)
    token = _with_nbf(tokens, key_set, NOW + timedelta(seconds=30))
    with pytest.raises(InvalidAccessToken):
        tokens.verify(token, now=NOW + timedelta(seconds=19))
    assert tokens.verify(token, now=NOW + timedelta(seconds=20)).subject


def test_a_cached_token_is_judged_against_nbf_on_every_hit() -> None:
    tokens, key_set = _tokens(leeway=10)
    token = _with_nbf(tokens, key_set, NOW + timedelta(seconds=30))
    # Accepted (and cached) within the leeway; the clock then moves back.
    assert tokens.verify(token, now=NOW + timedelta(seconds=25)).subject
    with pytest.raises(InvalidAccessToken):
        tokens.verify(token, now=NOW)
    assert tokens.verify(token, now=NOW + timedelta(seconds=25)).subject


def test_a_refused_early_token_is_not_cached() -> None:
    tokens, key_set = _tokens()
    token = _with_nbf(tokens, key_set, NOW + timedelta(seconds=30))
    for _ in range(3):
        with pytest.raises(InvalidAccessToken):
            tokens.verify(token, now=NOW)
    assert tokens.verify(token, now=NOW + timedelta(seconds=31)).subject


def test_a_non_numeric_nbf_is_refused() -> None:
    tokens, key_set = _tokens()
    header, claims = unverified_parts(tokens.issue(_user(), session_id=uuid4(), now=NOW))
    claims["nbf"] = "soon"
    token = jwt.encode(claims, key_set.signing.private_key, algorithm="ES256", headers=header)
    with pytest.raises(InvalidAccessToken):
        tokens.verify(low_s_token(token), now=NOW)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_only_the_issued_byte_form_verifies(algorithm: str) -> None:
    tokens, _ = _tokens(algorithm)
    token = tokens.issue(_user(), session_id=uuid4(), now=NOW)
    assert tokens.verify(token, now=NOW).subject  # now cached
    for name, variant in variants(token).items():
        assert variant != token, name
        with pytest.raises(InvalidAccessToken):
            tokens.verify(variant, now=NOW)


def test_the_high_s_twin_is_refused_even_after_the_original_was_cached() -> None:
    tokens, key_set = _tokens("ES256")
    token = tokens.issue(_user(), session_id=uuid4(), now=NOW)
    twin = high_s_twin(token)
    # The twin is a valid ECDSA signature: a plain decoder accepts it.
    public = key_set.signing.private_key.public_key()
    lenient: Options = {"verify_exp": False, "verify_iat": False}
    assert jwt.decode(twin, public, algorithms=["ES256"], audience="x", options=lenient)["sub"]
    assert tokens.verify(token, now=NOW).subject
    with pytest.raises(InvalidAccessToken):
        tokens.verify(twin, now=NOW)


def test_freshly_issued_es256_tokens_are_all_low_s_and_signing_stays_cheap() -> None:
    tokens, _ = _tokens("ES256")
    user, session = _user(), uuid4()
    started = time.perf_counter()
    issued = [tokens.issue(user, session_id=session, now=NOW) for _ in range(1000)]
    per_token = (time.perf_counter() - started) / 1000
    assert all(signature_s(token) <= P256_ORDER // 2 for token in issued)
    # About half of raw ECDSA signatures are high-s; all of those were normalized
    # and still verify.
    assert all(tokens.verify(token, now=NOW).subject for token in issued[:50])
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


def test_is_low_s_refuses_malformed_signatures() -> None:
    assert not is_low_s("")
    assert not is_low_s(b64url(b"\x00" * 63))
    assert not is_low_s("!!!")
