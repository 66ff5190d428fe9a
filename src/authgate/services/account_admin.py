"""What an operator does to accounts (``authgate users ...``): find, disable and
enable, mark an address verified, set a password.

The operator is the actor of every audit event written here: the event carries
``reason="operator"`` and the client ``user_agent="authgate-cli"`` with no address
(see :data:`OPERATOR`), so ``authgate audit`` tells an operator's action from the
user's own without a schema change.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from authgate.clock import Clock
from authgate.domain.emails import lookup_key, parse_email
from authgate.domain.models import ClientInfo, User
from authgate.domain.ports import PasswordHasher, PasswordRule, UnitOfWorkFactory
from authgate.errors import AccountNotFound, InvalidInput
from authgate.services.audit import AuditTrail
from authgate.services.password_policy import PasswordPolicy

OPERATOR = ClientInfo(address=None, user_agent="authgate-cli")
OPERATOR_REASON = "operator"


class AccountAdminService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        audit: AuditTrail,
        hasher: PasswordHasher | None = None,
        policy: PasswordPolicy | None = None,
        strength: PasswordRule | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._hasher = hasher
        self._policy = policy
        self._strength = strength

    async def find(self, reference: str) -> User:
        """The account named by its id or its email address; AccountNotFound if none."""
        try:
            user_id: UUID | None = uuid.UUID(reference)
        except ValueError:
            user_id = None
        async with self._uow() as uow:
            if user_id is not None:
                user = await uow.users.get(user_id)
            else:
                try:
                    key = lookup_key(reference)
                except InvalidInput:
                    key = None
                user = await uow.users.get_by_email_key(key) if key else None
        if user is None:
            raise AccountNotFound(f"No account {reference[:320]!r}.")
        return user

    async def list_users(self, *, limit: int) -> tuple[list[User], int]:
        """The oldest ``limit`` accounts, and how many still hold a seed's legacy
        password hash (not yet upgraded by a sign-in)."""
        async with self._uow() as uow:
            users = await uow.users.list_all(limit=limit)
            legacy = await uow.users.count_legacy_password_hashes()
        return users, legacy

    async def providers_of(self, user: User) -> list[str]:
        """How the account signs in: "credentials" and provider names."""
        async with self._uow() as uow:
            identities = await uow.identities.list_for_user(user.id)
        names = ["credentials"] if user.password_hash is not None else []
        return names + sorted({identity.provider for identity in identities})

    async def verify_email(self, user: User, client: ClientInfo = OPERATOR) -> bool:
        """Mark the account's address verified; False if it already was.

        Raises InvalidInput for an account without an address, EmailTaken when the
        address is another account's key."""
        if user.email_verified:
            return False
        if user.email is None:
            raise InvalidInput("The account has no email address to verify.")
        key = user.email_key or parse_email(user.email).key
        async with self._uow() as uow:
            # change_email, not mark_email_verified: the unique index refuses an
            # address another account holds (EmailTaken) instead of a driver error.
            await uow.users.change_email(user.id, email=user.email, email_key=key)
            await self._audit.add(
                uow,
                self._audit.event(
                    "email_verified", client, user_id=user.id, reason=OPERATOR_REASON
                ),
            )
        return True

    async def set_password(self, user: User, password: str, client: ClientInfo = OPERATOR) -> None:
        """Set a new password under the password policy; every session of the user
        ends and its pending links stop working, as after a reset."""
        if self._hasher is None or self._policy is None or self._strength is None:
            raise RuntimeError("set_password needs a hasher, a policy and a strength rule")
        self._policy.check(password)
        names = [user.given_name, user.family_name, user.display_name]
        self._strength.check(password, email=user.email or "", names=names)
        password_hash = await self._hasher.hash(password)
        async with self._uow() as uow:
            now = self._clock.now()
            await uow.users.set_password_hash(user.id, password_hash)
            await uow.one_time_tokens.invalidate_user(user.id, at=now)
            await uow.sessions.revoke_user_sessions(user.id, at=now, reason="password_set")
            await self._audit.add(
                uow,
                self._audit.event("password_set", client, user_id=user.id, reason=OPERATOR_REASON),
            )

    async def disable(self, user: User, client: ClientInfo = OPERATOR) -> bool:
        """Disable the account, revoke every session and void its pending links and
        queued mail; False if it already was."""
        if user.disabled_at is not None:
            return False
        async with self._uow() as uow:
            now = self._clock.now()
            await uow.users.set_disabled(user.id, now)
            await uow.sessions.revoke_user_sessions(user.id, at=now, reason="account_disabled")
            # Links mailed (or queued) before the account was disabled must not
            # change it afterwards: reset, email change, verification.
            await uow.one_time_tokens.invalidate_user(user.id, at=now)
            await uow.mail_outbox.delete_unsent_for_user(user.id)
            await self._audit.add(
                uow,
                self._audit.event(
                    "account_disabled", client, user_id=user.id, reason=OPERATOR_REASON
                ),
            )
        return True

    async def enable(self, user: User, client: ClientInfo = OPERATOR) -> bool:
        """Let the account sign in again (its old sessions stay ended); False if it
        was not disabled."""
        if user.disabled_at is None:
            return False
        async with self._uow() as uow:
            await uow.users.set_disabled(user.id, None)
            await self._audit.add(
                uow,
                self._audit.event(
                    "account_enabled", client, user_id=user.id, reason=OPERATOR_REASON
                ),
            )
        return True
