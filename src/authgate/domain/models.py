"""Value objects shared by services and adapters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    # None for a provider account whose token carried no email.
    email: str | None
    # NFC, local part lower()ed, domain IDNA-lowercased (domain.emails.email_key);
    # the unique index is on this column. None when no provider vouches for the
    # address: an untrusted address claims nothing, so nobody can squat someone
    # else's email through an identity whose provider is not its authority.
    email_key: str | None
    email_verified: bool
    given_name: str
    family_name: str
    display_name: str
    password_hash: str | None
    created_at: datetime
    # An imported account: which seed it came from (``authgate import``), and for a
    # seed's Google/Apple user (keyed by email only) the provider whose first
    # verified sign-in with the same address binds its subject; then None.
    imported_from: str | None = None
    imported_provider: str | None = None
    # Set by an operator (``authgate users disable``): no sign-in, no refresh.
    disabled_at: datetime | None = None

    @property
    def full_name(self) -> str:
        if self.display_name:
            return self.display_name
        return " ".join(part for part in (self.given_name, self.family_name) if part)


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """An external identity linked to a user, keyed on (provider, subject)."""

    id: UUID
    user_id: UUID
    provider: str
    subject: str
    email: str | None
    email_verified: bool
    created_at: datetime
    last_used_at: datetime


@dataclass(frozen=True, slots=True)
class IdTokenUse:
    """A provider ID token that started a session (one per token, ever)."""

    # SHA-256 hex of the token's ``header.payload``.
    token_hash: str
    provider: str
    used_at: datetime
    # Until then the token could still verify; afterwards the row may be pruned.
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A refresh-token family: everything descended from one sign-in."""

    id: UUID
    user_id: UUID
    created_at: datetime
    # Fixed at sign-in: no amount of rotation extends a session past this.
    absolute_expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    # What the session list shows (migration 0006), bounded and free of control
    # characters when written (services.sessions.client_detail).
    last_used_at: datetime | None = None
    user_agent: str | None = None
    ip_address: str | None = None
    # The OAuth client it was issued to (migration 0008); None: the default client.
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class SessionView:
    """A live session as its user sees it (``GET /api/v1/sessions``)."""

    id: UUID
    user_id: UUID
    created_at: datetime
    # When its newest refresh token was issued: the last sign-in or refresh.
    last_used_at: datetime
    user_agent: str | None
    ip_address: str | None


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    id: UUID
    session_id: UUID
    parent_id: UUID | None
    # SHA-256 (hex) of the token; the token itself is never stored.
    token_hash: str
    issued_at: datetime
    expires_at: datetime
    # This token, sealed under a key derived from the server secret and its
    # *parent* token, which only the client holds: lets a retry of the parent
    # inside the leeway get this same token back without the database (even with
    # an old token) ever yielding a usable one. Cleared once nothing may open it.
    sealed_for_parent: bytes | None = None


@dataclass(frozen=True, slots=True)
class FoundToken:
    """A refresh token with everything a refresh decides on, read in one query."""

    token: RefreshTokenRecord
    session: SessionRecord
    user: User
    # The token that replaced this one: present exactly when it was rotated.
    successor: RefreshTokenRecord | None = None
    # Whether the successor was itself rotated (then this token is an ancestor).
    successor_rotated: bool = False


@dataclass(frozen=True, slots=True)
class SessionOwner:
    """A session with its user (None once the account is deleted), read in one query."""

    session: SessionRecord
    user: User | None


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """An OAuth client (RFC 6749 §2): registered, or the default one from settings.

    ``secret_hash`` is SHA-256 (hex) of the secret; None for a public client."""

    client_id: str
    secret_hash: str | None
    grant_types: tuple[str, ...]
    audiences: tuple[str, ...]
    may_introspect: bool
    created_at: datetime | None = None
    # The settings-defined client of the seed routes and /api/v1 (not a row).
    is_default: bool = False

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None

    @property
    def session_client_id(self) -> str | None:
        """What ``sessions.client_id`` holds for this client's sessions."""
        return None if self.is_default else self.client_id


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who sent a request, for audit and throttling; never used for authorization."""

    address: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One security event. Never carries a password or a token."""

    name: str
    occurred_at: datetime
    user_id: UUID | None = None
    session_id: UUID | None = None
    reason: str | None = None
    provider: str | None = None
    client_address: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class OneTimeToken:
    """An email-verification, password-reset or email-change token (issue 11).

    Only ``token_hash`` (SHA-256 hex) is stored; the token itself exists in the mail."""

    id: UUID
    user_id: UUID
    purpose: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    # The new address an ``email_change`` token moves the account to.
    email: str | None = None
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxMail:
    """Mail to send: the intent only (who, why, where), never a link or a token."""

    id: UUID
    user_id: UUID | None
    purpose: str
    address: str | None
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A rendered message, ready for a :class:`authgate.domain.ports.MailSender`."""

    to: str
    subject: str
    text: str
    html: str
    purpose: str
    # The link the message carries; only the development outbox logs it.
    link: str | None = None
