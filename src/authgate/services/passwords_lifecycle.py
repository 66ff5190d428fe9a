"""Forgotten passwords (forgot, reset) and password change.

Forgot-password answers the same, after the same work, whether or not an account
has the address: one read, one queued row. For an address without an account the
row is a blank the drainer drops, so no mail goes to it. A provider-only account
gets a reset link too: resetting is how it sets a first password.
"""

from __future__ import annotations

import uuid

from authgate.clock import Clock
from authgate.domain.emails import lookup_key
from authgate.domain.models import ClientInfo, User
from authgate.domain.ports import PasswordHasher, PasswordRule, Throttles, UnitOfWorkFactory
from authgate.errors import FeatureDisabled, InvalidAccessToken, InvalidOneTimeToken
from authgate.services.audit import AuditTrail
from authgate.services.email_verification import load_user, refuse_disabled
from authgate.services.mail_delivery import MailOutbox
from authgate.services.one_time_tokens import RESET, OneTimeTokens
from authgate.services.password_confirmation import PasswordConfirmation
from authgate.services.password_policy import PasswordPolicy


class PasswordLifecycleService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        outbox: MailOutbox,
        tokens: OneTimeTokens,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        strength: PasswordRule,
        throttles: Throttles,
        audit: AuditTrail,
        clock: Clock,
        confirmation: PasswordConfirmation,
        reset_enabled: bool,
    ) -> None:
        self._uow = uow
        self._outbox = outbox
        self._tokens = tokens
        self._hasher = hasher
        self._policy = policy
        self._strength = strength
        self._throttles = throttles
        self._audit = audit
        self._clock = clock
        self._confirmation = confirmation
        self._reset_enabled = reset_enabled

    async def forgot(self, email: str, client: ClientInfo) -> None:
        self._require_reset()
        await self._throttles.check_ip("mail", client.address or "")
        key = lookup_key(email)
        # Counted per address whether or not it has an account: the limit's answer
        # must not tell them apart either.
        await self._throttles.check_mail_account(key)
        async with self._uow() as uow:
            user = await uow.users.get_by_email_key(key)
            # A disabled account gets no mail either, and the same answer: the
            # blank row keeps the work (and so the timing) the same.
            usable = user is not None and user.email is not None and user.disabled_at is None
            target = user if usable else None
            await self._outbox.enqueue(
                uow,
                user_id=target.id if target else None,
                purpose=RESET,
                address=target.email if target else None,
            )

    async def reset(self, token: str, password: str, client: ClientInfo) -> None:
        self._require_reset()
        await self._throttles.check_ip("auth", client.address or "")
        async with self._uow() as uow:
            record = await self._tokens.check(uow, token, (RESET,))
            user = await uow.users.get(record.user_id)
        if user is None or user.email is None or user.email != record.email:
            raise InvalidOneTimeToken(detail_for_log="reset token for an old address")
        refuse_disabled(user)
        # The policy before the token is used: a refused password leaves the link usable.
        password_hash = await self._new_password_hash(user, password)
        async with self._uow() as uow:
            # Checked again and used in one conditional UPDATE: of concurrent resets
            # with one token exactly one gets here.
            await self._tokens.consume(uow, token, (RESET,))
            # Read again: the account may have changed address (or been disabled)
            # while the password was hashed; nothing here is written from the
            # first read.
            current = await uow.users.get(user.id)
            if current is None or current.email != record.email:
                raise InvalidOneTimeToken(detail_for_log="reset token for an old address")
            refuse_disabled(current)
            now = self._clock.now()
            await uow.users.set_password_hash(user.id, password_hash)
            if current.email_key is not None and not current.email_verified:
                # The link reached this mailbox: the address is proven (only if it
                # is still the account's, checked by the UPDATE itself).
                await uow.users.confirm_email(user.id, email_key=current.email_key)
            await uow.one_time_tokens.invalidate_user(user.id, at=now)
            await uow.sessions.revoke_user_sessions(user.id, at=now, reason="password_reset")
            await self._audit.add(uow, self._audit.event("password_reset", client, user_id=user.id))
        if user.email_key is not None:
            # Whoever locked the account by guessing loses their grip on it too.
            await self._throttles.record_success(user.email_key)

    async def change(
        self,
        user_id: str,
        session_id: str,
        current_password: str,
        new_password: str,
        client: ClientInfo,
    ) -> None:
        """Change the password; every other session ends, the caller's stays."""
        await self._throttles.check_ip("auth", client.address or "")
        try:
            keep = uuid.UUID(session_id)
        except ValueError:
            raise InvalidAccessToken(detail_for_log="sid is not a UUID") from None
        async with self._uow() as uow:
            user = await load_user(uow, user_id)
        await self._confirmation.check(user, current_password, client)
        password_hash = await self._new_password_hash(user, new_password)
        async with self._uow() as uow:
            now = self._clock.now()
            await uow.users.set_password_hash(user.id, password_hash)
            await uow.one_time_tokens.invalidate_user(user.id, at=now)
            await uow.sessions.revoke_other_sessions(
                user.id, keep=keep, at=now, reason="password_changed"
            )
            await self._audit.add(
                uow, self._audit.event("password_changed", client, user_id=user.id, session_id=keep)
            )

    async def _new_password_hash(self, user: User, password: str) -> str:
        self._policy.check(password)
        names = [user.given_name, user.family_name, user.display_name]
        self._strength.check(password, email=user.email or "", names=names)
        return await self._hasher.hash(password)

    def _require_reset(self) -> None:
        if not self._reset_enabled:
            raise FeatureDisabled("Password reset is not enabled on this server.")
