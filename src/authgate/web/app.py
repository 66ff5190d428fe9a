"""The app factory: the web composition root.

Everything with a lifetime (engine, password-hashing threads, keys) is created in
the lifespan, never at import, and the finished objects are kept in a Container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from authgate import __version__
from authgate.clock import Clock, SystemClock
from authgate.config import Settings, load_settings
from authgate.config_checks import log_development_warnings, startup_already_reported
from authgate.crypto.access_token_verifier import (
    TrustedKeysByKid,
    access_token_verifier,
    any_audience_decoder,
)
from authgate.crypto.jwt_tokens import JwtAccessTokens
from authgate.crypto.key_encryption import PrivateKeySealer, SealedKeyMaker
from authgate.crypto.keyring import KeyRing, KeyRingRefresher, RingLoader
from authgate.crypto.keys import KeyError_, KeySet, load_key_set
from authgate.crypto.passwords import Argon2Parameters, Argon2PasswordHasher
from authgate.crypto.refresh_secrets import SuccessorSealer
from authgate.errors import Unavailable
from authgate.identity.providers import build_verifiers
from authgate.logs import route_events_to_stdlib
from authgate.oauth import discovery
from authgate.oauth.clients import ClientRegistry, default_client
from authgate.oauth.service import OAuthService
from authgate.server_secret import ServerSecret, load_server_secret, warn_if_development
from authgate.services.account_deletion import AccountDeletionService
from authgate.services.accounts import AccountService
from authgate.services.audit import AuditTrail
from authgate.services.email_verification import EmailVerificationService
from authgate.services.password_confirmation import PasswordConfirmation
from authgate.services.password_policy import PasswordPolicy
from authgate.services.password_strength import PasswordStrength
from authgate.services.passwords_lifecycle import PasswordLifecycleService
from authgate.services.provider_accounts import ProviderAccountService
from authgate.services.pruning import PeriodicPruning, PruningService, RetentionPolicy
from authgate.services.sessions import SessionPolicy, SessionService
from authgate.services.signing_keys import KeyRingPolicy, SigningKeyService
from authgate.services.user_sessions import UserSessionService
from authgate.storage.engine import create_engine
from authgate.storage.migrate import head_revision
from authgate.storage.unit_of_work import SqlUnitOfWorkFactory
from authgate.throttling import AuthThrottles, RateLimit, build_throttle
from authgate.web import docs, problems
from authgate.web.container import Container
from authgate.web.mail_setup import build_mail
from authgate.web.middleware import BodySizeLimit, JsonRequestGuard, SecurityHeaders
from authgate.web.routes import account, legacy, oauth, v1, well_known
from authgate.web.routes import sessions as sessions_routes

logger = logging.getLogger("authgate")
OPENAPI_URL = "/openapi.json"


def static_key_set(settings: Settings) -> KeySet | None:
    """The static ring from PEM files (JWT_PRIVATE_KEY_PATH set), or None for the
    database ring, which the lifespan loads (and creates on first start)."""
    if settings.jwt_private_key_path is None:
        return None
    return load_key_set(
        private_key_path=settings.jwt_private_key_path,
        public_key_path=settings.jwt_public_key_path,
        algorithm=settings.jwt_algorithm,
        extra_public_key_paths=settings.previous_public_key_paths,
    )


def trusted_keys_by_kid(key_set: KeySet) -> TrustedKeysByKid:
    """A fixed key set's lookup ``kid -> keys``, as the verifier kit takes it (tests and
    benchmarks; the server itself uses its refreshing ring's ``trusted_keys``)."""
    return KeyRing(key_set, static=True).trusted_keys


def key_ring_service(
    settings: Settings, *, uow: SqlUnitOfWorkFactory, clock: Clock, server_secret: ServerSecret
) -> tuple[SigningKeyService, RingLoader]:
    """The database ring's lifecycle service and loader (web and CLI share them)."""
    sealer = PrivateKeySealer(server_secret.key_encryption_keys())
    service = SigningKeyService(
        uow=uow,
        clock=clock,
        maker=SealedKeyMaker(sealer),
        policy=KeyRingPolicy(
            algorithm=settings.jwt_algorithm,
            # Published for a whole JWKS cache lifetime after every instance has it.
            publish_before_use_seconds=settings.jwks_max_age_seconds
            + math.ceil(settings.key_ring_refresh_seconds),
            token_lifetime_seconds=settings.access_token_ttl_seconds,
            rotation_days=settings.key_rotation_days,
        ),
    )
    return service, RingLoader(uow, sealer)


def published_algorithms(settings: Settings, key_ring: KeyRing) -> tuple[str, ...]:
    """What the discovery document lists: the configured algorithm (new keys) and those
    of the keys published at start-up (a ring may keep an older algorithm's key while
    its tokens live)."""
    names = {settings.jwt_algorithm}
    if key_ring.key_set is not None:
        names.update(key.algorithm for key in key_ring.key_set.by_kid.values())
    return tuple(sorted(names))


def hashing_threads(settings: Settings) -> int:
    """argon2 threads for this process: the cores shared among the server's workers.

    Each worker has its own pool; more hashing threads than cores in total only
    makes them evict each other's 19 MiB from the caches and slows every hash.
    """
    if settings.password_hash_workers:
        return settings.password_hash_workers
    return max(1, (os.cpu_count() or 1) // settings.workers)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    server_secret: ServerSecret | None = None,
    announce: bool = True,
) -> FastAPI:
    """The app. ``announce=False`` leaves out the start-up warnings (development
    secret, unsafe settings), which ``authgate serve`` has printed once for all
    its workers."""
    settings = settings or load_settings()
    clock = clock or SystemClock()
    route_events_to_stdlib()
    # Static keys are loaded and checked here, before the server accepts anything, so
    # a wrong key type stops start-up instead of failing the first request (the
    # database ring is loaded, or created, in the lifespan). The server
    # secret comes first: in development its file creates the data directory
    # private (0700) before anything else is written there.
    if server_secret is None:
        loaded = load_server_secret(settings)
        key_set = static_key_set(settings)
        if announce:
            warn_if_development(loaded)
        server_secret = loaded.secret
    else:
        key_set = static_key_set(settings)
    ring_secret = server_secret
    if announce:
        log_development_warnings(settings, logger)
    # Services get only the keys derived from the secret.
    sealer = SuccessorSealer(server_secret.refresh_sealing_keys())
    throttle_key = server_secret.throttle_key()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.effective_database_url,
            pool_size=settings.db_pool_size,
            connect_timeout=settings.db_connect_timeout_seconds,
            pool_timeout=settings.db_pool_timeout_seconds,
            causal_reads=settings.database_causal_reads,
        )
        hasher = Argon2PasswordHasher(
            Argon2Parameters(
                time_cost=settings.password_hash_time_cost,
                memory_kib=settings.password_hash_memory_kib,
                parallelism=settings.password_hash_parallelism,
            ),
            workers=hashing_threads(settings),
            max_pending=settings.password_hash_max_pending,
        )
        # One pooled client for every provider's JWKS, closed with the app.
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.provider_http_timeout_seconds),
            follow_redirects=False,
            headers={"user-agent": f"authgate/{__version__}"},
        )
        verifiers = build_verifiers(
            settings.provider_configs(),
            http=http,
            clock=clock,
            refetch_cooldown_seconds=settings.jwks_refetch_cooldown_seconds,
            clock_skew_seconds=settings.provider_clock_skew_seconds,
            jwks_timeout_seconds=settings.provider_http_timeout_seconds,
        )
        uow = SqlUnitOfWorkFactory(engine)
        ring_refresher: KeyRingRefresher | None = None
        if key_set is not None:
            key_ring = KeyRing(key_set, static=True)
        else:
            # The database ring: created on first start (under the ring lock, so
            # instances starting together create one), then re-read periodically.
            ring_service, loader = key_ring_service(
                settings, uow=uow, clock=clock, server_secret=ring_secret
            )
            key_ring = KeyRing(None)
            ring_refresher = KeyRingRefresher(
                key_ring,
                loader,
                interval_seconds=settings.key_ring_refresh_seconds,
                scheduled=ring_service.run_scheduled,
                ensure=ring_service.ensure_ring,
            )
            try:
                await ring_service.ensure_ring()
                key_ring.replace(await loader.load())
            except KeyError_:
                raise  # a key that does not decrypt (wrong SECRET_KEY) stops start-up
            except Exception as exc:
                # A database that cannot be used now must not stop the server (it
                # answers 503, or 500 for a broken one, like every request that
                # needs the database, and /readyz says not ready); the refresher
                # keeps trying.
                logger.error(
                    "cannot load the signing-key ring yet; retrying every %g s: %s",
                    settings.key_ring_refresh_seconds,
                    (exc.detail_for_log or exc.message)
                    if isinstance(exc, Unavailable)
                    else repr(exc),
                )
        if key_ring.key_set is not None:
            logger.info(
                "signing with %s key kid=%s (%s ring)",
                key_ring.key_set.signing.algorithm,
                key_ring.key_set.signing.kid,
                "static" if key_ring.static else "database",
            )
        access_tokens = JwtAccessTokens(
            key_ring,
            issuer=settings.issuer,
            audiences=settings.audiences,
            ttl_seconds=settings.access_token_ttl_seconds,
            default_client_id=settings.default_client_id,
        )
        verifier = access_token_verifier(
            # The ring's own lookup: a rotation or retirement reaches the guard at the
            # ring's next refresh, and a retired kid stops verifying at once.
            key_ring.trusted_keys,
            issuer=settings.issuer,
            audiences=settings.audiences,
            clock=clock,
        )
        audit = AuditTrail(uow=uow, clock=clock)
        throttle = build_throttle(
            settings.rate_limit_storage_url, clock=clock, hmac_key=throttle_key
        )
        throttles = AuthThrottles(
            throttle=throttle,
            enabled=settings.rate_limit_enabled,
            auth_per_ip=RateLimit.parse(settings.rate_limit_auth_per_ip),
            signup_per_ip=RateLimit.parse(settings.rate_limit_signup_per_ip),
            refresh_per_ip=RateLimit.parse(settings.rate_limit_refresh_per_ip),
            revoke_per_ip=RateLimit.parse(settings.rate_limit_revoke_per_ip),
            failures_per_account=RateLimit.parse(settings.rate_limit_failed_signins_per_account),
            mail_per_ip=RateLimit.parse(settings.rate_limit_mail_per_ip),
            mail_per_account=RateLimit.parse(settings.rate_limit_mail_per_account),
        )
        sessions = SessionService(
            uow=uow,
            access_tokens=access_tokens,
            clock=clock,
            policy=SessionPolicy(
                idle_ttl_seconds=settings.refresh_token_ttl_seconds,
                absolute_ttl_seconds=settings.refresh_token_absolute_ttl_seconds,
                reuse_leeway_seconds=settings.refresh_reuse_leeway_seconds,
            ),
            audit=audit,
            throttles=throttles,
            sealer=sealer,
        )
        mail = build_mail(settings, uow=uow, clock=clock)
        clients = ClientRegistry(
            uow=uow,
            clock=clock,
            default=default_client(settings.default_client_id, settings.audiences),
            throttles=throttles,
        )
        oauth_service = OAuthService(
            clients=clients,
            sessions=sessions,
            access_tokens=access_tokens,
            decoder=any_audience_decoder(
                key_ring.trusted_keys, issuer=settings.issuer, clock=clock
            ),
            uow=uow,
            clock=clock,
            throttles=throttles,
            audit=audit,
            issuer=settings.issuer,
        )
        # One policy for every way a password is set: sign-up, reset, change.
        password_policy = PasswordPolicy(min_length=settings.password_min_length)
        password_strength = PasswordStrength(min_score=settings.password_min_strength)
        confirmation = PasswordConfirmation(hasher=hasher, throttles=throttles, audit=audit)
        email_verification = EmailVerificationService(
            uow=uow,
            outbox=mail.outbox,
            tokens=mail.tokens,
            confirmation=confirmation,
            throttles=throttles,
            audit=audit,
            clock=clock,
            mode=settings.email_verification,
        )
        passwords = PasswordLifecycleService(
            uow=uow,
            outbox=mail.outbox,
            tokens=mail.tokens,
            hasher=hasher,
            policy=password_policy,
            strength=password_strength,
            throttles=throttles,
            audit=audit,
            clock=clock,
            confirmation=confirmation,
            reset_enabled=settings.password_reset_enabled,
        )
        accounts = AccountService(
            uow=uow,
            hasher=hasher,
            sessions=sessions,
            policy=password_policy,
            clock=clock,
            audit=audit,
            throttles=throttles,
            strength=password_strength,
            outbox=mail.outbox,
            email_verification=settings.email_verification,
        )
        provider_accounts = ProviderAccountService(
            uow=uow,
            verifiers=verifiers,
            sessions=sessions,
            audit=audit,
            clock=clock,
            signup_on_signin=settings.provider_signup_on_signin,
            throttles=throttles,
        )
        app.state.container = Container(
            clock=clock,
            engine=engine,
            access_token_verifier=verifier,
            accounts=accounts,
            sessions=sessions,
            provider_accounts=provider_accounts,
            email_verification=email_verification,
            passwords=passwords,
            mail=mail.delivery,
            user_sessions=UserSessionService(
                uow=uow, clock=clock, audit=audit, throttles=throttles
            ),
            account_deletion=AccountDeletionService(
                uow=uow,
                clock=clock,
                audit=audit,
                throttles=throttles,
                confirmation=confirmation,
                providers=provider_accounts,
            ),
            key_ring=key_ring,
            jwks_max_age_seconds=settings.jwks_max_age_seconds,
            oauth=oauth_service,
            discovery_body=oauth.discovery_body(
                discovery.metadata(
                    issuer=settings.issuer,
                    public_url=settings.effective_public_url,
                    algorithms=published_algorithms(settings, key_ring),
                )
            ),
            schema_revision=head_revision(),
        )
        # Pruning about once an hour, in the background; its failures are logged.
        pruning = PruningService(
            uow=uow,
            clock=clock,
            policy=RetentionPolicy(
                session_retention_days=settings.session_retention_days,
                audit_retention_days=settings.audit_retention_days,
                reuse_leeway_seconds=settings.refresh_reuse_leeway_seconds,
            ),
        )
        periodic_pruning = asyncio.create_task(
            PeriodicPruning(pruning).run_forever(), name="authgate-periodic-pruning"
        )
        # The mail drainer: woken after each commit that queued mail, polls otherwise.
        mail_task = asyncio.create_task(mail.delivery.run(), name="authgate-mail")
        ring_task = (
            asyncio.create_task(ring_refresher.run_forever(), name="authgate-key-ring")
            if ring_refresher is not None
            else None
        )
        try:
            yield
        finally:
            if ring_task is not None:
                ring_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ring_task
            periodic_pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await periodic_pruning
            mail.delivery.stop()
            try:
                # The mail in hand finishes (an SMTP timeout at most); what is left
                # stays queued for the next start or another instance.
                await asyncio.wait_for(mail_task, timeout=settings.smtp_timeout_seconds + 5)
            except TimeoutError:
                logger.warning("mail drainer did not stop in time")
            hasher.close()
            await http.aclose()
            await throttle.close()
            await engine.dispose()

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
    return app


def create_app_from_env() -> FastAPI:
    """Entry point for ``uvicorn --factory`` (what ``authgate serve`` runs in each worker)."""
    from authgate.logs import configure_logging

    settings = load_settings()
    # Worker processes start fresh: configure logging here as the CLI did.
    configure_logging(settings.log_level, settings.log_format, access_log=settings.access_log)
    return create_app(settings, announce=not startup_already_reported())
