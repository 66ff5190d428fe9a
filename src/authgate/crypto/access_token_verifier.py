"""authgate verifies its own access tokens with the verifier kit other services use.

One implementation of every check (``authgate.resource.TokenVerifier``): the server's
guard (``/secure``, ``/api/v1/me``, the account and session routes) and a service that
imports ``authgate.resource`` accept and refuse exactly the same tokens. The server's
keys are handed over in memory (``KeyLookup``), never fetched over HTTP.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from authgate.clock import Clock
from authgate.resource import (
    InvalidToken,
    KeyLookup,
    TokenVerifier,
    TrustedKey,
    VerifierUnavailable,
)

# A function kid -> the keys held under it. It is called on every request: return the
# same TrustedKey objects each time (the verifier's cache compares them by identity).
TrustedKeysByKid = Callable[[str], tuple[TrustedKey, ...]]


def access_token_verifier(
    trusted_keys: TrustedKeysByKid,
    *,
    issuer: str,
    audiences: tuple[str, ...],
    clock: Clock,
    leeway_seconds: float = 0.0,
    cache_size: int = 4096,
) -> TokenVerifier:
    """The verifier of user access tokens: ``sid`` required, so a service token
    (client_credentials, no session) never passes as a user."""

    def now() -> float:
        # The injected clock, so tests that move time move the guard's time too.
        return clock.now().timestamp()

    return TokenVerifier(
        KeyLookup(trusted_keys),
        issuer=issuer,
        audience=audiences,
        leeway_seconds=leeway_seconds,
        require_session=True,
        cache_size=cache_size,
        now=now,
    )


class AnyAudienceDecoder:
    """Our live access tokens for *any* audience, user or service: what introspection
    and revocation need, whose callers then judge audience and client themselves.
    Never a guard.

    The kit checks everything (shape, ``typ``, key, signature, issuer, time) through
    the same code as the guard. Its audience check wants the accepted names up front;
    here the token's own ``aud`` is passed, read from the payload before verifying:
    it is only believed once the signature over it has verified.
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def decode_any_audience(self, token: str, *, now: datetime) -> dict[str, Any] | None:
        # ``now``: the verifier reads the same injected clock.
        audiences = _unverified_audiences(token)
        if not audiences:
            return None
        try:
            claims = await self._verifier.verify(token, audience=audiences)
        except (InvalidToken, VerifierUnavailable):
            return None
        return dict(claims.raw)


def any_audience_decoder(
    trusted_keys: TrustedKeysByKid,
    *,
    issuer: str,
    clock: Clock,
    leeway_seconds: float = 0.0,
) -> AnyAudienceDecoder:
    def now() -> float:
        return clock.now().timestamp()

    return AnyAudienceDecoder(
        TokenVerifier(
            KeyLookup(trusted_keys),
            issuer=issuer,
            # Replaced on every call by the token's own audience (see the class).
            audience="-",
            leeway_seconds=leeway_seconds,
            require_session=False,
            now=now,
        )
    )


def _unverified_audiences(token: str) -> tuple[str, ...]:
    parts = token.split(".") if isinstance(token, str) and len(token) <= 8192 else ()
    if len(parts) != 3:
        return ()
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return ()
    aud = payload.get("aud") if isinstance(payload, dict) else None
    names = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return tuple(name for name in names if isinstance(name, str) and name)
