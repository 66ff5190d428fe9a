"""Redis unreachable or hung: the account lock fails closed (Unavailable), address
limits and the reset after success fail open, and nothing waits long."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from authgate.clock import FrozenClock
from authgate.errors import Unavailable
from authgate.throttling import AuthThrottles, RateLimit, ThrottleStoreUnavailable, build_throttle
from tests.support.server_secrets import THROTTLE_KEY

EMAIL = "melvin.friedman@example.com"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung Redis."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.fixture(params=["refused", "hung"])
async def throttles(
    request: pytest.FixtureRequest, silent_port: int, clock: FrozenClock
) -> AsyncIterator[AuthThrottles]:
    # Port 1 on loopback refuses at once; the silent port makes the timeout fire.
    port = 1 if request.param == "refused" else silent_port
    throttle = build_throttle(
        f"redis://127.0.0.1:{port}/0", clock=clock, hmac_key=THROTTLE_KEY, timeout_seconds=0.2
    )
    yield AuthThrottles(throttle=throttle)
    await throttle.close()


@pytest.mark.serial  # asserts wall time
async def test_account_lock_fails_closed(throttles: AuthThrottles) -> None:
    started = time.perf_counter()
    with pytest.raises(Unavailable) as caught:
        await throttles.begin_attempt(EMAIL)
    assert isinstance(caught.value.__cause__, ThrottleStoreUnavailable)
    assert time.perf_counter() - started < 2.0


@pytest.mark.serial  # asserts wall time
async def test_address_limits_and_reset_fail_open(throttles: AuthThrottles) -> None:
    started = time.perf_counter()
    await throttles.check_ip("auth", "192.0.2.1")
    await throttles.check_ip("refresh", "192.0.2.1")
    await throttles.record_success(EMAIL)
    assert time.perf_counter() - started < 2.0


async def test_counter_throttle_reports_the_store_as_unavailable(clock: FrozenClock) -> None:
    throttle = build_throttle("redis://127.0.0.1:1/0", clock=clock, hmac_key=THROTTLE_KEY)
    try:
        with pytest.raises(ThrottleStoreUnavailable, match=r"Connection refused|Error 111"):
            await throttle.hit("test", "k", RateLimit(amount=1, window_seconds=60))
    finally:
        await throttle.close()
