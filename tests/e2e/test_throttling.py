"""Throttles across real processes: shared through Redis, keyed on the real client."""

from __future__ import annotations

import os
import secrets
import socket
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import running_server

pytestmark = pytest.mark.e2e

BASE = {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "8"}
SIGN_IN = "/api/v1/auth/credentials"


def _redis_or_skip() -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError as exc:
        message = f"Redis on 127.0.0.1:6379 is unreachable: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: Redis tests are required)", pytrace=False)
        pytest.skip(message)


def test_two_server_processes_share_one_account_lock(tmp_path: Path) -> None:
    _redis_or_skip()
    settings = {
        **BASE,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        "RATE_LIMIT_STORAGE_URL": "redis://127.0.0.1:6379/0",
        "RATE_LIMIT_FAILED_SIGNINS_PER_ACCOUNT": "4/15 minutes",
        # Instances of one deployment share the server secret: counter keys are
        # HMACs under it (each working directory would otherwise get its own).
        "SECRET_KEY": secrets.token_urlsafe(32),
        # Every run on this host signs up from 127.0.0.1 into the same Redis: the
        # default 20/hour per address would refuse the sign-up this test needs.
        "RATE_LIMIT_SIGNUP_PER_IP": "100000/hour",
    }
    email = f"shared-{uuid.uuid4().hex[:12]}@cow.jp"  # fresh counters for this run
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_server(tmp_path / "a", **settings) as a,
        running_server(tmp_path / "b", **settings) as b,
    ):
        with httpx.Client(base_url=a.base_url) as http:
            registered = http.post("/register", json={"email": email, "password": "Moo00!_*&x"})
            assert registered.status_code == 200, registered.text
        outcomes = []
        for server in (a, b, a, b):
            with httpx.Client(base_url=server.base_url) as http:
                outcomes.append(
                    http.post(SIGN_IN, json={"email": email, "password": "wrong"}).status_code
                )
        assert outcomes == [401, 401, 401, 401]
        for server in (a, b):
            with httpx.Client(base_url=server.base_url) as http:
                locked = http.post(SIGN_IN, json={"email": email, "password": "Moo00!_*&x"})
                assert locked.status_code == 429, locked.text
                assert int(locked.headers["retry-after"]) >= 1


def _spray(base_url: str, count: int) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base_url) as http:
        for i in range(count):
            response = http.post(
                SIGN_IN,
                json={"email": f"nobody{i}@cow.jp", "password": "x"},
                headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"203.0.113.{i}"},
            )
            statuses.append(response.status_code)
    return statuses


def test_a_spoofed_forwarded_for_changes_nothing(tmp_path: Path) -> None:
    settings = {**BASE, "RATE_LIMIT_AUTH_PER_IP": "3/minute", "LOG_FORMAT": "json"}
    with running_server(tmp_path, **settings) as server:
        assert _spray(server.base_url, 4) == [401, 401, 401, 429]
        log = server.log()
    assert "203.0.113." not in log  # the audit trail records the real peer


def test_a_trusted_proxy_is_believed(tmp_path: Path) -> None:
    settings = {**BASE, "RATE_LIMIT_AUTH_PER_IP": "3/minute", "TRUSTED_PROXIES": "127.0.0.1"}
    with running_server(tmp_path, **settings) as server:
        assert _spray(server.base_url, 4) == [401, 401, 401, 401]
        assert "client_address=203.0.113.3" in server.log()
