"""authgate verifies its own access tokens with the verifier kit other services use.

One implementation of every check (``authgate.resource.TokenVerifier``): the server's
guard (``/secure``, ``/api/v1/me``, the account and session routes) and a service that
imports ``authgate.resource`` accept and refuse exactly the same tokens. The server's
keys are handed over in memory (``KeyLookup``), never fetched over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable

from authgate.clock import Clock
from authgate.resource import KeyLookup, TokenVerifier, TrustedKey

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
