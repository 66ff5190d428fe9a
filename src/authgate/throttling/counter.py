"""Fixed-window counters on a ``limits`` async storage, timed by the injected clock.

The ``limits`` strategies read ``time.time()`` themselves, so only its storage is
used here (an atomic ``incr`` with expiry, shared between processes when it is
Redis); the window arithmetic is done from ``Clock`` so tests can move time.

Fixed windows can let up to twice the amount through around a window boundary
(the end of one window, then the start of the next). That is accepted for its
cost: one key and one round trip per check.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Awaitable, Callable
from typing import Protocol

from limits.errors import StorageError

from authgate.clock import Clock
from authgate.throttling.ports import ThrottleStoreUnavailable
from authgate.throttling.rate import Decision, RateLimit

# Names are chosen in code ("ip-auth", "account-failures"); a strict shape keeps
# them from colliding with the ":"-separated key layout.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")

# An HMAC key shorter than this would make counter keys guessable offline.
_MIN_HMAC_KEY_BYTES = 32

# Key TTL is two windows, not one: several servers' clocks differ a little, and a
# window's key must live until the slowest of them has moved past that window.
_EXPIRY_WINDOWS = 2


class CounterStore(Protocol):
    """What the throttle needs of a store: ``limits``' async storages fit, and so does
    :class:`authgate.throttling.memory_store.MemoryCounterStore`."""

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...

    async def clear(self, key: str) -> None: ...


class CounterThrottle:
    def __init__(
        self,
        storage: CounterStore,
        *,
        clock: Clock,
        hmac_key: bytes,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if len(hmac_key) < _MIN_HMAC_KEY_BYTES:
            raise ValueError("the throttle HMAC key must be at least 32 bytes")
        self._storage = storage
        self._clock = clock
        self._hmac_key = hmac_key
        self._close = close

    async def hit(self, name: str, key: str, limit: RateLimit) -> Decision:
        storage_key, now = self._window_key(name, key, limit)
        try:
            count = await self._storage.incr(
                storage_key, expiry=limit.window_seconds * _EXPIRY_WINDOWS
            )
        except StorageError as exc:
            raise ThrottleStoreUnavailable(str(exc)) from exc
        return _decide(count, limit, now, allowed=count <= limit.amount)

    async def reset(self, name: str, key: str, limit: RateLimit) -> None:
        storage_key, _ = self._window_key(name, key, limit)
        try:
            await self._storage.clear(storage_key)
        except StorageError as exc:
            raise ThrottleStoreUnavailable(str(exc)) from exc

    async def close(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            await close()

    def _window_key(self, name: str, key: str, limit: RateLimit) -> tuple[str, float]:
        if not _NAME.fullmatch(name):
            raise ValueError(f"throttle name {name!r} must match {_NAME.pattern}")
        now = self._clock.now().timestamp()
        window = math.floor(now / limit.window_seconds)
        # An HMAC under the server secret's throttle key: keys are emails and
        # addresses of any length, and the store (a shared Redis) should neither
        # reveal them nor hold unbounded keys. A plain hash would reveal them to a
        # dictionary (there are few IPv4 addresses, and emails are guessable); every
        # instance shares the secret, so they still count on the same keys. 128 bits
        # of HMAC-SHA256 is far beyond any accidental collision.
        digest = hmac.new(self._hmac_key, key.encode(), hashlib.sha256).hexdigest()[:32]
        # The window length is part of the key so a changed limit never reads a
        # counter whose window index meant something else.
        return f"{name}:{digest}:{limit.window_seconds}:{window}", now


def _decide(count: int, limit: RateLimit, now: float, *, allowed: bool) -> Decision:
    remaining = max(0, limit.amount - count)
    if allowed:
        return Decision(allowed=True, remaining=remaining, retry_after_seconds=0, count=count)
    window_end = (math.floor(now / limit.window_seconds) + 1) * limit.window_seconds
    retry_after = max(1, math.ceil(window_end - now))
    return Decision(
        allowed=False, remaining=remaining, retry_after_seconds=retry_after, count=count
    )
