"""What a verified provider ID token tells us, and the port that produces it.

Nothing here does I/O: adapters live in :mod:`authgate.identity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """The claims of an ID token that passed every check.

    ``(provider, subject)`` is the stable key of an external identity (OpenID Connect
    Core §5.7: ``sub`` is the only claim guaranteed not to be reassigned); the email
    may change at the provider and must never be used as the identity key.
    """

    provider: str
    subject: str
    email: str | None
    # False whenever ``email`` is None: a "verified" flag without an address means nothing.
    email_verified: bool
    # Apple's relay addresses (…@privaterelay.appleid.com); False for other providers.
    is_private_email: bool
    given_name: str | None
    family_name: str | None
    # The provider vouches that whoever holds this identity owns ``email``: verified,
    # AND an address the provider is an authority for (its own rule, see
    # ``authgate.identity.oidc.EmailTrust``). Only a trusted address links to an
    # existing account or claims the unique email key; an untrusted one is kept as
    # an attribute. Always False when ``email_verified`` is.
    email_trusted: bool
    # SHA-256 hex of the token's ``header.payload`` (not the whole string: a
    # re-encoded signature must not make a "new" token): records that it started
    # a session, so a captured token cannot start another.
    token_hash: str
    # When the verifier stops accepting this token anyway (``exp`` + clock skew):
    # how long its use must be remembered.
    token_expires_at: datetime


class IdTokenVerifier(Protocol):
    """Verifies one provider's OpenID Connect ID tokens."""

    name: str

    async def verify(self, token: str, *, nonce: str | None) -> VerifiedIdentity:
        """Return the identity, or raise :class:`authgate.errors.InvalidIdToken` for any
        refused token and :class:`authgate.errors.ProviderUnavailable` when the provider's
        signing keys cannot be obtained."""
        ...
