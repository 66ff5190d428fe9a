"""Accounts: sign-up and sign-in with email and password."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import NoReturn
from uuid import UUID

from authgate.clock import Clock
from authgate.domain.emails import lookup_key, parse_email
from authgate.domain.models import ClientInfo, TokenPair, User
from authgate.domain.ports import PasswordHasher, PasswordRule, Throttles, UnitOfWorkFactory
from authgate.errors import InvalidCredentials, InvalidInput, TooManyRequests
from authgate.services.audit import AuditTrail
from authgate.services.password_policy import MAX_PASSWORD_LENGTH, PasswordPolicy
from authgate.services.sessions import SessionService

MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class SignUp:
    email: str
    password: str
    given_name: str = ""
    family_name: str = ""
    display_name: str = ""


class AccountService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        sessions: SessionService,
        policy: PasswordPolicy,
        clock: Clock,
        audit: AuditTrail,
        throttles: Throttles,
        strength: PasswordRule,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._sessions = sessions
        self._policy = policy
        self._clock = clock
        self._audit = audit
        self._throttles = throttles
        self._strength = strength

    async def sign_up(self, request: SignUp, client: ClientInfo) -> TokenPair:
        await self._throttles.check_ip("auth", client.address or "")
        await self._throttles.check_ip("signup", client.address or "")
        email = parse_email(request.email)
        self._policy.check(request.password)
        names = [clean_name(n) for n in (request.given_name, request.family_name)]
        display_name = clean_name(request.display_name, limit=200)
        # After the cheap checks: refuse common passwords and ones built from the
        # user's own address or name, before spending a hash on them.
        self._strength.check(request.password, email=email.display, names=[*names, display_name])
        # Hash before opening the transaction: the database must not hold a write
        # lock for the ~20 ms argon2 takes.
        password_hash = await self._hasher.hash(request.password)
        now = self._clock.now()
        user = User(
            id=uuid.uuid4(),
            email=email.display,
            email_key=email.key,
            email_verified=False,
            given_name=names[0],
            family_name=names[1],
            display_name=display_name,
            password_hash=password_hash,
            created_at=now,
        )
        async with self._uow() as uow:
            await uow.users.add(user)  # the unique index decides races: EmailTaken
            started = await self._sessions.start(uow, user)
            event = self._audit.event(
                "signup", client, user_id=user.id, session_id=started.session_id
            )
            await self._audit.add(uow, event)
        return self._sessions.tokens_for(started)

    async def sign_in(self, email: str, password: str, client: ClientInfo) -> TokenPair:
        await self._throttles.check_ip("auth", client.address or "")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidCredentials(detail_for_log="password over the maximum length")
        key = lookup_key(email)
        try:
            # Checked before the password: a locked account answers the same
            # whether the password was right or not.
            await self._throttles.check_account(key)
        except TooManyRequests:
            await self._audit.record(self._audit.event("lockout", client, reason="locked"))
            raise
        async with self._uow() as uow:
            user = await uow.users.get_by_email_key(key)
        if user is None or user.password_hash is None:
            # Same work as a real verification, so timing does not tell whether
            # the account exists; unknown emails count towards a lock for the same reason.
            await self._hasher.verify_dummy(password)
            await self._throttles.record_failure(key)
            reason = "unknown_email" if user is None else "no_password"
            await self._refuse(client, reason, user.id if user else None)
        if not await self._hasher.verify(user.password_hash, password):
            await self._throttles.record_failure(key)
            await self._refuse(client, "wrong_password", user.id)
        await self._throttles.record_success(key)
        new_hash = None
        if self._hasher.needs_rehash(user.password_hash):
            new_hash = await self._hasher.hash(password)
        async with self._uow() as uow:
            if new_hash is not None:
                await uow.users.set_password_hash(user.id, new_hash)
            started = await self._sessions.start(uow, user)
            event = self._audit.event(
                "signin", client, user_id=user.id, session_id=started.session_id
            )
            await self._audit.add(uow, event)
        return self._sessions.tokens_for(started)

    async def _refuse(self, client: ClientInfo, reason: str, user_id: UUID | None) -> NoReturn:
        await self._audit.record(
            self._audit.event("signin_failed", client, user_id=user_id, reason=reason)
        )
        raise InvalidCredentials(detail_for_log=reason)

    async def get_user_with_providers(self, user_id: str) -> tuple[User, list[str]] | None:
        """The user and how it can sign in: "credentials" and provider names."""
        try:
            parsed = uuid.UUID(user_id)
        except ValueError:
            return None
        async with self._uow() as uow:
            user = await uow.users.get(parsed)
            if user is None:
                return None
            identities = await uow.identities.list_for_user(parsed)
        providers = ["credentials"] if user.password_hash is not None else []
        providers += sorted({identity.provider for identity in identities})
        return user, providers


def clean_name(value: str, *, limit: int = MAX_NAME_LENGTH) -> str:
    cleaned = value.strip()
    if len(cleaned) > limit:
        raise InvalidInput(f"Names must be at most {limit} characters.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise InvalidInput("Names must not contain control characters.")
    return cleaned
