"""In-memory adapters for the ports, so service tests need no database or network."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Self
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
from authgate.errors import Conflict, EmailTaken, IdentityTaken


@dataclasses.dataclass
class Store:
    users: dict[UUID, User] = dataclasses.field(default_factory=dict)
    sessions: dict[UUID, SessionRecord] = dataclasses.field(default_factory=dict)
    tokens: dict[UUID, RefreshTokenRecord] = dataclasses.field(default_factory=dict)
    audit: list[AuditEvent] = dataclasses.field(default_factory=list)
    identities: dict[UUID, IdentityRecord] = dataclasses.field(default_factory=dict)
    id_token_uses: dict[str, IdTokenUse] = dataclasses.field(default_factory=dict)
    one_time_tokens: dict[UUID, OneTimeToken] = dataclasses.field(default_factory=dict)
    mail_outbox: dict[UUID, OutboxMail] = dataclasses.field(default_factory=dict)
    mail_leases: dict[UUID, datetime] = dataclasses.field(default_factory=dict)
    clients: dict[str, OAuthClient] = dataclasses.field(default_factory=dict)
    commits: int = 0


class FakeUsers:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, user: User) -> None:
        if any(u.email_key == user.email_key for u in self._s.users.values()):
            raise EmailTaken()
        self._s.users[user.id] = user

    async def get(self, user_id: UUID) -> User | None:
        return self._s.users.get(user_id)

    async def get_by_email_key(self, email_key: str) -> User | None:
        return next((u for u in self._s.users.values() if u.email_key == email_key), None)

    async def set_password_hash(self, user_id: UUID, password_hash: str | None) -> None:
        self._s.users[user_id] = dataclasses.replace(
            self._s.users[user_id], password_hash=password_hash
        )

    async def mark_email_verified(self, user_id: UUID, *, email: str, email_key: str) -> None:
        self._s.users[user_id] = dataclasses.replace(
            self._s.users[user_id], email=email, email_key=email_key, email_verified=True
        )

    async def confirm_email(self, user_id: UUID, *, email_key: str) -> bool:
        user = self._s.users.get(user_id)
        if user is None or user.email_key != email_key:
            return False
        self._s.users[user_id] = dataclasses.replace(user, email_verified=True)
        return True

    async def clear_imported_provider(self, user_id: UUID) -> None:
        self._s.users[user_id] = dataclasses.replace(self._s.users[user_id], imported_provider=None)

    async def count_legacy_password_hashes(self) -> int:
        marker = "$authgate-legacy$"
        return sum(1 for u in self._s.users.values() if (u.password_hash or "").startswith(marker))

    async def list_all(self, *, limit: int) -> list[User]:
        return sorted(self._s.users.values(), key=lambda u: u.created_at)[:limit]

    async def delete(self, user_id: UUID) -> bool:
        if self._s.users.pop(user_id, None) is None:
            return False
        owned: tuple[dict[Any, Any], ...] = (
            self._s.identities,
            self._s.one_time_tokens,
            self._s.mail_outbox,
        )
        for table in owned:
            for key, row in list(table.items()):
                if row.user_id == user_id:
                    del table[key]
        for session_id, session in list(self._s.sessions.items()):
            if session.user_id == user_id:
                del self._s.sessions[session_id]
                for token_id, token in list(self._s.tokens.items()):
                    if token.session_id == session_id:
                        del self._s.tokens[token_id]
        return True

    async def set_disabled(self, user_id: UUID, at: datetime | None) -> None:
        self._s.users[user_id] = dataclasses.replace(self._s.users[user_id], disabled_at=at)

    async def change_email(self, user_id: UUID, *, email: str, email_key: str) -> None:
        if any(u.email_key == email_key and u.id != user_id for u in self._s.users.values()):
            raise EmailTaken()
        await self.mark_email_verified(user_id, email=email, email_key=email_key)


class FakeIdentities:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, identity: IdentityRecord) -> None:
        if await self.get(identity.provider, identity.subject) is not None:
            raise IdentityTaken()
        self._s.identities[identity.id] = identity

    async def get(self, provider: str, subject: str) -> IdentityRecord | None:
        return next(
            (
                i
                for i in self._s.identities.values()
                if (i.provider, i.subject) == (provider, subject)
            ),
            None,
        )

    async def touch(
        self, identity_id: UUID, *, at: datetime, email: str | None, email_verified: bool
    ) -> None:
        self._s.identities[identity_id] = dataclasses.replace(
            self._s.identities[identity_id],
            last_used_at=at,
            email=email,
            email_verified=email_verified,
        )

    async def list_for_user(self, user_id: UUID) -> list[IdentityRecord]:
        return [i for i in self._s.identities.values() if i.user_id == user_id]


class FakeSessions:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add_session(self, session: SessionRecord) -> None:
        self._s.sessions[session.id] = session

    async def add_token(self, token: RefreshTokenRecord) -> None:
        self._s.tokens[token.id] = token

    async def find_token(self, token_hash: str) -> FoundToken | None:
        for token in self._s.tokens.values():
            if token.token_hash == token_hash:
                session = self._s.sessions[token.session_id]
                successor = self._child_of(token.id)
                return FoundToken(
                    token=token,
                    session=session,
                    user=self._s.users[session.user_id],
                    successor=successor,
                    successor_rotated=successor is not None
                    and self._child_of(successor.id) is not None,
                )
        return None

    async def add_successor(self, token: RefreshTokenRecord) -> bool:
        # The unique parent_id index, as a check.
        assert token.parent_id is not None
        if self._child_of(token.parent_id) is not None:
            return False
        self._s.tokens[token.id] = token
        return True

    def _child_of(self, token_id: UUID) -> RefreshTokenRecord | None:
        return next((t for t in self._s.tokens.values() if t.parent_id == token_id), None)

    async def clear_sealed_copy(self, token_id: UUID) -> None:
        self._s.tokens[token_id] = dataclasses.replace(
            self._s.tokens[token_id], sealed_for_parent=None
        )

    async def revoke_session(self, session_id: UUID, *, at: datetime, reason: str) -> None:
        session = self._s.sessions[session_id]
        if session.revoked_at is None:
            self._s.sessions[session_id] = dataclasses.replace(
                session, revoked_at=at, revoked_reason=reason
            )
        for token in list(self._s.tokens.values()):
            if token.session_id == session_id:
                await self.clear_sealed_copy(token.id)

    async def revoke_user_sessions(self, user_id: UUID, *, at: datetime, reason: str) -> int:
        count = 0
        for session in list(self._s.sessions.values()):
            if session.user_id == user_id:
                count += session.revoked_at is None
                await self.revoke_session(session.id, at=at, reason=reason)
        return count

    async def revoke_other_sessions(
        self, user_id: UUID, *, keep: UUID, at: datetime, reason: str
    ) -> int:
        count = 0
        for session in list(self._s.sessions.values()):
            if session.user_id == user_id and session.id != keep:
                count += session.revoked_at is None
                await self.revoke_session(session.id, at=at, reason=reason)
        return count

    async def revoke_user_session(
        self, user_id: UUID, session_id: UUID, *, at: datetime, reason: str
    ) -> bool:
        session = self._s.sessions.get(session_id)
        if session is None or session.user_id != user_id or session.revoked_at is not None:
            return False
        await self.revoke_session(session_id, at=at, reason=reason)
        return True

    async def owner_of(self, session_id: UUID) -> UUID | None:
        session = self._s.sessions.get(session_id)
        return session.user_id if session else None

    async def find_session(self, session_id: UUID) -> SessionOwner | None:
        session = self._s.sessions.get(session_id)
        if session is None:
            return None
        return SessionOwner(session=session, user=self._s.users.get(session.user_id))

    async def list_live(self, user_id: UUID, *, now: datetime) -> list[SessionView]:
        views = []
        for session in self._s.sessions.values():
            tokens = [t for t in self._s.tokens.values() if t.session_id == session.id]
            if (
                session.user_id != user_id
                or session.revoked_at is not None
                or now >= session.absolute_expires_at
                or not tokens
                or max(t.expires_at for t in tokens) <= now
            ):
                continue
            views.append(
                SessionView(
                    id=session.id,
                    user_id=user_id,
                    created_at=session.created_at,
                    last_used_at=max(t.issued_at for t in tokens),
                    user_agent=session.user_agent,
                    ip_address=session.ip_address,
                )
            )
        return sorted(views, key=lambda v: v.created_at, reverse=True)


class FakeOneTimeTokens:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, token: OneTimeToken) -> None:
        for old in list(self._s.one_time_tokens.values()):
            same = (old.user_id, old.purpose) == (token.user_id, token.purpose)
            if same and old.used_at is None:
                self._s.one_time_tokens[old.id] = dataclasses.replace(old, used_at=token.created_at)
        self._s.one_time_tokens[token.id] = token

    async def find(self, token_hash: str) -> OneTimeToken | None:
        return next(
            (t for t in self._s.one_time_tokens.values() if t.token_hash == token_hash), None
        )

    async def consume(self, token_id: UUID, *, at: datetime) -> bool:
        token = self._s.one_time_tokens.get(token_id)
        if token is None or token.used_at is not None:
            return False
        self._s.one_time_tokens[token_id] = dataclasses.replace(token, used_at=at)
        return True

    async def invalidate_user(self, user_id: UUID, *, at: datetime) -> None:
        for token in list(self._s.one_time_tokens.values()):
            if token.user_id == user_id and token.used_at is None:
                self._s.one_time_tokens[token.id] = dataclasses.replace(token, used_at=at)

    async def invalidate_purpose(self, user_id: UUID, purpose: str, *, at: datetime) -> None:
        for token in list(self._s.one_time_tokens.values()):
            if (token.user_id, token.purpose) == (user_id, purpose) and token.used_at is None:
                self._s.one_time_tokens[token.id] = dataclasses.replace(token, used_at=at)


class FakeMailOutbox:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, mail: OutboxMail) -> None:
        self._s.mail_outbox[mail.id] = mail

    async def claim(
        self, *, now: datetime, lease_until: datetime, limit: int, max_attempts: int
    ) -> list[OutboxMail]:
        due = [
            m
            for m in self._s.mail_outbox.values()
            if m.sent_at is None
            and m.attempts < max_attempts
            and (m.next_attempt_at or m.created_at) <= now
            and self._s.mail_leases.get(m.id, now) <= now
        ][:limit]
        for mail in due:
            self._s.mail_leases[mail.id] = lease_until
        return due

    async def mark_sent(self, mail_id: UUID, *, at: datetime) -> None:
        self._s.mail_outbox[mail_id] = dataclasses.replace(self._s.mail_outbox[mail_id], sent_at=at)
        self._s.mail_leases.pop(mail_id, None)

    async def mark_failed(
        self, mail_id: UUID, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        self._s.mail_outbox[mail_id] = dataclasses.replace(
            self._s.mail_outbox[mail_id],
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            last_error=error,
        )
        self._s.mail_leases.pop(mail_id, None)

    async def delete(self, mail_id: UUID) -> None:
        self._s.mail_outbox.pop(mail_id, None)
        self._s.mail_leases.pop(mail_id, None)

    async def delete_unsent_for_user(self, user_id: UUID, *, purpose: str | None = None) -> None:
        for mail in list(self._s.mail_outbox.values()):
            wanted = purpose is None or mail.purpose == purpose
            if mail.user_id == user_id and mail.sent_at is None and wanted:
                self._s.mail_outbox.pop(mail.id, None)
                self._s.mail_leases.pop(mail.id, None)


class RecordingMailSender:
    """Keeps what it was asked to send; ``fail`` makes every send fail."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []
        self.fail = False

    async def send(self, message: OutgoingMail) -> None:
        from authgate.errors import MailDeliveryFailed

        if self.fail:
            raise MailDeliveryFailed(detail_for_log="fake server down")
        self.sent.append(message)


class FakeAudit:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, event: AuditEvent) -> None:
        self._s.audit.append(event)

    async def erase_client_details(self, user_id: UUID) -> None:
        self._s.audit = [
            dataclasses.replace(e, client_address=None, user_agent=None)
            if e.user_id == user_id
            else e
            for e in self._s.audit
        ]

    async def list(
        self, *, user_id: UUID | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditEvent]:
        events = [e for e in self._s.audit if user_id is None or e.user_id == user_id]
        return [e for e in events if since is None or e.occurred_at >= since][:limit]


class FakeIdTokenUses:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, use: IdTokenUse) -> bool:
        # The primary key, as a check.
        if use.token_hash in self._s.id_token_uses:
            return False
        self._s.id_token_uses[use.token_hash] = use
        return True


class FakeClients:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, client: OAuthClient) -> None:
        if client.client_id in self._s.clients:
            raise Conflict()
        self._s.clients[client.client_id] = client

    async def get(self, client_id: str) -> OAuthClient | None:
        return self._s.clients.get(client_id)

    async def list_all(self) -> list[OAuthClient]:
        return sorted(self._s.clients.values(), key=lambda c: c.client_id)

    async def delete(self, client_id: str) -> bool:
        return self._s.clients.pop(client_id, None) is not None

    async def revoke_sessions(self, client_id: str, *, at: datetime, reason: str) -> int:
        count = 0
        for session in list(self._s.sessions.values()):
            if session.client_id == client_id and session.revoked_at is None:
                self._s.sessions[session.id] = dataclasses.replace(
                    session, revoked_at=at, revoked_reason=reason
                )
                count += 1
        return count


class FakeUnitOfWork:
    """Works on a copy and publishes it on a clean exit: an exception writes nothing."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._work: Store | None = None
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    @property
    def users(self) -> FakeUsers:
        assert self._work is not None
        return FakeUsers(self._work)

    @property
    def sessions(self) -> FakeSessions:
        assert self._work is not None
        return FakeSessions(self._work)

    @property
    def clients(self) -> FakeClients:
        assert self._work is not None
        return FakeClients(self._work)

    @property
    def identities(self) -> FakeIdentities:
        assert self._work is not None
        return FakeIdentities(self._work)

    @property
    def audit(self) -> FakeAudit:
        assert self._work is not None
        return FakeAudit(self._work)

    @property
    def id_token_uses(self) -> FakeIdTokenUses:
        assert self._work is not None
        return FakeIdTokenUses(self._work)

    @property
    def pruning(self) -> Any:
        raise NotImplementedError("pruning is tested on the real databases")

    @property
    def one_time_tokens(self) -> FakeOneTimeTokens:
        assert self._work is not None
        return FakeOneTimeTokens(self._work)

    @property
    def mail_outbox(self) -> FakeMailOutbox:
        assert self._work is not None
        return FakeMailOutbox(self._work)

    async def __aenter__(self) -> Self:
        self._work = copy.deepcopy(self._store)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._work is not None:
            self._store.users = self._work.users
            self._store.sessions = self._work.sessions
            self._store.tokens = self._work.tokens
            self._store.audit = self._work.audit
            self._store.identities = self._work.identities
            self._store.id_token_uses = self._work.id_token_uses
            self._store.one_time_tokens = self._work.one_time_tokens
            self._store.mail_outbox = self._work.mail_outbox
            self._store.mail_leases = self._work.mail_leases
            self._store.commits += 1
            for callback in self._after_commit:
                callback()
        self._after_commit = []
        self._work = None


class RecordingHasher:
    """Counts every kind of hashing work; 'hash:<pw>' is the stored form."""

    def __init__(self, *, rehash: bool = False) -> None:
        self.calls: list[str] = []
        self.rehash = rehash

    async def hash(self, password: str) -> str:
        self.calls.append("hash")
        return f"hash:{password}"

    async def verify(self, password_hash: str, password: str) -> bool:
        self.calls.append("verify")
        return password_hash == f"hash:{password}"

    async def verify_dummy(self, password: str) -> None:
        self.calls.append("verify_dummy")

    def needs_rehash(self, password_hash: str) -> bool:
        return self.rehash


class FakeAccessTokens:
    ttl_seconds = 900

    def __init__(self) -> None:
        self.issued: list[tuple[UUID, UUID]] = []

    def issue(
        self,
        user: User,
        *,
        session_id: UUID,
        now: datetime,
        client_id: str | None = None,
        audiences: tuple[str, ...] | None = None,
    ) -> str:
        self.issued.append((user.id, session_id))
        return f"access:{user.id}:{session_id}:{len(self.issued)}"

    def issue_for_client(self, client_id: str, *, audiences: tuple[str, ...], now: datetime) -> str:
        return f"service:{client_id}"


class AllowAllThrottles:
    """Throttles that never refuse but remember what they were asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def check_ip(self, scope: str, address: str) -> None:
        self.calls.append(("ip:" + scope, address))

    async def begin_attempt(self, email_key: str) -> None:
        self.calls.append(("begin_attempt", email_key))

    async def record_success(self, email_key: str) -> None:
        self.calls.append(("record_success", email_key))

    async def check_mail_account(self, account_key: str) -> None:
        self.calls.append(("mail_account", account_key))


class AcceptAnyPassword:
    def check(self, password: str, *, email: str, names: object) -> None:
        return None
