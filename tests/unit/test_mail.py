"""Mail settings, templates and the drainer's retry logic, without network."""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from authgate.clock import FrozenClock
from authgate.config import SettingsError, load_settings
from authgate.crypto.one_time_tokens import hash_one_time_token
from authgate.domain.models import User
from authgate.mail.templates import MailTemplates
from authgate.services.mail_delivery import MailDelivery, MailLinks, MailOutbox
from authgate.services.one_time_tokens import EMAIL_CHANGE, RESET, VERIFY, OneTimeTokens
from tests.unit.fakes import FakeUnitOfWork, RecordingMailSender, Store

PRODUCTION = {
    "authgate_env": "production",
    "jwt_private_key_path": "/etc/authgate/jwt-private.pem",
    "jwt_public_key_path": "/etc/authgate/jwt-public.pem",
    "public_url": "https://auth.example.test",
    "secret_key": secrets.token_urlsafe(32),
    "email_verify_url": "https://app.example.test/verify?token={token}",
    "password_reset_url": "https://app.example.test/reset?token={token}",
}


def test_production_refuses_to_start_without_smtp_while_mail_is_needed() -> None:
    with pytest.raises(SettingsError, match=r"^SMTP_HOST: AUTHGATE_ENV=production"):
        load_settings(**PRODUCTION)
    with pytest.raises(SettingsError, match=r"^SMTP_HOST"):
        load_settings(**PRODUCTION, email_verification="off")
    assert load_settings(**PRODUCTION, smtp_host="smtp.example").smtp_host == "smtp.example"
    off = load_settings(**PRODUCTION, email_verification="off", password_reset_enabled=False)
    assert not off.mail_required


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example/verify",
        "https://app.example/verify?token=",
        "not a url {token}",
        "{token}",
    ],
)
def test_link_templates_must_be_urls_with_a_token(url: str) -> None:
    with pytest.raises(SettingsError, match=r"^PASSWORD_RESET_URL: must be an absolute URL"):
        load_settings(password_reset_url=url)


def test_deep_links_are_allowed_and_email_change_defaults_to_the_verify_url() -> None:
    settings = load_settings(
        password_reset_url="myapp://reset?token={token}",
        email_verify_url="https://app.example/v#token={token}",
    )
    assert settings.password_reset_url == "myapp://reset?token={token}"
    assert settings.effective_email_change_url == "https://app.example/v#token={token}"


def test_templates_are_overridable_and_html_is_escaped(tmp_path: Path) -> None:
    (tmp_path / "verify.subject.txt").write_text("Welcome to Cows\nBcc: evil@example.com\n")
    templates = MailTemplates(tmp_path)
    subject, text, html = templates.render(
        "verify",
        {"name": "<b>Mel</b>", "email": "a@b.c", "link": "https://x/?token=t", "ttl_hours": 24},
    )
    # One header line whatever the template says: no header injection.
    assert subject == "Welcome to Cows Bcc: evil@example.com"
    assert "<b>Mel</b>" in text
    assert "&lt;b&gt;Mel&lt;/b&gt;" in html


def test_links_url_encode_the_token() -> None:
    links = MailLinks(
        verify_url="https://a/v?token={token}",
        reset_url="myapp://reset?token={token}",
        email_change_url="https://a/c?token={token}",
        verify_ttl_seconds=1,
        reset_ttl_seconds=1,
    )
    assert links.link(RESET, "a b/+") == "myapp://reset?token=a%20b%2F%2B"


def _setup(store: Store) -> tuple[MailDelivery, RecordingMailSender, FrozenClock, MailOutbox]:
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))
    sender = RecordingMailSender()
    outbox = MailOutbox(clock=clock)
    delivery = MailDelivery(
        uow=lambda: FakeUnitOfWork(store),
        outbox=outbox,
        sender=sender,
        templates=MailTemplates(),
        tokens=OneTimeTokens(clock=clock, ttl_seconds={VERIFY: 86_400, RESET: 1_800}),
        links=MailLinks(
            verify_url="https://a/v?token={token}",
            reset_url="https://a/r?token={token}",
            email_change_url="https://a/v?token={token}",
            verify_ttl_seconds=86_400,
            reset_ttl_seconds=1_800,
        ),
        clock=clock,
        max_attempts=3,
    )
    return delivery, sender, clock, outbox


def _user(store: Store, *, verified: bool = False) -> User:
    user = User(
        id=uuid.uuid4(),
        email="cow@cow.jp",
        email_key="cow@cow.jp",
        email_verified=verified,
        given_name="Mel",
        family_name="",
        display_name="",
        password_hash=None,
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    store.users[user.id] = user
    return user


async def test_failed_sends_back_off_then_stop_after_max_attempts() -> None:
    store = Store()
    delivery, sender, clock, outbox = _setup(store)
    user = _user(store)
    async with FakeUnitOfWork(store) as uow:
        await outbox.enqueue(uow, user_id=user.id, purpose=VERIFY, address=user.email)
    assert outbox.wake_event.is_set()  # the commit woke the drainer
    sender.fail = True
    assert await delivery.drain_once() == 1
    assert await delivery.drain_once() == 0  # backing off: 30 s
    clock.advance(30)
    assert await delivery.drain_once() == 1
    clock.advance(59)
    assert await delivery.drain_once() == 0  # then 60 s
    clock.advance(1)
    assert await delivery.drain_once() == 1
    clock.advance(3600)
    assert await delivery.drain_once() == 0  # three attempts: given up
    [row] = store.mail_outbox.values()
    assert (row.attempts, row.sent_at, row.last_error) == (3, None, "fake server down")
    assert sender.sent == []


async def test_blanks_and_mail_that_no_longer_applies_are_dropped_unsent() -> None:
    store = Store()
    delivery, sender, _, outbox = _setup(store)
    verified = _user(store, verified=True)
    async with FakeUnitOfWork(store) as uow:
        await outbox.enqueue(uow, user_id=None, purpose=RESET, address=None)
        await outbox.enqueue(uow, user_id=verified.id, purpose=VERIFY, address=verified.email)
    assert await delivery.drain_once() == 2
    assert sender.sent == []
    assert store.mail_outbox == {}
    assert store.one_time_tokens == {}


async def test_mail_of_a_disabled_account_is_dropped_unsent() -> None:
    store = Store()
    delivery, sender, clock, outbox = _setup(store)
    user = _user(store)
    async with FakeUnitOfWork(store) as uow:
        for purpose in (VERIFY, RESET, EMAIL_CHANGE):
            await outbox.enqueue(uow, user_id=user.id, purpose=purpose, address=user.email)
    # Disabled after the mail was queued (by hand, or racing the disabling).
    store.users[user.id] = dataclasses.replace(user, disabled_at=clock.now())
    assert await delivery.drain_once() == 3
    assert sender.sent == []
    assert store.mail_outbox == {}
    assert store.one_time_tokens == {}


async def test_the_token_is_made_at_send_time_and_supersedes_the_older_one() -> None:
    store = Store()
    delivery, sender, _, outbox = _setup(store)
    user = _user(store)
    for _ in range(2):
        async with FakeUnitOfWork(store) as uow:
            await outbox.enqueue(uow, user_id=user.id, purpose=RESET, address=user.email)
        # Queued: an intent, no token yet.
        assert len(store.one_time_tokens) == len(sender.sent)
        await delivery.drain_once()
    first, second = (parse_qs(urlsplit(m.link or "").query)["token"][0] for m in sender.sent)
    by_hash = {t.token_hash: t for t in store.one_time_tokens.values()}
    assert by_hash[hash_one_time_token(first)].used_at is not None  # superseded
    assert by_hash[hash_one_time_token(second)].used_at is None


async def test_an_unavailable_database_pauses_the_drainer_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio
    import logging

    from authgate.errors import Unavailable

    delivery, _sender, _clock, outbox = _setup(Store())
    passes = {"count": 0}
    database_back = asyncio.Event()

    async def drain_once() -> int:
        passes["count"] += 1
        if passes["count"] <= 3:
            raise Unavailable(detail_for_log="database: connection refused")
        database_back.set()
        return 0

    delivery.drain_once = drain_once  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, logger="authgate.mail")
    task = asyncio.create_task(delivery.run())
    for _ in range(3):
        await asyncio.sleep(0.3)  # past the settle delay
        outbox.wake()
    await asyncio.wait_for(database_back.wait(), timeout=5)
    delivery.stop()
    await asyncio.wait_for(task, timeout=5)

    messages = [record.getMessage() for record in caplog.records]
    paused = [m for m in messages if "mail drain paused" in m]
    assert len(paused) == 1, messages
    assert "connection refused" in paused[0]
    assert any("mail drain resumed" in m for m in messages)
    assert not any(record.exc_info for record in caplog.records)
