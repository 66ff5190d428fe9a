"""AuthThrottles policy on memory storage and a frozen clock."""

from __future__ import annotations

import logging

import pytest

from authgate.clock import FrozenClock
from authgate.errors import AccountLocked, TooManyRequests, Unavailable
from authgate.throttling import (
    AuthThrottles,
    CounterThrottle,
    Decision,
    RateLimit,
    Throttle,
    ThrottleStoreUnavailable,
    client_key,
)

EMAIL = "melvin.friedman@example.com"


def policy(throttle: Throttle, *, enabled: bool = True) -> AuthThrottles:
    return AuthThrottles(
        throttle=throttle,
        enabled=enabled,
        auth_per_ip=RateLimit(amount=3, window_seconds=60),
        signup_per_ip=RateLimit(amount=2, window_seconds=3600),
        refresh_per_ip=RateLimit(amount=5, window_seconds=60),
        failures_per_account=RateLimit(amount=3, window_seconds=900),
    )


async def test_ip_limit_refuses_the_request_over_the_limit(
    throttle: CounterThrottle, clock: FrozenClock
) -> None:
    throttles = policy(throttle)
    clock.advance(15)
    for _ in range(3):
        await throttles.check_ip("auth", "192.0.2.1")

    with pytest.raises(TooManyRequests) as caught:
        await throttles.check_ip("auth", "192.0.2.1")
    assert caught.value.retry_after_seconds == 45
    assert caught.value.code == "too_many_requests"


async def test_ip_scopes_and_addresses_count_separately(throttle: CounterThrottle) -> None:
    throttles = policy(throttle)
    for _ in range(3):
        await throttles.check_ip("auth", "192.0.2.1")

    await throttles.check_ip("refresh", "192.0.2.1")
    await throttles.check_ip("signup", "192.0.2.1")
    await throttles.check_ip("auth", "192.0.2.2")


async def test_ipv6_clients_are_counted_per_64(throttle: CounterThrottle) -> None:
    throttles = policy(throttle)
    for host in range(1, 4):
        await throttles.check_ip("auth", f"2001:db8:1:2::{host}")

    with pytest.raises(TooManyRequests):
        await throttles.check_ip("auth", "2001:db8:1:2:ffff::9")
    await throttles.check_ip("auth", "2001:db8:1:3::1")


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::9", "2001:db8:1:2::/64"),
        ("testclient", "testclient"),
        ("", ""),
    ],
)
def test_client_key(address: str, key: str) -> None:
    assert client_key(address) == key


async def test_unknown_scope_is_a_programming_error(throttle: CounterThrottle) -> None:
    with pytest.raises(ValueError, match="unknown throttle scope"):
        await policy(throttle).check_ip("login", "192.0.2.1")  # type: ignore[arg-type]


async def test_each_attempt_counts_and_the_one_over_the_limit_starts_the_lock(
    throttle: CounterThrottle,
) -> None:
    throttles = policy(throttle)
    for _ in range(3):
        await throttles.begin_attempt(EMAIL)
    with pytest.raises(AccountLocked) as first:
        await throttles.begin_attempt(EMAIL)
    assert first.value.lock_started
    with pytest.raises(AccountLocked) as second:
        await throttles.begin_attempt(EMAIL)
    assert not second.value.lock_started


async def test_account_locks_after_the_failures_and_releases_after_the_window(
    throttle: CounterThrottle, clock: FrozenClock
) -> None:
    throttles = policy(throttle)
    clock.advance(100)
    for _ in range(3):
        await throttles.begin_attempt(EMAIL)

    # Locked: the caller counts before verifying, so even the right password
    # gets this answer.
    for _ in range(2):
        with pytest.raises(TooManyRequests) as caught:
            await throttles.begin_attempt(EMAIL)
        assert caught.value.retry_after_seconds == 800
    await throttles.begin_attempt("someone.else@example.com")

    clock.advance(799)
    with pytest.raises(TooManyRequests):
        await throttles.begin_attempt(EMAIL)
    clock.advance(1)
    await throttles.begin_attempt(EMAIL)


async def test_failures_from_many_addresses_lock_the_account(throttle: CounterThrottle) -> None:
    throttles = policy(throttle)
    for host in range(3):
        await throttles.check_ip("auth", f"198.51.100.{host}")
        await throttles.begin_attempt(EMAIL)
    with pytest.raises(TooManyRequests):
        await throttles.begin_attempt(EMAIL)


async def test_success_resets_the_failures(throttle: CounterThrottle) -> None:
    throttles = policy(throttle)
    for _ in range(2):
        await throttles.begin_attempt(EMAIL)
    await throttles.record_success(EMAIL)
    for _ in range(3):
        await throttles.begin_attempt(EMAIL)  # 3 more fit: the first 2 were forgotten


class ExplodingThrottle:
    """Any use fails the test: a disabled policy must not touch the store."""

    async def hit(self, name: str, key: str, limit: RateLimit) -> Decision:
        raise AssertionError("hit")

    async def reset(self, name: str, key: str, limit: RateLimit) -> None:
        raise AssertionError("reset")

    async def close(self) -> None:
        raise AssertionError("close")


async def test_disabled_is_a_no_op() -> None:
    throttles = policy(ExplodingThrottle(), enabled=False)
    for _ in range(10):
        await throttles.check_ip("auth", "192.0.2.1")
        await throttles.check_ip("signup", "192.0.2.1")
        await throttles.check_ip("refresh", "192.0.2.1")
        await throttles.begin_attempt(EMAIL)
        await throttles.record_success(EMAIL)


class DownThrottle:
    async def hit(self, name: str, key: str, limit: RateLimit) -> Decision:
        raise ThrottleStoreUnavailable("connection refused")

    async def reset(self, name: str, key: str, limit: RateLimit) -> None:
        raise ThrottleStoreUnavailable("connection refused")

    async def close(self) -> None:
        return None


async def test_unreachable_store_fails_closed_for_the_account_lock() -> None:
    throttles = policy(DownThrottle())
    with pytest.raises(Unavailable) as caught:
        await throttles.begin_attempt(EMAIL)
    assert caught.value.detail_for_log is not None
    assert "connection refused" in caught.value.detail_for_log


async def test_unreachable_store_fails_open_for_address_limits_and_reset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    throttles = policy(DownThrottle())
    with caplog.at_level(logging.WARNING, logger="authgate.throttling"):
        for _ in range(5):
            await throttles.check_ip("auth", "192.0.2.1")
        await throttles.record_success(EMAIL)
    assert len(caplog.records) == 6
    assert all("throttle store unavailable" in r.getMessage() for r in caplog.records)
