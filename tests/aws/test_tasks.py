"""authgate.aws.tasks: the scheduled EventBridge event through the real handler, on
MariaDB, after requests through the real HTTP handler: mail queued by a request
reaches a real SMTP server only when the schedule runs; pruning and the key ring's
step run once; one failing task does not stop the others."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy.engine import URL

from authgate.aws import handler, tasks
from authgate.clock import SystemClock
from authgate.config import load_settings
from tests.aws.support import PASSWORD, Answer, event, http_event
from tests.aws.test_handler import lambda_environment
from tests.support.databases import empty_mariadb, ensure_mariadb
from tests.support.smtp import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def on_lambda(smtp: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[URL]:
    url = ensure_mariadb()
    environment = lambda_environment(url, tmp_path / "data")
    environment.update(
        EMAIL_VERIFICATION="optional",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_TLS="none",
        EMAIL_VERIFY_URL="https://app.example/verify?token={token}",
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    handler.reset()
    yield url
    handler.reset()
    asyncio.run(empty_mariadb(url))


def test_mail_is_delivered_by_the_schedule_not_by_the_request(
    smtp: SmtpServer, on_lambda: URL
) -> None:
    body = {"email": "cow@cow.jp", "password": PASSWORD, "displayName": "Moo"}
    signup = Answer.of(handler.handler(http_event("http_api_v2", "POST", "/register", body), None))
    assert signup.status == 200, signup.body
    # Nothing runs between invocations: the verification mail waits in the outbox.
    assert smtp.messages == []

    summary = tasks.handler(event("scheduled"), None)
    assert summary["mail"] == {"ok": True, "processed": 1}
    (message,) = smtp.messages
    assert message["To"] == "cow@cow.jp"
    assert "https://app.example/verify?token=" in message.get_body().get_content()  # type: ignore[union-attr]
    # The ring was created by the first request; nothing is due yet.
    assert summary["keys"] == {"ok": True, "rotated": None, "retired": []}
    assert summary["prune"]["ok"] is True
    assert summary["prune"]["ran"] is True

    again = tasks.handler(event("scheduled"), None)
    assert again["mail"] == {"ok": True, "processed": 0}
    # Pruning runs at most once an hour across every invoker.
    assert again["prune"] == {"ok": True, "ran": False}
    assert len(smtp.messages) == 1


def test_a_static_ring_has_no_scheduled_step(
    on_lambda: URL, key_pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_PRIVATE_KEY", key_pair[0].read_text())
    summary = tasks.handler(event("scheduled"), None)
    assert summary["keys"] == {"ok": True, "ring": "static"}


class _Broken:
    async def drain_once(self) -> int:
        raise RuntimeError("smtp exploded")


def test_one_failing_task_does_not_stop_the_others(
    on_lambda: URL, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> dict[str, Any]:
        built = tasks.build_tasks(load_settings(), SystemClock())
        try:
            broken = replace(built, mail=cast(Any, _Broken()))
            return await tasks.run_scheduled(broken)
        finally:
            await built.close()

    summary = asyncio.run(run())
    assert summary["mail"] == {"ok": False, "error": "RuntimeError"}
    assert summary["keys"]["ok"] is True
    assert summary["prune"]["ok"] is True
    assert "scheduled task mail failed" in caplog.text


def test_the_migrate_event_applies_migrations(on_lambda: URL) -> None:
    assert tasks.handler({"task": "migrate"}, None) == {"migrate": {"ok": True}}
