"""The composition root's foundation: settings, clock, secret and keys, and the
resources with a lifetime, built on first use and closed in one place
(:meth:`Resources.aclose`). :class:`~authgate.bootstrap.services.Services` adds the
services on top.

Imports of the adapters are local to the builders, so importing this module costs
little more than the settings. Nothing here imports FastAPI or Starlette.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from authgate.clock import Clock
from authgate.config import Settings

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.ext.asyncio import AsyncEngine

    from authgate.crypto.keyring import KeyRing, KeyRingRefresher, RingLoader
    from authgate.crypto.keys import KeySet
    from authgate.crypto.passwords import Argon2PasswordHasher
    from authgate.domain.models import AuditEvent
    from authgate.domain.observations import Observer
    from authgate.metrics import PrometheusMetrics
    from authgate.server_secret import ServerSecret
    from authgate.services.signing_keys import SigningKeyService
    from authgate.storage.unit_of_work import SqlUnitOfWorkFactory
    from authgate.throttling import CounterThrottle

logger = logging.getLogger("authgate")

AuditSink = Callable[["AuditEvent"], None]


@dataclass(frozen=True)
class Overrides:
    """What an entry point (or a test) chooses instead of the settings' defaults.

    ``hasher`` and ``audit_sink`` are injected collaborators (an injected hasher is
    the caller's to close); ``pool_size`` and ``hashing_workers`` size the engine
    and the argon2 pool (a CLI command needs one connection and one thread)."""

    hasher: Argon2PasswordHasher | None = None
    audit_sink: AuditSink | None = None
    pool_size: int | None = None
    hashing_workers: int | None = None


def hashing_threads(settings: Settings) -> int:
    """argon2 threads for this process: the cores shared among the server's workers.

    Each worker has its own pool; more hashing threads than cores in total only
    makes them evict each other's 19 MiB from the caches and slows every hash.
    """
    if settings.password_hash_workers:
        return settings.password_hash_workers
    return max(1, (os.cpu_count() or 1) // settings.workers)


class Resources:
    """The settings, the clock, the server secret and keys, and what has a lifetime
    (engine, argon2 pool, HTTP client, throttle store), each built once on first use.
    Read-only: the attributes are computed, never assigned."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock,
        server_secret: ServerSecret | None = None,
        overrides: Overrides | None = None,
    ) -> None:
        # object.__setattr__: __setattr__ below refuses assignment (frozen).
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "clock", clock)
        object.__setattr__(self, "overrides", overrides or Overrides())
        object.__setattr__(self, "_given_secret", server_secret)
        object.__setattr__(self, "_resources", AsyncExitStack())
        object.__setattr__(self, "_closed", False)

    settings: Settings
    clock: Clock
    overrides: Overrides
    _given_secret: ServerSecret | None
    _resources: AsyncExitStack
    _closed: bool

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only ({name})")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close what was opened (hashing threads, HTTP client, throttle store, then
        the engine). Idempotent."""
        if self._closed:
            return
        object.__setattr__(self, "_closed", True)
        try:
            await self._resources.aclose()
        finally:
            engine: AsyncEngine | None = self.__dict__.get("engine")
            if engine is not None:
                await engine.dispose()

    # -- secrets and keys ---------------------------------------------------------

    @cached_property
    def server_secret(self) -> ServerSecret:
        """The given secret, else loaded from settings (SECRET_KEY*; in development
        the data directory's file) when a service first needs it."""
        if self._given_secret is not None:
            return self._given_secret
        from authgate.server_secret import load_server_secret

        return load_server_secret(self.settings).secret

    @cached_property
    def static_key_set(self) -> KeySet | None:
        """The PEM keys (JWT_PRIVATE_KEY_PATH or JWT_PRIVATE_KEY), parsed and checked
        once, or None."""
        from authgate.bootstrap.keys import static_key_set

        return static_key_set(self.settings)

    @cached_property
    def key_ring(self) -> KeyRing:
        """The ring that signs and verifies: the static one, or the database ring,
        empty until :meth:`load_key_ring` (and then refreshed by its scheduled step)."""
        from authgate.crypto.keyring import KeyRing

        key_set = self.static_key_set
        return KeyRing(key_set, static=True) if key_set is not None else KeyRing(None)

    @cached_property
    def _database_ring(self) -> tuple[SigningKeyService, RingLoader]:
        from authgate.bootstrap.keys import key_ring_service

        return key_ring_service(
            self.settings, uow=self.uow, clock=self.clock, server_secret=self.server_secret
        )

    @cached_property
    def signing_keys(self) -> SigningKeyService:
        """The database ring's lifecycle (list, rotate, retire, scheduled step)."""
        return self._database_ring[0]

    @cached_property
    def key_ring_refresher(self) -> KeyRingRefresher | None:
        """Re-reads the database ring and runs its scheduled step; None for a static ring."""
        if self.key_ring.static:
            return None
        from authgate.crypto.keyring import KeyRingRefresher

        service, loader = self._database_ring
        return KeyRingRefresher(
            self.key_ring,
            loader,
            interval_seconds=self.settings.key_ring_refresh_seconds,
            # On Lambda, rotation is the scheduled tasks handler's (authgate.aws.tasks).
            scheduled=None if self.settings.on_lambda else service.run_scheduled,
            ensure=service.ensure_ring,
        )

    async def load_key_ring(self) -> None:
        """Load the database ring (creating it on first start, under the ring lock,
        so instances starting together create one). A database that cannot be used
        now does not stop start-up: the ring stays empty (signing answers 503) and
        the refresher keeps trying. A key that does not decrypt (wrong SECRET_KEY)
        raises."""
        from authgate.crypto.keys import KeyError_
        from authgate.errors import Unavailable

        ring = self.key_ring
        if not ring.static:
            service, loader = self._database_ring
            try:
                await service.ensure_ring()
                ring.replace(await loader.load())
            except KeyError_:
                raise
            except Exception as exc:
                logger.error(
                    "cannot load the signing-key ring yet; retrying every %g s: %s",
                    self.settings.key_ring_refresh_seconds,
                    (exc.detail_for_log or exc.message)
                    if isinstance(exc, Unavailable)
                    else repr(exc),
                )
        if ring.key_set is not None:
            logger.info(
                "signing with %s key kid=%s (%s ring)",
                ring.key_set.signing.algorithm,
                ring.key_set.signing.kid,
                "static" if ring.static else "database",
            )

    # -- resources with a lifetime ------------------------------------------------

    @cached_property
    def engine(self) -> AsyncEngine:
        from authgate.storage.engine import create_engine

        settings = self.settings
        engine = create_engine(
            settings.effective_database_url,
            pool_size=self.overrides.pool_size or settings.db_pool_size,
            connect_timeout=settings.db_connect_timeout_seconds,
            pool_timeout=settings.db_pool_timeout_seconds,
            # A Lambda container: one connection, pinged after a freeze.
            serverless=settings.on_lambda,
            # Galera: reads wait for the node to apply what others committed.
            causal_reads=settings.database_causal_reads,
        )
        if self.metrics is not None:
            self.metrics.watch_pool(engine)
        return engine  # disposed by aclose, after everything that may use it

    @cached_property
    def metrics(self) -> PrometheusMetrics | None:
        """The Prometheus adapter when METRICS_PORT is set, else None. Imported only
        then: prometheus_client picks its multiprocess mode at import, after
        `authgate serve` has set PROMETHEUS_MULTIPROC_DIR (authgate.metrics_listener)."""
        if self.settings.metrics_port is None:
            return None
        from authgate.metrics import PrometheusMetrics

        return PrometheusMetrics()

    @cached_property
    def observer(self) -> Observer:
        """Where services report what an operator counts (a no-op without metrics)."""
        from authgate.domain.observations import NO_OBSERVER

        return self.metrics if self.metrics is not None else NO_OBSERVER

    @cached_property
    def uow(self) -> SqlUnitOfWorkFactory:
        from authgate.storage.unit_of_work import SqlUnitOfWorkFactory

        return SqlUnitOfWorkFactory(self.engine)

    @cached_property
    def hasher(self) -> Argon2PasswordHasher:
        if self.overrides.hasher is not None:
            return self.overrides.hasher
        from authgate.crypto.passwords import Argon2Parameters, Argon2PasswordHasher

        settings = self.settings
        hasher = Argon2PasswordHasher(
            Argon2Parameters(
                time_cost=settings.password_hash_time_cost,
                memory_kib=settings.password_hash_memory_kib,
                parallelism=settings.password_hash_parallelism,
            ),
            workers=self.overrides.hashing_workers or hashing_threads(settings),
            max_pending=settings.password_hash_max_pending,
            observer=self.observer,
        )
        self._resources.callback(hasher.close)
        return hasher

    @cached_property
    def http(self) -> httpx.AsyncClient:
        """One pooled client for every provider's JWKS."""
        import httpx

        from authgate import __version__

        client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.provider_http_timeout_seconds),
            follow_redirects=False,
            headers={"user-agent": f"authgate/{__version__}"},
        )
        self._resources.push_async_callback(client.aclose)
        return client

    @cached_property
    def throttle(self) -> CounterThrottle:
        """The counter store (memory or Redis); counted keys are HMACs under the
        server secret's throttle key."""
        from authgate.throttling import build_throttle

        throttle = build_throttle(
            self.settings.rate_limit_storage_url,
            clock=self.clock,
            hmac_key=self.server_secret.throttle_key(),
        )
        self._resources.push_async_callback(throttle.close)
        return throttle
