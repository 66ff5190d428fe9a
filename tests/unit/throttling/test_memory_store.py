"""The in-process counter store: counts, expiry, and purging of expired keys."""

from __future__ import annotations

from authgate.throttling.memory_store import MemoryCounterStore


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_counts_expire_and_restart() -> None:
    tick = Ticker()
    store = MemoryCounterStore(monotonic=tick)
    assert await store.incr("a", 10) == 1
    assert await store.incr("a", 10) == 2
    assert await store.get("a") == 2
    tick.now += 10
    assert await store.get("a") == 0
    assert await store.incr("a", 10) == 1


async def test_expired_keys_are_purged_so_memory_follows_live_keys() -> None:
    tick = Ticker()
    store = MemoryCounterStore(monotonic=tick)
    for i in range(10_000):
        await store.incr(f"attacker-chosen-{i}", 60)
    assert len(store) == 10_000
    tick.now += 61
    await store.incr("one more", 60)
    assert len(store) == 1


async def test_clear_then_reuse_keeps_the_new_expiry() -> None:
    tick = Ticker()
    store = MemoryCounterStore(monotonic=tick)
    await store.incr("k", 10)
    await store.clear("k")
    tick.now += 5
    assert await store.incr("k", 10) == 1  # new window from t+5, expires at t+15
    tick.now += 6  # the stale heap entry (t+10) comes due and must not drop the key
    await store.incr("other", 10)
    assert await store.get("k") == 1
