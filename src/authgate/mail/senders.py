"""Mail senders: SMTP (aiosmtplib) and the development outbox (``.eml`` files)."""

from __future__ import annotations

import logging
import os
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Literal

import aiosmtplib

from authgate.domain.models import OutgoingMail
from authgate.errors import MailDeliveryFailed

logger = logging.getLogger("authgate.mail")


def build_message(message: OutgoingMail, *, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


class SmtpSender:
    """One connection per message: mail is rare and a kept-open connection would
    only time out between messages."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str = "",
        password: str = "",
        tls: Literal["starttls", "tls", "none"] = "starttls",
        timeout_seconds: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username or None
        self._password = password or None
        self._tls = tls
        self._timeout = timeout_seconds

    async def send(self, message: OutgoingMail) -> None:
        email = build_message(message, sender=self._sender)
        try:
            await aiosmtplib.send(
                email,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._tls == "tls",
                # "starttls" insists: a server that does not offer it is an error,
                # not a reason to send credentials and links in clear text.
                start_tls=self._tls == "starttls",
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailDeliveryFailed(detail_for_log=f"{type(exc).__name__}: {exc}") from exc


class DevelopmentOutbox:
    """Development only (no SMTP_HOST): each message becomes a ``.eml`` file (0600)
    and its link is logged, so ``make serve`` shows a flow end to end. This is the
    one place a token is ever logged; production refuses to start without SMTP."""

    def __init__(self, directory: Path, *, sender: str) -> None:
        self._directory = directory
        self._sender = sender

    async def send(self, message: OutgoingMail) -> None:
        email = build_message(message, sender=self._sender)
        try:
            self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self._directory / f"{message.purpose}-{uuid.uuid4().hex}.eml"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(email.as_bytes())
        except OSError as exc:
            raise MailDeliveryFailed(detail_for_log=f"outbox: {exc}") from exc
        logger.warning(
            "DEVELOPMENT MAIL (no SMTP_HOST) %s to %s written to %s; link: %s",
            message.purpose,
            message.to,
            path,
            message.link or "(none)",
        )
