"""build_throttle: storage URLs accepted, and refusals that name the setting."""

from __future__ import annotations

import pytest

from authgate.clock import FrozenClock
from authgate.throttling import CounterThrottle, build_throttle
from tests.support.server_secrets import THROTTLE_KEY


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "redis://127.0.0.1:6379/0",
        "redis://cache.internal:6380",
        "redis://:secret@127.0.0.1:6379/2",
        "rediss://user:secret@cache.internal:6380/0",
    ],
)
async def test_accepts_memory_and_redis_urls_without_connecting(
    url: str, clock: FrozenClock
) -> None:
    throttle = build_throttle(url, clock=clock, hmac_key=THROTTLE_KEY)
    assert isinstance(throttle, CounterThrottle)
    await throttle.close()


@pytest.mark.parametrize(
    "url",
    [
        "",
        "localhost:6379",
        "memcached://127.0.0.1:11211",
        "async+redis://127.0.0.1:6379",
        "memory://somewhere",
        "redis://",
        "redis://127.0.0.1:port/0",
        "redis://127.0.0.1:99999/0",
        "redis://127.0.0.1:6379/cache",
    ],
)
def test_refuses_bad_urls_naming_the_setting(url: str, clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="RATE_LIMIT_STORAGE_URL"):
        build_throttle(url, clock=clock, hmac_key=THROTTLE_KEY)


def test_error_message_hides_the_password(clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="RATE_LIMIT_STORAGE_URL") as caught:
        build_throttle("redis://:hunter2@127.0.0.1:6379/cache", clock=clock, hmac_key=THROTTLE_KEY)
    assert "hunter2" not in str(caught.value)
    assert ":***@" in str(caught.value)


@pytest.mark.parametrize("prefix", ["", "has space", "a:b", "x" * 33])
def test_refuses_bad_prefixes(prefix: str, clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="prefix"):
        build_throttle("memory://", clock=clock, hmac_key=THROTTLE_KEY, prefix=prefix)
