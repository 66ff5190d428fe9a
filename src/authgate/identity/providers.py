"""Provider presets and the factory that turns configurations into verifiers.

Settings are read elsewhere; everything here takes plain values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import httpx

from authgate.clock import Clock
from authgate.domain.observations import NO_OBSERVER, Observer
from authgate.identity.jwks import JwksCache, require_secure_url
from authgate.identity.oidc import (
    SUPPORTED_ALGORITHMS,
    EmailTrust,
    OidcProviderConfig,
    OidcVerifier,
)

# Google documents both spellings of its issuer
# (https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken).
GOOGLE_ISSUERS: Final = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_JWKS_URL: Final = "https://www.googleapis.com/oauth2/v3/certs"
APPLE_ISSUER: Final = "https://appleid.apple.com"
APPLE_JWKS_URL: Final = "https://appleid.apple.com/auth/keys"


def _audiences(audiences: str | Iterable[str]) -> tuple[str, ...]:
    # A bare string is one client id, not an iterable of one-letter audiences.
    if isinstance(audiences, str):
        return (audiences,)
    return tuple(audiences)


def google_config(
    audiences: str | Iterable[str],
    jwks_url: str = GOOGLE_JWKS_URL,
    *,
    require_nonce: bool = False,
) -> OidcProviderConfig:
    """Google: ``audiences`` are the OAuth client ids (web, iOS, Android) we accept.

    Google vouches for Gmail addresses and Workspace accounts' only. The nonce is
    optional by default because the seed apps never sent one (``GOOGLE_REQUIRE_NONCE``).
    """
    return OidcProviderConfig(
        name="google",
        issuers=GOOGLE_ISSUERS,
        audiences=_audiences(audiences),
        # Google signs ID tokens with RS256 only; allowing more would only widen attacks.
        algorithms=("RS256",),
        jwks_url=jwks_url,
        email_trust=EmailTrust.GOOGLE,
        require_nonce=require_nonce,
    )


def apple_config(
    audiences: str | Iterable[str],
    jwks_url: str = APPLE_JWKS_URL,
    *,
    require_nonce: bool = False,
) -> OidcProviderConfig:
    """Apple: ``audiences`` are the app bundle ids and/or Services IDs we accept.

    Apple vouches for the addresses it verifies, private relay addresses included. The
    nonce is optional by default for the seed apps' sake (``APPLE_REQUIRE_NONCE``).
    """
    return OidcProviderConfig(
        name="apple",
        issuers=(APPLE_ISSUER,),
        audiences=_audiences(audiences),
        algorithms=("RS256",),
        jwks_url=jwks_url,
        email_trust=EmailTrust.VERIFIED,
        require_nonce=require_nonce,
    )


def generic_config(
    name: str,
    issuer: str,
    jwks_url: str,
    audiences: str | Iterable[str],
    algorithms: Iterable[str] = ("RS256",),
    *,
    trust_email: bool = False,
    require_nonce: bool = True,
) -> OidcProviderConfig:
    """Any other OpenID Connect provider, with its issuer pinned exactly.

    It vouches for no address unless ``trust_email`` (then for every address it marks
    verified: only for a provider that is the authority for its users' addresses, such
    as a company's own identity provider), and its tokens need a nonce unless
    ``require_nonce`` is False.

    Raises ValueError for a bad name (lowercase ``[a-z0-9_-]``, not ``credentials``), an
    algorithm outside the asymmetric allowlist, or a non-https issuer or JWKS URL.
    """
    algorithm_tuple = tuple(algorithms)
    unsupported = sorted(set(algorithm_tuple) - SUPPORTED_ALGORITHMS)
    if unsupported:
        raise ValueError(
            f"unsupported algorithms {unsupported}; allowed: {sorted(SUPPORTED_ALGORITHMS)}"
        )
    # OpenID Connect Discovery §3: an issuer is an https URL; it is compared byte for
    # byte, so it is not normalised here either.
    require_secure_url(issuer, what="issuer")
    return OidcProviderConfig(
        name=name,
        issuers=(issuer,),
        audiences=_audiences(audiences),
        algorithms=algorithm_tuple,
        jwks_url=jwks_url,
        email_trust=EmailTrust.VERIFIED if trust_email else EmailTrust.NONE,
        require_nonce=require_nonce,
    )


def build_verifiers(
    configs: Iterable[OidcProviderConfig],
    *,
    http: httpx.AsyncClient,
    clock: Clock,
    refetch_cooldown_seconds: float = 60.0,
    clock_skew_seconds: float = 60.0,
    jwks_timeout_seconds: float = 5.0,
    jwks_min_ttl_seconds: float = 60.0,
    jwks_max_ttl_seconds: float = 24 * 3600.0,
    jwks_default_ttl_seconds: float = 3600.0,
    observer: Observer = NO_OBSERVER,
) -> dict[str, OidcVerifier]:
    """One verifier per provider, keyed by name; each has its own key cache.

    Separate caches matter: a key published by one provider must never verify another
    provider's tokens, even if both sets were served from the same URL.
    """
    verifiers: dict[str, OidcVerifier] = {}
    for config in configs:
        if config.name in verifiers:
            raise ValueError(f"provider {config.name!r} is configured twice")
        keys = JwksCache(
            config.jwks_url,
            http=http,
            clock=clock,
            timeout_seconds=jwks_timeout_seconds,
            min_ttl_seconds=jwks_min_ttl_seconds,
            max_ttl_seconds=jwks_max_ttl_seconds,
            default_ttl_seconds=jwks_default_ttl_seconds,
            refetch_cooldown_seconds=refetch_cooldown_seconds,
            label=config.name,
            observer=observer,
        )
        verifiers[config.name] = OidcVerifier(
            config, keys=keys, clock=clock, clock_skew_seconds=clock_skew_seconds
        )
    return verifiers
