"""Issuing and consuming one-time tokens (verification, reset, email change).

A token is bound to a user and a purpose, lives a short while, works once, and a
newer token of the same purpose replaces the older ones. Every way a token can be
wrong (unknown, used, expired, another purpose, the account moved on) is the same
``invalid_token`` answer; the reason goes to the log.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from datetime import timedelta
from uuid import UUID

from authgate.clock import Clock
from authgate.crypto.one_time_tokens import (
    MAX_ONE_TIME_TOKEN_LENGTH,
    hash_one_time_token,
    new_one_time_token,
)
from authgate.domain.models import OneTimeToken
from authgate.domain.ports import UnitOfWork
from authgate.errors import InvalidOneTimeToken

VERIFY = "verify"
RESET = "reset"
EMAIL_CHANGE = "email_change"


class OneTimeTokens:
    def __init__(self, *, clock: Clock, ttl_seconds: Mapping[str, int]) -> None:
        self._clock = clock
        self._ttl = dict(ttl_seconds)

    async def issue(self, uow: UnitOfWork, *, user_id: UUID, purpose: str, email: str) -> str:
        """A new token for ``purpose``, bound to ``email`` (the address it is mailed
        to); older unused tokens of the same user and purpose stop working."""
        now = self._clock.now()
        token = new_one_time_token()
        await uow.one_time_tokens.add(
            OneTimeToken(
                id=uuid.uuid4(),
                user_id=user_id,
                purpose=purpose,
                token_hash=hash_one_time_token(token),
                email=email,
                created_at=now,
                expires_at=now + timedelta(seconds=self._ttl[purpose]),
            )
        )
        return token

    async def check(self, uow: UnitOfWork, token: str, purposes: tuple[str, ...]) -> OneTimeToken:
        """The token's record if it can be used now, without using it."""
        if not token or len(token) > MAX_ONE_TIME_TOKEN_LENGTH:
            raise InvalidOneTimeToken(detail_for_log="malformed one-time token")
        token_hash = hash_one_time_token(token)
        record = await uow.one_time_tokens.find(token_hash)
        if record is None or not hmac.compare_digest(record.token_hash, token_hash):
            raise InvalidOneTimeToken(detail_for_log="unknown one-time token")
        if record.purpose not in purposes:
            raise InvalidOneTimeToken(detail_for_log=f"one-time token for {record.purpose}")
        if record.used_at is not None:
            raise InvalidOneTimeToken(detail_for_log="one-time token used or superseded")
        if self._clock.now() >= record.expires_at:
            raise InvalidOneTimeToken(detail_for_log="one-time token expired")
        return record

    async def consume(self, uow: UnitOfWork, token: str, purposes: tuple[str, ...]) -> OneTimeToken:
        """Check the token and mark it used, in the caller's transaction. Of two
        concurrent uses the conditional UPDATE lets exactly one through."""
        record = await self.check(uow, token, purposes)
        if not await uow.one_time_tokens.consume(record.id, at=self._clock.now()):
            raise InvalidOneTimeToken(detail_for_log="one-time token used concurrently")
        return record
