"""Errors being logged do not stall the server (the real process, LOG_FORMAT=text).

The database here answers every connection with a malformed greeting, which
asyncmy fails to parse with an IndexError: not an outage, so every sign-in is a
real 500 through the whole stack, logged with its traceback.

Measured before the fix on this machine: each 500 printed a rich traceback
with local variables twice (~3,300 lines), /healthz took 4.9 s at the median
and 10.1 s at worst while four clients hit the error, and every 500 closed
its keep-alive connection.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import running_server
from tests.support.faulty_servers import garbled_server

pytestmark = pytest.mark.e2e

SIGN_IN = {"email": "cow@cow.jp", "password": "Moo00!_*&x"}


def test_healthz_answers_promptly_while_errors_are_logged(tmp_path: Path) -> None:
    with (
        garbled_server() as database,
        running_server(
            tmp_path,
            DATABASE_URL=database.url,
            LOG_FORMAT="text",
            AUTO_MIGRATE="false",
            # Every attempt must reach the database, not a throttle's 429.
            RATE_LIMIT_ENABLED="false",
        ) as server,
    ):
        statuses: list[int] = []
        transport_errors: list[str] = []
        stop = threading.Event()

        def hit_the_error() -> None:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                while not stop.is_set():
                    try:
                        response = client.post("/api/v1/auth/credentials", json=SIGN_IN)
                    except httpx.TransportError as exc:
                        transport_errors.append(repr(exc))
                        continue
                    statuses.append(response.status_code)

        clients = [threading.Thread(target=hit_the_error) for _ in range(4)]
        for thread in clients:
            thread.start()
        latencies = []
        try:
            with httpx.Client(base_url=server.base_url, timeout=30) as probe:
                deadline = time.monotonic() + 8
                while time.monotonic() < deadline:
                    started = time.monotonic()
                    assert probe.get("/healthz").status_code == 200
                    latencies.append(time.monotonic() - started)
                    time.sleep(0.05)
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=60)
        errors = statuses.count(500)
        assert errors >= 20, (statuses, transport_errors)
        assert set(statuses) == {500}
        # Generous for a shared 2-core machine: the stalls were 1.2-10 s.
        assert max(latencies) < 1.0, sorted(latencies)[-5:]

    log = server.log()
    # Every error once, with a plain traceback: no rich panels, no locals.
    assert log.count("unhandled error") >= errors
    tracebacks = log.count("Traceback (most recent call last)")
    chained = log.count("During handling of the above exception")
    # The mail drainer meets the same broken database in the background: its
    # failures are logged with their own traceback, each under its own message.
    background = log.count("mail drain failed")
    assert tracebacks - chained == log.count("unhandled error") + background
    assert "Exception in ASGI application" not in log
    assert "IndexError" in log
    assert "locals" not in log
    assert "│" not in log
    assert SIGN_IN["password"] not in log
    # A 500 no longer costs the client its keep-alive connection: each client
    # kept one (uvicorn closed the connection after every request that raised).
    assert not transport_errors, transport_errors
    ports = set(re.findall(r'127\.0\.0\.1:(\d+) - "POST /api/v1/auth/credentials', log))
    assert len(ports) <= 8, f"{len(ports)} connections for {errors} requests"
