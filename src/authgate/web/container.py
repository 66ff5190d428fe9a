"""What the routes need, built once in the lifespan and kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from authgate.clock import Clock
from authgate.crypto.keyring import KeyRing
from authgate.oauth.service import OAuthService
from authgate.resource import TokenVerifier
from authgate.services.account_deletion import AccountDeletionService
from authgate.services.accounts import AccountService
from authgate.services.email_verification import EmailVerificationService
from authgate.services.mail_delivery import MailDelivery
from authgate.services.passwords_lifecycle import PasswordLifecycleService
from authgate.services.provider_accounts import ProviderAccountService
from authgate.services.sessions import SessionService
from authgate.services.user_sessions import UserSessionService


@dataclass(frozen=True)
class Container:
    clock: Clock
    engine: AsyncEngine
    # authgate.resource's verifier over the server's own keys: the guard's one check.
    access_token_verifier: TokenVerifier
    accounts: AccountService
    sessions: SessionService
    provider_accounts: ProviderAccountService
    # Account lifecycle (issue 11).
    email_verification: EmailVerificationService
    passwords: PasswordLifecycleService
    mail: MailDelivery
    user_sessions: UserSessionService
    account_deletion: AccountDeletionService
    # The signing-key ring: its JWKS body is served as is (refreshed in the background).
    key_ring: KeyRing
    jwks_max_age_seconds: int
    # OAuth endpoints and discovery (issue 10 §2).
    oauth: OAuthService
    discovery_body: bytes
    # The migration the code expects; /readyz is not ready until the database is at it.
    schema_revision: str | None = None
