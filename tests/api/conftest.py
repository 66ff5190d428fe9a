"""Fixtures the API tests share: a real SMTP server and the providers' stand-ins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.idp import FakeIdp
from tests.support.smtp import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def google() -> Iterator[FakeIdp]:
    """A local stand-in that signs and serves keys in Google's exact format."""
    with FakeIdp("google") as idp:
        yield idp


@pytest.fixture
def apple() -> Iterator[FakeIdp]:
    """A local stand-in that signs and serves keys in Apple's exact format."""
    with FakeIdp("apple") as idp:
        yield idp
