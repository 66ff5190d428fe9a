"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import asyncio
import re
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Inbox:
    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[EmailMessage] = []
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)  # a slow server
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


class SmtpServer:
    def __init__(self, port: int | None = None, *, delay: float = 0.0) -> None:
        self.port = port or free_port()
        self._inbox = _Inbox(delay)
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self._inbox.messages

    def start(self) -> None:
        self._controller = Controller(self._inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def wait_for(self, count: int, *, to: str | None = None) -> list[EmailMessage]:
        """The received messages (to ``to``, if given) once there are ``count``
        (mail leaves within a few seconds; ten is generous on a busy machine)."""
        found: list[EmailMessage] = []
        try:
            async with asyncio.timeout(10):
                while True:
                    found = [m for m in self.messages if to is None or m["To"] == to]
                    if len(found) >= count:
                        return found
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"expected {count} messages to {to}, got {len(found)}") from None

    async def wait_for_subject(self, subject: str) -> EmailMessage:
        """The first message with ``subject`` (mail may arrive in any order)."""
        try:
            async with asyncio.timeout(10):
                while True:
                    for message in self.messages:
                        if message["Subject"] == subject:
                            return message
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"no message with subject {subject!r}") from None


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()
    return content


def link_of(message: EmailMessage) -> str:
    match = re.search(r"\S+token=\S+", text_of(message))
    assert match is not None, text_of(message)
    return match.group(0)


def token_of(message: EmailMessage) -> str:
    return parse_qs(urlsplit(link_of(message)).query)["token"][0]
