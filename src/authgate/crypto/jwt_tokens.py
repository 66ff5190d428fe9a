"""Our access tokens: RS256/ES256/EdDSA JWTs with a ``kid`` header (RFC 9068 shape).

This module issues them. They are verified by ``authgate.resource.TokenVerifier``, the
same code other services import (``crypto/access_token_verifier.py`` builds the
server's own): one implementation of every check, the low-``s`` rule included.

Each token we issue has exactly one byte form that verifies: the compact form in
unpadded base64url, and ES256 signatures in low-``s`` form. ECDSA signatures are
malleable: ``(r, s)`` and ``(r, n - s)`` both verify, so without the rule a second,
different string would verify as the same token (a twin that escapes a deny list or
a replay cache keyed by the token's bytes). RS256 (PKCS#1 v1.5) and Ed25519 (RFC 8032
§5.1.7: S < L, checked by OpenSSL) have one valid signature per key and message
already.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import jwt

from authgate.crypto.keyring import KeyRing
from authgate.crypto.keys import KeySet
from authgate.domain.models import User

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type (RFC 9068 §2.1), not a secret
# Order of the P-256 group (SEC 2 §2.4.2; FIPS 186-4 D.1.2.3).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class JwtAccessTokens:
    """Issues our access tokens with the ring's current key, read on every call
    (a rotation takes effect at the ring's next refresh)."""

    def __init__(
        self,
        keys: KeyRing | KeySet,
        *,
        issuer: str,
        audiences: tuple[str, ...],
        ttl_seconds: int,
        default_client_id: str = "authgate",
    ) -> None:
        self._ring = keys if isinstance(keys, KeyRing) else KeyRing(keys, static=True)
        self._issuer = issuer
        self._audiences = audiences
        # RFC 9068 §2.2: every access token names its client; the seed routes and
        # /api/v1 act as this one (DEFAULT_CLIENT_ID).
        self._default_client_id = default_client_id
        self._ttl = ttl_seconds

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
        signing = self._ring.signing()
        token = jwt.encode(
            claims,
            signing.private_key,
            algorithm=signing.algorithm,
            headers={"kid": signing.kid, "typ": ACCESS_TOKEN_TYPE},
        )
        if signing.algorithm == "ES256":
            token = low_s_token(token)
        return token


def _audience(audiences: tuple[str, ...]) -> str | list[str]:
    # A single audience is a string, as most resource-server libraries expect.
    return audiences[0] if len(audiences) == 1 else list(audiences)


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


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
