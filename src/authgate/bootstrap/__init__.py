"""The one composition root: settings and a clock become a typed :class:`Services`.

The ASGI app (``web/app.py``), the CLI (``cli/``) and any other entry point (a Lambda
handler) build their objects here and nowhere else. It may import every server
package except ``web`` and ``cli``; it imports no web framework, and builds each
service on first use, so importing it and opening it are cheap.

    async with open_services(settings, clock=SystemClock()) as services:
        await services.load_key_ring()          # the HTTP API's keys, before requests
        async with running_in_background(background_jobs(services)):
            ...                                 # serve
    # or, where nothing runs between invocations:
        report = await run_scheduled_tasks(services)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from authgate.bootstrap.background import (
    BackgroundJob,
    ScheduledReport,
    background_jobs,
    run_scheduled_tasks,
    running_in_background,
)
from authgate.bootstrap.keys import (
    key_ring_service,
    published_algorithms,
    static_key_set,
    trusted_keys_by_kid,
)
from authgate.bootstrap.resources import AuditSink, Overrides, Resources, hashing_threads
from authgate.bootstrap.services import Services
from authgate.clock import Clock, SystemClock
from authgate.config import Settings

if TYPE_CHECKING:
    from authgate.server_secret import ServerSecret

__all__ = [
    "AuditSink",
    "BackgroundJob",
    "Overrides",
    "Resources",
    "ScheduledReport",
    "Services",
    "background_jobs",
    "hashing_threads",
    "key_ring_service",
    "open_services",
    "published_algorithms",
    "run_scheduled_tasks",
    "running_in_background",
    "static_key_set",
    "trusted_keys_by_kid",
]


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    server_secret: ServerSecret | None = None,
    overrides: Overrides | None = None,
) -> AsyncIterator[Services]:
    """:class:`Services` for the block, closed at its end. ``clock`` defaults to the
    system clock (an entry point's choice); ``server_secret`` to the settings' one,
    loaded when a service first needs it."""
    services = Services(
        settings, clock=clock or SystemClock(), server_secret=server_secret, overrides=overrides
    )
    async with services:
        yield services
