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

from functools import cached_property
from typing import TYPE_CHECKING

from authgate.bootstrap.resources import Resources

if TYPE_CHECKING:
    from authgate.crypto.jwt_tokens import JwtAccessTokens
    from authgate.domain.models import OAuthClient
    from authgate.identity.oidc import OidcVerifier
    from authgate.importers.service import ImportService
    from authgate.mail.setup import Mail
    from authgate.oauth.clients import ClientRegistry
    from authgate.oauth.service import OAuthService
    from authgate.resource import TokenVerifier
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
    from authgate.services.user_sessions import UserSessionService
    from authgate.throttling import AuthThrottles

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


class Services(Resources):
    """Every service of authgate, typed, built once on first use (see the module
    docstring). Read-only, like its :class:`Resources`."""

    def prepare_http_api(self) -> None:
        """Build every service the HTTP API uses now (after :meth:`load_key_ring`), so
        no request pays for it: the argon2 pool and its dummy hash, the providers'
        verifiers, the discovery document (it lists the algorithms published now)
        and the expected schema revision (it reads the migration scripts)."""
        for name in _HTTP_API:
            getattr(self, name)

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
            observer=self.observer,
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
            observer=self.observer,
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
            observer=self.observer,
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
