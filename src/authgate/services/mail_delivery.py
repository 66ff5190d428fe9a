"""Mail after commit: the outbox (the ``mail_outbox`` table) and its drainer.

Why a table and not an in-process queue: a row survives a restart or a crash
between the commit and the send; every instance sees it, so any of them can send
it; and it works where no process outlives the request (AWS Lambda, with a
scheduled drain). A row is written in the same transaction as the change that
wants the mail, so mail goes out exactly for changes that committed.

The row holds the intent (user, purpose, address), never a link: the one-time
token is created when the mail is actually sent, in the drainer, so a database
dump of the queue holds nothing usable. Creating it supersedes older tokens of the
same user and purpose, so only the latest mail's link works.

The drainer runs as a background task of the web process. An after-commit callback
wakes it at once (an ``asyncio.Event``), and it also polls every few seconds for
rows queued by other instances or left by a failed attempt. Rows are leased
(``locked_until``) in a short transaction, so two drainers never send one row
twice; sending happens outside any transaction, so a slow SMTP server holds no
database lock and never delays a request. A failed send is retried with
exponential backoff, up to ``max_attempts``; delivery is at least once (a crash
between the send and marking it sent sends it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote
from uuid import UUID

from authgate.clock import Clock
from authgate.domain.models import OutboxMail, OutgoingMail, User
from authgate.domain.ports import (
    MailSender,
    MailTemplateRenderer,
    UnitOfWork,
    UnitOfWorkFactory,
)
from authgate.errors import MailDeliveryFailed, Unavailable
from authgate.services.one_time_tokens import EMAIL_CHANGE, RESET, VERIFY, OneTimeTokens

logger = logging.getLogger("authgate.mail")

NOTICE = "email_changed_notice"
LEASE_SECONDS = 120
BATCH = 20
SETTLE_SECONDS = (0.05, 0.25)
_jitter = secrets.SystemRandom()


@dataclass(frozen=True)
class MailLinks:
    """URL templates containing ``{token}`` (validated by the settings)."""

    verify_url: str
    reset_url: str
    email_change_url: str
    verify_ttl_seconds: int
    reset_ttl_seconds: int

    def link(self, purpose: str, token: str) -> str:
        template = {
            VERIFY: self.verify_url,
            RESET: self.reset_url,
            EMAIL_CHANGE: self.email_change_url,
        }[purpose]
        return template.replace("{token}", quote(token, safe=""))


class MailOutbox:
    """The enqueue side, used by services inside their unit of work."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._wake = asyncio.Event()

    @property
    def wake_event(self) -> asyncio.Event:
        return self._wake

    def wake(self) -> None:
        self._wake.set()

    async def enqueue(
        self, uow: UnitOfWork, *, user_id: UUID | None, purpose: str, address: str | None
    ) -> None:
        """Queue one mail with the caller's transaction. ``user_id=None`` queues a
        blank that the drainer drops: forgot-password does the same work for an
        address without an account as for one with."""
        now = self._clock.now()
        await uow.mail_outbox.add(
            OutboxMail(
                id=uuid.uuid4(),
                user_id=user_id,
                purpose=purpose,
                address=address,
                created_at=now,
                next_attempt_at=now,
            )
        )
        uow.after_commit(self.wake)


class MailDelivery:
    """The drain side: lease due rows, make their tokens, render, send, record."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        outbox: MailOutbox,
        sender: MailSender,
        templates: MailTemplateRenderer,
        tokens: OneTimeTokens,
        links: MailLinks,
        clock: Clock,
        max_attempts: int = 8,
        poll_interval_seconds: float = 5.0,
        base_backoff_seconds: int = 30,
    ) -> None:
        self._uow = uow
        self._outbox = outbox
        self._sender = sender
        self._templates = templates
        self._tokens = tokens
        self._links = links
        self._clock = clock
        self._max_attempts = max_attempts
        self._poll = poll_interval_seconds
        self._backoff = base_backoff_seconds
        self._stopping = False

    async def run(self) -> None:
        """Drain until :meth:`stop`: at once when woken, else every poll interval."""
        self._stopping = False
        self._database_away = False
        wake = self._outbox.wake_event
        wake.set()  # rows left from before a restart
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await wake.wait()
            wake.clear()
            if self._stopping:
                return
            # A moment's settle before draining: the request that woke us has sent
            # its answer by then. Drained at once, the drainer's work (a token and a
            # send for a real account, a delete for forgot-password's blank) would
            # share the event loop with that answer and time it differently. The
            # jitter keeps it from landing on the same later request every time.
            await asyncio.sleep(_jitter.uniform(*SETTLE_SECONDS))
            try:
                while await self.drain_once() == BATCH and not self._stopping:
                    pass
            except Unavailable as exc:
                # The database is away: the leases expire and a later pass retries.
                # One line when it goes (no traceback: an outage is not a bug), one
                # when it is back, and nothing for every poll in between.
                if not self._database_away:
                    logger.warning(
                        "mail drain paused, the database is unavailable: %s",
                        exc.detail_for_log or exc.message,
                    )
                self._database_away = True
                continue
            except Exception:
                logger.exception("mail drain failed; retrying later")
                continue
            if self._database_away:
                logger.info("mail drain resumed: the database is back")
                self._database_away = False

    def stop(self) -> None:
        """Let :meth:`run` finish the mail in hand and return (no cancellation in
        the middle of a transaction)."""
        self._stopping = True
        self._outbox.wake()

    async def drain_once(self) -> int:
        """Lease and process one batch of due rows; the number leased."""
        now = self._clock.now()
        async with self._uow() as uow:
            batch = await uow.mail_outbox.claim(
                now=now,
                lease_until=now + timedelta(seconds=LEASE_SECONDS),
                limit=BATCH,
                max_attempts=self._max_attempts,
            )
        for mail in batch:
            await self._deliver(mail)
        return len(batch)

    async def _deliver(self, mail: OutboxMail) -> None:
        message = await self._prepare(mail)
        if message is None:
            async with self._uow() as uow:
                await uow.mail_outbox.delete(mail.id)
            return
        try:
            await self._sender.send(message)
        except MailDeliveryFailed as exc:
            attempts = mail.attempts + 1
            delay = min(self._backoff * 2 ** (attempts - 1), 3600)
            logger.warning(
                "mail %s (%s) not sent, attempt %d of %d: %s",
                mail.id,
                mail.purpose,
                attempts,
                self._max_attempts,
                exc.detail_for_log,
            )
            async with self._uow() as uow:
                await uow.mail_outbox.mark_failed(
                    mail.id,
                    attempts=attempts,
                    next_attempt_at=self._clock.now() + timedelta(seconds=delay),
                    error=exc.detail_for_log or "send failed",
                )
            return
        async with self._uow() as uow:
            await uow.mail_outbox.mark_sent(mail.id, at=self._clock.now())
        logger.info("mail %s (%s) sent", mail.id, mail.purpose)

    async def _prepare(self, mail: OutboxMail) -> OutgoingMail | None:
        """The message for ``mail``, or None when it no longer applies (a blank, a
        deleted user, an address verified or changed since it was queued)."""
        if mail.user_id is None or mail.address is None:
            return None
        async with self._uow() as uow:
            user = await uow.users.get(mail.user_id)
            if user is None or not _still_applies(mail, user):
                return None
            link = None
            if mail.purpose in (VERIFY, RESET, EMAIL_CHANGE):
                token = await self._tokens.issue(
                    uow, user_id=user.id, purpose=mail.purpose, email=mail.address
                )
                link = self._links.link(mail.purpose, token)
        # The token is committed before the send: a failed send leaves an unused
        # token that the retry's new token supersedes.
        context = {
            "name": user.full_name,
            "email": mail.address,
            "link": link or "",
            "ttl_hours": self._links.verify_ttl_seconds // 3600,
            "ttl_minutes": self._links.reset_ttl_seconds // 60,
        }
        subject, text, html = self._templates.render(mail.purpose, context)
        return OutgoingMail(
            to=mail.address, subject=subject, text=text, html=html, purpose=mail.purpose, link=link
        )


def _still_applies(mail: OutboxMail, user: User) -> bool:
    if user.disabled_at is not None:
        # Queued before the account was disabled: a link would let it act again.
        return False
    if mail.purpose == VERIFY:
        return not user.email_verified and user.email == mail.address
    if mail.purpose == RESET:
        return user.email == mail.address
    return mail.purpose in (EMAIL_CHANGE, NOTICE)
