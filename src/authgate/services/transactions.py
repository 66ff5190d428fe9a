"""Run a use case's transaction again when the database rolled it back over a conflict.

On a multi-master engine (Galera) two nodes each commit locally and certification
then aborts one of them: the loser sees a deadlock error (1213) at COMMIT or on its
next statement, though it did nothing wrong. On a single MariaDB a deadlock does
the same. The unit of work reports both as
:class:`~authgate.errors.TransactionConflict`, with nothing committed; running the
*whole* unit of work again (reads included) lets the loser see the winner's rows:
a refresh that lost the rotation race gets the same successor, a sign-up that lost
the email race gets 409. Bounded, with jitter so the retries do not collide again;
the last conflict surfaces as the 503 it always was.

Only wrap work whose every side effect is inside the transaction (or is idempotent):
it may run up to ``attempts`` times.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from authgate.errors import TransactionConflict

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_ATTEMPTS = 3
# A conflict resolves in the time the winner takes to commit and replicate
# (a millisecond or two on a LAN cluster): a few ms of random delay spreads the
# retries of many losers without holding a request noticeably longer.
DEFAULT_BASE_DELAY_SECONDS = 0.005


@dataclass(frozen=True)
class ConflictRetry:
    """How often, and how far apart, a conflicted transaction runs again."""

    attempts: int = DEFAULT_ATTEMPTS
    base_delay_seconds: float = DEFAULT_BASE_DELAY_SECONDS
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # Jitter source in [0, 1); injected so tests are deterministic.
    jitter: Callable[[], float] = field(default=random.random)  # jitter, not a secret

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    async def run(self, work: Callable[[], Awaitable[T]], *, name: str) -> T:
        """``await work()``; on a conflict run it again, up to ``attempts`` times in all."""
        for attempt in range(1, self.attempts + 1):
            try:
                return await work()
            except TransactionConflict as conflict:
                if attempt == self.attempts:
                    logger.warning(
                        "%s: transaction conflict, giving up after %d attempts: %s",
                        name,
                        attempt,
                        conflict.detail_for_log,
                    )
                    raise
                logger.info(
                    "%s: transaction conflict on attempt %d, retrying: %s",
                    name,
                    attempt,
                    conflict.detail_for_log,
                )
                # Exponential with full jitter: 0..base, 0..2*base, ...
                await self.sleep(self.base_delay_seconds * (2 ** (attempt - 1)) * self.jitter())
        raise AssertionError("unreachable")  # pragma: no cover


NO_RETRY = ConflictRetry(attempts=1)
