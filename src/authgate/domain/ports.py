"""Ports: the small interfaces services depend on. Adapters live in storage/ and crypto/."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Literal, Protocol, Self
from uuid import UUID

from authgate.domain.models import (
    AuditEvent,
    FoundToken,
    IdentityRecord,
    IdTokenUse,
    OAuthClient,
    OneTimeToken,
    OutboxMail,
    OutgoingMail,
    RefreshTokenRecord,
    SessionOwner,
    SessionRecord,
    SessionView,
    User,
)


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Insert a user; raise :class:`authgate.errors.EmailTaken` if the email key exists."""
        ...

    async def get(self, user_id: UUID) -> User | None: ...

    async def get_by_email_key(self, email_key: str) -> User | None: ...

    async def set_password_hash(self, user_id: UUID, password_hash: str | None) -> None: ...

    async def mark_email_verified(self, user_id: UUID, *, email: str, email_key: str) -> None: ...

    async def confirm_email(self, user_id: UUID, *, email_key: str) -> bool:
        """Mark the address verified only if the account still has ``email_key``
        (a conditional UPDATE that writes no address); False if it moved."""
        ...

    async def clear_imported_provider(self, user_id: UUID) -> None:
        """An imported provider user's subject is now bound: no second bind."""
        ...

    async def count_legacy_password_hashes(self) -> int:
        """Imported accounts whose password is still in its legacy wrapper (not yet
        upgraded by a sign-in)."""
        ...

    async def list_all(self, *, limit: int) -> list[User]:
        """The oldest ``limit`` accounts (operator listing)."""
        ...

    async def delete(self, user_id: UUID) -> bool:
        """Delete the user; its identities, sessions, refresh tokens, one-time tokens and
        queued mail go with it (foreign keys ON DELETE CASCADE). Whether it existed."""
        ...

    async def set_disabled(self, user_id: UUID, at: datetime | None) -> None:
        """Disable the account from ``at``, or enable it again with None."""
        ...

    async def change_email(self, user_id: UUID, *, email: str, email_key: str) -> None:
        """Move the account to a new (verified) address; raise
        :class:`authgate.errors.EmailTaken` if another account holds its key."""
        ...


class IdentityRepository(Protocol):
    async def add(self, identity: IdentityRecord) -> None:
        """Insert; raise :class:`authgate.errors.IdentityTaken` if (provider, subject) exists."""
        ...

    async def get(self, provider: str, subject: str) -> IdentityRecord | None: ...

    async def touch(
        self, identity_id: UUID, *, at: datetime, email: str | None, email_verified: bool
    ) -> None: ...

    async def list_for_user(self, user_id: UUID) -> list[IdentityRecord]: ...


class IdTokenUseRepository(Protocol):
    """Which provider ID tokens already started a session."""

    async def add(self, use: IdTokenUse) -> bool:
        """Record ``use``; False if its token hash is already recorded (the token was
        used before). The primary key decides, so of two concurrent uses one wins."""
        ...


class SessionRepository(Protocol):
    async def add_session(self, session: SessionRecord) -> None: ...

    async def add_token(self, token: RefreshTokenRecord) -> None: ...

    async def find_token(self, token_hash: str) -> FoundToken | None:
        """A token by hash, with its session, user and successor, in one read.

        No row lock: rotation is decided by :meth:`add_successor`, which a
        concurrent rotation of the same token makes fail."""
        ...

    async def add_successor(self, token: RefreshTokenRecord) -> bool:
        """Insert the token that replaces ``token.parent_id``: that is what rotates
        the parent. False if the parent already has one (another request won)."""
        ...

    async def clear_sealed_copy(self, token_id: UUID) -> None:
        """Forget the token's sealed copy (``sealed_for_parent``): once the token has
        rotated, its parent is an ancestor and no retry may open it."""
        ...

    async def revoke_session(self, session_id: UUID, *, at: datetime, reason: str) -> None:
        """Revoke the session (if not yet) and clear its tokens' sealed copies."""
        ...

    async def revoke_user_sessions(self, user_id: UUID, *, at: datetime, reason: str) -> int:
        """Revoke every session of the user and clear their sealed copies; return how
        many were live."""
        ...

    async def revoke_other_sessions(
        self, user_id: UUID, *, keep: UUID, at: datetime, reason: str
    ) -> int:
        """Revoke every live session of the user except ``keep``; return how many."""
        ...

    async def revoke_user_session(
        self, user_id: UUID, session_id: UUID, *, at: datetime, reason: str
    ) -> bool:
        """Revoke the session if it is live and ``user_id``'s; whether it was."""
        ...

    async def owner_of(self, session_id: UUID) -> UUID | None:
        """The user a session belongs to, if it exists."""
        ...

    async def list_live(self, user_id: UUID, *, now: datetime) -> list[SessionView]:
        """The user's sessions neither revoked nor expired at ``now``, newest first."""
        ...

    async def find_session(self, session_id: UUID) -> SessionOwner | None:
        """A session with its user, in one read (introspection, revocation by ``sid``)."""
        ...


class ClientRepository(Protocol):
    async def add(self, client: OAuthClient) -> None:
        """Insert; raise :class:`authgate.errors.Conflict` if the id is taken."""
        ...

    async def get(self, client_id: str) -> OAuthClient | None: ...

    async def list_all(self) -> list[OAuthClient]: ...

    async def delete(self, client_id: str) -> bool:
        """Delete the client; whether it existed."""
        ...

    async def revoke_sessions(self, client_id: str, *, at: datetime, reason: str) -> int:
        """Revoke every live session issued to the client; return how many."""
        ...


class OneTimeTokenRepository(Protocol):
    """Verification, reset and email-change tokens, by SHA-256 of the token."""

    async def add(self, token: OneTimeToken) -> None:
        """Insert ``token`` and mark every older unused token of the same user and
        purpose used: only the newest link works."""
        ...

    async def find(self, token_hash: str) -> OneTimeToken | None: ...

    async def consume(self, token_id: UUID, *, at: datetime) -> bool:
        """Mark the token used if it is not yet: a conditional UPDATE, so of two
        concurrent uses exactly one gets True."""
        ...

    async def invalidate_user(self, user_id: UUID, *, at: datetime) -> None:
        """Mark every unused token of the user used (a password change)."""
        ...

    async def invalidate_purpose(self, user_id: UUID, purpose: str, *, at: datetime) -> None:
        """Mark every unused token of the user with ``purpose`` used."""
        ...


class MailOutboxRepository(Protocol):
    """The queue of mail to send, shared by every instance through the database."""

    async def add(self, mail: OutboxMail) -> None: ...

    async def claim(
        self, *, now: datetime, lease_until: datetime, limit: int, max_attempts: int
    ) -> list[OutboxMail]:
        """Lease up to ``limit`` due rows (tried fewer than ``max_attempts`` times)
        until ``lease_until``. A row leased by another drainer (``locked_until`` in the
        future) is never returned twice."""
        ...

    async def mark_sent(self, mail_id: UUID, *, at: datetime) -> None: ...

    async def mark_failed(
        self, mail_id: UUID, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None: ...

    async def delete(self, mail_id: UUID) -> None: ...

    async def delete_unsent_for_user(self, user_id: UUID, *, purpose: str | None = None) -> None:
        """Drop every queued, not yet sent mail of the user (the account changed
        hands or was disabled: what it asked for earlier must not go out), or only
        that of ``purpose``."""
        ...


class AuditRepository(Protocol):
    """Append-only: events are added and read, never changed (but for erasing a
    deleted account's client details); only pruning removes them, once older than
    the audit retention."""

    async def add(self, event: AuditEvent) -> None: ...

    async def erase_client_details(self, user_id: UUID) -> None:
        """Forget the address and user agent of every event of the user (account
        deletion): the events stay, with the user id only."""
        ...

    async def list(
        self, *, user_id: UUID | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditEvent]: ...


class PruningRepository(Protocol):
    """Deletes what has outlived its retention, at most ``limit`` rows per call."""

    async def delete_ended_sessions(self, *, ended_before: datetime, limit: int) -> tuple[int, int]:
        """Sessions revoked, past their absolute lifetime, or whose current token
        idle-expired, before ``ended_before``; with their tokens. (sessions, tokens)."""
        ...

    async def delete_rotated_tokens(self, *, expired_before: datetime, limit: int) -> int: ...

    async def clear_sealed_copies(self, *, issued_before: datetime, limit: int) -> int: ...

    async def delete_expired_id_token_uses(
        self, *, expired_before: datetime, limit: int
    ) -> int: ...

    async def delete_expired_one_time_tokens(
        self, *, expired_before: datetime, limit: int
    ) -> int: ...

    async def delete_finished_mail(
        self, *, sent_before: datetime, abandoned_before: datetime, limit: int
    ) -> int:
        """Mail sent before ``sent_before``, and mail never sent that was queued
        before ``abandoned_before`` (the drainer has given up on it)."""
        ...

    async def delete_audit_events(self, *, occurred_before: datetime, limit: int) -> int: ...

    async def claim_run(self, task: str, *, now: datetime, last_run_before: datetime) -> bool:
        """Mark ``task`` as running now unless it last ran after ``last_run_before``;
        False if it did (atomic: of two instances claiming at once, one wins)."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Leaving the block normally commits; an exception rolls back."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def identities(self) -> IdentityRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def id_token_uses(self) -> IdTokenUseRepository: ...

    @property
    def pruning(self) -> PruningRepository: ...

    @property
    def one_time_tokens(self) -> OneTimeTokenRepository: ...

    @property
    def mail_outbox(self) -> MailOutboxRepository: ...

    @property
    def clients(self) -> ClientRepository: ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this unit has committed; never if it rolls back."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """True if the password matches; False for a mismatch or an unreadable hash.

        An imported seed hash verifies only in its argon2id wrapper (then
        :meth:`needs_rehash` is True); a raw legacy hash never verifies."""
        ...

    async def verify_dummy(self, password: str) -> None:
        """Spend the work of one verification without any account, so that an unknown
        email costs the same time as a wrong password."""
        ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class Throttles(Protocol):
    """Abuse limits. Each check raises :class:`authgate.errors.TooManyRequests`."""

    async def check_ip(
        self, scope: Literal["auth", "signup", "refresh", "revoke", "mail"], address: str
    ) -> None:
        """Count one request of ``scope`` from ``address``."""
        ...

    async def begin_attempt(self, email_key: str) -> None:
        """Count one password attempt on the account, before verifying it; raise
        :class:`authgate.errors.AccountLocked` once the account is over its limit."""
        ...

    async def record_success(self, email_key: str) -> None:
        """The password was right: forget the attempts counted for the account."""
        ...

    async def check_mail_account(self, account_key: str) -> None:
        """Count one mail-sending request for the account (email key or user id)."""
        ...


class PasswordRule(Protocol):
    def check(self, password: str, *, email: str, names: Sequence[str]) -> None:
        """Raise :class:`authgate.errors.WeakPassword` for a refused password."""
        ...


class MailSender(Protocol):
    """Delivers one rendered message (SMTP, or the development outbox)."""

    async def send(self, message: OutgoingMail) -> None:
        """Deliver or raise :class:`authgate.errors.MailDeliveryFailed`."""
        ...


class MailTemplateRenderer(Protocol):
    def render(self, purpose: str, context: Mapping[str, object]) -> tuple[str, str, str]:
        """(subject, text, html) of the mail for ``purpose``."""
        ...


class AccessTokenIssuer(Protocol):
    @property
    def ttl_seconds(self) -> int: ...

    def issue(
        self,
        user: User,
        *,
        session_id: UUID,
        now: datetime,
        client_id: str | None = None,
        audiences: tuple[str, ...] | None = None,
    ) -> str:
        """A user's access token; ``client_id``/``audiences`` None: the default client's."""
        ...

    def issue_for_client(self, client_id: str, *, audiences: tuple[str, ...], now: datetime) -> str:
        """A service token (client_credentials): ``sub`` = client id, no ``sid``."""
        ...
