"""Password reset against an email change confirmed while the new password was
being hashed: the reset never writes the old address back (on in-memory fakes)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from authgate.clock import FrozenClock
from authgate.domain.models import User
from authgate.errors import InvalidOneTimeToken
from authgate.services.audit import AuditTrail
from authgate.services.mail_delivery import MailOutbox
from authgate.services.one_time_tokens import RESET, VERIFY, OneTimeTokens
from authgate.services.password_confirmation import PasswordConfirmation
from authgate.services.password_policy import PasswordPolicy
from authgate.services.passwords_lifecycle import PasswordLifecycleService
from tests.unit.fakes import (
    AcceptAnyPassword,
    AllowAllThrottles,
    FakeUnitOfWork,
    RecordingHasher,
    Store,
)
from tests.unit.test_services import CLIENT


class HookedHasher(RecordingHasher):
    """Runs ``during_hash`` while hashing: another request committing meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.during_hash: Callable[[], None] = lambda: None

    async def hash(self, password: str) -> str:
        self.during_hash()
        return await super().hash(password)


async def _setup(*, verified: bool) -> tuple[PasswordLifecycleService, Store, HookedHasher, str]:
    store = Store()
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    hasher = HookedHasher()
    audit = AuditTrail(uow=lambda: FakeUnitOfWork(store), clock=clock)
    throttles = AllowAllThrottles()
    tokens = OneTimeTokens(clock=clock, ttl_seconds={VERIFY: 86_400, RESET: 1_800})
    service = PasswordLifecycleService(
        uow=lambda: FakeUnitOfWork(store),
        outbox=MailOutbox(clock=clock),
        tokens=tokens,
        hasher=hasher,
        policy=PasswordPolicy(min_length=8),
        strength=AcceptAnyPassword(),
        throttles=throttles,
        audit=audit,
        clock=clock,
        confirmation=PasswordConfirmation(hasher=hasher, throttles=throttles, audit=audit),
        reset_enabled=True,
    )
    user = User(
        id=uuid.uuid4(),
        email="cow@cow.jp",
        email_key="cow@cow.jp",
        email_verified=verified,
        given_name="",
        family_name="",
        display_name="",
        password_hash="hash:old-password",
        created_at=clock.now(),
    )
    store.users[user.id] = user
    async with FakeUnitOfWork(store) as uow:
        token = await tokens.issue(uow, user_id=user.id, purpose=RESET, email="cow@cow.jp")
    return service, store, hasher, token


@pytest.mark.parametrize("verified", [False, True])
async def test_a_reset_never_writes_back_an_address_changed_while_it_hashed(
    verified: bool,
) -> None:
    service, store, hasher, token = await _setup(verified=verified)
    [user] = store.users.values()

    def confirm_email_change() -> None:
        store.users[user.id] = dataclasses.replace(
            store.users[user.id], email="calf@cow.jp", email_key="calf@cow.jp", email_verified=True
        )

    hasher.during_hash = confirm_email_change
    with pytest.raises(InvalidOneTimeToken):
        await service.reset(token, "new-password-1", CLIENT)
    after = store.users[user.id]
    assert (after.email, after.email_key, after.email_verified) == (
        "calf@cow.jp",
        "calf@cow.jp",
        True,
    )
    assert after.password_hash == "hash:old-password"


async def test_a_reset_still_proves_an_unchanged_address() -> None:
    service, store, _, token = await _setup(verified=False)
    await service.reset(token, "new-password-1", CLIENT)
    [user] = store.users.values()
    assert (user.email, user.email_verified, user.password_hash) == (
        "cow@cow.jp",
        True,
        "hash:new-password-1",
    )
