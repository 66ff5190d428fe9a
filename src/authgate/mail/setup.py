"""Builds the mail pieces from settings (for the composition root, authgate.bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass

from authgate.clock import Clock
from authgate.config import Settings
from authgate.domain.ports import MailSender, UnitOfWorkFactory
from authgate.mail.senders import DevelopmentOutbox, SmtpSender
from authgate.mail.templates import MailTemplates
from authgate.services.mail_delivery import MailDelivery, MailLinks, MailOutbox
from authgate.services.one_time_tokens import EMAIL_CHANGE, RESET, VERIFY, OneTimeTokens


@dataclass(frozen=True)
class Mail:
    outbox: MailOutbox
    tokens: OneTimeTokens
    delivery: MailDelivery


def build_sender(settings: Settings) -> MailSender:
    if settings.smtp_host.strip():
        return SmtpSender(
            host=settings.smtp_host.strip(),
            port=settings.smtp_port,
            sender=settings.mail_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            tls=settings.smtp_tls,
            timeout_seconds=settings.smtp_timeout_seconds,
        )
    # Development only: Settings refuses production without SMTP_HOST.
    return DevelopmentOutbox(settings.authgate_data_dir / "outbox", sender=settings.mail_from)


def build_mail(settings: Settings, *, uow: UnitOfWorkFactory, clock: Clock) -> Mail:
    verify_ttl = settings.email_verify_token_ttl_seconds
    tokens = OneTimeTokens(
        clock=clock,
        ttl_seconds={
            VERIFY: verify_ttl,
            EMAIL_CHANGE: verify_ttl,
            RESET: settings.password_reset_token_ttl_seconds,
        },
    )
    outbox = MailOutbox(clock=clock)
    delivery = MailDelivery(
        uow=uow,
        outbox=outbox,
        sender=build_sender(settings),
        templates=MailTemplates(settings.mail_templates_dir),
        tokens=tokens,
        links=MailLinks(
            verify_url=settings.effective_email_verify_url,
            reset_url=settings.effective_password_reset_url,
            email_change_url=settings.effective_email_change_url,
            verify_ttl_seconds=verify_ttl,
            reset_ttl_seconds=settings.password_reset_token_ttl_seconds,
        ),
        clock=clock,
        max_attempts=settings.mail_max_attempts,
        poll_interval_seconds=settings.mail_poll_interval_seconds,
    )
    return Mail(outbox=outbox, tokens=tokens, delivery=delivery)
