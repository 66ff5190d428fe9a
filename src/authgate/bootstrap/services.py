"""The one composition root: ``Settings`` + ``Clock`` (+ the server secret) -> ``Services``.

Every service is built on first use and kept (``functools.cached_property``), so each
entry point pays only for what it touches: ``authgate prune`` opens an engine and
nothing else, ``authgate users`` never needs the server secret or the key ring, and
an HTTP request builds the argon2 pool only if it hashes. What has a lifetime (the
engine, the hashing threads, the providers' HTTP client, the throttle store) is
closed by :meth:`Services.aclose` (or ``async with services``), in one place.

Imports of the adapters are local to the builders: importing this module costs
little more than the settings, which matters where a cold start is paid per
container (AWS Lambda). Nothing here imports FastAPI or Starlette.
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

    from authgate.crypto.jwt_tokens import JwtAccessTokens
    from authgate.crypto.keyring import KeyRing, KeyRingRefresher, RingLoader
    from authgate.crypto.keys import KeySet
    from authgate.crypto.passwords import Argon2PasswordHasher
    from authgate.domain.models import AuditEvent, OAuthClient
    from authgate.identity.oidc import OidcVerifier
    from authgate.importers.service import ImportService
    from authgate.mail.setup import Mail
    from authgate.oauth.clients import ClientRegistry
    from authgate.oauth.service import OAuthService
    from authgate.resource import TokenVerifier
    from authgate.server_secret import ServerSecret
    from authgate.services.account_admin import AccountAdminService
    from authgate.services.account_deletion import AccountDeletionService
    from authgate.services.accounts import AccountService
    from authgate.services.audit import AuditTrail
    from authgate.services.email_verification import EmailVerificationService
    from authgate.services.password_confirmation import PasswordConfirmation
    from authgate.services.password_policy import PasswordPolicy
    from authgate.services.password_strength import PasswordStrength
    from authgate.services.passwords_lifecycle import PasswordLifecycleService
    from authgate.services.provider_accounts import ProviderAccountService
    from authgate.services.pruning import PruningService
    from authgate.services.sessions import SessionService
    from authgate.services.signing_keys import SigningKeyService
    from authgate.services.user_sessions import UserSessionService
    from authgate.storage.unit_of_work import SqlUnitOfWorkFactory
    from authgate.throttling import AuthThrottles, CounterThrottle

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


_HTTP_API = (
    "access_token_verifier",
    "accounts",
    "sessions",
    "provider_accounts",
    "email_verification",
    "passwords",
    "user_sessions",
    "account_deletion",
    "oauth",
    "discovery_body",
    "schema_revision",
)


class Services:
    """Every service of authgate, typed, built once on first use. Read-only: the
    attributes are computed, never assigned."""

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
        raise AttributeError(f"Services is read-only ({name})")

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
        """The PEM files' keys (JWT_PRIVATE_KEY_PATH), parsed and checked once, or None."""
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
            scheduled=service.run_scheduled,
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

    def prepare_http_api(self) -> None:
        """Build every service the HTTP API uses now (after :meth:`load_key_ring`), so
        no request pays for it: the argon2 pool and its dummy hash, the providers'
        verifiers, the discovery document (it lists the algorithms published now)
        and the expected schema revision (it reads the migration scripts)."""
        for name in _HTTP_API:
            getattr(self, name)

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
        )
        return engine  # disposed by aclose, after everything that may use it

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

    # -- the HTTP API's services --------------------------------------------------

    @cached_property
    def provider_verifiers(self) -> dict[str, OidcVerifier]:
        from authgate.identity.providers import build_verifiers

        settings = self.settings
        return build_verifiers(
            settings.provider_configs(),
            http=self.http,
            clock=self.clock,
            refetch_cooldown_seconds=settings.jwks_refetch_cooldown_seconds,
            clock_skew_seconds=settings.provider_clock_skew_seconds,
            jwks_timeout_seconds=settings.provider_http_timeout_seconds,
        )

    @cached_property
    def access_tokens(self) -> JwtAccessTokens:
        from authgate.crypto.jwt_tokens import JwtAccessTokens

        settings = self.settings
        return JwtAccessTokens(
            self.key_ring,
            issuer=settings.issuer,
            audiences=settings.audiences,
            ttl_seconds=settings.access_token_ttl_seconds,
            default_client_id=settings.default_client_id,
        )

    @cached_property
    def access_token_verifier(self) -> TokenVerifier:
        """The guard's one check: authgate.resource over the ring's own lookup, so a
        rotation or retirement reaches it at the ring's next refresh."""
        from authgate.crypto.access_token_verifier import access_token_verifier

        return access_token_verifier(
            self.key_ring.trusted_keys,
            issuer=self.settings.issuer,
            audiences=self.settings.audiences,
            clock=self.clock,
        )

    @cached_property
    def audit(self) -> AuditTrail:
        from authgate.services.audit import AuditTrail

        return AuditTrail(uow=self.uow, clock=self.clock, sink=self.overrides.audit_sink)

    @cached_property
    def throttles(self) -> AuthThrottles:
        from authgate.throttling import AuthThrottles, RateLimit

        settings = self.settings
        return AuthThrottles(
            throttle=self.throttle,
            enabled=settings.rate_limit_enabled,
            auth_per_ip=RateLimit.parse(settings.rate_limit_auth_per_ip),
            signup_per_ip=RateLimit.parse(settings.rate_limit_signup_per_ip),
            refresh_per_ip=RateLimit.parse(settings.rate_limit_refresh_per_ip),
            revoke_per_ip=RateLimit.parse(settings.rate_limit_revoke_per_ip),
            failures_per_account=RateLimit.parse(settings.rate_limit_failed_signins_per_account),
            mail_per_ip=RateLimit.parse(settings.rate_limit_mail_per_ip),
            mail_per_account=RateLimit.parse(settings.rate_limit_mail_per_account),
        )

    @cached_property
    def sessions(self) -> SessionService:
        from authgate.crypto.refresh_secrets import SuccessorSealer
        from authgate.services.sessions import SessionPolicy, SessionService

        settings = self.settings
        return SessionService(
            uow=self.uow,
            access_tokens=self.access_tokens,
            clock=self.clock,
            policy=SessionPolicy(
                idle_ttl_seconds=settings.refresh_token_ttl_seconds,
                absolute_ttl_seconds=settings.refresh_token_absolute_ttl_seconds,
                reuse_leeway_seconds=settings.refresh_reuse_leeway_seconds,
            ),
            audit=self.audit,
            throttles=self.throttles,
            # Services get only the keys derived from the secret.
            sealer=SuccessorSealer(self.server_secret.refresh_sealing_keys()),
        )

    @cached_property
    def mail(self) -> Mail:
        """The outbox (queued in the request's transaction), one-time tokens, and the
        delivery that drains the outbox (a background job or a scheduled step)."""
        from authgate.mail.setup import build_mail

        return build_mail(self.settings, uow=self.uow, clock=self.clock)

    @cached_property
    def default_client(self) -> OAuthClient:
        """DEFAULT_CLIENT_ID: the seed routes' and /api/v1's client, not a row."""
        from authgate.oauth.clients import default_client

        return default_client(self.settings.default_client_id, self.settings.audiences)

    @cached_property
    def clients(self) -> ClientRegistry:
        from authgate.oauth.clients import ClientRegistry

        return ClientRegistry(
            uow=self.uow, clock=self.clock, default=self.default_client, throttles=self.throttles
        )

    @cached_property
    def oauth(self) -> OAuthService:
        from authgate.crypto.access_token_verifier import any_audience_decoder
        from authgate.oauth.service import OAuthService

        settings = self.settings
        return OAuthService(
            clients=self.clients,
            sessions=self.sessions,
            access_tokens=self.access_tokens,
            decoder=any_audience_decoder(
                self.key_ring.trusted_keys, issuer=settings.issuer, clock=self.clock
            ),
            uow=self.uow,
            clock=self.clock,
            throttles=self.throttles,
            audit=self.audit,
            issuer=settings.issuer,
        )

    @cached_property
    def password_policy(self) -> PasswordPolicy:
        """One policy for every way a password is set: sign-up, reset, change, operator."""
        from authgate.services.password_policy import PasswordPolicy

        return PasswordPolicy(min_length=self.settings.password_min_length)

    @cached_property
    def password_strength(self) -> PasswordStrength:
        from authgate.services.password_strength import PasswordStrength

        return PasswordStrength(min_score=self.settings.password_min_strength)

    @cached_property
    def password_confirmation(self) -> PasswordConfirmation:
        from authgate.services.password_confirmation import PasswordConfirmation

        return PasswordConfirmation(hasher=self.hasher, throttles=self.throttles, audit=self.audit)

    @cached_property
    def email_verification(self) -> EmailVerificationService:
        from authgate.services.email_verification import EmailVerificationService

        mail = self.mail
        return EmailVerificationService(
            uow=self.uow,
            outbox=mail.outbox,
            tokens=mail.tokens,
            confirmation=self.password_confirmation,
            throttles=self.throttles,
            audit=self.audit,
            clock=self.clock,
            mode=self.settings.email_verification,
        )

    @cached_property
    def passwords(self) -> PasswordLifecycleService:
        from authgate.services.passwords_lifecycle import PasswordLifecycleService

        mail = self.mail
        return PasswordLifecycleService(
            uow=self.uow,
            outbox=mail.outbox,
            tokens=mail.tokens,
            hasher=self.hasher,
            policy=self.password_policy,
            strength=self.password_strength,
            throttles=self.throttles,
            audit=self.audit,
            clock=self.clock,
            confirmation=self.password_confirmation,
            reset_enabled=self.settings.password_reset_enabled,
        )

    @cached_property
    def accounts(self) -> AccountService:
        from authgate.services.accounts import AccountService

        return AccountService(
            uow=self.uow,
            hasher=self.hasher,
            sessions=self.sessions,
            policy=self.password_policy,
            clock=self.clock,
            audit=self.audit,
            throttles=self.throttles,
            strength=self.password_strength,
            outbox=self.mail.outbox,
            email_verification=self.settings.email_verification,
        )

    @cached_property
    def provider_accounts(self) -> ProviderAccountService:
        from authgate.services.provider_accounts import ProviderAccountService

        return ProviderAccountService(
            uow=self.uow,
            verifiers=self.provider_verifiers,
            sessions=self.sessions,
            audit=self.audit,
            clock=self.clock,
            signup_on_signin=self.settings.provider_signup_on_signin,
            throttles=self.throttles,
        )

    @cached_property
    def user_sessions(self) -> UserSessionService:
        from authgate.services.user_sessions import UserSessionService

        return UserSessionService(
            uow=self.uow, clock=self.clock, audit=self.audit, throttles=self.throttles
        )

    @cached_property
    def account_deletion(self) -> AccountDeletionService:
        from authgate.services.account_deletion import AccountDeletionService

        return AccountDeletionService(
            uow=self.uow,
            clock=self.clock,
            audit=self.audit,
            throttles=self.throttles,
            confirmation=self.password_confirmation,
            providers=self.provider_accounts,
        )

    @cached_property
    def discovery_body(self) -> bytes:
        """The RFC 8414 metadata document, serialized once; its algorithms are those
        published when it is first read (after :meth:`load_key_ring`)."""
        import json

        from authgate.bootstrap.keys import published_algorithms
        from authgate.oauth import discovery

        metadata = discovery.metadata(
            issuer=self.settings.issuer,
            public_url=self.settings.effective_public_url,
            algorithms=published_algorithms(self.settings, self.key_ring),
        )
        return json.dumps(metadata, separators=(",", ":")).encode()

    @cached_property
    def schema_revision(self) -> str | None:
        """The migration the code expects (readiness compares the database's to it)."""
        from authgate.storage.migrate import head_revision

        return head_revision()

    # -- scheduled work -----------------------------------------------------------

    @cached_property
    def pruning(self) -> PruningService:
        from authgate.services.pruning import PruningService, RetentionPolicy

        settings = self.settings
        return PruningService(
            uow=self.uow,
            clock=self.clock,
            policy=RetentionPolicy(
                session_retention_days=settings.session_retention_days,
                audit_retention_days=settings.audit_retention_days,
                reuse_leeway_seconds=settings.refresh_reuse_leeway_seconds,
            ),
        )

    # -- the operator's services (CLI) ----------------------------------------------
    # No throttles and no server secret: the command line is not reachable from the
    # network, and `authgate users` must work without loading the key ring.

    @cached_property
    def admin(self) -> AccountAdminService:
        from authgate.services.account_admin import AccountAdminService

        return AccountAdminService(
            uow=self.uow,
            clock=self.clock,
            audit=self.audit,
            hasher=self.hasher,
            policy=self.password_policy,
            strength=self.password_strength,
        )

    @cached_property
    def operator_deletion(self) -> AccountDeletionService:
        from authgate.services.account_deletion import AccountDeletionService

        return AccountDeletionService(uow=self.uow, clock=self.clock, audit=self.audit)

    @cached_property
    def operator_sessions(self) -> UserSessionService:
        from authgate.services.user_sessions import UserSessionService

        return UserSessionService(uow=self.uow, clock=self.clock, audit=self.audit)

    @cached_property
    def operator_clients(self) -> ClientRegistry:
        from authgate.oauth.clients import ClientRegistry

        return ClientRegistry(uow=self.uow, clock=self.clock, default=self.default_client)

    @cached_property
    def importer(self) -> ImportService:
        from authgate.importers.service import ImportService

        return ImportService(uow=self.uow, wrapper=self.hasher, clock=self.clock, audit=self.audit)
