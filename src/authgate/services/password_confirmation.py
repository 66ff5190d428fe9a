"""Re-entering the current password to confirm a sensitive change (password or
email change) on an already signed-in account."""

from __future__ import annotations

from typing import NoReturn

from authgate.domain.models import ClientInfo, User
from authgate.domain.ports import PasswordHasher, Throttles
from authgate.errors import InvalidCredentials
from authgate.services.audit import AuditTrail
from authgate.services.password_policy import MAX_PASSWORD_LENGTH


class PasswordConfirmation:
    def __init__(self, *, hasher: PasswordHasher, throttles: Throttles, audit: AuditTrail) -> None:
        self._hasher = hasher
        self._throttles = throttles
        self._audit = audit

    async def check(self, user: User, password: str, client: ClientInfo) -> None:
        """Raise InvalidCredentials unless ``password`` is the account's.

        Counted by the account lock like a sign-in (before verifying, cleared by a
        right password): a stolen access token must not become an unlimited
        password oracle."""
        key = user.email_key or str(user.id)
        await self._throttles.begin_attempt(key)
        if len(password) > MAX_PASSWORD_LENGTH or user.password_hash is None:
            # Same work as a real check.
            await self._hasher.verify_dummy(password[:MAX_PASSWORD_LENGTH])
            await self._refuse(user, client, "no_password")
        if not await self._hasher.verify(user.password_hash, password):
            await self._refuse(user, client, "wrong_password")
        await self._throttles.record_success(key)

    async def _refuse(self, user: User, client: ClientInfo, reason: str) -> NoReturn:
        await self._audit.record(
            self._audit.event("password_check_failed", client, user_id=user.id, reason=reason)
        )
        raise InvalidCredentials("The current password is incorrect.", detail_for_log=reason)
