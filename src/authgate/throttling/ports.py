"""The throttle port: counters per (name, key) in fixed windows.

Kept small so the policy (``AuthThrottles``) can be tested against any store and a
fake can stand in for it in service tests."""

from __future__ import annotations

from typing import Protocol

from authgate.throttling.rate import Decision, RateLimit


class ThrottleStoreUnavailable(Exception):
    """The counter store (e.g. Redis) could not be read or written.

    Not an ``AuthError``: whether an unreadable counter refuses or lets the request
    through is a policy decision, taken in ``AuthThrottles``."""


class Throttle(Protocol):
    async def hit(self, name: str, key: str, limit: RateLimit) -> Decision:
        """Count one event for ``key`` and say whether it was within ``limit``."""
        ...

    async def reset(self, name: str, key: str, limit: RateLimit) -> None:
        """Forget the events counted for ``key`` in the current window."""
        ...

    async def close(self) -> None: ...
