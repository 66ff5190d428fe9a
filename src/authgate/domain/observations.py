"""What the services report to an operator: the ``Observer`` port and its outcomes.

Services and adapters emit counts through this small protocol; the Prometheus
adapter (``authgate.metrics``) is wired in by the composition root, and everything
else (the CLI, tests, a server without ``METRICS_PORT``) gets :data:`NO_OBSERVER`.
No method takes an email, a token or a raw path: an observer only ever sees
values from the fixed sets below, so a metric label cannot leak a secret or grow
without bound.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class SignInOutcome(StrEnum):
    OK = "ok"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - an outcome name, not a password
    UNKNOWN_EMAIL = "unknown_email"
    NO_PASSWORD = "no_password"  # noqa: S105 - a provider-only account
    LOCKED = "locked"
    THROTTLED = "throttled"
    DISABLED = "disabled"
    UNVERIFIED = "unverified"
    INVALID = "invalid"  # refused before any lookup (a password over the maximum length)
    ERROR = "error"  # the database or the hashing queue was unavailable


class RefreshOutcome(StrEnum):
    ROTATED = "rotated"
    RETRIED = "retried"  # a retry within the leeway: the same successor again
    REUSED = "reused"  # reuse detected: the family was revoked
    THROTTLED = "throttled"
    INVALID = "invalid"  # unknown, expired, revoked or another client's token
    ERROR = "error"


class Observer(Protocol):
    """Counts for an operator. Every method is cheap and never raises."""

    def sign_in(self, outcome: SignInOutcome) -> None: ...

    def refresh(self, outcome: RefreshOutcome) -> None: ...

    def hashing_pending(self, depth: int) -> None:
        """The password-hashing queue of this process now holds ``depth`` jobs."""
        ...

    def jwks_fetch(self, provider: str, *, ok: bool) -> None:
        """One fetch of a configured provider's JWKS (``provider`` is its configured name)."""
        ...


class NullObserver:
    """The default: observes nothing."""

    def sign_in(self, outcome: SignInOutcome) -> None:
        pass

    def refresh(self, outcome: RefreshOutcome) -> None:
        pass

    def hashing_pending(self, depth: int) -> None:
        pass

    def jwks_fetch(self, provider: str, *, ok: bool) -> None:
        pass


NO_OBSERVER: Observer = NullObserver()
