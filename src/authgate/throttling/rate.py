"""Rate limits as values: ``RateLimit`` (how many per how long) and ``Decision``
(what one counted request was told)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import limits

# limits.parse accepts a list ("1/second;5/minute") and silently keeps the first
# item, and reads "5/0 minutes" as "5/minute": both would put a limit in force that
# is not the one configured, so those shapes are refused before it sees them.
_LIST_SEPARATORS = re.compile(r"[,;|]")
_ZERO_MULTIPLE = re.compile(r"(?:/|per)\s*0+\s*[a-z]", re.IGNORECASE)
_EXAMPLES = "'100/minute' or '10/15 minutes'"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``amount`` events per fixed window of ``window_seconds``."""

    amount: int
    window_seconds: int

    def __post_init__(self) -> None:
        if self.amount < 1:
            raise ValueError(f"a rate limit must allow at least 1 event, got {self.amount}")
        if self.window_seconds < 1:
            raise ValueError(
                f"a rate limit window must be at least 1 second, got {self.window_seconds}"
            )

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """Parse ``"<amount>/<period>"``, e.g. ``"100/minute"`` or ``"10/15 minutes"``."""
        if _LIST_SEPARATORS.search(text):
            raise ValueError(f"{text!r} lists several rate limits; give one, e.g. {_EXAMPLES}")
        if _ZERO_MULTIPLE.search(text):
            raise ValueError(f"{text!r} has a zero-length window; give e.g. {_EXAMPLES}")
        try:
            item = limits.parse(text)
        except ValueError as exc:
            raise ValueError(
                f"{text!r} is not a rate limit ({exc}); expected e.g. {_EXAMPLES}"
            ) from None
        if item.amount < 1:
            raise ValueError(f"{text!r} allows no requests at all; the amount must be at least 1")
        return cls(amount=item.amount, window_seconds=item.get_expiry())

    def __str__(self) -> str:
        return f"{self.amount}/{self.window_seconds} seconds"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one key under one limit.

    ``retry_after_seconds`` is 0 when allowed, else the whole seconds (at least 1)
    until the current window ends and the count starts again."""

    allowed: bool
    remaining: int
    retry_after_seconds: int
    # Events counted in the window, this one included for a hit (0 when unknown).
    count: int = 0
