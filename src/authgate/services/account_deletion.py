"""Deleting an account: by its owner (``DELETE /api/v1/me``) or by an operator.

The user row goes, and with it (foreign keys, ON DELETE CASCADE) its identities,
sessions and their refresh tokens, one-time tokens and queued mail. The audit log
keeps the account's events with the user id only: their client address and user
agent are erased in the same transaction, and the ``account_deleted`` event itself
carries none of the user's.

The owner confirms with the account's password (counted by the account lock, like
a sign-in) or, for an account without a password, with an ID token of one of its
linked provider identities, verified as sign-in verifies it and used up (single use)
by the deletion.
"""

from __future__ import annotations

from authgate.clock import Clock
from authgate.domain.models import ClientInfo, User
from authgate.domain.ports import Throttles, UnitOfWork, UnitOfWorkFactory
from authgate.errors import AccountNotFound, InvalidInput
from authgate.services.account_admin import OPERATOR, OPERATOR_REASON
from authgate.services.audit import AuditTrail
from authgate.services.email_verification import load_user
from authgate.services.password_confirmation import PasswordConfirmation
from authgate.services.provider_accounts import ProviderAccountService


class AccountDeletionService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        audit: AuditTrail,
        throttles: Throttles | None = None,
        confirmation: PasswordConfirmation | None = None,
        providers: ProviderAccountService | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._throttles = throttles
        self._confirmation = confirmation
        self._providers = providers

    async def delete_own(
        self,
        user_id: str,
        client: ClientInfo,
        *,
        password: str | None,
        id_token: str | None,
        provider: str | None = None,
        nonce: str | None = None,
    ) -> None:
        """Delete the caller's account once it is confirmed (see the module docstring)."""
        throttles, confirmation, providers = self._throttles, self._confirmation, self._providers
        if throttles is None or confirmation is None:
            raise RuntimeError("delete_own needs throttles and a password confirmation")
        await throttles.check_ip("auth", client.address or "")
        async with self._uow() as uow:
            user = await load_user(uow, user_id)
            linked = await uow.identities.list_for_user(user.id)
        identity = None
        if user.password_hash is not None:
            if password is None:
                raise InvalidInput("Confirm with the account's password.")
            await confirmation.check(user, password, client)
        else:
            if id_token is None or providers is None:
                raise InvalidInput("Confirm with a new ID token (jwt) of a linked provider.")
            identity = await providers.verify_linked(
                id_token, nonce=nonce, provider=provider, linked=linked
            )
        async with self._uow() as uow:
            if identity is not None and providers is not None:
                await providers.use_once(uow, identity)
            if not await self._erase(uow, user, ClientInfo(), reason="user"):
                raise AccountNotFound("The account for this token no longer exists.")

    async def delete_by_operator(self, user: User, client: ClientInfo = OPERATOR) -> bool:
        """Delete ``user`` without confirmation; False if it was already gone."""
        async with self._uow() as uow:
            return await self._erase(uow, user, client, reason=OPERATOR_REASON)

    async def _erase(self, uow: UnitOfWork, user: User, client: ClientInfo, *, reason: str) -> bool:
        await uow.audit.erase_client_details(user.id)
        if not await uow.users.delete(user.id):
            return False
        await self._audit.add(
            uow, self._audit.event("account_deleted", client, user_id=user.id, reason=reason)
        )
        return True
