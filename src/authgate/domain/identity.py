"""What a verified provider ID token tells us, and the port that produces it.

Nothing here does I/O: adapters live in :mod:`authgate.identity`.
"""

from __future__ import annotations

from dataclasses import dataclass
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


class IdTokenVerifier(Protocol):
    """Verifies one provider's OpenID Connect ID tokens."""

    name: str

    async def verify(self, token: str, *, nonce: str | None) -> VerifiedIdentity:
        """Return the identity, or raise :class:`authgate.errors.InvalidIdToken` for any
        refused token and :class:`authgate.errors.ProviderUnavailable` when the provider's
        signing keys cannot be obtained."""
        ...
