"""Keys, thumbprints, refresh-token secrets and the argon2 hasher."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from authgate.bootstrap import trusted_keys_by_kid
from authgate.clock import FrozenClock
from authgate.crypto.access_token_verifier import access_token_verifier
from authgate.crypto.jwt_tokens import JwtAccessTokens
from authgate.crypto.keys import (
    KeyError_,
    KeySet,
    generate_private_key,
    jwk_thumbprint,
    load_key_set,
    make_signing_key,
    write_key_pair,
)
from authgate.crypto.passwords import Argon2Parameters, Argon2PasswordHasher
from authgate.crypto.refresh_secrets import (
    SuccessorSealer,
    hash_refresh_token,
    new_refresh_token,
)
from authgate.domain.models import User
from authgate.resource import InvalidToken, TokenVerifier
from authgate.server_secret import ServerSecret
from tests.support.server_secrets import make_sealer


def test_rfc7638_thumbprint_example() -> None:
    # RFC 7638 section 3.1.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQ"
        "R0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bF"
        "TWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_key_set_publishes_only_public_members(algorithm: str) -> None:
    key_set = KeySet(signing=make_signing_key(generate_private_key(algorithm), algorithm))
    (jwk,) = key_set.jwks()["keys"]
    assert jwk["kid"] == key_set.signing.kid
    assert jwk["alg"] == algorithm
    assert jwk["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)


@pytest.mark.parametrize(
    ("key_algorithm", "configured"), [("RS256", "ES256"), ("ES256", "EdDSA"), ("EdDSA", "RS256")]
)
def test_key_type_must_fit_the_algorithm(
    tmp_path: Path, key_algorithm: str, configured: str
) -> None:
    private, public = write_key_pair(tmp_path, key_algorithm)
    with pytest.raises(KeyError_, match="JWT_PRIVATE_KEY_PATH"):
        load_key_set(private_key_path=private, public_key_path=public, algorithm=configured)


def test_write_key_pair_never_overwrites(tmp_path: Path) -> None:
    write_key_pair(tmp_path, "ES256")
    with pytest.raises(KeyError_, match="already exists"):
        write_key_pair(tmp_path, "ES256")


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
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


def _guard(key_set: KeySet, clock: FrozenClock, **options: Any) -> TokenVerifier:
    """The server's verifier of its own access tokens (what CurrentClaims uses)."""
    return access_token_verifier(
        trusted_keys_by_kid(key_set),
        issuer=options.pop("issuer", "https://a"),
        audiences=options.pop("audiences", ("x", "y")),
        clock=clock,
        **options,
    )


async def test_access_token_round_trip_and_refusals() -> None:
    key_set = KeySet(signing=make_signing_key(generate_private_key("ES256"), "ES256"))
    tokens = JwtAccessTokens(key_set, issuer="https://a", audiences=("x", "y"), ttl_seconds=60)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    clock = FrozenClock(now)
    token = tokens.issue(_user(), session_id=uuid4(), now=now)
    clock.advance(59)
    claims = await _guard(key_set, clock).verify(token)
    assert claims.raw["name"] == "Melvin Friedman"
    assert claims.aud == ("x", "y")
    clock.advance(1)
    with pytest.raises(InvalidToken):
        await _guard(key_set, clock).verify(token)
    clock.set(now)
    with pytest.raises(InvalidToken):
        await _guard(key_set, clock, issuer="https://b").verify(token)
    with pytest.raises(InvalidToken):
        await _guard(key_set, clock, audiences=("z",)).verify(token)
    with pytest.raises(InvalidToken):
        await _guard(key_set, clock).verify("x" * 10_000)


def test_refresh_tokens_are_256_bit_and_only_their_hash_is_kept() -> None:
    tokens = {new_refresh_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert len(token) == 43  # 32 bytes, base64url without padding
    assert hash_refresh_token(token) != token
    assert len(hash_refresh_token(token)) == 64


def test_sealed_successor_opens_only_with_the_parent_token() -> None:
    sealer = make_sealer()
    parent, successor = new_refresh_token(), new_refresh_token()
    sealed = sealer.seal(parent, successor)
    assert successor.encode() not in sealed
    assert sealer.open(parent, sealed) == successor
    assert sealer.open(new_refresh_token(), sealed) is None
    # The stored hash of the parent does not open it either.
    assert sealer.open(hash_refresh_token(parent), sealed) is None
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert sealer.open(parent, tampered) is None
    assert sealer.open(parent, sealed[:12]) is None


def test_sealed_successor_needs_the_server_secret_too() -> None:
    parent, successor = new_refresh_token(), new_refresh_token()
    sealed = make_sealer().seal(parent, successor)
    other = SuccessorSealer(ServerSecret(secrets.token_bytes(32)).refresh_sealing_keys())
    # The parent token alone (what a database reader with an old token has) opens nothing.
    assert other.open(parent, sealed) is None
    with pytest.raises(ValueError, match="32-byte key"):
        SuccessorSealer([])
    with pytest.raises(ValueError, match="32-byte key"):
        SuccessorSealer([b"short"])


async def test_production_parameters_are_owasp_argon2id() -> None:
    hasher = Argon2PasswordHasher(Argon2Parameters())
    try:
        stored = await hasher.hash("correct horse battery staple")
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert await hasher.verify(stored, "correct horse battery staple")
        assert not await hasher.verify(stored, "correct horse battery stapl")
        assert not await hasher.verify("not a hash", "x")
        assert not hasher.needs_rehash(stored)
        cheap = Argon2PasswordHasher(Argon2Parameters(time_cost=1, memory_kib=8))
        try:
            assert hasher.needs_rehash(await cheap.hash("x"))
        finally:
            cheap.close()
    finally:
        hasher.close()


async def test_passwords_are_nfkc_normalized_before_hashing() -> None:
    hasher = Argon2PasswordHasher(Argon2Parameters(time_cost=1, memory_kib=8))
    try:
        stored = await hasher.hash("caf\u00e9 \uff11\uff12")  # composed é, full-width digits
        assert await hasher.verify(stored, "cafe\u0301 12")  # decomposed é, ASCII digits
        assert not await hasher.verify(stored, " caf\u00e9 12")  # never trimmed
    finally:
        hasher.close()


async def test_a_full_hashing_queue_refuses_at_once_and_recovers() -> None:
    import asyncio

    from authgate.errors import Unavailable

    hasher = Argon2PasswordHasher(
        Argon2Parameters(time_cost=1, memory_kib=8), workers=1, max_pending=3
    )
    try:
        outcomes = await asyncio.gather(
            *(hasher.hash(f"password-{i}") for i in range(10)), return_exceptions=True
        )
        refused = [o for o in outcomes if isinstance(o, Unavailable)]
        hashed = [o for o in outcomes if isinstance(o, str)]
        assert (len(hashed), len(refused)) == (3, 7)
        assert hasher.pending == 0
        assert (await hasher.hash("after the flood")).startswith("$argon2id$")
    finally:
        hasher.close()


async def test_verified_tokens_are_cached_but_still_expire_and_forgeries_never_hit() -> None:
    key_set = KeySet(signing=make_signing_key(generate_private_key("ES256"), "ES256"))
    tokens = JwtAccessTokens(key_set, issuer="https://a", audiences=("x",), ttl_seconds=60)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    clock = FrozenClock(now)
    guard = _guard(key_set, clock, cache_size=2)
    token = tokens.issue(_user(), session_id=uuid4(), now=now)
    first = await guard.verify(token)
    clock.advance(30)
    assert await guard.verify(token) is first  # from the cache
    # A one-character change is a different token: verified from scratch, refused.
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(InvalidToken):
        await guard.verify(tampered)
    clock.advance(30)
    with pytest.raises(InvalidToken):
        await guard.verify(token)  # expired, even cached
    # Bounded: older entries make way for newer ones.
    clock.set(now)
    for _ in range(3):
        assert (await guard.verify(tokens.issue(_user(), session_id=uuid4(), now=now))).sub
    assert len(guard._verified) == 2
