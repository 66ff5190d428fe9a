"""The app factory: the ASGI entry point over the composition root (authgate.bootstrap).

The lifespan opens the services (key ring loaded before the first request), runs the
background jobs as tasks, and closes everything when the server stops. Routes read
the services through one typed accessor (``web.deps.services_of``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from authgate import __version__
from authgate.bootstrap import Overrides, Services, background_jobs, running_in_background
from authgate.clock import Clock, SystemClock
from authgate.config import Settings, load_settings
from authgate.config_checks import log_development_warnings, startup_already_reported
from authgate.logs import route_events_to_stdlib
from authgate.server_secret import ServerSecret, load_server_secret, warn_if_development
from authgate.web import docs, problems
from authgate.web.instance_setup import build_heartbeat
from authgate.web.middleware import BodySizeLimit, JsonRequestGuard, SecurityHeaders
from authgate.web.routes import account, legacy, oauth, v1, well_known
from authgate.web.routes import sessions as sessions_routes

logger = logging.getLogger("authgate")
OPENAPI_URL = "/openapi.json"


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    server_secret: ServerSecret | None = None,
    overrides: Overrides | None = None,
    announce: bool = True,
) -> FastAPI:
    """The app. ``announce=False`` leaves out the start-up warnings (development
    secret, unsafe settings), which ``authgate serve`` has printed once for all
    its workers. ``overrides`` reach the composition root (tests inject a hasher
    or an audit sink there)."""
    settings = settings or load_settings()
    route_events_to_stdlib()
    # The server secret comes first: in development its file creates the data
    # directory private (0700) before anything else is written there.
    if server_secret is None:
        loaded = load_server_secret(settings)
        server_secret = loaded.secret
    else:
        loaded = None
    services = Services(
        settings, clock=clock or SystemClock(), server_secret=server_secret, overrides=overrides
    )
    # Static keys are parsed and checked here, before the server accepts anything,
    # so a wrong key type stops start-up instead of failing the first request (the
    # database ring is loaded, or created, in the lifespan).
    _ = services.key_ring
    if announce:
        if loaded is not None:
            warn_if_development(loaded)
        log_development_warnings(settings, logger)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services:
            await services.load_key_ring()
            services.prepare_http_api()
            # This process's heartbeat row (table instances), deleted at shutdown.
            # None on Lambda: nothing runs between invocations there.
            heartbeat = (
                None
                if settings.on_lambda
                else build_heartbeat(settings, engine=services.engine, clock=services.clock)
            )
            heartbeat_task = (
                asyncio.create_task(heartbeat.run_forever(), name="authgate-heartbeat")
                if heartbeat is not None
                else None
            )
            try:
                async with running_in_background(background_jobs(services)):
                    yield
            finally:
                if heartbeat is not None and heartbeat_task is not None:
                    await heartbeat.stop()
                    with contextlib.suppress(Exception):
                        # A beat in hand finishes (the connect timeout at most).
                        await asyncio.wait_for(
                            heartbeat_task, timeout=settings.db_connect_timeout_seconds + 5
                        )

    app = FastAPI(
        title="authgate",
        version=__version__,
        description=(
            "Authentication server: credentials, JWT access tokens, rotating refresh tokens."
        ),
        lifespan=lifespan,
        # Off in production unless DOCS_ENABLED=true; served from our own assets.
        openapi_url=OPENAPI_URL if settings.docs_on else None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    problems.install(app)
    # Routes are tried in inclusion order and each miss costs a regex match and
    # scope bookkeeping (~4 us): the routers holding the per-request hot paths
    # (/secure, JWKS, refresh) come first, each with its hottest routes on top.
    #
    # The routes are added to the app's own route list rather than through
    # include_router: FastAPI 0.165 (the locked version) keeps an included router as a nested
    # matcher, which cost every request ~13 us, a tenth of a token check. The
    # module routers already carry their prefixes and tags, so their APIRoute
    # objects stand on their own; the OpenAPI schema is the same.
    for module_router in (
        legacy.router,
        well_known.router,
        v1.router,
        account.router,
        sessions_routes.router,
        oauth.router,
    ):
        app.router.routes.extend(module_router.routes)
    if settings.docs_on:
        docs.install(app, openapi_url=OPENAPI_URL)
    # add_middleware wraps what is already there, so the last added runs first:
    # size limit, then security headers, then the JSON guard, then the routes.
    app.add_middleware(JsonRequestGuard)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    metrics = services.metrics
    if metrics is not None:
        # Outermost: it times and counts every answer, refusals of the others included.
        from authgate.web.request_metrics import RequestMetrics

        app.add_middleware(RequestMetrics, metrics=metrics)
    app.state.metrics = metrics
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (what ``authgate serve`` runs in each worker)."""
    from authgate.logs import configure_logging

    settings = load_settings()
    # Worker processes start fresh: configure logging here as the CLI did.
    configure_logging(settings.log_level, settings.log_format, access_log=settings.access_log)
    return create_app(settings, announce=not startup_already_reported())
