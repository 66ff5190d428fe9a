"""The static ring: PEM files, plus earlier public keys for a manual rotation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest

from authgate.bootstrap import trusted_keys_by_kid
from authgate.clock import FrozenClock
from authgate.crypto.access_token_verifier import access_token_verifier
from authgate.crypto.jwt_tokens import JwtAccessTokens
from authgate.crypto.keys import KeyError_, load_key_set, write_key_pair
from authgate.domain.models import User
from authgate.resource import InvalidToken

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _user() -> User:
    return User(
        id=uuid.uuid4(),
        email="cow@cow.jp",
        email_key="cow@cow.jp",
        email_verified=True,
        given_name="Melvin",
        family_name="Friedman",
        display_name="",
        password_hash=None,
        created_at=NOW,
    )


class _Ring:
    """A static ring's issuer and the guard's verifier over it (as web/app.py builds them)."""

    def __init__(self, private: Path, public: Path, algorithm: str, *previous: Path) -> None:
        key_set = load_key_set(
            private_key_path=private,
            public_key_path=public,
            algorithm=algorithm,
            extra_public_key_paths=previous,
        )
        self.tokens = JwtAccessTokens(
            key_set, issuer="https://auth.test", audiences=("a",), ttl_seconds=900
        )
        self.verifier = access_token_verifier(
            trusted_keys_by_kid(key_set),
            issuer="https://auth.test",
            audiences=("a",),
            clock=FrozenClock(NOW),
        )

    def issue(self) -> str:
        return self.tokens.issue(_user(), session_id=uuid.uuid4(), now=NOW)

    def verify(self, token: str) -> str:
        return asyncio.run(self.verifier.verify(token)).sub


def test_a_previous_key_of_another_algorithm_still_verifies(tmp_path: Path) -> None:
    old_private, old_public = write_key_pair(tmp_path / "old", "ES256")
    new_private, new_public = write_key_pair(tmp_path / "new", "RS256")
    before = _Ring(old_private, old_public, "ES256").issue()
    # Manual rotation: the new pair signs, the old public key (and the new one, listed
    # again by mistake) stays published.
    after = _Ring(new_private, new_public, "RS256", old_public, new_public, old_public)
    assert after.verify(before)
    fresh = after.issue()
    assert jwt.get_unverified_header(fresh)["alg"] == "RS256"
    assert after.verify(fresh)
    # Without the old key in the ring, its tokens are refused.
    with pytest.raises(InvalidToken):
        _Ring(new_private, new_public, "RS256").verify(before)


def test_the_previous_keys_are_published_with_their_own_algorithm(tmp_path: Path) -> None:
    _, old_public = write_key_pair(tmp_path / "old", "EdDSA")
    new_private, new_public = write_key_pair(tmp_path / "new", "RS256")
    key_set = load_key_set(
        private_key_path=new_private,
        public_key_path=new_public,
        algorithm="RS256",
        extra_public_key_paths=(old_public,),
    )
    assert [jwk["alg"] for jwk in key_set.jwks()["keys"]] == ["RS256", "EdDSA"]
    assert b'"d"' not in key_set.jwks_body


def test_an_unusable_previous_key_names_the_variable(tmp_path: Path) -> None:
    private, public = write_key_pair(tmp_path, "RS256")
    not_a_key = tmp_path / "notes.pem"
    not_a_key.write_text("not a key")
    with pytest.raises(KeyError_, match="JWT_PREVIOUS_PUBLIC_KEY_PATHS"):
        load_key_set(
            private_key_path=private,
            public_key_path=public,
            algorithm="RS256",
            extra_public_key_paths=(not_a_key,),
        )
