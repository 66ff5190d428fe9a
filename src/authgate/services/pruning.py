"""Pruning: tables must not grow without bound.

Deletes, after their retention: sessions that ended (revoked, past their absolute
lifetime, or idle-expired) with their tokens; rotated tokens that expired, from
live sessions too; ID-token replay records past their ``exp``; one-time tokens
past their expiry; mail sent (or given up on) long enough ago; audit events.
Clears sealed successors whose reuse leeway has passed. Each step runs in bounded
batches, one short transaction each, so a large backlog never holds locks long.

``PruningService.run`` is what ``authgate prune`` calls; ``PeriodicPruning`` runs
``run_if_due`` about once an hour in each server process, and the
``maintenance_runs`` marker makes it a no-op when another instance pruned recently.
Imports no web framework and no database driver; the clock is injected.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from authgate.clock import Clock
from authgate.domain.ports import PruningRepository, UnitOfWorkFactory
from authgate.errors import Unavailable

logger = logging.getLogger(__name__)

TASK = "prune"
DEFAULT_BATCH_SIZE = 500
# Each server process prunes about once an hour, each at its own moment.
PRUNE_INTERVAL_SECONDS = 3600
PRUNE_JITTER_SECONDS = 600
# A process that wakes within this long of another's run leaves it at that.
RECENT_RUN_SECONDS = 3000
# The first run waits a little after start-up, so a fleet restarting together
# does not prune together, and a process that lives a minute never prunes.
FIRST_RUN_DELAY_SECONDS = 120
# Unsent mail older than this was given up on: the drainer's whole retry schedule
# (backoff capped at an hour, MAIL_MAX_ATTEMPTS tries) fits well inside it.
ABANDONED_MAIL_AGE = timedelta(days=2)


@dataclass(frozen=True)
class RetentionPolicy:
    session_retention_days: int
    audit_retention_days: int
    reuse_leeway_seconds: int
    batch_size: int = DEFAULT_BATCH_SIZE

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")


@dataclass(frozen=True)
class PruneReport:
    """Rows deleted (or, for sealed copies, cleared) by one run."""

    sessions: int = 0
    refresh_tokens: int = 0
    sealed_copies: int = 0
    id_token_uses: int = 0
    one_time_tokens: int = 0
    mail: int = 0
    audit_events: int = 0

    def lines(self) -> list[str]:
        return [
            f"{field.name.replace('_', ' ')}: {getattr(self, field.name)}" for field in fields(self)
        ]


class PruningService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, policy: RetentionPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy

    async def run(self) -> PruneReport:
        """Prune now (and record the run, so periodic runs elsewhere skip)."""
        now = self._clock.now()
        await self._claim(now, last_run_before=now)
        return await self._prune(now)

    async def run_if_due(self, *, recent_seconds: int = RECENT_RUN_SECONDS) -> PruneReport | None:
        """Prune unless some instance did within ``recent_seconds``; None if skipped."""
        now = self._clock.now()
        if not await self._claim(now, last_run_before=now - timedelta(seconds=recent_seconds)):
            return None
        return await self._prune(now)

    async def _claim(self, now: datetime, *, last_run_before: datetime) -> bool:
        # Committed on its own, before the work, so other instances see it at once.
        async with self._uow() as uow:
            return await uow.pruning.claim_run(TASK, now=now, last_run_before=last_run_before)

    async def _prune(self, now: datetime) -> PruneReport:
        policy = self._policy
        ended_before = now - timedelta(days=policy.session_retention_days)
        sessions = tokens = 0
        while True:
            async with self._uow() as uow:
                batch = await uow.pruning.delete_ended_sessions(
                    ended_before=ended_before, limit=policy.batch_size
                )
            sessions, tokens = sessions + batch[0], tokens + batch[1]
            if batch[0] == 0:
                break
        tokens += await self._batches(
            lambda repo, limit: repo.delete_rotated_tokens(expired_before=ended_before, limit=limit)
        )
        leeway_ended = now - timedelta(seconds=policy.reuse_leeway_seconds)
        sealed = await self._batches(
            lambda repo, limit: repo.clear_sealed_copies(issued_before=leeway_ended, limit=limit)
        )
        id_tokens = await self._batches(
            lambda repo, limit: repo.delete_expired_id_token_uses(expired_before=now, limit=limit)
        )
        one_time = await self._batches(
            lambda repo, limit: repo.delete_expired_one_time_tokens(expired_before=now, limit=limit)
        )
        abandoned_before = min(ended_before, now - ABANDONED_MAIL_AGE)
        mail = await self._batches(
            lambda repo, limit: repo.delete_finished_mail(
                sent_before=ended_before, abandoned_before=abandoned_before, limit=limit
            )
        )
        audit_before = now - timedelta(days=policy.audit_retention_days)
        audit = await self._batches(
            lambda repo, limit: repo.delete_audit_events(occurred_before=audit_before, limit=limit)
        )
        return PruneReport(
            sessions=sessions,
            refresh_tokens=tokens,
            sealed_copies=sealed,
            id_token_uses=id_tokens,
            one_time_tokens=one_time,
            mail=mail,
            audit_events=audit,
        )

    async def _batches(self, step: Callable[[PruningRepository, int], Awaitable[int]]) -> int:
        """Run ``step`` in one transaction per batch until a batch finds nothing."""
        total = 0
        while True:
            async with self._uow() as uow:
                done = await step(uow.pruning, self._policy.batch_size)
            total += done
            if done == 0:
                return total


class PeriodicPruning:
    """Runs ``run_if_due`` about once an hour, forever; a failure is logged, never
    raised, so neither a database outage nor a bug here can stop the server."""

    def __init__(
        self,
        service: PruningService,
        *,
        interval_seconds: float = PRUNE_INTERVAL_SECONDS,
        jitter_seconds: float = PRUNE_JITTER_SECONDS,
        first_delay_seconds: float = FIRST_RUN_DELAY_SECONDS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._service = service
        self._interval = interval_seconds
        self._jitter_seconds = jitter_seconds
        self._first_delay = first_delay_seconds
        self._sleep = sleep
        self._jitter = jitter

    async def run_forever(self) -> None:
        delay = self._first_delay
        while True:
            # Jitter spreads instances that started together over the interval.
            await self._sleep(delay + self._jitter() * self._jitter_seconds)
            await self.run_once()
            delay = self._interval

    async def run_once(self) -> PruneReport | None:
        try:
            report = await self._service.run_if_due()
        except Unavailable as exc:
            # The database is away: one line, and the next run is only an hour off.
            logger.error(
                "periodic pruning failed; retrying in about an hour: %s",
                exc.detail_for_log or exc.message,
            )
            return None
        except Exception:
            # Anything else is a bug: its traceback, but the server carries on.
            logger.exception("periodic pruning failed; retrying in about an hour")
            return None
        if report is None:
            logger.debug("periodic pruning skipped: another instance ran it recently")
        else:
            logger.info("pruned: %s", ", ".join(report.lines()))
        return report
