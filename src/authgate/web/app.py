"""The app factory: the web composition root.

Everything with a lifetime (engine, password-hashing threads, keys) is created in
the lifespan, never at import, and the finished objects are kept in a Container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from authgate import __version__
from authgate.clock import Clock, SystemClock
from authgate.config import Settings, load_settings
from authgate.config_checks import log_development_warnings, startup_already_reported
from authgate.crypto.jwt_tokens import JwtAccessTokens
from authgate.crypto.keys import KeySet, ensure_development_keys, jwks_json, load_key_set
from authgate.crypto.passwords import Argon2Parameters, Argon2PasswordHasher
from authgate.crypto.refresh_secrets import SuccessorSealer
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


def resolve_key_set(settings: Settings, *, announce: bool = True) -> KeySet:
    """Configured PEM files, or development keys created once under the data directory.

    ``announce=False`` skips the development-key warning: ``authgate serve`` has
    printed it once already, before starting its workers.
    """
    private_path: Path
    public_path: Path | None
    if settings.jwt_private_key_path is not None:
        private_path, public_path = settings.jwt_private_key_path, settings.jwt_public_key_path
    else:
        private_path, public_path, created = ensure_development_keys(
            settings.authgate_data_dir, settings.jwt_algorithm
        )
        if announce:
            logger.warning(
                "USING DEVELOPMENT SIGNING KEYS (%s, %s): set JWT_PRIVATE_KEY_PATH and "
                "JWT_PUBLIC_KEY_PATH before production; AUTHGATE_ENV=production refuses to start "
                "without them",
                "created now" if created else "created earlier",
                private_path,
            )
    return load_key_set(
        private_key_path=private_path,
        public_key_path=public_path,
        algorithm=settings.jwt_algorithm,
    )


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
    """The app. ``announce=False`` leaves out the start-up warnings (development keys
    and secret, unsafe settings), which ``authgate serve`` has printed once for all
    its workers."""
    settings = settings or load_settings()
    clock = clock or SystemClock()
    route_events_to_stdlib()
    # Keys are loaded and checked here, before the server accepts anything, so a
    # wrong key type stops start-up instead of failing the first request. The server
    # secret comes first: in development its file creates the data directory
    # private (0700) before anything else is written there.
    if server_secret is None:
        loaded = load_server_secret(settings)
        key_set = resolve_key_set(settings, announce=announce)
        if announce:
            warn_if_development(loaded)
        server_secret = loaded.secret
    else:
        key_set = resolve_key_set(settings, announce=announce)
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
        access_tokens = JwtAccessTokens(
            key_set,
            issuer=settings.issuer,
            audiences=settings.audiences,
            ttl_seconds=settings.access_token_ttl_seconds,
            default_client_id=settings.default_client_id,
        )
        uow = SqlUnitOfWorkFactory(engine)
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
            decoder=access_tokens,
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
            access_tokens=access_tokens,
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
            jwks_body=jwks_json(key_set),
            jwks_max_age_seconds=settings.jwks_max_age_seconds,
            oauth=oauth_service,
            discovery_body=oauth.discovery_body(
                discovery.metadata(
                    issuer=settings.issuer,
                    public_url=settings.effective_public_url,
                    algorithms=(key_set.signing.algorithm,),
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
        try:
            yield
        finally:
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
