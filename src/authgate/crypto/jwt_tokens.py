"""Our access tokens: RS256/ES256/EdDSA JWTs with a ``kid`` header (RFC 9068 shape).

Verification allowlists exactly the configured algorithm, picks the key by ``kid``
from *our* key set only (never from a URL or key in the token), pins issuer and
audience, and reports every failure the same way to the caller.

Each token we issue has exactly one byte form that verifies: only the compact form
``header.payload.signature`` in unpadded base64url is accepted (no ``=``, no
whitespace, no fourth part), and ES256 signatures are issued in low-``s`` form and
refused in high-``s`` form. ECDSA signatures are malleable: ``(r, s)`` and
``(r, n - s)`` both verify, so without the rule a second, different string would
verify as the same token (a twin that escapes a deny list or a replay cache keyed
by the token's bytes). RS256 (PKCS#1 v1.5) and Ed25519 (RFC 8032 §5.1.7: S < L,
checked by OpenSSL) have one valid signature per key and message already.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
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
# JWS compact serialization (RFC 7515 §7.1) with unpadded base64url (§2): the only
# form we issue, so the only one we accept.
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Order of the P-256 group (SEC 2 §2.4.2; FIPS 186-4 D.1.2.3).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


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
        default_client_id: str = "authgate",
    ) -> None:
        self._keys = key_set
        self._issuer = issuer
        self._audiences = audiences
        # RFC 9068 §2.2: every access token names its client; the seed routes and
        # /api/v1 act as this one (DEFAULT_CLIENT_ID).
        self._default_client_id = default_client_id
        self._ttl = ttl_seconds
        self._leeway = timedelta(seconds=leeway_seconds)
        self._header = {"kid": key_set.signing.kid, "typ": ACCESS_TOKEN_TYPE}
        self._jwt = jwt.PyJWT()
        # Tokens already verified, by SHA-256 of the whole token. A client presents
        # the same access token on every request for its lifetime; re-running RSA
        # and PyJWT each time would be most of a protected request's cost. Only
        # successes are kept, so a hit means the exact same bytes passed every
        # check before; exp and nbf are still checked against the clock on every hit.
        self._verified: dict[bytes, tuple[AccessClaims, datetime | None]] = {}
        self._cache_size = cache_size

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    def issue(
        self,
        user: User,
        *,
        session_id: UUID,
        now: datetime,
        client_id: str | None = None,
        audiences: tuple[str, ...] | None = None,
    ) -> str:
        """A user's token; a registered client's carries only that client's audiences."""
        issued_at = int(now.timestamp())
        user_id = str(user.id)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": _audience(audiences or self._audiences),
            "client_id": client_id or self._default_client_id,
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
        return self._sign(claims)

    def issue_for_client(self, client_id: str, *, audiences: tuple[str, ...], now: datetime) -> str:
        """A client_credentials token: ``sub`` is the client, and no ``sid``, so no
        user guard (they require one) takes it for a user."""
        issued_at = int(now.timestamp())
        return self._sign(
            {
                "iss": self._issuer,
                "aud": _audience(audiences),
                "client_id": client_id,
                "sub": client_id,
                "iat": issued_at,
                "exp": issued_at + self._ttl,
                "jti": uuid.uuid4().hex,
            }
        )

    def _sign(self, claims: dict[str, Any]) -> str:
        token = jwt.encode(
            claims,
            self._keys.signing.private_key,
            algorithm=self._keys.signing.algorithm,
            headers=self._header,
        )
        if self._keys.signing.algorithm == "ES256":
            token = low_s_token(token)
        return token

    async def decode_any_audience(self, token: str, *, now: datetime) -> dict[str, Any] | None:
        """The claims of a live token of ours for any audience (and with or without
        ``sid``), or None. For introspection and revocation, whose callers check
        audience and client themselves; never a guard. Async like the verifier
        kit's ``TokenVerifier.verify``, which can stand in for it."""
        if len(token) > _MAX_TOKEN_LENGTH or _COMPACT.fullmatch(token) is None:
            return None
        try:
            header = jwt.get_unverified_header(token)
            typ = header.get("typ")
            kid = header.get("kid")
            key = self._keys.by_kid.get(kid) if isinstance(kid, str) else None
            if key is None or not isinstance(typ, str) or typ.lower() != ACCESS_TOKEN_TYPE:
                return None
            if key.algorithm == "ES256" and not is_low_s(token.rsplit(".", 1)[1]):
                return None
            claims: dict[str, Any] = self._jwt.decode(
                token,
                key.public_key,
                algorithms=[key.algorithm],
                issuer=self._issuer,
                options={
                    "require": ["iss", "aud", "sub", "exp", "iat", "jti"],
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
            if now >= _timestamp(claims["exp"], "exp") + self._leeway:
                return None
        except Exception as exc:
            logger.debug("token refused for introspection: %s", type(exc).__name__)
            return None
        return claims

    def verify(self, token: str, *, now: datetime) -> AccessClaims:
        if len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidAccessToken(detail_for_log="token too long")
        # Before the cache: a cache hit must never be the only check a string passed.
        if _COMPACT.fullmatch(token) is None:
            raise InvalidAccessToken(detail_for_log="not a compact JWS in unpadded base64url")
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            claims, not_before = cached
            if now >= claims.expires_at + self._leeway:
                del self._verified[digest]
                raise InvalidAccessToken(detail_for_log="expired")
            # Time is re-checked on every hit, both ends: a clock that moved back
            # (or a token accepted only thanks to the leeway) is judged again.
            if not_before is not None and now + self._leeway < not_before:
                raise InvalidAccessToken(detail_for_log="not yet valid (nbf)")
            return claims
        try:
            claims, not_before = self._verify(token, now)
        except InvalidAccessToken:
            raise
        except Exception as exc:
            # One failure mode to the caller; the reason goes to the log only.
            raise InvalidAccessToken(detail_for_log=f"{type(exc).__name__}: {exc}") from None
        if self._cache_size:
            if len(self._verified) >= self._cache_size:
                # Oldest first (dicts keep insertion order): cheap, and bounded.
                del self._verified[next(iter(self._verified))]
            self._verified[digest] = (claims, not_before)
        return claims

    def _verify(self, token: str, now: datetime) -> tuple[AccessClaims, datetime | None]:
        header = jwt.get_unverified_header(token)
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in (ACCESS_TOKEN_TYPE, "application/at+jwt"):
            # Refuses provider ID tokens and any other JWT signed by someone else.
            raise InvalidAccessToken(detail_for_log=f"typ {str(typ)[:64]!r} is not at+jwt")
        kid = header.get("kid")
        key = self._keys.by_kid.get(kid) if isinstance(kid, str) else None
        if key is None:
            # Cut: the header is the caller's, and a log line is not theirs to fill.
            raise InvalidAccessToken(detail_for_log=f"unknown kid {str(kid)[:64]!r}")
        if key.algorithm == "ES256" and not is_low_s(token.rsplit(".", 1)[1]):
            raise InvalidAccessToken(detail_for_log="ES256 signature not in low-s form")
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
        # RFC 7519 §4.1.5: not accepted before nbf, with the same leeway as exp. We do
        # not issue nbf; a token that carries one was made by another issuer sharing
        # our key (a previous deployment, a migration tool) and means it.
        not_before = _timestamp(claims["nbf"], "nbf") if "nbf" in claims else None
        if not_before is not None and now + self._leeway < not_before:
            raise InvalidAccessToken(detail_for_log="not yet valid (nbf)")
        subject = claims["sub"]
        session_id = claims["sid"]
        if not isinstance(subject, str) or not isinstance(session_id, str):
            raise InvalidAccessToken(detail_for_log="sub or sid is not a string")
        access_claims = AccessClaims(
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
        return access_claims, not_before


def _audience(audiences: tuple[str, ...]) -> str | list[str]:
    # A single audience is a string, as most resource-server libraries expect.
    return audiences[0] if len(audiences) == 1 else list(audiences)


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def is_low_s(signature_segment: str) -> bool:
    """Whether an ES256 signature (base64url of r || s, RFC 7518 §3.4) has s <= n/2."""
    try:
        raw = _b64url_decode(signature_segment)
    except ValueError:
        return False
    if len(raw) != 64:
        return False
    return int.from_bytes(raw[32:], "big") <= P256_ORDER // 2


def low_s_token(token: str) -> str:
    """``token`` with its ES256 signature's s replaced by n - s when s > n/2.

    Both verify (ECDSA: (r, s) and (r, n - s) are each valid); low-s is the form we
    accept, as Bitcoin's BIP 62 and libsecp256k1 do. Costs a base64 round trip."""
    signing_input, segment = token.rsplit(".", 1)
    raw = _b64url_decode(segment)
    s = int.from_bytes(raw[32:], "big")
    if s <= P256_ORDER // 2:
        return token
    low = (P256_ORDER - s).to_bytes(32, "big")
    encoded = base64.urlsafe_b64encode(raw[:32] + low).rstrip(b"=").decode("ascii")
    return f"{signing_input}.{encoded}"


def _timestamp(value: object, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidAccessToken(detail_for_log=f"{name} is not a number")
    return datetime.fromtimestamp(value, tz=UTC)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
