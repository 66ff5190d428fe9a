"""Verification of OpenID Connect ID tokens (Google, Apple, generic providers)."""

from authgate.identity.jwks import JwksCache, SigningKey
from authgate.identity.oidc import EmailTrust, OidcProviderConfig, OidcVerifier
from authgate.identity.providers import (
    apple_config,
    build_verifiers,
    generic_config,
    google_config,
)

__all__ = [
    "EmailTrust",
    "JwksCache",
    "OidcProviderConfig",
    "OidcVerifier",
    "SigningKey",
    "apple_config",
    "build_verifiers",
    "generic_config",
    "google_config",
]
