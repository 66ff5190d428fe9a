"""What a verification can end in, besides claims.

::

    ResourceError
    ├── InvalidToken          the token is not one we accept: 401 invalid_token
    │   └── InsufficientScope the token is fine but lacks a scope: 403 insufficient_scope
    └── VerifierUnavailable   keys or introspection cannot be reached: 503

``InvalidToken.reason`` says which check failed. It is for your logs only: answering it
to the caller would tell a forger which check stopped them (one failure mode).
"""

from __future__ import annotations


class ResourceError(Exception):
    """Base class of every error raised by :mod:`authgate.resource`."""


class InvalidToken(ResourceError):
    """The token is refused. Answer 401 ``invalid_token``; log ``reason``, never show it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InsufficientScope(InvalidToken):
    """A valid token without a scope the route requires (RFC 6750 §3.1): answer 403."""

    def __init__(self, required: frozenset[str], granted: frozenset[str]) -> None:
        missing = sorted(required - granted)
        super().__init__(f"missing scope(s) {missing}")
        self.required = required
        self.granted = granted


class VerifierUnavailable(ResourceError):
    """No key for the token could be fetched, or the introspection endpoint failed.

    Not the token's fault: answer 503 so clients retry instead of signing in again.
    """
