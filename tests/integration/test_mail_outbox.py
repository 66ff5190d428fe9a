"""The mail outbox on a real database: two drainers never send one row twice, and
one-time tokens are single use under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import URL

from authgate.clock import FrozenClock
from authgate.domain.models import OutgoingMail, User
from authgate.mail.templates import MailTemplates
from authgate.services.mail_delivery import MailDelivery, MailLinks, MailOutbox
from authgate.services.one_time_tokens import RESET, VERIFY, OneTimeTokens
from authgate.storage.engine import create_engine
from authgate.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.support.rows import fetch_all

LINKS = MailLinks(
    verify_url="https://app.example/v?token={token}",
    reset_url="myapp://reset?token={token}",
    email_change_url="https://app.example/v?token={token}",
    verify_ttl_seconds=86_400,
    reset_ttl_seconds=1_800,
)


class SlowSender:
    """Takes a while per message, so the two drainers overlap."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []

    async def send(self, message: OutgoingMail) -> None:
        await asyncio.sleep(0.01)
        self.sent.append(message)


def _drainer(engine_url: URL, clock: FrozenClock, sender: SlowSender) -> tuple[MailDelivery, Any]:
    engine = create_engine(engine_url, pool_size=4)
    uow = SqlUnitOfWorkFactory(engine)
    delivery = MailDelivery(
        uow=uow,
        outbox=MailOutbox(clock=clock),
        sender=sender,
        templates=MailTemplates(),
        tokens=OneTimeTokens(clock=clock, ttl_seconds={VERIFY: 86_400, RESET: 1_800}),
        links=LINKS,
        clock=clock,
    )
    return delivery, engine


async def test_two_drainers_on_one_database_never_send_one_row_twice(database_url: URL) -> None:
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    senders = [SlowSender(), SlowSender()]
    drainers = [_drainer(database_url, clock, sender) for sender in senders]
    uow = SqlUnitOfWorkFactory(drainers[0][1])
    outbox = MailOutbox(clock=clock)
    count = 30
    try:
        async with uow() as work:
            for i in range(count):
                user = User(
                    id=uuid.uuid4(),
                    email=f"user{i}@cow.jp",
                    email_key=f"user{i}@cow.jp",
                    email_verified=False,
                    given_name="",
                    family_name="",
                    display_name="",
                    password_hash=None,
                    created_at=clock.now(),
                )
                await work.users.add(user)
                await outbox.enqueue(work, user_id=user.id, purpose=VERIFY, address=user.email)

        async def drain(delivery: MailDelivery) -> None:
            while await delivery.drain_once():
                pass

        await asyncio.gather(*(drain(delivery) for delivery, _ in drainers))
        addresses = [message.to for sender in senders for message in sender.sent]
        assert sorted(addresses) == sorted(f"user{i}@cow.jp" for i in range(count))
        rows = await fetch_all(database_url, "mail_outbox")
        assert all(row["sent_at"] is not None for row in rows)
        tokens = await fetch_all(database_url, "one_time_tokens")
        assert len(tokens) == count
    finally:
        for _, engine in drainers:
            await engine.dispose()


async def test_a_one_time_token_is_consumed_once_under_concurrency(database_url: URL) -> None:
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    engine = create_engine(database_url, pool_size=10)
    uow = SqlUnitOfWorkFactory(engine)
    tokens = OneTimeTokens(clock=clock, ttl_seconds={RESET: 1_800})
    try:
        user_id = uuid.uuid4()
        async with uow() as work:
            await work.users.add(
                User(
                    id=user_id,
                    email="cow@cow.jp",
                    email_key="cow@cow.jp",
                    email_verified=False,
                    given_name="",
                    family_name="",
                    display_name="",
                    password_hash=None,
                    created_at=clock.now(),
                )
            )
            token = await tokens.issue(work, user_id=user_id, purpose=RESET, email="cow@cow.jp")

        async def use() -> bool:
            try:
                async with uow() as work:
                    await tokens.consume(work, token, (RESET,))
                    await asyncio.sleep(0.02)  # hold the row while the others try
            except Exception:
                return False
            return True

        results = await asyncio.gather(*(use() for _ in range(10)))
        assert results.count(True) == 1
    finally:
        await engine.dispose()


async def test_confirming_an_address_writes_no_address_and_only_if_it_is_unchanged(
    database_url: URL,
) -> None:
    """What a reset uses to mark the address it mailed verified: a conditional UPDATE,
    so an email change committed since the reset read the account is not undone."""
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    engine = create_engine(database_url, pool_size=2)
    uow = SqlUnitOfWorkFactory(engine)
    # The account's address now (the reset read cow@ before it changed).
    user = User(
        id=uuid.uuid4(),
        email="Calf@cow.jp",
        email_key="calf@cow.jp",
        email_verified=False,
        given_name="",
        family_name="",
        display_name="",
        password_hash=None,
        created_at=clock.now(),
    )
    try:
        async with uow() as work:
            await work.users.add(user)
        async with uow() as work:
            assert await work.users.confirm_email(user.id, email_key="cow@cow.jp") is False
        [row] = await fetch_all(database_url, "users")
        assert (row["email"], row["email_key"], bool(row["email_verified"])) == (
            "Calf@cow.jp",
            "calf@cow.jp",
            False,
        )
        async with uow() as work:
            assert await work.users.confirm_email(user.id, email_key="calf@cow.jp") is True
        [row] = await fetch_all(database_url, "users")
        assert (row["email"], row["email_key"], bool(row["email_verified"])) == (
            "Calf@cow.jp",
            "calf@cow.jp",
            True,
        )
    finally:
        await engine.dispose()
