"""Repositories over one transaction's connection (SQLAlchemy Core, no ORM on the hot path).

Repositories never commit: the unit of work that handed them the connection does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.domain.models import IdentityRecord, RefreshTokenRecord, SessionRecord, User
from authgate.errors import EmailTaken, IdentityTaken
from authgate.storage.tables import identities, refresh_tokens, sessions, users


def _user(row: Any, prefix: str = "") -> User:
    """A user from a row of ``users`` columns, labelled ``<prefix><column>``."""
    value = row._mapping
    return User(
        id=value[f"{prefix}id"],
        email=value[f"{prefix}email"],
        email_key=value[f"{prefix}email_key"],
        email_verified=bool(value[f"{prefix}email_verified"]),
        given_name=value[f"{prefix}given_name"],
        family_name=value[f"{prefix}family_name"],
        display_name=value[f"{prefix}display_name"],
        password_hash=value[f"{prefix}password_hash"],
        created_at=value[f"{prefix}created_at"],
    )


class SqlUserRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, user: User) -> None:
        try:
            # A savepoint keeps the surrounding transaction usable after a
            # duplicate-key error on every backend.
            async with self._conn.begin_nested():
                await self._conn.execute(
                    insert(users).values(
                        id=user.id,
                        email=user.email,
                        email_key=user.email_key,
                        email_verified=user.email_verified,
                        given_name=user.given_name,
                        family_name=user.family_name,
                        display_name=user.display_name,
                        password_hash=user.password_hash,
                        created_at=user.created_at,
                        updated_at=user.created_at,
                    )
                )
        except IntegrityError:
            # The only unique column a new random id can collide on is email_key:
            # the unique index, not a prior SELECT, is what decides under concurrency.
            raise EmailTaken() from None

    async def get(self, user_id: UUID) -> User | None:
        row = (await self._conn.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def get_by_email_key(self, email_key: str) -> User | None:
        result = await self._conn.execute(select(users).where(users.c.email_key == email_key))
        row = result.first()
        return _user(row) if row else None

    async def set_password_hash(self, user_id: UUID, password_hash: str | None) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    async def mark_email_verified(self, user_id: UUID, *, email: str, email_key: str) -> None:
        await self._conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(email=email, email_key=email_key, email_verified=True)
        )


def _identity(row: Any) -> IdentityRecord:
    return IdentityRecord(
        id=row.id,
        user_id=row.user_id,
        provider=row.provider,
        subject=row.subject,
        email=row.email,
        email_verified=bool(row.email_verified),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


class SqlIdentityRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, identity: IdentityRecord) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    insert(identities).values(
                        id=identity.id,
                        user_id=identity.user_id,
                        provider=identity.provider,
                        subject=identity.subject,
                        email=identity.email,
                        email_verified=identity.email_verified,
                        created_at=identity.created_at,
                        last_used_at=identity.last_used_at,
                    )
                )
        except IntegrityError:
            raise IdentityTaken() from None

    async def get(self, provider: str, subject: str) -> IdentityRecord | None:
        statement = select(identities).where(
            identities.c.provider == provider, identities.c.subject == subject
        )
        row = (await self._conn.execute(statement)).first()
        return _identity(row) if row else None

    async def touch(
        self, identity_id: UUID, *, at: datetime, email: str | None, email_verified: bool
    ) -> None:
        await self._conn.execute(
            update(identities)
            .where(identities.c.id == identity_id)
            .values(last_used_at=at, email=email, email_verified=email_verified)
        )

    async def list_for_user(self, user_id: UUID) -> list[IdentityRecord]:
        statement = (
            select(identities)
            .where(identities.c.user_id == user_id)
            .order_by(identities.c.created_at, identities.c.provider)
        )
        return [_identity(row) for row in await self._conn.execute(statement)]


def _session(row: Any) -> SessionRecord:
    return SessionRecord(
        id=row.s_id,
        user_id=row.s_user_id,
        created_at=row.s_created_at,
        absolute_expires_at=row.s_absolute_expires_at,
        revoked_at=row.s_revoked_at,
        revoked_reason=row.s_revoked_reason,
    )


def _token(row: Any) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        id=row.id,
        session_id=row.session_id,
        parent_id=row.parent_id,
        token_hash=row.token_hash,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        rotated_at=row.rotated_at,
        successor_sealed=row.successor_sealed,
    )


# One round trip for everything a refresh needs: the token, its session, its user.
_TOKEN_SESSION_USER = (
    select(
        refresh_tokens,
        sessions.c.id.label("s_id"),
        sessions.c.user_id.label("s_user_id"),
        sessions.c.created_at.label("s_created_at"),
        sessions.c.absolute_expires_at.label("s_absolute_expires_at"),
        sessions.c.revoked_at.label("s_revoked_at"),
        sessions.c.revoked_reason.label("s_revoked_reason"),
        *(column.label(f"u_{column.name}") for column in users.c),
    )
    .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
    .join(users, users.c.id == sessions.c.user_id)
)


class SqlSessionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add_session(self, session: SessionRecord) -> None:
        await self._conn.execute(
            insert(sessions).values(
                id=session.id,
                user_id=session.user_id,
                created_at=session.created_at,
                absolute_expires_at=session.absolute_expires_at,
                revoked_at=session.revoked_at,
                revoked_reason=session.revoked_reason,
            )
        )

    async def add_token(self, token: RefreshTokenRecord) -> None:
        await self._conn.execute(
            insert(refresh_tokens).values(
                id=token.id,
                session_id=token.session_id,
                parent_id=token.parent_id,
                token_hash=token.token_hash,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
                rotated_at=token.rotated_at,
                successor_sealed=token.successor_sealed,
            )
        )

    async def find_token(
        self, token_hash: str
    ) -> tuple[RefreshTokenRecord, SessionRecord, User] | None:
        # No FOR UPDATE: mark_rotated's conditional UPDATE decides between concurrent
        # rotations (on MariaDB the loser waits for the winner's row lock, then
        # matches nothing; under READ COMMITTED its next read sees the winner's row).
        # SQLite serializes whole transactions with BEGIN IMMEDIATE.
        statement = _TOKEN_SESSION_USER.where(refresh_tokens.c.token_hash == token_hash)
        row = (await self._conn.execute(statement)).first()
        if row is None:
            return None
        return _token(row), _session(row), _user(row, prefix="u_")

    async def mark_rotated(self, token_id: UUID, *, at: datetime, successor_sealed: bytes) -> bool:
        # Conditional: of two requests that both read the token as current, only
        # one can end it. The loser sees rowcount 0 and takes the rotated path.
        result = await self._conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.id == token_id, refresh_tokens.c.rotated_at.is_(None))
            .values(rotated_at=at, successor_sealed=successor_sealed)
        )
        return result.rowcount == 1

    async def revoke_session(self, session_id: UUID, *, at: datetime, reason: str) -> None:
        await self._conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=at, revoked_reason=reason)
        )

    async def revoke_user_sessions(self, user_id: UUID, *, at: datetime, reason: str) -> None:
        await self._conn.execute(
            update(sessions)
            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=at, revoked_reason=reason)
        )
