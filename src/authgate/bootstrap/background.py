"""The work that runs between requests, as steps the entry point chooses how to run.

Opening :class:`~authgate.bootstrap.services.Services` starts nothing. A long-lived
process (the ASGI lifespan) runs :func:`background_jobs` as tasks with
:func:`running_in_background`; where nothing runs between invocations (AWS Lambda),
a scheduled event calls :func:`run_scheduled_tasks`, which does each step once:

* pruning: what has outlived its retention (at most about once an hour across
  instances: the pruning lease decides);
* mail: drain the outbox until it is empty;
* key ring: the database ring's scheduled step (rotate when due, retire expired
  previous keys), then reload it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from authgate.bootstrap.services import Services
    from authgate.services.pruning import PruneReport

logger = logging.getLogger("authgate")


@dataclass(frozen=True)
class BackgroundJob:
    """A coroutine that runs until stopped. ``stop`` asks it to finish what it has
    in hand (then it is awaited up to ``stop_timeout_seconds``); without ``stop``
    the task is cancelled."""

    name: str
    run: Callable[[], Coroutine[Any, Any, None]]
    stop: Callable[[], None] | None = None
    stop_timeout_seconds: float = 0.0


def background_jobs(services: Services) -> tuple[BackgroundJob, ...]:
    """The server's periodic work: pruning about once an hour, the mail drainer
    (woken after each commit that queued mail, polling otherwise), and the database
    ring's refresher (every KEY_RING_REFRESH_SECONDS; none for a static ring)."""
    from authgate.services.pruning import PeriodicPruning

    if services.settings.on_lambda:
        # Nothing runs between invocations on AWS Lambda (the container is frozen):
        # the scheduled tasks handler (authgate.aws.tasks) prunes, sends the mail and
        # rotates keys; the HTTP handler re-reads a stale ring before a request.
        return ()
    delivery = services.mail.delivery
    # Stopped in reverse: the key ring and pruning are cancelled first, then the
    # mail drainer finishes what it has in hand.
    jobs = [
        BackgroundJob(
            "authgate-mail",
            delivery.run,
            # The mail in hand finishes (an SMTP timeout at most); what is left stays
            # queued for the next start or another instance.
            stop=delivery.stop,
            stop_timeout_seconds=services.settings.smtp_timeout_seconds + 5,
        ),
        BackgroundJob("authgate-periodic-pruning", PeriodicPruning(services.pruning).run_forever),
    ]
    refresher = services.key_ring_refresher
    if refresher is not None:
        jobs.append(BackgroundJob("authgate-key-ring", refresher.run_forever))
    return tuple(jobs)


@asynccontextmanager
async def running_in_background(jobs: Sequence[BackgroundJob]) -> AsyncIterator[None]:
    """Run ``jobs`` as tasks for the duration of the block; stop them (last started
    first) when it ends."""
    tasks = [(job, asyncio.create_task(job.run(), name=job.name)) for job in jobs]
    # One turn of the loop, so every job has started before it can be asked to stop:
    # a stop requested before a job's first step would be lost to its start-up
    # (MailDelivery.run clears its stop flag), and the block's end would then wait
    # the whole stop timeout.
    await asyncio.sleep(0)
    try:
        yield
    finally:
        for job, task in reversed(tasks):
            if job.stop is None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                continue
            job.stop()
            try:
                await asyncio.wait_for(task, timeout=job.stop_timeout_seconds)
            except TimeoutError:
                logger.warning("%s did not stop in time", job.name)


@dataclass(frozen=True)
class ScheduledReport:
    """What one :func:`run_scheduled_tasks` did. ``pruned`` is None when another
    instance pruned recently (or pruning failed); ``key_ring_refreshed`` is None for
    a static ring. ``failed`` names the steps that failed (each is logged)."""

    pruned: PruneReport | None
    mails_processed: int
    key_ring_refreshed: bool | None
    failed: tuple[str, ...] = ()


async def run_scheduled_tasks(services: Services) -> ScheduledReport:
    """Each periodic step once, now. A failing step is logged and the others still
    run, as they would in a long-lived process."""
    from authgate.services.mail_delivery import BATCH
    from authgate.services.pruning import PeriodicPruning

    failed: list[str] = []
    pruned = await PeriodicPruning(services.pruning).run_once()
    mails = 0
    try:
        while (leased := await services.mail.delivery.drain_once()) > 0:
            mails += leased
            if leased < BATCH:
                break
    except Exception:
        logger.exception("mail drain failed; the rows stay queued for the next run")
        failed.append("mail")
    refreshed: bool | None = None
    refresher = services.key_ring_refresher
    if refresher is not None:
        refreshed = await refresher.run_once()
        if not refreshed:
            failed.append("key_ring")
    return ScheduledReport(
        pruned=pruned, mails_processed=mails, key_ring_refreshed=refreshed, failed=tuple(failed)
    )
