"""The whole HTTP API as one AWS Lambda function: ``authgate.aws.handler.handler``.

Mangum turns API Gateway REST (v1) and HTTP API (v2) events, function-URL events and
ALB events into ASGI requests for the same FastAPI app ``authgate serve`` runs,
configured by the same environment variables. Seed 000's routes (``/register``,
``/login``, ``/secure``, ``/refreshToken``, ``/revokeToken``...) work unchanged.

One app per container: built on the first invocation, its lifespan (engine, key ring,
hasher threads) entered once on an event loop kept for the container's life, and
reused by every invocation after. Mangum's own lifespan handling would start and
stop the app around every request, so it is off here. Nothing runs between
invocations (the container is frozen): the app starts no timers on Lambda
(``Settings.on_lambda``), the scheduled work is :mod:`authgate.aws.tasks`', and the
database key ring is re-read here, before a request, once it is older than
KEY_RING_REFRESH_SECONDS.

Heavy imports happen at module level, in Lambda's init phase; the app is built on
the first invocation so that a configuration error is reported as that
invocation's error, in one line, instead of a failed init.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from mangum import Mangum

from authgate.bootstrap import Services
from authgate.config import Settings, load_settings
from authgate.crypto.keyring import KeyRingRefresher
from authgate.web.app import create_app
from authgate.web.deps import app_services

logger = logging.getLogger(__name__)


@dataclass
class _Container:
    """What one Lambda container keeps between invocations."""

    settings: Settings
    app: FastAPI
    loop: asyncio.AbstractEventLoop
    lifespan: AbstractAsyncContextManager[Any]
    adapter: Mangum
    services: Services
    ring_refresher: KeyRingRefresher | None
    ring_loaded_at: float

    def refresh_ring_if_stale(self, now: float) -> None:
        """Re-read the database ring when older than KEY_RING_REFRESH_SECONDS: a key
        rotated by the tasks function reaches this container at its next request."""
        if self.ring_refresher is None:
            return
        # Not loaded at all (the database was away at start): every request needs it,
        # so try again now rather than after the interval.
        loaded = self.services.key_ring.key_set is not None
        if loaded and now - self.ring_loaded_at < self.settings.key_ring_refresh_seconds:
            return
        # A failure keeps the last good ring (the refresher logs it) and is retried
        # at the next request.
        if self.loop.run_until_complete(self.ring_refresher.run_once()):
            self.ring_loaded_at = now

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.lifespan.__aexit__(None, None, None))
        finally:
            asyncio.set_event_loop(None)
            self.loop.close()


_container: _Container | None = None


def _configure_logging(settings: Settings) -> None:
    # The Lambda runtime already sends the root logger to CloudWatch; authgate's
    # own writer thread would be frozen with the container, holding records back.
    logging.getLogger().setLevel(settings.log_level.upper())


def _start(monotonic: Callable[[], float]) -> _Container:
    settings = load_settings()
    _configure_logging(settings)
    app = create_app(settings)
    services = app_services(app)
    loop = asyncio.new_event_loop()
    # Mangum runs each request on the current event loop: this one, for good.
    asyncio.set_event_loop(loop)
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    return _Container(
        settings=settings,
        app=app,
        loop=loop,
        lifespan=lifespan,
        adapter=Mangum(app, lifespan="off"),
        services=services,
        ring_refresher=services.key_ring_refresher,
        ring_loaded_at=monotonic(),
    )


def container(monotonic: Callable[[], float] = time.monotonic) -> _Container:
    """This container's app, started on first use."""
    global _container
    if _container is None:
        _container = _start(monotonic)
    return _container


def reset() -> None:
    """Stop the app and forget it (tests; a real container just ends)."""
    global _container
    if _container is not None:
        current, _container = _container, None
        current.close()


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: one HTTP request in, its response out."""
    current = container()
    current.refresh_ring_if_stale(time.monotonic())
    asyncio.set_event_loop(current.loop)
    return current.adapter(dict(event), context)
