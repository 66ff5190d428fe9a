"""The scheduled work, as one Lambda function: ``authgate.aws.tasks.handler``.

A long-running ``authgate serve`` does this in the background; a Lambda container is
frozen between requests, so an EventBridge schedule (deploy/aws/template.yaml: every
minute) invokes this function instead. Each invocation, in order:

1. ``keys``: the database key ring's scheduled step (rotate when KEY_ROTATION_DAYS
   says so, retire previous keys whose tokens have expired); nothing for a static ring;
2. ``mail``: the outbox drained (verification, reset and notice mail reaches users
   within one schedule period of the request that queued it);
3. ``prune``: sessions, tokens and audit events past their retention deleted (at
   most once an hour, like the server: the run is claimed in the database).

One task failing is logged and reported; the others still run. The answer is a small
JSON summary. ``{"task": "migrate"}`` as the event applies pending migrations instead
(the deploy step, from inside the VPC that reaches the database).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from authgate.clock import Clock, SystemClock
from authgate.config import Settings, load_settings
from authgate.services.mail_delivery import BATCH, MailDelivery
from authgate.services.pruning import PruningService
from authgate.services.signing_keys import SigningKeyService

logger = logging.getLogger(__name__)

# Mail batches per invocation: bounded so one run ends well inside the function's
# timeout (a batch is at most BATCH sends); what is left waits for the next run.
MAX_MAIL_BATCHES = 10


@dataclass(frozen=True)
class ScheduledTasks:
    """The services the schedule runs, and what to close after."""

    keys: SigningKeyService | None  # None: a static ring, nothing to rotate
    mail: MailDelivery
    pruning: PruningService
    close: Callable[[], Awaitable[None]]


def build_tasks(settings: Settings, clock: Clock) -> ScheduledTasks:
    """The scheduled work, built by the one composition root (authgate.bootstrap)."""
    from authgate.bootstrap import Services

    services = Services(settings, clock=clock)
    keys = None if settings.static_key_ring else services.signing_keys
    return ScheduledTasks(
        keys=keys, mail=services.mail.delivery, pruning=services.pruning, close=services.aclose
    )


async def _keys(tasks: ScheduledTasks) -> dict[str, Any]:
    if tasks.keys is None:
        return {"ring": "static"}
    # A ring nobody has created yet (no request so far) is created here.
    await tasks.keys.ensure_ring()
    run = await tasks.keys.run_scheduled()
    return {
        "rotated": asdict(run.rotation) if run.rotation is not None else None,
        "retired": list(run.retired),
    }


async def _mail(tasks: ScheduledTasks) -> dict[str, Any]:
    leased = 0
    for _ in range(MAX_MAIL_BATCHES):
        count = await tasks.mail.drain_once()
        leased += count
        if count < BATCH:
            break
    return {"processed": leased}


async def _prune(tasks: ScheduledTasks) -> dict[str, Any]:
    # run_if_due: with several schedules (or a retry) one run an hour does the work.
    report = await tasks.pruning.run_if_due()
    return {"ran": False} if report is None else {"ran": True, **asdict(report)}


async def run_scheduled(tasks: ScheduledTasks) -> dict[str, Any]:
    """Every task once; a failure is logged and reported, and the next task runs."""
    summary: dict[str, Any] = {}
    steps: tuple[tuple[str, Callable[[ScheduledTasks], Awaitable[dict[str, Any]]]], ...] = (
        ("keys", _keys),
        ("mail", _mail),
        ("prune", _prune),
    )
    for name, step in steps:
        try:
            summary[name] = {"ok": True, **await step(tasks)}
        except Exception as exc:
            logger.exception("scheduled task %s failed", name)
            summary[name] = {"ok": False, "error": type(exc).__name__}
    return summary


async def _run(settings: Settings, event: Mapping[str, Any]) -> dict[str, Any]:
    if event.get("task") == "migrate":
        from authgate.storage.migrate import upgrade_url

        await upgrade_url(
            settings.effective_database_url, connect_timeout=settings.db_connect_timeout_seconds
        )
        return {"migrate": {"ok": True}}
    tasks = build_tasks(settings, SystemClock())
    try:
        return await run_scheduled(tasks)
    finally:
        await tasks.close()


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point for the EventBridge schedule."""
    settings = load_settings()
    logging.getLogger().setLevel(settings.log_level.upper())
    summary = asyncio.run(_run(settings, event))
    logger.info("scheduled tasks: %s", summary)
    return summary
