"""CounterThrottle on memory storage: counts, refusals, windows timed by the clock."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from authgate.clock import FrozenClock
from authgate.throttling import CounterThrottle, RateLimit, build_throttle
from tests.support.server_secrets import THROTTLE_KEY

PER_MINUTE = RateLimit(amount=3, window_seconds=60)


async def test_allows_the_amount_then_refuses_until_the_window_ends(
    throttle: CounterThrottle, clock: FrozenClock
) -> None:
    clock.advance(20)  # 40 seconds left in this minute
    decisions = [await throttle.hit("test", "k", PER_MINUTE) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert [d.retry_after_seconds for d in decisions] == [0, 0, 0, 40]


async def test_retry_after_rounds_up_and_is_never_zero(
    throttle: CounterThrottle, clock: FrozenClock
) -> None:
    clock.advance(59.5)
    for _ in range(3):
        await throttle.hit("test", "k", PER_MINUTE)
    assert (await throttle.hit("test", "k", PER_MINUTE)).retry_after_seconds == 1


async def test_the_next_window_starts_a_new_count(
    throttle: CounterThrottle, clock: FrozenClock
) -> None:
    clock.advance(30)
    for _ in range(4):
        await throttle.hit("test", "k", PER_MINUTE)

    clock.advance(29.9)
    assert not (await throttle.hit("test", "k", PER_MINUTE)).allowed
    clock.advance(0.1)
    assert (await throttle.hit("test", "k", PER_MINUTE)).allowed


async def test_reset_forgets_the_count(throttle: CounterThrottle) -> None:
    for _ in range(3):
        await throttle.hit("test", "k", PER_MINUTE)
    await throttle.reset("test", "k", PER_MINUTE)
    assert (await throttle.hit("test", "k", PER_MINUTE)).remaining == 2


async def test_names_keys_and_windows_count_separately(throttle: CounterThrottle) -> None:
    for _ in range(3):
        await throttle.hit("first", "k", PER_MINUTE)

    assert (await throttle.hit("second", "k", PER_MINUTE)).allowed
    assert (await throttle.hit("first", "other", PER_MINUTE)).allowed
    per_hour = RateLimit(amount=3, window_seconds=3600)
    assert (await throttle.hit("first", "k", per_hour)).allowed
    assert not (await throttle.hit("first", "k", PER_MINUTE)).allowed


async def test_two_throttles_on_memory_do_not_share(clock: FrozenClock) -> None:
    # Documents why memory:// is for a single worker only.
    first = build_throttle("memory://", clock=clock, hmac_key=THROTTLE_KEY)
    second = build_throttle("memory://", clock=clock, hmac_key=THROTTLE_KEY)
    try:
        for _ in range(3):
            await first.hit("test", "k", PER_MINUTE)
        assert (await second.hit("test", "k", PER_MINUTE)).allowed
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("name", ["", "Upper", "with:colon", "space d", "x" * 41])
async def test_refuses_names_outside_the_key_layout(throttle: CounterThrottle, name: str) -> None:
    with pytest.raises(ValueError, match="throttle name"):
        await throttle.hit(name, "k", PER_MINUTE)


async def test_long_keys_are_accepted(throttle: CounterThrottle) -> None:
    email = ("a" * 64) + "@" + ("b" * 189)
    assert (await throttle.hit("test", email, PER_MINUTE)).allowed


async def test_close_is_idempotent(clock: FrozenClock) -> None:
    throttle = build_throttle("memory://", clock=clock, hmac_key=THROTTLE_KEY)
    await throttle.hit("test", "k", PER_MINUTE)
    await throttle.close()
    await throttle.close()


class _RecordingStore:
    def __init__(self) -> None:
        self.keys: list[str] = []

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        self.keys.append(key)
        return 1

    async def clear(self, key: str) -> None:
        self.keys.append(key)


async def test_store_keys_are_an_hmac_of_the_counted_key(clock: FrozenClock) -> None:
    store = _RecordingStore()
    throttle = CounterThrottle(store, clock=clock, hmac_key=THROTTLE_KEY)
    await throttle.hit("test", "cow@cow.jp", PER_MINUTE)
    await throttle.reset("test", "cow@cow.jp", PER_MINUTE)
    expected = hmac.new(THROTTLE_KEY, b"cow@cow.jp", hashlib.sha256).hexdigest()[:32]
    assert store.keys[0].split(":")[1] == expected
    assert store.keys[0] == store.keys[1]
    assert hashlib.sha256(b"cow@cow.jp").hexdigest()[:32] not in store.keys[0]
    with pytest.raises(ValueError, match="at least 32 bytes"):
        CounterThrottle(store, clock=clock, hmac_key=b"short")
