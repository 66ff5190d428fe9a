"""Email verification and email change.

``EMAIL_VERIFICATION`` decides what an unverified address means: ``off`` (nothing is
mailed; resend and email change are off too), ``optional`` (a link is mailed at
sign-up; sign-in is allowed) or ``required`` (password sign-up starts no session and
password sign-in of an unverified account is refused).

An email change is proven twice: by the account's password now, and by the new
mailbox later (its link). The answer to a change request is the same 202 whether
or not the new address belongs to another account; such a request mails nothing.
A 409 there would let anyone with an account test which addresses have one. Either
way the request voids the account's pending email-change link at once, so the
older link cannot tell the two apart either.
"""

from __future__ import annotations

import uuid
from typing import Literal

from authgate.clock import Clock
from authgate.domain.emails import parse_email
from authgate.domain.models import ClientInfo, User
from authgate.domain.ports import Throttles, UnitOfWork, UnitOfWorkFactory
from authgate.errors import (
    AccountDisabled,
    AccountNotFound,
    FeatureDisabled,
    InvalidOneTimeToken,
)
from authgate.services.audit import AuditTrail
from authgate.services.mail_delivery import NOTICE, MailOutbox
from authgate.services.one_time_tokens import EMAIL_CHANGE, VERIFY, OneTimeTokens
from authgate.services.password_confirmation import PasswordConfirmation

VerificationMode = Literal["off", "optional", "required"]


class EmailVerificationService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        outbox: MailOutbox,
        tokens: OneTimeTokens,
        confirmation: PasswordConfirmation,
        throttles: Throttles,
        audit: AuditTrail,
        clock: Clock,
        mode: VerificationMode,
    ) -> None:
        self._uow = uow
        self._outbox = outbox
        self._tokens = tokens
        self._confirmation = confirmation
        self._throttles = throttles
        self._audit = audit
        self._clock = clock
        self._mode = mode

    async def verify(self, token: str, client: ClientInfo) -> None:
        """Use a verification or email-change token (both arrive at one route)."""
        await self._throttles.check_ip("auth", client.address or "")
        async with self._uow() as uow:
            record = await self._tokens.consume(uow, token, (VERIFY, EMAIL_CHANGE))
            user = await uow.users.get(record.user_id)
            if user is None or record.email is None:
                raise InvalidOneTimeToken(detail_for_log="one-time token without account")
            refuse_disabled(user)
            if record.purpose == VERIFY:
                if user.email != record.email or user.email_key is None:
                    # The account moved to another address since this link was mailed.
                    raise InvalidOneTimeToken(detail_for_log="verify token for an old address")
                if user.email_verified:
                    # Already proven (by a reset link, say). A verify mail being sent
                    # while that happened minted its token after the reset voided the
                    # others; it must die with them, not answer 200.
                    raise InvalidOneTimeToken(detail_for_log="address already verified")
                await uow.users.mark_email_verified(
                    user.id, email=user.email, email_key=user.email_key
                )
                await self._audit.add(
                    uow, self._audit.event("email_verified", client, user_id=user.id)
                )
                return
            new = parse_email(record.email)
            # EmailTaken (409) if another account took the address meanwhile; the
            # token is then not used up (the transaction rolls back).
            await uow.users.change_email(user.id, email=new.display, email_key=new.key)
            if user.email is not None:
                await self._outbox.enqueue(uow, user_id=user.id, purpose=NOTICE, address=user.email)
            await self._audit.add(uow, self._audit.event("email_changed", client, user_id=user.id))

    async def resend(self, user_id: str, client: ClientInfo) -> None:
        """Mail a new verification link (202 even when there is nothing to verify)."""
        self._require_enabled()
        await self._throttles.check_ip("mail", client.address or "")
        async with self._uow() as uow:
            user = await load_user(uow, user_id)
        await self._throttles.check_mail_account(user.email_key or str(user.id))
        if user.email_verified or user.email is None or user.email_key is None:
            return
        async with self._uow() as uow:
            await self._outbox.enqueue(uow, user_id=user.id, purpose=VERIFY, address=user.email)

    async def request_email_change(
        self, user_id: str, new_email: str, password: str, client: ClientInfo
    ) -> None:
        self._require_enabled()
        await self._throttles.check_ip("mail", client.address or "")
        new = parse_email(new_email)
        async with self._uow() as uow:
            user = await load_user(uow, user_id)
        await self._confirmation.check(user, password, client)
        await self._throttles.check_mail_account(user.email_key or str(user.id))
        async with self._uow() as uow:
            # Any request ends the pending change, whatever the new address: were
            # only a free address to supersede the older link (when its mail goes),
            # whether the older link still works would tell a taken address apart.
            await uow.one_time_tokens.invalidate_purpose(
                user.id, EMAIL_CHANGE, at=self._clock.now()
            )
            # And a change mail still queued (its send failing, retried later):
            # sent, its new link would work after a taken address only.
            await uow.mail_outbox.delete_unsent_for_user(user.id, purpose=EMAIL_CHANGE)
            if new.key == user.email_key:
                return
            if await uow.users.get_by_email_key(new.key) is not None:
                # Same answer as a free address (see the module docstring); nothing
                # is mailed, and the log says why.
                self._audit.emit(
                    self._audit.event(
                        "email_change_refused", client, user_id=user.id, reason="email_taken"
                    )
                )
                return
            await self._outbox.enqueue(
                uow, user_id=user.id, purpose=EMAIL_CHANGE, address=new.display
            )
            await self._audit.add(
                uow, self._audit.event("email_change_requested", client, user_id=user.id)
            )

    def _require_enabled(self) -> None:
        if self._mode == "off":
            raise FeatureDisabled("Email verification is off on this server.")


async def load_user(uow: UnitOfWork, user_id: str) -> User:
    """The account an access token's ``sub`` names; 404 if it is gone, 403 if it is
    disabled (an access token outlives the disabling by up to its lifetime)."""
    try:
        parsed = uuid.UUID(user_id)
    except ValueError:
        raise AccountNotFound("The account for this token no longer exists.") from None
    user = await uow.users.get(parsed)
    if user is None:
        raise AccountNotFound("The account for this token no longer exists.")
    refuse_disabled(user)
    return user


def refuse_disabled(user: User) -> None:
    """A disabled account changes nothing of itself (address, password, deletion:
    deleting and signing up again would shed the ban); an operator deletes it."""
    if user.disabled_at is not None:
        raise AccountDisabled()
