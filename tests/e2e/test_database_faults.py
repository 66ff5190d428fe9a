"""The real process with its database gone: 503 with Retry-After, in bounded time."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import authgate_command, clean_environment, running_server
from tests.support.faulty_servers import FaultyServer, resetting_server, silent_server

pytestmark = pytest.mark.e2e

REQUESTS = (
    ("POST", "/api/v1/auth/credentials", {"email": "cow@cow.jp", "password": "Moo00!_*&x"}),
    ("POST", "/api/v1/refresh", {"refreshToken": secrets.token_urlsafe(32)}),
    ("POST", "/refreshToken", {"refreshToken": secrets.token_urlsafe(32)}),
    ("GET", "/readyz", None),
)
# Every request must reach the database, not a throttle.
SETTINGS = {"AUTO_MIGRATE": "false", "RATE_LIMIT_ENABLED": "false"}


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.request.url.path, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unavailable"
    assert int(response.headers["retry-after"]) > 0


def test_a_killed_database_is_503_under_concurrent_load(tmp_path: Path) -> None:
    with (
        resetting_server() as database,
        running_server(tmp_path, DATABASE_URL=database.url, **SETTINGS) as server,
    ):
        with httpx.Client(base_url=server.base_url, timeout=30) as client:

            def send(index: int) -> httpx.Response:
                method, path, body = REQUESTS[index % len(REQUESTS)]
                return client.request(method, path, json=body)

            with ThreadPoolExecutor(max_workers=16) as pool:
                responses = list(pool.map(send, range(200)))
        for response in responses:
            _assert_unavailable(response)
        assert database.accepted >= 100
    assert "Traceback" not in server.log()


def test_a_database_that_never_answers_is_503_within_the_connect_timeout(
    tmp_path: Path,
) -> None:
    with (
        silent_server() as database,
        running_server(
            tmp_path, DATABASE_URL=database.url, DB_CONNECT_TIMEOUT_SECONDS="1", **SETTINGS
        ) as server,
    ):
        for method, path, body in REQUESTS:
            started = time.monotonic()
            response = httpx.request(method, f"{server.base_url}{path}", json=body, timeout=60)
            _assert_unavailable(response)
            assert time.monotonic() - started < 10


@pytest.mark.parametrize("fault", [resetting_server, silent_server])
def test_migrate_against_a_dead_database_fails_in_one_line(
    tmp_path: Path, fault: Callable[[], FaultyServer]
) -> None:
    with fault() as database:
        started = time.monotonic()
        finished = subprocess.run(
            authgate_command("migrate"),
            cwd=tmp_path,
            env=clean_environment(DATABASE_URL=database.url, DB_CONNECT_TIMEOUT_SECONDS="1"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        elapsed = time.monotonic() - started
    assert finished.returncode == 1, finished.stderr
    assert "Traceback" not in finished.stderr
    assert (
        finished.stderr.strip()
        .splitlines()[-1]
        .startswith("authgate: error: DATABASE_URL / MYSQL_*: cannot use the database:")
    )
    assert elapsed < 60
