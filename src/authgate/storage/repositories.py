"""Repositories over one transaction's connection (SQLAlchemy Core, no ORM on the hot path).

Repositories never commit: the unit of work that handed them the connection does.

Every statement is built once, at import, with named bind parameters, and executed
with a parameter dict. Building ``update(...).where(...).values(...)`` per call and
computing its cache key each time was a fifth of a refresh's database-layer CPU;
a statement object reused keeps its memoized cache key and compiled form.
(UPDATE parameters are named ``b_*``: SQLAlchemy reserves the column names there.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.crypto.legacy_hashes import LEGACY_MARKER
from authgate.domain.models import (
    FoundToken,
    IdentityRecord,
    RefreshTokenRecord,
    SessionOwner,
    SessionRecord,
    SessionView,
    User,
)
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
        imported_from=value[f"{prefix}imported_from"],
        imported_provider=value[f"{prefix}imported_provider"],
        disabled_at=value[f"{prefix}disabled_at"],
    )


_INSERT_USER = insert(users)
_USER_BY_ID = select(users).where(users.c.id == bindparam("user_id"))
_USER_BY_EMAIL_KEY = select(users).where(users.c.email_key == bindparam("email_key"))
_SET_PASSWORD_HASH = (
    update(users)
    .where(users.c.id == bindparam("b_user_id"))
    .values(password_hash=bindparam("b_password_hash", type_=users.c.password_hash.type))
)
_MARK_EMAIL_VERIFIED = (
    update(users)
    .where(users.c.id == bindparam("b_user_id"))
    .values(
        email=bindparam("b_email", type_=users.c.email.type),
        email_key=bindparam("b_email_key", type_=users.c.email_key.type),
        email_verified=True,
    )
)
# Conditional: a reset read the account before hashing; an email change confirmed
# meanwhile must not be undone by writing the old address back.
_CONFIRM_EMAIL = (
    update(users)
    .where(
        users.c.id == bindparam("b_user_id"),
        users.c.email_key == bindparam("b_email_key", type_=users.c.email_key.type),
    )
    .values(email_verified=True)
)
_CLEAR_IMPORTED_PROVIDER = (
    update(users).where(users.c.id == bindparam("b_user_id")).values(imported_provider=None)
)
# The marker has no LIKE wildcard (% or _) in it.
_COUNT_LEGACY_HASHES = (
    select(func.count()).select_from(users).where(users.c.password_hash.like(f"{LEGACY_MARKER}%"))
)

_CHANGE_EMAIL = (
    update(users)
    .where(users.c.id == bindparam("b_user_id"))
    .values(
        email=bindparam("b_email", type_=users.c.email.type),
        email_key=bindparam("b_email_key", type_=users.c.email_key.type),
        email_verified=True,
    )
)
_SET_DISABLED = (
    update(users)
    .where(users.c.id == bindparam("b_user_id"))
    .values(disabled_at=bindparam("b_at", type_=users.c.disabled_at.type))
)

_ALL_USERS = select(users).order_by(users.c.created_at, users.c.id).limit(bindparam("limit"))
_DELETE_USER = delete(users).where(users.c.id == bindparam("user_id"))


class SqlUserRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, user: User) -> None:
        try:
            # No savepoint: nothing continues a transaction after EmailTaken (the
            # unit of work rolls it back), and on SQLite and MariaDB a failed
            # INSERT leaves the transaction usable anyway. A savepoint would cost two
            # more round trips on every sign-up.
            await self._conn.execute(
                _INSERT_USER,
                {
                    "id": user.id,
                    "email": user.email,
                    "email_key": user.email_key,
                    "email_verified": user.email_verified,
                    "given_name": user.given_name,
                    "family_name": user.family_name,
                    "display_name": user.display_name,
                    "password_hash": user.password_hash,
                    "created_at": user.created_at,
                    "updated_at": user.created_at,
                    "imported_from": user.imported_from,
                    "imported_provider": user.imported_provider,
                },
            )
        except IntegrityError:
            # The only unique column a new random id can collide on is email_key:
            # the unique index, not a prior SELECT, is what decides under concurrency.
            raise EmailTaken() from None

    async def get(self, user_id: UUID) -> User | None:
        row = (await self._conn.execute(_USER_BY_ID, {"user_id": user_id})).first()
        return _user(row) if row else None

    async def get_by_email_key(self, email_key: str) -> User | None:
        result = await self._conn.execute(_USER_BY_EMAIL_KEY, {"email_key": email_key})
        row = result.first()
        return _user(row) if row else None

    async def set_password_hash(self, user_id: UUID, password_hash: str | None) -> None:
        await self._conn.execute(
            _SET_PASSWORD_HASH, {"b_user_id": user_id, "b_password_hash": password_hash}
        )

    async def mark_email_verified(self, user_id: UUID, *, email: str, email_key: str) -> None:
        await self._conn.execute(
            _MARK_EMAIL_VERIFIED,
            {"b_user_id": user_id, "b_email": email, "b_email_key": email_key},
        )

    async def confirm_email(self, user_id: UUID, *, email_key: str) -> bool:
        result = await self._conn.execute(
            _CONFIRM_EMAIL, {"b_user_id": user_id, "b_email_key": email_key}
        )
        return result.rowcount == 1

    async def clear_imported_provider(self, user_id: UUID) -> None:
        await self._conn.execute(_CLEAR_IMPORTED_PROVIDER, {"b_user_id": user_id})

    async def count_legacy_password_hashes(self) -> int:
        return int((await self._conn.execute(_COUNT_LEGACY_HASHES)).scalar_one())

    async def list_all(self, *, limit: int) -> list[User]:
        return [_user(row) for row in await self._conn.execute(_ALL_USERS, {"limit": limit})]

    async def delete(self, user_id: UUID) -> bool:
        result = await self._conn.execute(_DELETE_USER, {"user_id": user_id})
        return bool(result.rowcount)

    async def set_disabled(self, user_id: UUID, at: datetime | None) -> None:
        await self._conn.execute(_SET_DISABLED, {"b_user_id": user_id, "b_at": at})

    async def change_email(self, user_id: UUID, *, email: str, email_key: str) -> None:
        try:
            await self._conn.execute(
                _CHANGE_EMAIL,
                {"b_user_id": user_id, "b_email": email, "b_email_key": email_key},
            )
        except IntegrityError:
            # The unique email_key index: another account took the address meanwhile.
            raise EmailTaken() from None


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


_INSERT_IDENTITY = insert(identities)
_IDENTITY_BY_SUBJECT = select(identities).where(
    identities.c.provider == bindparam("provider"), identities.c.subject == bindparam("subject")
)
_TOUCH_IDENTITY = (
    update(identities)
    .where(identities.c.id == bindparam("b_identity_id"))
    .values(
        last_used_at=bindparam("b_at", type_=identities.c.last_used_at.type),
        email=bindparam("b_email", type_=identities.c.email.type),
        email_verified=bindparam("b_email_verified", type_=identities.c.email_verified.type),
    )
)
_IDENTITIES_OF_USER = (
    select(identities)
    .where(identities.c.user_id == bindparam("user_id"))
    .order_by(identities.c.created_at, identities.c.provider)
)


class SqlIdentityRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, identity: IdentityRecord) -> None:
        try:
            # No savepoint, as in SqlUserRepository.add: IdentityTaken ends the unit.
            await self._conn.execute(
                _INSERT_IDENTITY,
                {
                    "id": identity.id,
                    "user_id": identity.user_id,
                    "provider": identity.provider,
                    "subject": identity.subject,
                    "email": identity.email,
                    "email_verified": identity.email_verified,
                    "created_at": identity.created_at,
                    "last_used_at": identity.last_used_at,
                },
            )
        except IntegrityError:
            raise IdentityTaken() from None

    async def get(self, provider: str, subject: str) -> IdentityRecord | None:
        parameters = {"provider": provider, "subject": subject}
        row = (await self._conn.execute(_IDENTITY_BY_SUBJECT, parameters)).first()
        return _identity(row) if row else None

    async def touch(
        self, identity_id: UUID, *, at: datetime, email: str | None, email_verified: bool
    ) -> None:
        await self._conn.execute(
            _TOUCH_IDENTITY,
            {
                "b_identity_id": identity_id,
                "b_at": at,
                "b_email": email,
                "b_email_verified": email_verified,
            },
        )

    async def list_for_user(self, user_id: UUID) -> list[IdentityRecord]:
        rows = await self._conn.execute(_IDENTITIES_OF_USER, {"user_id": user_id})
        return [_identity(row) for row in rows]


def _session(row: Any) -> SessionRecord:
    return SessionRecord(
        id=row.s_id,
        user_id=row.s_user_id,
        created_at=row.s_created_at,
        absolute_expires_at=row.s_absolute_expires_at,
        revoked_at=row.s_revoked_at,
        revoked_reason=row.s_revoked_reason,
        client_id=row.s_client_id,
    )


def _token(row: Any, prefix: str = "") -> RefreshTokenRecord:
    value = row._mapping
    return RefreshTokenRecord(
        id=value[f"{prefix}id"],
        session_id=value[f"{prefix}session_id"],
        parent_id=value[f"{prefix}parent_id"],
        token_hash=value[f"{prefix}token_hash"],
        issued_at=value[f"{prefix}issued_at"],
        expires_at=value[f"{prefix}expires_at"],
        sealed_for_parent=value[f"{prefix}sealed_for_parent"],
    )


_successor = refresh_tokens.alias("successor")
_successors_successor = refresh_tokens.alias("successors_successor")

# A session's columns as the session-and-user reads label them ("s_" prefix).
_SESSION_COLUMNS = (
    sessions.c.id.label("s_id"),
    sessions.c.user_id.label("s_user_id"),
    sessions.c.created_at.label("s_created_at"),
    sessions.c.absolute_expires_at.label("s_absolute_expires_at"),
    sessions.c.revoked_at.label("s_revoked_at"),
    sessions.c.revoked_reason.label("s_revoked_reason"),
    sessions.c.client_id.label("s_client_id"),
)
# One round trip for everything a refresh decides on: the token, its session, its
# user, its successor if it was rotated, and whether that successor was rotated in
# turn (both outer joins are lookups on the unique parent_id index).
_TOKEN_SESSION_USER = (
    select(
        refresh_tokens,
        *_SESSION_COLUMNS,
        *(column.label(f"u_{column.name}") for column in users.c),
        *(column.label(f"n_{column.name}") for column in _successor.c),
        _successors_successor.c.id.label("nn_id"),
    )
    .join(sessions, sessions.c.id == refresh_tokens.c.session_id)
    .join(users, users.c.id == sessions.c.user_id)
    .outerjoin(_successor, _successor.c.parent_id == refresh_tokens.c.id)
    .outerjoin(_successors_successor, _successors_successor.c.parent_id == _successor.c.id)
    .where(refresh_tokens.c.token_hash == bindparam("token_hash"))
)
_INSERT_SESSION = insert(sessions)
_INSERT_TOKEN = insert(refresh_tokens)
_SESSION_REVOCATION = {
    "revoked_at": bindparam("b_at", type_=sessions.c.revoked_at.type),
    "revoked_reason": bindparam("b_reason", type_=sessions.c.revoked_reason.type),
}
_REVOKE_SESSION = (
    update(sessions)
    .where(sessions.c.id == bindparam("b_session_id"), sessions.c.revoked_at.is_(None))
    .values(**_SESSION_REVOCATION)
)
_REVOKE_USER_SESSIONS = (
    update(sessions)
    .where(sessions.c.user_id == bindparam("b_user_id"), sessions.c.revoked_at.is_(None))
    .values(**_SESSION_REVOCATION)
)
# Sealed successors are cleared as soon as nothing may open them (see
# services.sessions): by primary key on rotation, by session on revocation.
_CLEAR_SEALED_COPY = (
    update(refresh_tokens)
    .where(refresh_tokens.c.id == bindparam("b_token_id"))
    .values(sealed_for_parent=None)
)
_CLEAR_SESSION_SEALED_COPIES = (
    update(refresh_tokens)
    .where(
        refresh_tokens.c.session_id == bindparam("b_session_id"),
        refresh_tokens.c.sealed_for_parent.is_not(None),
    )
    .values(sealed_for_parent=None)
)
_CLEAR_USER_SEALED_COPIES = (
    update(refresh_tokens)
    .where(
        refresh_tokens.c.session_id.in_(
            select(sessions.c.id).where(sessions.c.user_id == bindparam("b_user_id"))
        ),
        refresh_tokens.c.sealed_for_parent.is_not(None),
    )
    .values(sealed_for_parent=None)
)

_REVOKE_OTHER_SESSIONS = (
    update(sessions)
    .where(
        sessions.c.user_id == bindparam("b_user_id"),
        sessions.c.id != bindparam("b_keep"),
        sessions.c.revoked_at.is_(None),
    )
    .values(**_SESSION_REVOCATION)
)

# Revoking one session by id only if it belongs to the user: another user's id
# matches no row, exactly like an unknown one.
_REVOKE_USER_SESSION = (
    update(sessions)
    .where(
        sessions.c.id == bindparam("b_session_id"),
        sessions.c.user_id == bindparam("b_user_id"),
        sessions.c.revoked_at.is_(None),
    )
    .values(**_SESSION_REVOCATION)
)
_CLEAR_OTHER_SEALED_COPIES = (
    update(refresh_tokens)
    .where(
        refresh_tokens.c.session_id.in_(
            select(sessions.c.id).where(
                sessions.c.user_id == bindparam("b_user_id"), sessions.c.id != bindparam("b_keep")
            )
        ),
        refresh_tokens.c.sealed_for_parent.is_not(None),
    )
    .values(sealed_for_parent=None)
)
# Live: not revoked, within its absolute lifetime, and its newest token not
# idle-expired. The newest token's issue time is the session's last use.
_NOW = bindparam("now", type_=sessions.c.absolute_expires_at.type)
_LAST_ISSUED = func.max(refresh_tokens.c.issued_at).label("last_issued_at")
_LIVE_SESSIONS = (
    select(
        sessions.c.id,
        sessions.c.user_id,
        sessions.c.created_at,
        sessions.c.last_used_at,
        sessions.c.user_agent,
        sessions.c.ip_address,
        _LAST_ISSUED,
    )
    .join(refresh_tokens, refresh_tokens.c.session_id == sessions.c.id)
    .where(
        sessions.c.user_id == bindparam("user_id"),
        sessions.c.revoked_at.is_(None),
        sessions.c.absolute_expires_at > _NOW,
    )
    .group_by(
        sessions.c.id,
        sessions.c.user_id,
        sessions.c.created_at,
        sessions.c.last_used_at,
        sessions.c.user_agent,
        sessions.c.ip_address,
    )
    .having(func.max(refresh_tokens.c.expires_at) > _NOW)
    .order_by(sessions.c.created_at.desc(), sessions.c.id)
)
# Introspection and revocation by ``sid``: the session and its user in one read
# (outer join: a deleted account's session rows are gone with it, but be exact).
_SESSION_AND_USER = (
    select(
        *_SESSION_COLUMNS,
        *(column.label(f"u_{column.name}") for column in users.c),
    )
    .outerjoin(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.id == bindparam("session_id"))
)
_SESSION_OWNER = select(sessions.c.user_id).where(sessions.c.id == bindparam("session_id"))


class SqlSessionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add_session(self, session: SessionRecord) -> None:
        await self._conn.execute(
            _INSERT_SESSION,
            {
                "id": session.id,
                "user_id": session.user_id,
                "created_at": session.created_at,
                "absolute_expires_at": session.absolute_expires_at,
                "revoked_at": session.revoked_at,
                "revoked_reason": session.revoked_reason,
                "last_used_at": session.last_used_at,
                "user_agent": session.user_agent,
                "ip_address": session.ip_address,
                "client_id": session.client_id,
            },
        )

    async def add_token(self, token: RefreshTokenRecord) -> None:
        await self._conn.execute(_INSERT_TOKEN, _token_values(token))

    async def add_successor(self, token: RefreshTokenRecord) -> bool:
        try:
            await self._conn.execute(_INSERT_TOKEN, _token_values(token))
        except IntegrityError:
            # The unique parent_id index: another request rotated the parent first.
            # (On MariaDB this one waited for the winner's commit, and under READ
            # COMMITTED its next read sees the winner's row.) No savepoint: a failed
            # INSERT is undone alone and the transaction goes on, on both databases,
            # and a savepoint would cost two round trips on every refresh.
            return False
        return True

    async def find_token(self, token_hash: str) -> FoundToken | None:
        # No FOR UPDATE: add_successor's unique index decides between concurrent
        # rotations. SQLite serializes whole transactions with BEGIN IMMEDIATE.
        row = (await self._conn.execute(_TOKEN_SESSION_USER, {"token_hash": token_hash})).first()
        if row is None:
            return None
        return FoundToken(
            token=_token(row),
            session=_session(row),
            user=_user(row, prefix="u_"),
            successor=_token(row, prefix="n_") if row.n_id is not None else None,
            successor_rotated=row.nn_id is not None,
        )

    async def clear_sealed_copy(self, token_id: UUID) -> None:
        await self._conn.execute(_CLEAR_SEALED_COPY, {"b_token_id": token_id})

    async def revoke_session(self, session_id: UUID, *, at: datetime, reason: str) -> None:
        await self._conn.execute(
            _REVOKE_SESSION, {"b_session_id": session_id, "b_at": at, "b_reason": reason}
        )
        await self._conn.execute(_CLEAR_SESSION_SEALED_COPIES, {"b_session_id": session_id})

    async def revoke_user_sessions(self, user_id: UUID, *, at: datetime, reason: str) -> int:
        result = await self._conn.execute(
            _REVOKE_USER_SESSIONS, {"b_user_id": user_id, "b_at": at, "b_reason": reason}
        )
        await self._conn.execute(_CLEAR_USER_SEALED_COPIES, {"b_user_id": user_id})
        return int(result.rowcount)

    async def revoke_other_sessions(
        self, user_id: UUID, *, keep: UUID, at: datetime, reason: str
    ) -> int:
        result = await self._conn.execute(
            _REVOKE_OTHER_SESSIONS,
            {"b_user_id": user_id, "b_keep": keep, "b_at": at, "b_reason": reason},
        )
        await self._conn.execute(_CLEAR_OTHER_SEALED_COPIES, {"b_user_id": user_id, "b_keep": keep})
        return int(result.rowcount)

    async def revoke_user_session(
        self, user_id: UUID, session_id: UUID, *, at: datetime, reason: str
    ) -> bool:
        result = await self._conn.execute(
            _REVOKE_USER_SESSION,
            {"b_session_id": session_id, "b_user_id": user_id, "b_at": at, "b_reason": reason},
        )
        if result.rowcount != 1:
            return False
        await self._conn.execute(_CLEAR_SESSION_SEALED_COPIES, {"b_session_id": session_id})
        return True

    async def owner_of(self, session_id: UUID) -> UUID | None:
        result = await self._conn.execute(_SESSION_OWNER, {"session_id": session_id})
        owner: UUID | None = result.scalar_one_or_none()
        return owner

    async def find_session(self, session_id: UUID) -> SessionOwner | None:
        row = (await self._conn.execute(_SESSION_AND_USER, {"session_id": session_id})).first()
        if row is None:
            return None
        user = _user(row, prefix="u_") if row.u_id is not None else None
        return SessionOwner(session=_session(row), user=user)

    async def list_live(self, user_id: UUID, *, now: datetime) -> list[SessionView]:
        rows = await self._conn.execute(_LIVE_SESSIONS, {"user_id": user_id, "now": now})
        return [
            SessionView(
                id=row.id,
                user_id=row.user_id,
                created_at=row.created_at,
                last_used_at=max(
                    value
                    for value in (row.last_used_at, row.last_issued_at, row.created_at)
                    if value is not None
                ),
                user_agent=row.user_agent,
                ip_address=row.ip_address,
            )
            for row in rows
        ]


def _token_values(token: RefreshTokenRecord) -> dict[str, Any]:
    return {
        "id": token.id,
        "session_id": token.session_id,
        "parent_id": token.parent_id,
        "token_hash": token.token_hash,
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
        "sealed_for_parent": token.sealed_for_parent,
    }
