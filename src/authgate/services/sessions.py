"""Sessions: start one at sign-in, rotate its refresh token, revoke it.

A session is a refresh-token family. Rotation ends the presented token and issues
its successor in one transaction that two concurrent requests cannot both win.
Presenting an already-rotated token means someone else holds a copy: after the
leeway that revokes the whole family (OAuth 2.0 Security BCP, RFC 9700 §4.14.2).

For the leeway, each successor is kept sealed for its parent (crypto.refresh_secrets)
only as long as it can be used: rotating the successor clears its sealed copy in the
same transaction, revoking the session clears all of them, and pruning clears the
rest once the leeway has passed.
"""

from __future__ import annotations

import hmac
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from uuid import UUID

from authgate.clock import Clock
from authgate.crypto.refresh_secrets import (
    MAX_TOKEN_LENGTH,
    SuccessorSealer,
    hash_refresh_token,
    new_refresh_token,
)
from authgate.domain.models import (
    ClientInfo,
    FoundToken,
    OAuthClient,
    RefreshTokenRecord,
    SessionRecord,
    TokenPair,
    User,
)
from authgate.domain.observations import NO_OBSERVER, Observer, RefreshOutcome
from authgate.domain.ports import AccessTokenIssuer, Throttles, UnitOfWork, UnitOfWorkFactory
from authgate.errors import InvalidRefreshToken, RefreshTokenReused, TooManyRequests
from authgate.services.audit import AuditTrail
from authgate.services.transactions import ConflictRetry


@dataclass(frozen=True)
class SessionPolicy:
    idle_ttl_seconds: int
    absolute_ttl_seconds: int
    reuse_leeway_seconds: int


@dataclass(frozen=True)
class StartedSession:
    """A session created inside a caller's unit of work; tokens are minted after commit."""

    user: User
    session_id: UUID
    refresh_token: str
    # The OAuth client it was issued to; None: the default client.
    client: OAuthClient | None = None


class RotationOutcome(Enum):
    ROTATED = "rotated"  # a new successor was issued
    RETRIED = "retried"  # a retry of the parent within the leeway: the same successor again
    REUSED = "reused"  # an already-rotated token came back: the family is revoked


@dataclass(frozen=True)
class Rotation:
    """What presenting a refresh token did; ``refresh_token`` is None exactly when reused."""

    outcome: RotationOutcome
    user: User
    session_id: UUID
    refresh_token: str | None = None


# Bounds of what a session keeps about the client that started it (the columns' sizes).
MAX_USER_AGENT_LENGTH = 256
MAX_ADDRESS_LENGTH = 64


def client_detail(value: str | None, limit: int) -> str | None:
    """``value`` without control characters, cut to ``limit``; None when nothing is left.

    Shown back to the user in the session list: a header is attacker-controlled."""
    if value is None:
        return None
    cleaned = "".join(ch for ch in value if unicodedata.category(ch) != "Cc").strip()
    return cleaned[:limit] or None


class SessionService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        access_tokens: AccessTokenIssuer,
        clock: Clock,
        policy: SessionPolicy,
        audit: AuditTrail,
        throttles: Throttles,
        sealer: SuccessorSealer,
        observer: Observer = NO_OBSERVER,
        conflicts: ConflictRetry | None = None,
    ) -> None:
        self._observer = observer
        self._conflicts = conflicts or ConflictRetry()
        self._throttles = throttles
        self._sealer = sealer
        self._uow = uow
        self._access_tokens = access_tokens
        self._clock = clock
        self._policy = policy
        self._audit = audit

    async def start(
        self,
        uow: UnitOfWork,
        user: User,
        client: ClientInfo,
        *,
        event: str,
        provider: str | None = None,
        reason: str | None = None,
        oauth_client: OAuthClient | None = None,
    ) -> StartedSession:
        """Start a session for ``user`` within ``uow`` and audit it as ``event``.

        The one way every flow starts a session; mint its tokens with
        :meth:`tokens_for` once ``uow`` has committed. ``oauth_client`` None: the
        default client's session."""
        now = self._clock.now()
        session = SessionRecord(
            id=uuid.uuid4(),
            user_id=user.id,
            created_at=now,
            absolute_expires_at=now + timedelta(seconds=self._policy.absolute_ttl_seconds),
            last_used_at=now,
            user_agent=client_detail(client.user_agent, MAX_USER_AGENT_LENGTH),
            ip_address=client_detail(client.address, MAX_ADDRESS_LENGTH),
            client_id=oauth_client.session_client_id if oauth_client else None,
        )
        token = new_refresh_token()
        await uow.sessions.add_session(session)
        await uow.sessions.add_token(self._record(session, token, parent_id=None, now=now))
        await self._audit.add(
            uow,
            self._audit.event(
                event,
                client,
                user_id=user.id,
                session_id=session.id,
                provider=provider,
                reason=reason,
            ),
        )
        return StartedSession(
            user=user, session_id=session.id, refresh_token=token, client=oauth_client
        )

    def tokens_for(self, started: StartedSession) -> TokenPair:
        registered = started.client if started.client and not started.client.is_default else None
        access = self._access_tokens.issue(
            started.user,
            session_id=started.session_id,
            now=self._clock.now(),
            client_id=registered.client_id if registered else None,
            audiences=registered.audiences if registered else None,
        )
        return TokenPair(
            access_token=access,
            refresh_token=started.refresh_token,
            expires_in=self._access_tokens.ttl_seconds,
        )

    async def refresh(
        self,
        token: str,
        client: ClientInfo,
        *,
        expected_email_key: str | None = None,
        oauth_client: OAuthClient | None = None,
    ) -> TokenPair:
        """Rotate ``token``. ``expected_email_key`` is the Serverless seed's extra check;
        ``oauth_client`` the client presenting it (None: the default client), which
        must be the one the session was issued to."""
        try:
            pair, outcome = await self._refresh(token, client, expected_email_key, oauth_client)
        except RefreshTokenReused:
            self._observer.refresh(RefreshOutcome.REUSED)
            raise
        except TooManyRequests:
            self._observer.refresh(RefreshOutcome.THROTTLED)
            raise
        except InvalidRefreshToken:
            self._observer.refresh(RefreshOutcome.INVALID)
            raise
        except Exception:
            self._observer.refresh(RefreshOutcome.ERROR)
            raise
        self._observer.refresh(
            RefreshOutcome.RETRIED if outcome is RotationOutcome.RETRIED else RefreshOutcome.ROTATED
        )
        return pair

    async def _refresh(
        self,
        token: str,
        client: ClientInfo,
        expected_email_key: str | None,
        oauth_client: OAuthClient | None,
    ) -> tuple[TokenPair, RotationOutcome]:
        await self._throttles.check_ip("refresh", client.address or "")
        token_hash = _hash_presented(token)
        expected_client = oauth_client.session_client_id if oauth_client else None

        async def rotate_and_audit() -> Rotation:
            async with self._uow() as uow:
                rotation = await self._rotate(
                    uow, token, token_hash, expected_email_key, expected_client
                )
                reused = rotation.outcome is RotationOutcome.REUSED
                event = self._audit.event(
                    "refresh_reuse_detected" if reused else "refresh",
                    client,
                    user_id=rotation.user.id,
                    session_id=rotation.session_id,
                )
                await self._audit.add(uow, event)
            return rotation

        # A conflict (another node rotated the same token first, or a deadlock)
        # runs the whole rotation again: the loser then reads the winner's
        # successor and gets it within the leeway, and a reuse detection's
        # revocation is retried, never dropped.
        rotation = await self._conflicts.run(rotate_and_audit, name="refresh")
        # Raised only after the block has committed the family's revocation.
        if rotation.refresh_token is None:
            raise RefreshTokenReused(
                detail_for_log=f"reuse detected in session {rotation.session_id}"
            )
        pair = self.tokens_for(
            StartedSession(
                user=rotation.user,
                session_id=rotation.session_id,
                refresh_token=rotation.refresh_token,
                client=oauth_client,
            )
        )
        return pair, rotation.outcome

    async def _rotate(
        self,
        uow: UnitOfWork,
        token: str,
        token_hash: str,
        expected_email_key: str | None,
        expected_client: str | None,
    ) -> Rotation:
        found = await uow.sessions.find_token(token_hash)
        if found is None:
            raise InvalidRefreshToken(detail_for_log="unknown refresh token")
        record, session, user = found.token, found.session, found.user
        if session.client_id != expected_client:
            # RFC 6749 §6 / RFC 9700 §4.14.2: a refresh token is bound to its client.
            # Refused before reuse detection: another client's attempt is not a replay
            # by the holder, and must not revoke the holder's session either.
            raise InvalidRefreshToken(detail_for_log="refresh token issued to another client")
        if expected_email_key is not None and user.email_key != expected_email_key:
            raise InvalidRefreshToken(detail_for_log="email does not match the token's owner")
        if user.disabled_at is not None:
            # Read in the same query as the token: no extra round trip. Disabling
            # also revokes the sessions; this covers a refresh racing it.
            raise InvalidRefreshToken(detail_for_log="account disabled")
        now = self._clock.now()
        self._check_usable(session, now)
        if found.successor is None:
            if now >= record.expires_at:
                raise InvalidRefreshToken(detail_for_log="refresh token idle-expired")
            successor = new_refresh_token()
            successor_record = self._record(
                session,
                successor,
                parent_id=record.id,
                now=now,
                # With no leeway nothing would ever open it: skip the work.
                sealed_for_parent=self._sealer.seal(token, successor)
                if self._policy.reuse_leeway_seconds
                else None,
            )
            # Inserting the successor is what rotates the token: the unique index on
            # parent_id lets exactly one of two concurrent refreshes do it.
            if await uow.sessions.add_successor(successor_record):
                if record.sealed_for_parent is not None:
                    # The presented token's own sealed copy served its parent's
                    # retries; its parent is an ancestor now and may never have it.
                    await uow.sessions.clear_sealed_copy(record.id)
                return Rotation(RotationOutcome.ROTATED, user, session.id, successor)
            # Another request rotated it between our read and our insert: continue
            # as with any already-rotated token (its successor is sealed for us).
            found = await self._reload(uow, token_hash)
        retry = self._retry_within_leeway(token, found, now)
        if retry is not None:
            return Rotation(RotationOutcome.RETRIED, user, session.id, retry)
        await uow.sessions.revoke_session(session.id, at=now, reason="reuse_detected")
        return Rotation(RotationOutcome.REUSED, user, session.id)

    async def revoke(
        self, token: str, client: ClientInfo, *, expected_email_key: str | None = None
    ) -> None:
        """End the token's whole session. Unknown or revoked tokens succeed silently
        (RFC 7009 §2.2), so this endpoint reveals nothing about a token."""
        # Counted per address before anything else: each revocation takes the
        # database's write lock, and an unknown token must cost the same.
        await self._throttles.check_ip("revoke", client.address or "")
        try:
            token_hash = _hash_presented(token)
        except InvalidRefreshToken:
            return

        async def revoke_and_audit() -> None:
            async with self._uow() as uow:
                found = await uow.sessions.find_token(token_hash)
                if found is None:
                    return
                session, user = found.session, found.user
                if expected_email_key is not None and user.email_key != expected_email_key:
                    return
                await uow.sessions.revoke_session(session.id, at=self._clock.now(), reason="logout")
                event = self._audit.event(
                    "revoke", client, user_id=session.user_id, session_id=session.id
                )
                await self._audit.add(uow, event)

        await self._conflicts.run(revoke_and_audit, name="revoke")

    def _check_usable(self, session: SessionRecord, now: datetime) -> None:
        if session.revoked_at is not None:
            raise InvalidRefreshToken(detail_for_log=f"session revoked ({session.revoked_reason})")
        if now >= session.absolute_expires_at:
            raise InvalidRefreshToken(detail_for_log="session reached its absolute lifetime")

    def _retry_within_leeway(self, token: str, found: FoundToken, now: datetime) -> str | None:
        """The successor of ``found.token`` if this is a retry of the immediate parent
        within the leeway and the successor is still the family's current token."""
        successor = found.successor
        if successor is None or successor.sealed_for_parent is None:
            return None
        leeway = timedelta(seconds=self._policy.reuse_leeway_seconds)
        # The successor's issue time is the moment the parent was rotated.
        if self._policy.reuse_leeway_seconds == 0 or now > successor.issued_at + leeway:
            return None
        # Only the immediate parent of the *current* token gets the grace: once the
        # successor itself has rotated, its parent is an ancestor and reuse is theft.
        if found.successor_rotated or now >= successor.expires_at:
            return None
        opened = self._sealer.open(token, successor.sealed_for_parent)
        if opened is None or not hmac.compare_digest(
            hash_refresh_token(opened), successor.token_hash
        ):
            return None
        return opened

    async def _reload(self, uow: UnitOfWork, token_hash: str) -> FoundToken:
        found = await uow.sessions.find_token(token_hash)
        if found is None or found.successor is None:
            raise InvalidRefreshToken(detail_for_log="token vanished during rotation")
        return found

    def _record(
        self,
        session: SessionRecord,
        token: str,
        *,
        parent_id: UUID | None,
        now: datetime,
        sealed_for_parent: bytes | None = None,
    ) -> RefreshTokenRecord:
        idle_expiry = now + timedelta(seconds=self._policy.idle_ttl_seconds)
        return RefreshTokenRecord(
            id=uuid.uuid4(),
            session_id=session.id,
            parent_id=parent_id,
            token_hash=hash_refresh_token(token),
            issued_at=now,
            # Never outlive the session: the absolute lifetime caps every token.
            expires_at=min(idle_expiry, session.absolute_expires_at),
            sealed_for_parent=sealed_for_parent,
        )


def _hash_presented(token: str) -> str:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidRefreshToken(detail_for_log="malformed refresh token")
    return hash_refresh_token(token)
