"""Our access tokens: RS256/ES256/EdDSA JWTs with a ``kid`` header (RFC 9068 shape).

Verification allowlists exactly the configured algorithm, picks the key by ``kid``
from *our* key set only (never from a URL or key in the token), pins issuer and
audience, and reports every failure the same way to the caller.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt

from authgate.crypto.keys import KeySet
from authgate.domain.models import AccessClaims, User
from authgate.errors import InvalidAccessToken

logger = logging.getLogger(__name__)

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type (RFC 9068 §2.1), not a secret
_REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "jti", "sid")
_MAX_TOKEN_LENGTH = 8192


class JwtAccessTokens:
    """Issues and verifies our access tokens with keys parsed once at start-up."""

    def __init__(
        self,
        key_set: KeySet,
        *,
        issuer: str,
        audiences: tuple[str, ...],
        ttl_seconds: int,
        leeway_seconds: int = 0,
        cache_size: int = 4096,
    ) -> None:
        self._keys = key_set
        self._issuer = issuer
        self._audiences = audiences
        self._ttl = ttl_seconds
        self._leeway = timedelta(seconds=leeway_seconds)
        self._header = {"kid": key_set.signing.kid, "typ": ACCESS_TOKEN_TYPE}
        self._jwt = jwt.PyJWT()
        # Tokens already verified, by SHA-256 of the whole token. A client presents
        # the same access token on every request for its lifetime; re-running RSA
        # and PyJWT each time would be most of a protected request's cost. Only
        # successes are kept, so a hit means the exact same bytes passed every
        # check before; expiry is still checked against the clock on every hit.
        self._verified: dict[bytes, AccessClaims] = {}
        self._cache_size = cache_size

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    def issue(self, user: User, *, session_id: UUID, now: datetime) -> str:
        issued_at = int(now.timestamp())
        user_id = str(user.id)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            # A single audience is a string, as most resource-server libraries expect.
            "aud": self._audiences[0] if len(self._audiences) == 1 else list(self._audiences),
            "sub": user_id,
            "userId": user_id,  # the TimeLapseMe seed's claim name
            "given_name": user.given_name,
            "family_name": user.family_name,
            "name": user.full_name,
            "iat": issued_at,
            "exp": issued_at + self._ttl,
            "jti": uuid.uuid4().hex,
            "sid": str(session_id),
        }
        if user.email is not None:
            claims["email"] = user.email
            claims["email_verified"] = user.email_verified
        return jwt.encode(
            claims,
            self._keys.signing.private_key,
            algorithm=self._keys.signing.algorithm,
            headers=self._header,
        )

    def verify(self, token: str, *, now: datetime) -> AccessClaims:
        if len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidAccessToken(detail_for_log="token too long")
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            if now >= cached.expires_at + self._leeway:
                del self._verified[digest]
                raise InvalidAccessToken(detail_for_log="expired")
            return cached
        try:
            claims = self._verify(token, now)
        except InvalidAccessToken:
            raise
        except Exception as exc:
            # One failure mode to the caller; the reason goes to the log only.
            raise InvalidAccessToken(detail_for_log=f"{type(exc).__name__}: {exc}") from None
        if self._cache_size:
            if len(self._verified) >= self._cache_size:
                # Oldest first (dicts keep insertion order): cheap, and bounded.
                del self._verified[next(iter(self._verified))]
            self._verified[digest] = claims
        return claims

    def _verify(self, token: str, now: datetime) -> AccessClaims:
        header = jwt.get_unverified_header(token)
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in (ACCESS_TOKEN_TYPE, "application/at+jwt"):
            # Refuses provider ID tokens and any other JWT signed by someone else.
            raise InvalidAccessToken(detail_for_log=f"typ {typ!r} is not at+jwt")
        kid = header.get("kid")
        key = self._keys.by_kid.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidAccessToken(detail_for_log=f"unknown kid {kid!r}")
        claims = self._jwt.decode(
            token,
            key.public_key,
            algorithms=[key.algorithm],
            audience=list(self._audiences),
            issuer=self._issuer,
            # Time is checked below against the injected clock.
            options={
                "require": list(_REQUIRED_CLAIMS),
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        expires_at = _timestamp(claims["exp"], "exp")
        issued_at = _timestamp(claims["iat"], "iat")
        if now >= expires_at + self._leeway:
            raise InvalidAccessToken(detail_for_log="expired")
        if issued_at > now + self._leeway + timedelta(seconds=60):
            raise InvalidAccessToken(detail_for_log="issued in the future")
        subject = claims["sub"]
        session_id = claims["sid"]
        if not isinstance(subject, str) or not isinstance(session_id, str):
            raise InvalidAccessToken(detail_for_log="sub or sid is not a string")
        return AccessClaims(
            subject=subject,
            session_id=session_id,
            email=_text(claims.get("email")),
            given_name=_text(claims.get("given_name")),
            family_name=_text(claims.get("family_name")),
            name=_text(claims.get("name")),
            issued_at=issued_at,
            expires_at=expires_at,
            token_id=str(claims["jti"]),
        )


def _timestamp(value: object, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAccessToken(detail_for_log=f"{name} is not a number")
    return datetime.fromtimestamp(value, tz=UTC)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
